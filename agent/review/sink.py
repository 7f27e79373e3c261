"""The route step: a sink that sends scored records to review queues before the batch's offsets commit.

For each batch it evaluates the rules, drops decisions whose (queue, record id) is already stored (a
replay), applies each queue's hourly budget (higher priority first), publishes the rest to the review topic
and waits for the acknowledgements, then inserts them into ``review_items``. Publishing first means a crash
after the insert never loses a topic message; a crash between the two re-publishes on replay, so the topic
is at-least-once (key ``queue/record_id``; consumers dedupe on it) while the table holds each item once.
A share of the items (``review.overlap_rate``, by a hash of queue and record id) is marked ``overlap``: it waits
for a second annotator's label (see :mod:`agent.review.overlap`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from agent.config import Settings
from agent.review.overlap import is_overlap
from agent.review.rules import Decision, RulesFile, load_rules, route
from agent.sinks.base import BatchingSink, SinkError
from agent.storage.client import Client
from agent.storage.migrations import ITEM_COLUMNS
from agent.types import ScoredSample

log = structlog.get_logger(__name__)


def review_message(decision: Decision) -> dict[str, Any]:
    """The review topic's JSON value for one routed record."""
    s = decision.item.sample
    return {
        "queue": decision.queue,
        "record_id": s.id,
        "rule": decision.rule,
        "priority": decision.priority,
        "reasons": list(decision.reasons),
        "control": decision.control,
        "ts": s.ts.isoformat(),
        "tenant": s.tenant,
        "model": s.model,
        "route": s.route,
        "prompt": s.prompt,
        "response": s.response,
        "context": list(s.context),
        "scores": dict(decision.item.scores),
        "flags": list(decision.item.flags),
    }


class ReviewSink(BatchingSink[ScoredSample]):
    """Routes scored records into ``review_items`` and the review topic.

    Args:
        client: clickhouse-connect client.
        database: Database holding ``review_items``.
        rules: Validated routing rules.
        producer: A ``kafka.KafkaProducer`` (acks=all), or None to write the table only.
        topic: The review topic.
        timeout_s: Longest wait for acknowledgements.
        clock: Current UTC time (tests).
        overlap_rate: Share of items marked ``overlap`` (two annotators' labels).
    """

    def __init__(
        self,
        client: Client,
        database: str,
        rules: RulesFile,
        producer: Any,
        topic: str,
        timeout_s: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        overlap_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.overlap_rate = overlap_rate
        self.client = client
        self.database = database
        self.rules = rules
        self.producer = producer
        self.topic = topic
        self.timeout_s = timeout_s
        self._clock = clock
        self._hour: datetime | None = None
        self._used: Counter[str] = Counter()
        self.routed: Counter[str] = Counter()
        """Items enqueued per queue by this sink."""
        self.over_budget: Counter[str] = Counter()
        """Decisions dropped per queue because the hourly budget was spent."""

    def write(self, batch: Sequence[ScoredSample]) -> None:
        """Route, publish, insert; raises :class:`SinkError` (the whole batch is retried, replays dedupe)."""
        decisions = [d for item in batch for d in route(self.rules, item)]
        if not decisions:
            return
        now = self._clock()
        try:
            fresh = self._not_stored(decisions)
            accepted = self._within_budget(fresh, now)
            if not accepted:
                return
            self._publish(accepted)
            rows = [self._row(d, now) for d in accepted]
            self.client.insert(f"{self.database}.review_items", rows, column_names=[*ITEM_COLUMNS, "overlap"])
        except SinkError:
            raise
        except Exception as exc:
            raise SinkError(f"review routing into {self.database}.review_items failed: {exc}") from exc
        spent = Counter(d.queue for d in accepted)
        self._used.update(spent)
        self.routed.update(spent)
        log.debug("routed for review", items=len(accepted), queues=dict(spent))

    def _not_stored(self, decisions: list[Decision]) -> list[Decision]:
        ids = sorted({d.item.sample.id for d in decisions})
        rows = self.client.query(
            f"SELECT queue, record_id FROM {self.database}.v_review_items WHERE record_id IN {{ids:Array(String)}}",
            parameters={"ids": ids},
        ).result_rows
        stored = {(str(q), str(r)) for q, r in rows}
        seen: set[tuple[str, str]] = set()
        out = []
        for d in decisions:
            key = (d.queue, d.item.sample.id)
            if key not in stored and key not in seen:  # a record twice in one batch enters once
                seen.add(key)
                out.append(d)
        return out

    def _within_budget(self, decisions: list[Decision], now: datetime) -> list[Decision]:
        hour = now.replace(minute=0, second=0, microsecond=0)
        if self._hour != hour:  # a new hour (or a restart): count what is already enqueued in it
            rows = self.client.query(
                f"SELECT queue, count() FROM {self.database}.v_review_items "
                "WHERE enqueued_at >= {hour:DateTime64(6, 'UTC')} GROUP BY queue",
                parameters={"hour": hour},
            ).result_rows
            self._used = Counter({str(q): int(n) for q, n in rows})
            self._hour = hour
        accepted = []
        taken: Counter[str] = Counter()
        for d in sorted(decisions, key=lambda d: -d.priority):
            budget = self.rules.queue(d.queue).hourly_budget
            if budget is not None and self._used[d.queue] + taken[d.queue] >= budget:
                self.over_budget[d.queue] += 1
                continue
            taken[d.queue] += 1
            accepted.append(d)
        return accepted

    def _publish(self, decisions: list[Decision]) -> None:
        if self.producer is None:
            return
        try:
            futures = [
                self.producer.send(
                    self.topic,
                    value=json.dumps(review_message(d), ensure_ascii=False).encode("utf-8"),
                    key=f"{d.queue}/{d.item.sample.id}".encode(),
                )
                for d in decisions
            ]
            self.producer.flush(timeout=self.timeout_s)
            for future in futures:
                future.get(timeout=self.timeout_s)
        except Exception as exc:
            raise SinkError(f"produce to review topic {self.topic} failed: {exc}") from exc

    def _row(self, d: Decision, now: datetime) -> list[Any]:
        s = d.item.sample
        return [
            d.queue, s.id, now, s.ts, s.tenant, s.model, s.route, d.priority, list(d.reasons), d.rule,
            int(d.control), int(is_overlap(d.queue, s.id, self.overlap_rate)),
        ]  # fmt: skip


def review_sinks(settings: Settings, client: Client, producer: Any) -> list[ReviewSink]:
    """The agent's route step: one :class:`ReviewSink`, or none when ``review.enabled`` is off."""
    review = settings.review
    if not review.enabled:
        return []
    rules = load_rules(review.rules)
    topic = review.review_topic(settings.kafka.topic)
    log.info("review routing on", topic=topic, queues=rules.queue_names(), rules=len(rules.rules))
    return [ReviewSink(client, settings.clickhouse.database, rules, producer, topic, overlap_rate=review.overlap_rate)]
