"""Exploration, nothing ships from it: do reworded faithful training answers stop the false alarms on paraphrases?

The hallucination head (``evaluators/training/hallucination.py``) flags every reworded faithful answer of the
blind faithfulness probes: HaluEval's right answers are spans of the knowledge and BEGIN's attributable replies
mostly copy it, so nothing in its training data says new wording can be faithful. This script fits the head
exactly as ``lookout train-heads`` does (``current``) and again with the 240 rows of faithfulness set B
(``evaluators/training/hallucination_set_b.py``) added as a third weight family (``rows``: 60 invented
contexts, each with a reworded and a mixed-wording faithful answer and an answer with an unsupported detail
and a contradiction, written blind to the probes), then prints every row of ``lookout eval`` for both side by
side (set B's rows are in-sample for ``rows``) and a grouped 5-fold cross-validation over set B's contexts
(train part + four fifths of set B; the other fifth scored). Nothing is written.

Usage::

    python scripts/explore_hallucination_rows.py --data ../shared/datasets

About 10 seconds on 2 cores with the embedding cache warm (``~/.cache/lookout/embeddings``), 6 minutes cold.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from agent.config import Settings
from detectors.hallucination import FEATURES
from evaluators.commands import _encoder
from evaluators.heads import DEFAULT_CACHE
from evaluators.training import hallucination as hal
from evaluators.training.hallucination_set_b import FAITH_SET_B

SEED = 0
FOLDS = 5


def written() -> list[tuple[hal.Example, hal.Probe]]:
    """Set B's rows as training examples (dataset ``written``, its own weight family) and as evaluation entries."""
    return [
        (hal.Example("written\n" + ctx, "written", q, answer, (ctx,), label), (ctx, answer, kind, label))
        for q, ctx, answer, kind, label in FAITH_SET_B
    ]


def fold(example: hal.Example) -> int:
    """The example's cross-validation fold, by its context."""
    return int(hashlib.sha256(example.group.encode()).hexdigest(), 16) % FOLDS


def main(argv: Sequence[str] | None = None) -> int:
    """Print the comparison; exit 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared datasets root")
    args = parser.parse_args(argv)
    encoder = _encoder(Settings())
    sets = hal.load_all(args.data)
    base = hal._train_part(sets)
    rows = written()
    examples = [e for e, _ in rows]

    current = hal.fit_head(base, encoder, SEED, DEFAULT_CACHE)
    variant = hal.fit_head([*base, *examples], encoder, SEED, DEFAULT_CACHE)
    for name, head in (("current", current), ("rows", variant)):
        weights = ", ".join(f"{n} {w:+.2f}" for n, w in zip(FEATURES, head.coef, strict=True))
        print(f"{name}: {weights}, intercept {head.intercept:+.2f}")

    ours = hal._evaluate_with(current, sets, encoder, DEFAULT_CACHE)
    theirs = hal._evaluate_with(variant, sets, encoder, DEFAULT_CACHE)
    print("\n| held-out set | metric | current | rows | baseline |\n|---|---|---|---|---|")
    for a, b in zip(ours, theirs, strict=True):
        base_value = "" if a.baseline is None else f"{a.baseline:.3f}"
        print(f"| {a.dataset} | {a.metric} | {a.lookout:.3f} | {b.lookout:.3f} | {base_value} |")

    print(f"\ngrouped {FOLDS}-fold CV over the rows' contexts (train part + the other folds' rows):")
    scored: dict[str, list[float]] = {}
    for k in range(FOLDS):
        head = hal.fit_head([*base, *(e for e in examples if fold(e) != k)], encoder, SEED, DEFAULT_CACHE)
        held = [entry for e, entry in rows if fold(e) == k]
        for row in hal.written_rows(head, f"fold {k}", held, encoder, DEFAULT_CACHE):
            scored.setdefault(row.metric, []).append(row.lookout)
    print(", ".join(f"{metric} {np.mean(v):.2f}" for metric, v in scored.items()), "(mean over folds)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
