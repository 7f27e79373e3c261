"""Per-record embeddings into ``record_embeddings``: the vectors the scorer already computed, quantised to Int8.

Each unit vector ``v`` is stored as ``round(v / max|v| * 127)`` (Int8) plus the Float32 scale ``max|v|``;
:func:`dequantise` turns rows back into unit vectors. For MiniLM (384 dimensions) the cosine between a vector
and its round trip is above 0.999, at a quarter of Float32's size. Drift reports and ``lookout rescore`` read
them instead of encoding the text again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from agent.sinks.base import BatchingSink, SinkError
from agent.storage.client import Client
from agent.types import ScoredSample
from detectors.types import TextField, Vectors

COLUMNS = (
    "record_id", "ts", "tenant", "model", "route", "field", "encoder", "scale", "vector", "ingested_at",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class EmbeddingRow:
    """One record's embedding of one text field."""

    record_id: str
    """The record id."""
    ts: datetime
    """The record's time."""
    tenant: str
    """Tenant of the record."""
    model: str
    """Model of the record."""
    route: str
    """Route of the record."""
    field: TextField
    """Which text was embedded."""
    vector: npt.NDArray[np.float32]
    """The encoder's unit vector."""


def quantise(vectors: Vectors) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]:
    """Rows as Int8 plus one scale each (``max |v|``; 1 for an all-zero row)."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    scale = np.abs(matrix).max(axis=1) if matrix.size else np.zeros(len(matrix), dtype=np.float32)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    q = np.clip(np.rint(matrix / scale[:, None] * 127.0), -127, 127).astype(np.int8)
    return q, scale


def dequantise(q: npt.ArrayLike, scale: npt.ArrayLike) -> Vectors:
    """Unit float32 rows back from Int8 rows and their scales (zero rows stay zero)."""
    matrix = np.asarray(q, dtype=np.float32) * (np.asarray(scale, dtype=np.float32)[:, None] / 127.0)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def embedding_rows(
    scored: Sequence[ScoredSample], vectors: Mapping[TextField, Vectors], fields: Sequence[TextField]
) -> list[EmbeddingRow]:
    """The rows of one scored batch: one per record and stored field the batch has vectors for.

    ``vectors`` holds one row per item of ``scored``, in order (what :meth:`Scorer.score_batch` returns); a
    field without vectors (or with a row count that does not match) is skipped.
    """
    rows = []
    for field in fields:
        matrix = vectors.get(field)
        if matrix is None or len(matrix) != len(scored):
            continue
        for item, vector in zip(scored, matrix, strict=True):
            s = item.sample
            rows.append(EmbeddingRow(s.id, s.ts, s.tenant, s.model, s.route, field, vector))
    return rows


class EmbeddingSink(BatchingSink[EmbeddingRow]):
    """Inserts :class:`EmbeddingRow` values into ``record_embeddings`` (idempotent on record and field).

    Args:
        client: clickhouse-connect client.
        database: Database holding ``record_embeddings``.
        encoder: Name of the encoder that made the vectors (stored with each row).
        fields: Text fields to store.
    """

    metric_label = "clickhouse_embeddings"

    def __init__(self, client: Client, database: str, encoder: str, fields: Sequence[TextField]) -> None:
        super().__init__()
        self.client = client
        self.database = database
        self.encoder = encoder
        self.fields = tuple(fields)

    def add_batch(self, scored: Sequence[ScoredSample], vectors: Mapping[TextField, Vectors]) -> None:
        """Buffer the rows of one scored batch."""
        self.extend(embedding_rows(scored, vectors, self.fields))

    def write(self, batch: Sequence[EmbeddingRow]) -> None:
        """One INSERT for the whole batch."""
        now = datetime.now(UTC)
        q, scale = quantise(np.stack([r.vector for r in batch]))
        rows = [
            [r.record_id, r.ts, r.tenant, r.model, r.route, r.field, self.encoder, float(s), v.tolist(), now]
            for r, v, s in zip(batch, q, scale, strict=True)
        ]
        try:
            self.client.insert(f"{self.database}.record_embeddings", rows, column_names=list(COLUMNS))
        except Exception as exc:
            raise SinkError(f"insert into {self.database}.record_embeddings failed: {exc}") from exc
