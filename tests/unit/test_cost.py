"""Cost at ingest: the bundled price table, model-name matching, arithmetic, override files."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import yaml

from agent.cost import Price, PriceTable
from agent.errors import ConfigError
from agent.types import Usage


@pytest.fixture(scope="module")
def table() -> PriceTable:
    """The bundled price table."""
    return PriceTable.load()


def bundled_entries() -> dict[str, dict[str, float]]:
    """The bundled prices.yaml, read directly."""
    text = resources.files("agent").joinpath("prices.yaml").read_text(encoding="utf-8")
    models: dict[str, dict[str, float]] = yaml.safe_load(text)["models"]
    return models


class TestBundledTable:
    """The table shipped in the package loads and prices every model it lists."""

    def test_loads_every_entry(self, table: PriceTable) -> None:
        """Every model in prices.yaml is priced exactly as written."""
        entries = bundled_entries()
        assert len(entries) == 18
        for model, entry in entries.items():
            assert table.lookup(model) == Price(input=entry["input"], output=entry["output"]), model

    def test_exact_match(self, table: PriceTable) -> None:
        """An exact model name gets its own price."""
        assert table.lookup("gpt-4o") == Price(input=2.50, output=10.00)
        assert table.lookup("gpt-4o-mini") == Price(input=0.15, output=0.60)
        assert table.lookup("claude-3-opus") == Price(input=15.00, output=75.00)

    def test_contains(self, table: PriceTable) -> None:
        """``in`` follows lookup: priced names and their versions are in, others are not."""
        assert "gpt-4o" in table
        assert "gpt-4o-2024-08-06" in table
        assert "gpt-4ox" not in table
        assert "in-house-llm" not in table


class TestLookup:
    """Exact name first, else the longest entry the name extends with a separator."""

    def test_versioned_name_takes_longest_prefix(self, table: PriceTable) -> None:
        """gpt-4o-mini-2024-07-18 bills as gpt-4o-mini, not gpt-4o."""
        assert table.lookup("gpt-4o-mini-2024-07-18") == Price(input=0.15, output=0.60)
        assert table.lookup("gpt-4.1-mini-2025-04-14") == Price(input=0.40, output=1.60)
        assert table.lookup("gpt-4o-2024-08-06") == Price(input=2.50, output=10.00)

    @pytest.mark.parametrize("model", ["gpt-4o:latest", "gpt-4o@2024-08-06", "gpt-4o/eu", "gpt-4o-x"])
    def test_each_separator(self, table: PriceTable, model: str) -> None:
        """'-', ':', '@' and '/' after an entry's name all count as a version suffix."""
        assert table.lookup(model) == Price(input=2.50, output=10.00)

    @pytest.mark.parametrize("model", ["gpt-4ox", "gpt-4o.1", "gpt-4o_mini", "gpt-4", "openai/gpt-4o", "GPT-4O", ""])
    def test_no_match(self, table: PriceTable, model: str) -> None:
        """A name that does not extend an entry with a separator has no price."""
        assert table.lookup(model) is None

    def test_unknown_model(self, table: PriceTable) -> None:
        """An unknown model has no price and no cost."""
        assert table.lookup("in-house-llm") is None
        assert table.cost("in-house-llm", Usage(prompt_tokens=10, completion_tokens=10)) is None

    def test_longest_prefix_independent_of_order(self) -> None:
        """The longest matching entry wins whatever order the table was built in."""
        short, long = Price(1.0, 1.0), Price(2.0, 2.0)
        for prices in ({"m": short, "m-large": long}, {"m-large": long, "m": short}):
            table = PriceTable(prices)
            assert table.lookup("m-large-v2") == long
            assert table.lookup("m-small") == short


class TestCost:
    """USD = (prompt tokens x input + completion tokens x output) / 1M; None without price or usage."""

    def test_arithmetic(self, table: PriceTable) -> None:
        """1000 prompt and 2000 completion tokens of gpt-4o cost 0.0225 USD."""
        cost = table.cost("gpt-4o", Usage(prompt_tokens=1000, completion_tokens=2000))
        assert cost == pytest.approx(0.0225)

    def test_arithmetic_versioned(self, table: PriceTable) -> None:
        """A versioned name is charged at its base model's price."""
        cost = table.cost("gpt-4o-mini-2024-07-18", Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000))
        assert cost == pytest.approx(0.75)

    def test_zero_tokens(self, table: PriceTable) -> None:
        """Zero tokens cost zero, not None."""
        assert table.cost("gpt-4o", Usage(prompt_tokens=0, completion_tokens=0)) == 0.0

    def test_usage_none(self, table: PriceTable) -> None:
        """No usage means no cost."""
        assert table.cost("gpt-4o", None) is None

    def test_usage_both_none(self, table: PriceTable) -> None:
        """Usage with neither count means no cost."""
        assert table.cost("gpt-4o", Usage(prompt_tokens=None, completion_tokens=None)) is None

    def test_one_side_none_counts_zero(self, table: PriceTable) -> None:
        """A missing count on one side is charged as zero tokens."""
        assert table.cost("gpt-4o", Usage(prompt_tokens=1000, completion_tokens=None)) == pytest.approx(0.0025)
        assert table.cost("gpt-4o", Usage(prompt_tokens=None, completion_tokens=1000)) == pytest.approx(0.01)


def write(tmp_path: Path, text: str) -> Path:
    """An override file holding ``text``."""
    path = tmp_path / "prices.yaml"
    path.write_text(text, encoding="utf-8")
    return path


class TestOverride:
    """An override file is merged over the bundled table."""

    def test_merge(self, tmp_path: Path) -> None:
        """An overridden model takes the new price, a new model is added, the rest stay bundled."""
        path = write(tmp_path, "models:\n  gpt-4o: {input: 1, output: 2}\n  in-house-llm: {input: 0.5, output: 0.25}\n")
        table = PriceTable.load(path)
        assert table.lookup("gpt-4o") == Price(input=1.0, output=2.0)
        assert table.lookup("gpt-4o-2024-08-06") == Price(input=1.0, output=2.0)
        assert table.lookup("in-house-llm") == Price(input=0.5, output=0.25)
        assert table.lookup("gpt-4o-mini") == Price(input=0.15, output=0.60)
        assert table.lookup("claude-3-opus") == Price(input=15.00, output=75.00)
        assert table.cost("in-house-llm", Usage(prompt_tokens=2_000_000, completion_tokens=4_000_000)) == 2.0

    def test_integer_prices_become_floats(self, tmp_path: Path) -> None:
        """Integer prices in the file are stored as floats."""
        price = PriceTable.load(write(tmp_path, "models:\n  m: {input: 3, output: 0}\n")).lookup("m")
        assert price == Price(input=3.0, output=0.0)
        assert price is not None
        assert type(price.input) is float

    def test_override_adds_more_specific_entry(self, tmp_path: Path) -> None:
        """A new, longer entry wins over a bundled prefix for names that extend it."""
        table = PriceTable.load(write(tmp_path, "models:\n  gpt-4o-mini-2024-07-18: {input: 9, output: 9}\n"))
        assert table.lookup("gpt-4o-mini-2024-07-18") == Price(input=9.0, output=9.0)
        assert table.lookup("gpt-4o-mini-2025-01-01") == Price(input=0.15, output=0.60)

    def test_empty_models_changes_nothing(self, tmp_path: Path) -> None:
        """An override with an empty models mapping leaves the bundled prices."""
        table = PriceTable.load(write(tmp_path, "models: {}\n"))
        assert table.lookup("gpt-4o") == Price(input=2.50, output=10.00)

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            ("prices:\n  m: {input: 1, output: 1}\n", "expected a mapping with a 'models' mapping"),
            ("", "expected a mapping with a 'models' mapping"),
            ("models: [m]\n", "expected a mapping with a 'models' mapping"),
            ("models:\n  m: {input: -1, output: 1}\n", "m.input must not be negative"),
            ("models:\n  m: {input: 1, output: -0.5}\n", "m.output must not be negative"),
            ("models:\n  m: {input: abc, output: 1}\n", "m.input must be a number"),
            ("models:\n  m: {input: true, output: 1}\n", "m.input must be a number"),
            ("models:\n  m: {input: 1, output: .inf}\n", "m.output must be a number"),
            ("models:\n  m: {input: 1, output: 1, cached: 0.5}\n", "model 'm' needs exactly 'input' and 'output'"),
            ("models:\n  m: {input: 1}\n", "model 'm' needs exactly 'input' and 'output'"),
            ("models:\n  m: 1.5\n", "model 'm' needs exactly 'input' and 'output'"),
            ("models: [\n", "not valid YAML (expected the node content, but found '<stream end>' at line 2, column 1)"),
            ("models:\n  m: {input: 1\n", "not valid YAML (expected ',' or '}', but got '<stream end>'"),
        ],
        ids=[
            "missing-models",
            "empty-file",
            "models-list",
            "negative-input",
            "negative-output",
            "string-price",
            "boolean-price",
            "infinite-price",
            "extra-key",
            "missing-key",
            "entry-not-mapping",
            "invalid-yaml",
            "unclosed-flow-mapping",
        ],
    )
    def test_invalid_file(self, tmp_path: Path, text: str, reason: str) -> None:
        """An invalid override file is a ConfigError: one line naming the file and what is wrong."""
        path = write(tmp_path, text)
        with pytest.raises(ConfigError) as info:
            PriceTable.load(path)
        message = str(info.value)
        assert message.startswith(f"price table {path}: ")
        assert reason in message
        assert "\n" not in message

    def test_missing_file(self, tmp_path: Path) -> None:
        """An override path that does not exist is a ConfigError saying so."""
        path = tmp_path / "absent.yaml"
        with pytest.raises(ConfigError) as info:
            PriceTable.load(path)
        assert str(info.value) == f"price table {path}: No such file or directory"

    def test_directory(self, tmp_path: Path) -> None:
        """An override path that is a directory is a ConfigError saying so."""
        with pytest.raises(ConfigError) as info:
            PriceTable.load(tmp_path)
        assert str(info.value) == f"price table {tmp_path}: Is a directory"

    def test_not_utf8(self, tmp_path: Path) -> None:
        """An override file that is not UTF-8 text is a ConfigError, not a UnicodeDecodeError."""
        path = tmp_path / "prices.yaml"
        path.write_bytes(b"models:\n  m\xff: {input: 1, output: 1}\n")
        with pytest.raises(ConfigError) as info:
            PriceTable.load(path)
        assert str(info.value) == f"price table {path}: not UTF-8 text (byte 11)"
