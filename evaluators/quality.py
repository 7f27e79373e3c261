"""Shared pieces of detector quality evaluation: result rows and an embedding cache for training runs."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
