"""Write what ``lookout demo`` prints into README.md and docs/demo.md (a test fails when they differ).

Run ``python scripts/demo_output.py`` after a change that moves the demo's numbers: it runs the demo on a fresh
store in a temporary directory at the docs' width and replaces the fenced block that starts with ``3/3 this run``
in both pages: README.md gets the summary up to the "most flagged" table (record text, some of it red-team prompts,
stays out of the README), docs/demo.md everything from the summary on.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = 120
"""Terminal width of the printed blocks (tests/integration/test_cli.py runs the demo at the same width)."""
FIRST_LINE = "3/3 this run"


def printed() -> list[str]:
    """The demo's output from its summary line on, each line without trailing spaces."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOOKOUT_")} | {"COLUMNS": str(COLUMNS)}
        done = subprocess.run(
            [sys.executable, "-m", "agent", "demo"], cwd=tmp, env=env, capture_output=True, text=True, check=False
        )
    if done.returncode != 0:
        raise SystemExit(f"lookout demo failed:\n{done.stderr[-3000:]}")
    lines = [line.rstrip() for line in done.stdout.splitlines()]
    out = lines[next(i for i, line in enumerate(lines) if line.startswith(FIRST_LINE)) :]
    while out and not out[-1]:
        out.pop()
    return out


def replace_block(page: Path, block: list[str]) -> None:
    """Replace ``page``'s fenced block that starts with FIRST_LINE by ``block``."""
    parts = page.read_text(encoding="utf-8").split("```")
    at = next(i for i in range(1, len(parts), 2) if parts[i].lstrip("\n").startswith(FIRST_LINE))
    parts[at] = "\n" + "\n".join(block) + "\n"
    page.write_text("```".join(parts), encoding="utf-8")


def readme_part(lines: list[str]) -> list[str]:
    """The lines README.md shows: the summary, without the most-flagged table and the ``next:`` lines."""
    end = next(i for i, line in enumerate(lines) if "most flagged" in line or line.startswith("next:"))
    return lines[:end]


def main() -> None:
    """Run the demo once and write both blocks."""
    lines = printed()
    summary = readme_part(lines)
    replace_block(ROOT / "README.md", summary)
    replace_block(ROOT / "docs" / "demo.md", lines)
    print(f"wrote the demo's output ({len(lines)} lines) into README.md and docs/demo.md")


if __name__ == "__main__":
    main()
