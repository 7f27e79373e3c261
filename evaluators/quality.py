"""Shared pieces of detector quality evaluation: result rows and an embedding cache for training runs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from detectors.head import LogisticHead
from detectors.types import Encoder, Vectors


@dataclass(frozen=True, slots=True)
class EvalRow:
    """One number of ``lookout eval``'s table."""

    detector: str
    """Detector evaluated (``toxicity``, ``hallucination``, ``relevance``...)."""
    dataset: str
    """Dev set and split, e.g. ``wiki_toxicity_dev`` or ``halueval_qa (held-out half)``."""
    metric: str
    """``AUC``, ``F1@0.5``, ``balanced accuracy``, ``MAP``, ``MRR``..."""
    lookout: float
    """lookout's value."""
    baseline: float | None = None
    """The plain baseline users build today, measured in the same run (see the detectors issue)."""
    published: str = ""
    """A published figure on the same data, with its source, when one exists."""


def cached_encode(encoder: Encoder, texts: Sequence[str], cache_dir: Path | None) -> Vectors:
    """Encode ``texts``, reusing an ``.npy`` cache keyed by the encoder name and the texts."""
    if cache_dir is None:
        return encoder.encode(texts)
    digest = hashlib.sha256(encoder.name.encode())
    for text in texts:
        digest.update(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest())
    path = cache_dir / f"{digest.hexdigest()[:24]}.npy"
    if path.is_file():
        return np.asarray(np.load(path), dtype=np.float32)
    cache_dir.mkdir(parents=True, exist_ok=True)
    vectors = encoder.encode(texts)
    np.save(path, vectors)
    return vectors


def released(fitted: LogisticHead, date: str, meta: Mapping[str, Any], *extra: object) -> LogisticHead:
    """``fitted`` as it ships: version ``logit-<date>-<hash of its weights and extra>``, carrying ``meta``."""
    weights = [fitted.coef.tolist(), fitted.intercept, fitted.mean.tolist(), *extra]
    digest = hashlib.sha256(json.dumps(weights, sort_keys=True).encode()).hexdigest()
    return dataclasses.replace(fitted, version=f"logit-{date}-{digest[:8]}", meta=meta)


def held_out_metrics(rows: Sequence[EvalRow], published: bool = True) -> list[dict[str, Any]]:
    """``rows`` as the ``held_out_metrics`` list of a head's meta.

    Rounded to 6 places: at 4, a value such as 0.99049 was stored as 0.9905 and the model card printed 0.991
    where ``lookout eval`` (and docs/evaluation.md) print 0.990.
    """
    out = []
    for r in rows:
        entry: dict[str, Any] = {
            "dataset": r.dataset,
            "metric": r.metric,
            "lookout": round(r.lookout, 6),
            "baseline": None if r.baseline is None else round(r.baseline, 6),
        }
        if published:
            entry["published"] = r.published
        out.append(entry)
    return out


def metric_table(meta: Mapping[str, Any], published: bool = True) -> str:
    """The model card's metric rows: dataset, metric, lookout, baseline (and published)."""
    lines = []
    for m in meta.get("held_out_metrics", []):
        baseline = "" if m["baseline"] is None else format(m["baseline"], ".3f")
        tail = f" {m.get('published', '')} |" if published else ""
        lines.append(f"| {m['dataset']} | {m['metric']} | {m['lookout']:.3f} | {baseline} |{tail}")
    return "\n".join(lines)


def weight_table(head: LogisticHead) -> str:
    """The model card's rows of feature name and weight."""
    return "\n".join(f"| {n} | {c:+.3f} |" for n, c in zip(head.feature_names, head.coef, strict=True))


Tried = tuple[str, str, str]
"""One experiment of a model card's "What was tried" table: what was tried, its numbers, the verdict."""


def tried_table(rows: Sequence[Tried]) -> str:
    """The model card's "What was tried" table, header included."""
    lines = ["| what was tried | numbers | verdict |", "|---|---|---|"]
    lines.extend(f"| {what} | {numbers} | {verdict} |" for what, numbers, verdict in rows)
    return "\n".join(lines)
