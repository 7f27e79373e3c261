"""The feedback step of the agent loop: split the feedback topic's messages off a batch, decode and redact them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agent import metrics
from agent.config import Settings
from agent.feedback.decode import decode_feedback
from agent.feedback.sink import FeedbackItem, FeedbackSink
from agent.redact import Redactor, redacted, redactor_from_settings
from agent.sinks.base import BatchingSink
from agent.sinks.clickhouse import DeadLetterTableSink
from agent.sinks.kafka import DeadLetterTopicSink
from agent.step import BatchState
from agent.storage.client import Client
from agent.types import DeadLetter, DecodeFailure, FeedbackEvent, RawMessage


@dataclass
class FeedbackStep:
    """Feedback events from ``topic`` go to ``sink``; the ones that fail to decode go to ``dead_letter_sinks``."""

    topic: str
    """The feedback topic (the agent's consumer subscribes to it next to the records topic)."""
    sink: BatchingSink[FeedbackItem]
    """Stores events and routes missed records; wire it into the route step too, which hands it the scored
    records."""
    dead_letter_sinks: tuple[BatchingSink[DeadLetter], ...]
    """The feedback DLQ topic and the ``dead_letters`` table."""
    max_bytes: int = 1_048_576
    """Size limit of one event."""
    redactor: Redactor | None = None
    """Redacts PII in comments and in dead letters, and replaces ``user_id`` and ``trace_id`` the way it does a
    record's (``redact.identifiers``), so feedback still joins its records by ``trace_id``."""

    name = "feedback"

    def apply(self, batch: BatchState) -> None:
        """Take this topic's messages out of ``batch.pending``; their failures are counted as dead-lettered."""
        batch.pending, failures = self.take(batch.pending)
        batch.dead_lettered.extend(failures)

    def sinks(self) -> Sequence[BatchingSink[Any]]:
        """The dead-letter sinks; ``sink`` is flushed by the route step, after the record sink it reads from."""
        return self.dead_letter_sinks

    def take(self, messages: Sequence[RawMessage]) -> tuple[list[RawMessage], list[DecodeFailure]]:
        """Buffer this topic's events and failures; returns the other messages and the failures (for counting)."""
        rest: list[RawMessage] = []
        events: list[FeedbackEvent] = []
        failures: list[DecodeFailure] = []
        for message in messages:
            if message.origin.topic != self.topic:
                rest.append(message)
                continue
            result = decode_feedback(message, self.max_bytes)
            if isinstance(result, FeedbackEvent):
                events.append(result)
            else:
                failures.append(result)
        if self.redactor is not None:
            events = redacted(events, self.redactor.redact_event)
            failures = redacted(failures, self.redactor.redact_failure)
        self.sink.extend(events)
        for sink in self.dead_letter_sinks:
            sink.extend(failures)
        for e in events:
            metrics.feedback_events.labels(kind=e.kind, outcome="stored").inc()
        if failures:
            metrics.feedback_events.labels(kind="invalid", outcome="dead_lettered").inc(len(failures))
        return rest, failures


def feedback_step(settings: Settings, client: Client, producer: Any) -> FeedbackStep | None:
    """The feedback step the settings ask for (None when ``feedback.enabled`` is false)."""
    f = settings.feedback
    if not f.enabled:
        return None
    source_topic, db = settings.kafka.topic, settings.clickhouse.database
    dlq = f.dead_letter_topic(source_topic)
    return FeedbackStep(
        topic=f.feedback_topic(source_topic),
        sink=FeedbackSink(client, db, f.missed_queue, f.negative_rating_max),
        dead_letter_sinks=(DeadLetterTopicSink(producer, dlq), DeadLetterTableSink(client, db, dlq)),
        max_bytes=settings.limits.max_record_bytes,
        redactor=redactor_from_settings(settings.redact),
    )
