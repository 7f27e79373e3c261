"""The trace step: OTLP exports → LLM call records, each joined with the documents its trace retrieved.

After the decode step recognised a message as an OTLP trace export (:class:`~agent.step.OtlpMessage`), this
step parses its spans (:mod:`agent.otel.payload`), turns each LLM span into a record and each retriever span into
documents (:mod:`agent.otel.conventions`), and lets the records wait, bounded, for the rest of their trace
(:mod:`agent.otel.traces`). Other spans are skipped and counted. A message that is no OTLP export, and an LLM span
that cannot become a record, become dead letters with the reason. The checkpoint commits no offset past a held
record's message (:class:`~agent.step.Holding`); a restart re-reads it, and the record id (trace id + span id)
makes the write idempotent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agent import metrics
from agent.config_otel import OtelSettings
from agent.decode import Invalid
from agent.otel.conventions import documents, role, span_json, to_sample
from agent.otel.payload import Span, parse, spans_from_json
from agent.otel.traces import TraceJoin
from agent.sinks.base import BatchingSink
from agent.step import BatchState, OtlpMessage
from agent.types import DecodeFailure


class TraceStep:
    """The trace step (see the module docstring).

    Args:
        settings: ``otel.*``.
        max_bytes: Size limit of one message value.
        clock: Monotonic seconds (tests pass a fake one).
    """

    name = "trace"

    def __init__(
        self, settings: OtelSettings, max_bytes: int = 1_048_576, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self.max_bytes = max_bytes
        self.clock = clock
        self.join = TraceJoin(settings)

    def __repr__(self) -> str:
        return f"TraceStep(trace_wait_s={self.settings.trace_wait_s}, {self.join!r})"

    def apply(self, batch: BatchState) -> None:
        """Spans of ``batch.otlp`` into the join; records it releases into ``batch.samples``."""
        now = self.clock()
        for item in batch.otlp:
            try:
                spans = _spans(item, self.max_bytes)
            except Exception as exc:  # the loop never dies on data
                reason = str(exc) if isinstance(exc, Invalid) else f"undecodable: {type(exc).__name__}"
                batch.dead_letters.append(_failure(item, item.message.value or b"", reason))
                continue
            for span in spans:
                self._add(span, item, batch, now)
        batch.otlp = []
        batch.samples.extend(self.join.release(now))

    def _add(self, span: Span, item: OtlpMessage, batch: BatchState, now: float) -> None:
        kind = role(span)
        if kind == "llm":
            try:
                sample = to_sample(span, item.message.origin, self.settings)
            except Exception as exc:  # the loop never dies on data
                reason = str(exc) if isinstance(exc, Invalid) else f"undecodable: {type(exc).__name__}"
                metrics.otel_spans.labels(role="invalid").inc()
                batch.dead_letters.append(_failure(item, span_json(span), reason))
                return
            self.join.add_record(span.trace_id, sample, span.start_ns, now)
        elif kind == "retriever":
            self.join.add_documents(span.trace_id, documents(span), span.end_ns, now)
        metrics.otel_spans.labels(role=kind).inc()
        if not span.parent_span_id:
            self.join.root_seen(span.trace_id, now)

    def held_offsets(self) -> Mapping[tuple[str, int], int]:
        """Per partition, the lowest offset of a message with a held record."""
        floor: dict[tuple[str, int], int] = {}
        for origin in self.join.held_origins():
            key = (origin.topic, origin.partition)
            floor[key] = min(origin.offset, floor.get(key, origin.offset))
        return floor

    def due(self) -> bool:
        """Whether a held record's trace completed or its wait is over."""
        return self.join.due(self.clock())

    def holding(self) -> bool:
        """Whether any record waits for its trace."""
        return self.join.holding()

    def sinks(self) -> Sequence[BatchingSink[Any]]:
        """None: records go on to the score and store steps, failures to the store step's dead-letter sinks."""
        return ()


def _spans(item: OtlpMessage, max_bytes: int) -> list[Span]:
    if item.parsed is not None:
        return spans_from_json(item.parsed)
    raw = item.message.value
    if raw is None:
        raise Invalid("empty message value (tombstone)")
    return parse(raw, item.encoding, max_bytes)


def _failure(item: OtlpMessage, raw: bytes, reason: str) -> DecodeFailure:
    m = item.message
    return DecodeFailure(raw=raw, reason=reason, origin=m.origin, key=m.key, timestamp_ms=m.timestamp_ms)
