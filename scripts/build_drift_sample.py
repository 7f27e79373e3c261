"""Build tests/data/drift_sample.jsonl: real prompts from two corpora for the drift tests and evaluation.

``hh``: the first human turn of each Anthropic HH-RLHF harmless-base test conversation (MIT).
``qa``: the questions of HaluEval QA, one-turn and multi-turn files (MIT).
Both are read from the datasets folder given as ``--data``; the output is committed (with attribution) so the
tests need no datasets::

    python scripts/build_drift_sample.py --data DIR
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from pathlib import Path

HH = Path("traffic") / "hh_rlhf_harmless_base_test" / "test.jsonl"
"""HH-RLHF harmless-base test transcripts, relative to the datasets folder."""
QA = Path("hallucination") / "halueval_qa"
"""HaluEval QA files, relative to the datasets folder."""
OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "drift_sample.jsonl"
FIRST_HUMAN = re.compile(r"^\s*Human:\s*(.*?)\n\nAssistant:", re.S)


def main(argv: Sequence[str] | None = None) -> None:
    """Write one ``{"corpus", "text"}`` line per distinct prompt, corpus by corpus, in source order."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, required=True, help="datasets folder (holds traffic/ and hallucination/)")
    data = parser.parse_args(argv).data
    seen: set[str] = set()
    rows: list[dict[str, str]] = []
    for line in (data / HH).read_text(encoding="utf-8").splitlines():
        match = FIRST_HUMAN.match(json.loads(line)["chosen"])
        text = match.group(1).strip() if match else ""
        if text and text not in seen:
            seen.add(text)
            rows.append({"corpus": "hh", "text": text})
    for name in ("qa_one-turn_data.jsonl", "qa_multi-turn_data.jsonl"):
        for line in (data / QA / name).read_text(encoding="utf-8").splitlines():
            text = str(json.loads(line)["question"]).strip()
            if text and text not in seen:
                seen.add(text)
                rows.append({"corpus": "qa", "text": text})
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    counts = {c: sum(r["corpus"] == c for r in rows) for c in ("hh", "qa")}
    print(f"wrote {OUT} ({counts})")


if __name__ == "__main__":
    main()
