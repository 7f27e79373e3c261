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


def write_begin_data(root: Path, rows: int = 12) -> Path:
    """BEGIN dev files, one per source (``root/hallucination/begin_dev``).

    Per town a supported response and one that invents a founder.
    """
    from evaluators.training.hallucination import BEGIN_SOURCES

    begin = root / "hallucination" / "begin_dev"
    begin.mkdir(parents=True, exist_ok=True)
    for source in BEGIN_SOURCES:
        lines = ["begin_label\tknowledge\tmessage\tresponse"]
        for i in range(rows):
            knowledge, message = f"Town{i} in {source} has a market.", f"Tell me about Town{i}"
            lines.append(f"Fully attributable\t{knowledge}\t{message}\tTown{i} has a market.")
            lines.append(f"Not fully attributable\t{knowledge}\t{message}\tSomeone{i} built Town{i} in 1900.")
        (begin / f"begin_dev_{source}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


TOXIC = ("you are a stupid worthless idiot", "shut up you pathetic loser", "women like you are disgusting morons")
BENIGN = ("lovely weather at the market today", "the train was on time this morning", "the women's team won again")
"""Identity terms in some rows: the trainer adds identity-swapped copies of them."""


def write_toxicity_data(root: Path) -> Path:
    """A tiny toxicity folder in the shape the toxicity trainer reads: Davidson tweets, wiki comments, ToxiGen seeds.

    Half toxic, half benign in each, numbered so every text is distinct (the splits hash the text or rev_id).
    """
    davidson = root / "toxicity" / "davidson_hate_offensive"
    davidson.mkdir(parents=True, exist_ok=True)
    rows = [",count,hate_speech,offensive_language,neither,class,tweet"]
    for i in range(160):
        toxic = i % 2 == 0
        text = f"{(TOXIC if toxic else BENIGN)[i % 3]} number {i}"
        rows.append(f"{i},3,0,{3 if toxic else 0},{0 if toxic else 3},{1 if toxic else 2},{text}")
    (davidson / "labeled_data.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    wiki = root / "toxicity" / "wiki_toxicity_dev"
    wiki.mkdir(parents=True, exist_ok=True)
    lines = ["rev_id,comment,toxic"]
    lines += [f"{i},{(TOXIC if i % 2 else BENIGN)[i % 3]} comment {i},{i % 2 == 1}" for i in range(160)]
    (wiki / "toxicity_dev_half.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    toxigen = root / "toxicity" / "toxigen_seeds"
    toxigen.mkdir(parents=True, exist_ok=True)
    seeds = ["text,label,group"]
    seeds += [f"{'they are all lazy and dirty' if i % 2 else 'they opened a bakery'} {i},{i % 2},"
              f"{('women', 'asian')[i % 4 // 2]}" for i in range(40)]  # fmt: skip
    (toxigen / "toxigen_seed_statements.csv").write_text("\n".join(seeds) + "\n", encoding="utf-8")
    return root
