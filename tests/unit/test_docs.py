"""The README and docs/ say what the code does: short README, working links, generated references up to date."""

from __future__ import annotations

import argparse
import importlib.util
import re
from pathlib import Path
from types import ModuleType

from agent.cli import build_parser
from detectors.head import HEADS_DIR, LogisticHead

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))

_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` (scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _relative_links(page: Path) -> list[str]:
    """Targets of the page's markdown links outside code blocks, other than URLs and same-page anchors."""
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    return [t for t in _LINK.findall(text) if not re.match(r"[a-z]+:|#", t)]


def _linked_files(page: Path) -> set[Path]:
    """The files the page links to, resolved, anchors dropped."""
    return {(page.parent / target.split("#", 1)[0]).resolve() for target in _relative_links(page)}


def _leaf_commands(parser: argparse.ArgumentParser, prog: str = "lookout") -> list[str]:
    """Every runnable command under ``parser``, with its parents: ``lookout run``, ``lookout review serve``..."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            out = []
            for name, sub in action.choices.items():
                out.extend(_leaf_commands(sub, f"{prog} {name}"))
            return out
    return [prog]


class TestReadme:
    """The README is short and leads into docs/."""

    def test_at_most_200_lines(self) -> None:
        """README.md has 200 lines or fewer; the rest belongs in docs/."""
        lines = README.read_text(encoding="utf-8").splitlines()
        assert len(lines) <= 200, f"README.md has {len(lines)} lines; move detail into a docs/ page"

    def test_links_every_docs_page(self) -> None:
        """Every docs/*.md page is linked from the README."""
        assert PAGES, "docs/ has no pages"
        missing = [p.name for p in PAGES if p.resolve() not in _linked_files(README)]
        assert not missing, f"README.md does not link docs/ pages: {missing}"

    def test_public_env_contract_named(self) -> None:
        """The env var names other work relies on appear in the README."""
        text = README.read_text(encoding="utf-8")
        for var in (
            "LOOKOUT_KAFKA__BOOTSTRAP_SERVERS",
            "LOOKOUT_KAFKA__TOPIC",
            "LOOKOUT_KAFKA__GROUP_ID",
            "LOOKOUT_CLICKHOUSE__DSN",
        ):
            assert f"`{var}`" in text, var


class TestDocsIndex:
    """docs/index.md lists the whole of docs/."""

    def test_links_every_other_page(self) -> None:
        """Every docs/*.md page except the index itself is linked from docs/index.md."""
        index = DOCS / "index.md"
        missing = [p.name for p in PAGES if p != index and p.resolve() not in _linked_files(index)]
        assert not missing, f"docs/index.md does not link: {missing}"


class TestLinks:
    """Relative links in the README and docs/ point at files that exist."""

    def test_relative_links_resolve(self) -> None:
        """Each relative link (anchor ignored) in README.md and docs/*.md names an existing file or folder."""
        broken = [
            f"{page.relative_to(ROOT)}: {target}"
            for page in [README, *PAGES]
            for target in _relative_links(page)
            if not (page.parent / target.split("#", 1)[0]).exists()
        ]
        assert not broken, f"broken links: {broken}"


class TestConfigurationPage:
    """docs/configuration.md is generated from the settings."""

    def test_is_current(self) -> None:
        """docs/configuration.md equals what scripts/config_reference.py generates now."""
        module = _script("config_reference")
        current = (DOCS / "configuration.md").read_text(encoding="utf-8")
        assert current == module.page(), "docs/configuration.md is stale: run python scripts/config_reference.py"


class TestCliPage:
    """docs/cli.md documents every command; its options reference is generated from the parser."""

    def test_options_reference_is_current(self) -> None:
        """The generated block of docs/cli.md equals what scripts/cli_reference.py generates now."""
        module = _script("cli_reference")
        current = (DOCS / "cli.md").read_text(encoding="utf-8")
        assert module.reference() in current, "docs/cli.md options are stale: run python scripts/cli_reference.py"

    def test_every_command_is_documented(self) -> None:
        """Each runnable `lookout` command is named in a row of the docs/cli.md command table."""
        rows = [line for line in (DOCS / "cli.md").read_text(encoding="utf-8").splitlines() if line.startswith("| `")]
        commands = _leaf_commands(build_parser())
        assert len(commands) > 10, commands
        for command in commands:
            assert any(f"`{command}`" in row for row in rows), f"{command} has no row in docs/cli.md"


class TestEvaluationPage:
    """docs/evaluation.md's quality table matches the shipped heads."""

    def test_quality_table_matches_the_shipped_heads(self) -> None:
        """Every held-out metric stored in a shipped head's JSON is a docs/evaluation.md table row with its values.

        The heads' meta is written by ``lookout train-heads`` from the same evaluation ``lookout eval`` prints,
        so a row that drifts from it (or a head retrained without updating the page) fails here.
        """
        lines = (DOCS / "evaluation.md").read_text(encoding="utf-8").splitlines()
        for name in ("toxicity", "hallucination", "relevance"):
            meta = LogisticHead.load(HEADS_DIR / f"{name}.json").meta
            assert meta["held_out_metrics"], name
            for m in meta["held_out_metrics"]:
                base = "" if m["baseline"] is None else f"{m['baseline']:.3f}"
                row = f"| {name} | {m['dataset']} | {m['metric']} | {m['lookout']:.3f} | {base} |"
                assert any(line.startswith(row) for line in lines), f"docs/evaluation.md quality table lacks: {row}"
