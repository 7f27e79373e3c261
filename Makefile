# The two commands of the README: `make demo` and `make test`. Each sets itself up (creates .venv and
# installs on first use or when pyproject.toml changes), then runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit slow labelstudio clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, from the pinned CPU wheel, so nothing below pulls a CUDA build
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,detoxify,eval,onnx,ner]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lookout demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# two workers: each has its own broker and chDB directories (fixtures pick free ports and temp dirs)
test: lint typecheck
	$(BIN)/python -m pytest -q -n 2

unit: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 tests/unit

slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# Label Studio 1.23.2 in its own venv (~1 GB, a few minutes) for the slow Label Studio round-trip test
LS_VENV := .venv-labelstudio
labelstudio: $(LS_VENV)/bin/label-studio

$(LS_VENV)/bin/label-studio:
	$(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install -q --upgrade pip
	$(LS_VENV)/bin/python -m pip install -q label-studio==1.23.2

clean:
	rm -rf $(VENV) lookout-data .pytest_cache .mypy_cache .ruff_cache
