"""The README documents what the code does: the generated config table and every CLI command."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from agent.cli import build_parser
from detectors.head import HEADS_DIR, LogisticHead

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "config_reference.py"


def _config_reference() -> str:
    spec = importlib.util.spec_from_file_location("config_reference", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return f"{module.BEGIN}\n{module.table()}\n{module.END}"


class TestReadme:
    """README stays in step with code."""

    def test_config_reference_is_current(self) -> None:
        """The configuration table equals what scripts/config_reference.py generates now."""
        assert _config_reference() in README, "README config table is stale: run scripts/config_reference.py"

    def test_quality_table_matches_the_shipped_heads(self) -> None:
        """Every held-out metric stored in a shipped head's JSON is a README table row with the same values.

        The heads' meta is written by ``lookout train-heads`` from the same evaluation ``lookout eval`` prints,
        so a README row that drifts from it (or a head retrained without updating the README) fails here.
        """
        lines = README.splitlines()
        for name in ("toxicity", "hallucination", "relevance"):
            meta = LogisticHead.load(HEADS_DIR / f"{name}.json").meta
            assert meta["held_out_metrics"], name
            for m in meta["held_out_metrics"]:
                base = "" if m["baseline"] is None else f"{m['baseline']:.3f}"
                row = f"| {name} | {m['dataset']} | {m['metric']} | {m['lookout']:.3f} | {base} |"
                assert any(line.startswith(row) for line in lines), f"README quality table lacks: {row}"

    def test_every_command_is_documented(self) -> None:
        """Each subcommand of `lookout` has a row in the CLI table."""
        parser = build_parser()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        for name in sub.choices:
            assert f"| `lookout {name}" in README, f"lookout {name} missing from README"

    def test_public_env_contract_named(self) -> None:
        """The env var names other work relies on appear in the README."""
        for var in (
            "LOOKOUT_KAFKA__BOOTSTRAP_SERVERS",
            "LOOKOUT_KAFKA__TOPIC",
            "LOOKOUT_KAFKA__GROUP_ID",
            "LOOKOUT_CLICKHOUSE__DSN",
        ):
            assert f"`{var}`" in README
