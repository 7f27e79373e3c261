"""Int8 storage of unit vectors: quantise, dequantise, and the rows of a scored batch."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from agent.sinks.embeddings import dequantise, embedding_rows, quantise
from agent.types import Sample, ScoredSample
from detectors.types import TextField, Vectors


def unit_rows(n: int, dim: int, seed: int = 0) -> Vectors:
    rows = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    out: Vectors = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    return out


class TestQuantise:
    """Int8 + one scale per row."""

    def test_round_trip_keeps_direction(self) -> None:
        """384-d unit vectors come back as unit vectors with cosine above 0.999 to the original."""
        rows = unit_rows(200, 384)
        q, scale = quantise(rows)
        assert q.dtype == np.int8 and q.shape == (200, 384)
        assert np.abs(q).max() == 127
        back = dequantise(q, scale)
        assert np.allclose(np.linalg.norm(back, axis=1), 1.0, atol=1e-5)
        assert float(np.einsum("ij,ij->i", rows, back).min()) > 0.999

    def test_zero_row_stays_zero(self) -> None:
        """An all-zero vector quantises to zeros with scale 1 and comes back as zeros."""
        q, scale = quantise(np.zeros((1, 8), dtype=np.float32))
        assert q.tolist() == [[0] * 8] and scale.tolist() == [1.0]
        assert dequantise(q, scale).tolist() == [[0.0] * 8]


class TestEmbeddingRows:
    """Rows follow the scored batch's order; fields without matching vectors are skipped."""

    def test_rows_align_with_records(self) -> None:
        """Row i of a field's matrix belongs to record i; a field with the wrong row count is left out."""
        ts = datetime(2026, 1, 1, tzinfo=UTC)
        scored = [
            ScoredSample(Sample(id=f"r{i}", ts=ts, prompt="p", response="r", tenant="t"), {}, {}, (), None)
            for i in range(3)
        ]
        vectors: dict[TextField, Vectors] = {"prompt": unit_rows(3, 4), "response": unit_rows(2, 4)}
        rows = embedding_rows(scored, vectors, ("prompt", "response"))
        assert [(r.record_id, r.field, r.tenant) for r in rows] == [
            ("r0", "prompt", "t"), ("r1", "prompt", "t"), ("r2", "prompt", "t"),
        ]  # fmt: skip
        assert np.array_equal(rows[1].vector, vectors["prompt"][1])
