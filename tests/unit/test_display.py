"""Stored text on the terminal: never Rich markup, no control, escape or bidi character (--json stays exact)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from agent.cli import main
from agent.demo import print_summary
from agent.display import shown, visible

HOSTILE = "[/] [bold]x[/bold] [t](javascript:alert(1)) \x1b]0;pwned\x07\x1b[31mred \u202egnp.exe\u200b"


def _summary(response: str) -> dict[str, Any]:
    return {
        "samples": 1, "dead_letters": 0, "cost_usd": 0.0, "records_without_cost": 0,
        "detectors": {"toxicity": {"mean": 0.9, "flagged": 1, "scored": 1}},
        "review_queues": {"safety": {"items": 1, "labeled": 0}},
        "drift": {
            "windows": 2, "drifted": 1, "streams_drifted": 1,
            "drifted_streams": [{"tenant": "[/]t", "model": "m\x1b[2J", "route": "r", "signals": ["prompt_embedding"]}],
        },
        "most_flagged": [
            {"id": "[/]id\x1b[2J", "flags": ["toxicity"], "scores": {"toxicity": 0.9}, "response": response},
        ],
    }  # fmt: skip


class TestShown:
    """Any value becomes plain, visible text."""

    def test_markup_is_text(self) -> None:
        """Brackets are kept as they are, not parsed."""
        assert shown("[/] [bold]x[/bold]").plain == "[/] [bold]x[/bold]"

    def test_controls_and_bidi_become_visible_escapes(self) -> None:
        """ESC, BEL, C1 CSI, RLO and zero-width space are written out; tab and newline stay."""
        assert visible("a\x1b[31m\x07\x9b\u202e\u200bb\tc\n") == "a\\x1b[31m\\x07\\x9b\\u202e\\u200bb\tc\n"

    def test_none(self) -> None:
        """None shows as the given placeholder."""
        assert shown(None, none="NULL").plain == "NULL"


class TestSummary:
    """``lookout stats`` (and the demo) survive any stored text."""

    def test_hostile_response_and_id_print_as_text(self) -> None:
        """A response starting with ``[/]`` used to raise MarkupError; now it prints, and no ESC reaches the output."""
        out = io.StringIO()
        print_summary(_summary(HOSTILE), Console(file=out, width=400, color_system=None))
        text = out.getvalue()
        assert "[/] [bold]x[/bold] [t](javascript:" in text  # the column is 40 wide: the rest is an ellipsis
        assert "[/]id\\x1b[2J" in text
        assert "drift: 2 windows tested, 1 drifted ([/]t/m\\x1b[2J/r: prompt_embedding); 0 novel prompts" in text
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text


class TestQueryOutput:
    """``lookout query`` on real chDB: table output is plain and safe; --json stays exact."""

    @pytest.fixture
    def env(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        monkeypatch.setenv("LOOKOUT_CLICKHOUSE__DSN", f"chdb://{tmp_path / 'data'}")
        monkeypatch.setenv("COLUMNS", "400")
        monkeypatch.chdir(tmp_path)
        assert main(["migrate"]) == 0
        capsys.readouterr()

    def test_table_output(self, env: None, capsys: pytest.CaptureFixture[str]) -> None:
        """Markup in values and column names prints as text; escape sequences are shown, not sent."""
        assert main(["query", r"SELECT '[/] x' AS `[/]`, 'a\x1b]0;t\x07\x1b[31mb' AS v, NULL AS n"]) == 0
        out = capsys.readouterr().out
        assert "[/] x" in out and "a\\x1b]0;t\\x07\\x1b[31mb" in out and "NULL" in out
        assert "\x1b" not in out and "\x07" not in out

    def test_json_stays_exact(self, env: None, capsys: pytest.CaptureFixture[str]) -> None:
        """--json prints the stored bytes as JSON (escaped by JSON, not altered)."""
        assert main(["query", r"SELECT '[/] a\x1bb' AS v", "--json"]) == 0
        assert capsys.readouterr().out == '{"v": "[/] a\\u001bb"}\n'
