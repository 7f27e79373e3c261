"""Relevance: does the response address the prompt? Cosine of their MiniLM embeddings, mapped to 0..1.

The mapping is a logistic curve ``1 / (1 + exp(-slope * (cos - midpoint)))``. With all-MiniLM-L6-v2 an
on-topic answer usually has cosine 0.3-0.8 with its question, an unrelated text 0.0-0.15, so the default
midpoint 0.15 puts the 0.5 flag threshold between the two. The detectors issue calibrates it on data.
"""

from __future__ import annotations

import math

import numpy as np

from detectors.types import Batch, Score, TextField


class EmbeddingRelevance:
    """Relevance of response to prompt from the shared encoder's embeddings.

    Args:
        midpoint: Cosine that maps to 0.5.
        slope: Steepness of the logistic map.
    """

    name = "relevance"
    needs: frozenset[TextField] = frozenset({"prompt", "response"})
    higher_is_worse = False
    default_threshold = 0.5

    def __init__(self, midpoint: float = 0.15, slope: float = 12.0) -> None:
        if slope <= 0:
            raise ValueError("slope must be positive")
        self.midpoint = midpoint
        self.slope = slope
        self.version = f"cosine-logistic-m{midpoint:g}-s{slope:g}"

    def __repr__(self) -> str:
        return f"EmbeddingRelevance(midpoint={self.midpoint}, slope={self.slope})"

    def score(self, batch: Batch) -> list[Score]:
        """One relevance score per record; None when prompt or response is blank."""
        if not len(batch):
            return []
        cos = np.einsum("ij,ij->i", batch.embeddings("prompt"), batch.embeddings("response"))
        mapped = 1.0 / (1.0 + np.exp(-self.slope * (cos.astype(np.float64) - self.midpoint)))
        out = []
        for item, value in zip(batch.items, mapped, strict=True):
            blank = not item.prompt.strip() or not item.response.strip()
            out.append(Score(None if blank or not math.isfinite(value) else float(value)))
        return out
