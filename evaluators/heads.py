"""``lookout train-heads`` and ``lookout eval``: retrain every shipped head, and measure every detector.

Each module in ``evaluators/training`` exposes ``train(data_dir, encoder, seed, cache_dir) -> LogisticHead``
and ``evaluate(data_dir, encoder, cache_dir) -> list[EvalRow]``; this module runs them in order.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

from detectors.encoder import SentenceTransformerEncoder
from detectors.head import HEADS_DIR, LogisticHead
from evaluators.quality import EvalRow

HEAD_TRAINERS: tuple[str, ...] = ("toxicity", "hallucination", "relevance")
"""Heads that ship, each trained by ``evaluators.training.<name>``."""

DEFAULT_CACHE = Path.home() / ".cache" / "lookout" / "embeddings"


def _module(name: str) -> ModuleType:
    if name not in HEAD_TRAINERS:
        raise ValueError(f"unknown head {name!r}; valid: {', '.join(HEAD_TRAINERS)}")
    return importlib.import_module(f"evaluators.training.{name}")


def check_data_dir(data_dir: Path) -> None:
    """Fail with one line when ``data_dir`` is not a datasets folder."""
    expected = ("toxicity", "hallucination", "relevance")
    missing = [d for d in expected if not (data_dir / d).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"{data_dir} is not a datasets folder (missing {', '.join(missing)}/); "
            "point --data at the datasets root (the folder holding toxicity/, hallucination/ and relevance/)"
        )


def train_heads(
    data_dir: Path,
    out_dir: Path = HEADS_DIR,
    names: Sequence[str] = HEAD_TRAINERS,
    seed: int = 0,
    cache_dir: Path | None = DEFAULT_CACHE,
    report: Callable[[str], None] = print,
) -> list[LogisticHead]:
    """Train the named heads and write ``<out_dir>/<name>.json``; returns them."""
    check_data_dir(data_dir)
    encoder = SentenceTransformerEncoder()
    out_dir.mkdir(parents=True, exist_ok=True)
    heads = []
    for name in names:
        report(f"training {name} ...")
        head: LogisticHead = _module(name).train(data_dir, encoder, seed=seed, cache_dir=cache_dir)
        module = _module(name)
        head.save(out_dir / f"{name}.json")
        head = LogisticHead.load(out_dir / f"{name}.json")  # the card renders what ships (JSON key order)
        card = getattr(module, "model_card", None)
        if callable(card):
            (out_dir / f"{name}.md").write_text(card(head))
        report(f"wrote {out_dir / f'{name}.json'} ({head.version})")
        heads.append(head)
    return heads


def evaluate_all(
    data_dir: Path,
    names: Sequence[str] = HEAD_TRAINERS,
    cache_dir: Path | None = DEFAULT_CACHE,
    report: Callable[[str], None] = print,
) -> list[EvalRow]:
    """Every named detector's quality rows, baseline beside it."""
    check_data_dir(data_dir)
    encoder = SentenceTransformerEncoder()
    rows: list[EvalRow] = []
    for name in names:
        report(f"evaluating {name} ...")
        rows.extend(_module(name).evaluate(data_dir, encoder, cache_dir=cache_dir))
    return rows


def markdown_table(rows: Sequence[EvalRow]) -> str:
    """docs/evaluation.md's quality table."""
    lines = [
        "| detector | dev set | metric | lookout | plain baseline | published |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        base = "" if r.baseline is None else f"{r.baseline:.3f}"
        lines.append(f"| {r.detector} | {r.dataset} | {r.metric} | {r.lookout:.3f} | {base} | {r.published} |")
    return "\n".join(lines)
