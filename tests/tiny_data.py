"""Tiny datasets folders the tests write: the shape ``train-heads`` and ``fit-bands`` read, a few rows each."""

from __future__ import annotations

import json
from pathlib import Path

from evaluators.training.relevance import HH_FILE


def write_public_data(root: Path) -> Path:
    """A tiny datasets folder in the shape ``train-heads`` reads (HaluEval QA and HH-RLHF turns)."""
    for name in ("toxicity", "relevance"):
        (root / name).mkdir(parents=True)
    folder = root / "hallucination" / "halueval_qa"
    folder.mkdir(parents=True)
    qa = [
        json.dumps(
            {
                "knowledge": f"Town{i} lies on river {i}. The mayor of Town{i} is Person{i}.",
                "question": f"Who is the mayor of Town{i}?",
                "right_answer": f"Person{i}",
                "hallucinated_answer": f"The mayor of Town{i} is Someone{i}.",
            }
        )
        for i in range(24)
    ]
    (folder / "qa_one-turn_data.jsonl").write_text("\n".join(qa) + "\n", encoding="utf-8")
    hh = root / HH_FILE
    hh.parent.mkdir(parents=True)
    chats = [
        json.dumps({"chosen": f"\n\nHuman: How do I plant tree{i}?\n\nAssistant: Dig a hole for tree{i} and water it."
                    f"\n\nHuman: How deep?\n\nAssistant: Dig the tree{i} hole two feet deep.", "rejected": ""})
        for i in range(16)
    ]  # fmt: skip
    hh.write_text("\n".join(chats) + "\n", encoding="utf-8")
    return root
