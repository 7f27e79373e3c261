"""The store step: scored records to the record sink, their embeddings, and dead letters (redacted) to the DLQ."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agent.redact import Redactor, redacted
from agent.sinks.base import BatchingSink
from agent.sinks.embeddings import EmbeddingSink
from agent.step import BatchState
from agent.types import DeadLetter, ScoredSample


class StoreStep:
    """Buffers the batch into the storage sinks; the checkpoint flushes them, dead letters first, then records.

    Args:
        record_sink: Where scored records go (``records``).
        dead_letter_sinks: Where decode and scoring failures go (the DLQ topic, ``dead_letters``).
        redactor: Redacts dead letters (reason and bytes) before they are written, if redaction is on.
        embedding_sink: Stores each batch's embeddings (``record_embeddings``), if enabled.
    """

    name = "store"

    def __init__(
        self,
        record_sink: BatchingSink[ScoredSample],
        dead_letter_sinks: Sequence[BatchingSink[DeadLetter]],
        redactor: Redactor | None = None,
        embedding_sink: EmbeddingSink | None = None,
    ) -> None:
        self.record_sink = record_sink
        self.dead_letter_sinks = tuple(dead_letter_sinks)
        self.redactor = redactor
        self.embedding_sink = embedding_sink

    def __repr__(self) -> str:
        return f"StoreStep(sinks={[type(s).__name__ for s in self.sinks()]})"

    def apply(self, batch: BatchState) -> None:
        """Buffer ``batch.scored``, its vectors and ``batch.dead_letters`` (redacted first when a redactor is set)."""
        if self.embedding_sink is not None:
            self.embedding_sink.add_batch(batch.scored, batch.vectors)
        self.record_sink.extend(batch.scored)
        if self.redactor is not None:
            batch.dead_letters = redacted(batch.dead_letters, self.redactor.redact_failure)
        for sink in self.dead_letter_sinks:
            sink.extend(batch.dead_letters)

    def sinks(self) -> Sequence[BatchingSink[Any]]:
        """Dead letters, records, embeddings: in flush order."""
        embeddings = [self.embedding_sink] if self.embedding_sink is not None else []
        return [*self.dead_letter_sinks, self.record_sink, *embeddings]
