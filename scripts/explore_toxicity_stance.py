"""Exploration, nothing ships from it: do stance training rows teach the toxicity head negation and counter-speech?

The toxicity head (a logistic head over the shared all-MiniLM-L6-v2 embedding plus alt-profanity-check,
stacked on the wiki tuning half; ``evaluators/training/toxicity.py``) flags "I don't hate gay people" and
counter-speech that repeats a hateful phrase. This script retrains it exactly as ``lookout train-heads`` does
(``current``) and again with the 260 rows of ``scripts/toxicity_stance_rows.py`` added to the self-written
training rows at the same weight share (``stance``), then prints every held-out row of ``lookout eval`` for
the shipped head and both variants side by side. First it probes whether the stance is in the embedding at
all (a head on the stance rows alone, on both suites and on the wiki tuning half) and whether the wiki-fitted
stacker would use such a head. Nothing is written.

Usage::

    python scripts/explore_toxicity_stance.py --data ../shared/datasets

About 3 minutes on 2 cores with the embedding cache warm (``~/.cache/lookout/embeddings``), 5 without.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from toxicity_stance_rows import STANCE_TRAIN  # beside this script: python puts scripts/ on sys.path

from agent.config import Settings
from detectors.head import HEADS_DIR, LogisticHead
from detectors.identity import mask_identity
from detectors.toxicity import STACK_KEY, ProfanityCheckModel, logit
from detectors.types import Encoder
from evaluators.commands import _encoder
from evaluators.heads import DEFAULT_CACHE
from evaluators.quality import EvalRow, cached_encode, released
from evaluators.training import toxicity as tox
from evaluators.training.toxicity_probes import FUNCTIONAL_SUITE, mentions_identity
from evaluators.training.toxicity_suite_b import BLIND_SUITE as SUITE_B

SEED = 0


def retrain(data: Path, encoder: Encoder, lexical: ProfanityCheckModel, with_stance: bool) -> LogisticHead:
    """The head as ``toxicity.train`` fits it (``toxicity.fit_tuned``), with or without the stance rows."""
    ts = tox._train_set(data, encoder, DEFAULT_CACHE, lexical)
    if with_stance:
        x_st = tox.featurize([t for t, _, _ in STANCE_TRAIN], encoder, DEFAULT_CACHE, lexical)
        y_st = np.asarray([label for _, label, _ in STANCE_TRAIN], dtype=np.int_)
        ts = dataclasses.replace(
            ts, x_templates=np.vstack([ts.x_templates, x_st]), y_templates=np.concatenate([ts.y_templates, y_st])
        )
    tune = [e for e in tox.load_wiki(data) if not e.held_out]
    fitted, _, best, stack = tox.fit_tuned(ts, tune, encoder, DEFAULT_CACHE, lexical, SEED)
    print(f"{'stance' if with_stance else 'current'}: C = {best['C']}, stacker {stack}", flush=True)
    return released(fitted, tox.DATE, {STACK_KEY: stack}, stack)


def probe(data: Path, encoder: Encoder, lexical: ProfanityCheckModel) -> None:
    """Is stance in the embedding at all, and does the wiki-fitted stacker use it?

    1. A logistic regression on the stance rows' embeddings ALONE (no Davidson), scored on the stance-related
       functionalities of suites A and B. 2. That stance head as a third stacker input, ``g * logit(stance)``
       with g = 1 when the text names an identity group, fitted with the other two on the wiki tuning half.
    """
    from sklearn.linear_model import LogisticRegression

    def emb(texts: list[str]) -> NDArray[np.float64]:
        return np.asarray(cached_encode(encoder, texts, DEFAULT_CACHE), dtype=np.float64)

    e_st = emb([t for t, _, _ in STANCE_TRAIN])
    mu, sd = e_st.mean(0), e_st.std(0) + 1e-6
    stance = LogisticRegression(C=0.1, max_iter=3000).fit((e_st - mu) / sd, [y for _, y, _ in STANCE_TRAIN])
    suites = {"A": FUNCTIONAL_SUITE, "B": SUITE_B}
    for suite, cases in suites.items():
        for k, rows in cases.items():
            if any(w in k for w in ("negat", "counter", "quot", "implicit", "explicit", "neutral")):
                pred = stance.predict((emb([t for t, _ in rows]) - mu) / sd)
                print(f"stance rows alone, suite {suite} {k}: {np.mean(pred == [y for _, y in rows]):.2f}")
    shipped = LogisticHead.load(HEADS_DIR / f"{tox.NAME}.json")
    tune = [e for e in tox.load_wiki(data) if not e.held_out]
    texts = [e.text for e in tune]
    e_tune = emb(texts)
    gate = np.asarray([mentions_identity(t) for t in texts], dtype=np.float64)
    y_tune = np.asarray([e.label for e in tune], dtype=np.int_)
    p_stance = stance.predict_proba((e_tune - mu) / sd)[:, 1]
    named = gate > 0
    print(
        f"stance rows alone on the wiki tuning half: AUC {tox._auc(y_tune, p_stance):.3f}, "
        f"{tox._auc(y_tune[named], p_stance[named]):.3f} on the {int(named.sum())} comments that name a group"
    )
    z = np.column_stack(
        [
            logit(shipped.predict_proba(np.column_stack([e_tune, lexical.predict_proba(texts)]))),
            logit(lexical.predict_proba([mask_identity(t) for t in texts])),
            gate * logit(p_stance),
        ]
    )
    stack = LogisticRegression(C=tox.STACK_C).fit(z, y_tune)
    print(
        f"3-input stacker on the wiki tuning half ({int(gate.sum())} of {len(gate)} name a group): head, lexical "
        f"masked, gated stance weights {np.round(stack.coef_[0], 2).tolist()}"
    )


def main() -> int:
    """Retrain both variants and print the side-by-side table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, required=True, help="datasets root (../shared/datasets layout)")
    args = parser.parse_args()
    encoder, lexical = _encoder(Settings()), ProfanityCheckModel()
    probe(args.data, encoder, lexical)
    heads = {
        "shipped": LogisticHead.load(HEADS_DIR / f"{tox.NAME}.json"),
        "current": retrain(args.data, encoder, lexical, with_stance=False),
        "stance": retrain(args.data, encoder, lexical, with_stance=True),
    }
    results: dict[str, list[EvalRow]] = {
        name: tox._evaluate_with(head, args.data, encoder, DEFAULT_CACHE, lexical) for name, head in heads.items()
    }
    print(f"{'held-out set':58} {'metric':44} " + " ".join(f"{n:>8}" for n in heads) + " baseline")
    for i, row in enumerate(results["shipped"]):
        values = " ".join(f"{results[n][i].lookout:8.3f}" for n in heads)
        base = "" if row.baseline is None else f"{row.baseline:8.3f}"
        print(f"{row.dataset[:58]:58} {row.metric[:44]:44} {values} {base}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
