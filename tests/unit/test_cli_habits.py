"""CLI habits (issue 24, part 8): bare ``lookout`` helps, ``--config`` goes before or after the command."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.cli import main
from agent.storage.query import qualify


@pytest.fixture(autouse=True)
def _no_lookout_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the files these tests write, not from the shell's LOOKOUT_* variables."""
    for name in [k for k in os.environ if k.startswith("LOOKOUT_")]:
        monkeypatch.delenv(name)


def test_bare_lookout_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    """No arguments: the help on stdout and exit 0, not a usage error."""
    assert main([]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("usage: lookout") and "COMMAND" in out.out and out.err == ""


@pytest.mark.parametrize("where", ["before", "after"])
def test_config_before_or_after_the_command(where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``lookout --config F config`` and ``lookout config --config F`` read the same file."""
    config = tmp_path / "lookout.yaml"
    config.write_text("kafka:\n  topic: from-the-file\n")
    argv = ["--config", str(config), "config"] if where == "before" else ["config", "--config", str(config)]
    assert main(argv) == 0
    assert "topic: from-the-file" in capsys.readouterr().out


def test_after_wins_over_before(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Given both, the command's own --config is the one read."""
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("kafka:\n  topic: first\n")
    second.write_text("kafka:\n  topic: second\n")
    assert main(["--config", str(first), "config", "--config", str(second)]) == 0
    assert "topic: second" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT count() FROM v_records", "SELECT count() FROM db.v_records"),
        ("SELECT * FROM v_records r JOIN v_review_items i ON r.id = i.record_id",
         "SELECT * FROM db.v_records r JOIN db.v_review_items i ON r.id = i.record_id"),
        ("SELECT 'v_records' FROM lookout.v_records", "SELECT 'v_records' FROM lookout.v_records"),
        ("SELECT x AS v_alias FROM `v_records` -- v_records", "SELECT x AS v_alias FROM `v_records` -- v_records"),
        ("SELECT v_fn(1), t.v_col FROM system.one AS t", "SELECT v_fn(1), t.v_col FROM system.one AS t"),
    ],
)  # fmt: skip
def test_query_reads_unqualified_views_from_the_database(sql: str, expected: str) -> None:
    """Bare v_* names in code get the database; strings, quoted names, comments, columns and calls do not."""
    assert qualify(sql, "db") == expected
