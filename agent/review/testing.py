"""Test helpers for review: a settable clock, scored samples, and a seeded queue in a real database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.review.rules import DETECTORS, RulesFile, parse_rules
from agent.review.sink import ReviewSink
from agent.sinks.clickhouse import RecordSink
from agent.storage.client import Client
from agent.types import Sample, ScoredSample


@dataclass
class ManualClock:
    """A clock that moves only when told."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
    """Current time."""

    def __call__(self) -> datetime:
        """The current time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move forward."""
        self.now += timedelta(seconds=seconds)


def scored_sample(
    record_id: str,
    response: str = "a response",
    prompt: str = "a prompt",
    flags: Sequence[str] = ("toxicity",),
    context: Sequence[str] = (),
    **scores: float | None,
) -> ScoredSample:
    """A scored record with every detector's score (given ones, else 0.1) and the given flags."""
    sample = Sample(
        id=record_id, ts=datetime(2026, 11, 25, 11, 0, tzinfo=UTC), prompt=prompt, response=response,
        tenant="acme", model="gpt-4o-mini", route="chat", context=tuple(context),
    )  # fmt: skip
    all_scores = {name: scores.get(name, 0.1) for name in DETECTORS}
    return ScoredSample(sample, all_scores, {name: "test" for name in DETECTORS}, tuple(flags), None)


FLAGGED_TO_ONE_QUEUE = parse_rules(
    {
        "queues": {"safety": {"description": "toxic things", "sla_hours": 4}},
        "rules": [{"name": "toxic", "queue": "safety", "when": {"flagged": "toxicity"}, "priority": 10}],
    }
)
"""Every record flagged for toxicity enters ``safety``."""


def seed(
    client: Client, database: str, items: Sequence[ScoredSample], rules: RulesFile = FLAGGED_TO_ONE_QUEUE, **kw: Any
) -> ReviewSink:
    """Store the records and route them (no Kafka) as the agent would; returns the sink."""
    records = RecordSink(client, database, DETECTORS)
    records.extend(items)
    records.flush()
    sink = ReviewSink(client, database, rules, None, "unused.review", **kw)
    sink.extend(items)
    sink.flush()
    return sink
