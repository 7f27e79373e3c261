"""The feedback sink: stores feedback events, then routes "missed" records to their review queue.

A record is *missed* when it has negative feedback (thumbs_down, report, or a low rating) and no detector
flagged it (a ``drift`` flag does not count: it marks a stream, not the record). Feedback may arrive before,
with, or after its record, so both sides look for the other, after both are durably written:

- the batch's negative events look up their records in ``v_records`` (by ``record_id`` or ``trace_id``);
- the batch's unflagged records look up negative events already in ``v_feedback``.

The agent flushes this sink after the record sink, so a record and its feedback in one batch meet through the
second lookup. Two agents reading the two sides at once still meet: each inserts before it looks up, so at
least one of them sees the other's row. Items enter ``review_items`` once (the first enqueue wins), so a
replayed batch enqueues nothing twice.

The lookups read the raw tables, not the ``FINAL`` views: any stored copy answers "is it there, and is it
flagged" (copies of a record or event are identical), and skipping ``FINAL`` makes the record lookup several
times faster (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from agent import metrics
from agent.drift import DRIFT_FLAG
from agent.sinks.base import BatchingSink, SinkError
from agent.storage.client import Client
from agent.storage.migrations import ITEM_COLUMNS
from agent.types import FeedbackEvent, ScoredSample

log = structlog.get_logger(__name__)

FeedbackItem = FeedbackEvent | ScoredSample
"""What the sink buffers: the batch's feedback events and its scored records (for the missed lookup)."""

FEEDBACK_COLUMNS = (
    "event_id", "ts", "received_at", "record_id", "trace_id", "kind", "value", "user_id", "comment", "src_topic",
    "src_partition", "src_offset",
)  # fmt: skip
MISSED_RULE = "feedback"
"""The ``rule`` of items the missed queue holds."""
MISSED_PRIORITY = 90
"""Their priority: failures the detectors missed are labeled early."""
NEGATIVE_KINDS = ("thumbs_down", "report")


def detector_flags(flags: Iterable[str]) -> list[str]:
    """The flags that a detector raised about the record itself (``drift`` marks a stream)."""
    return [f for f in flags if f != DRIFT_FLAG]


@dataclass
class _Missed:
    """A record to enqueue, and the negative kinds it got."""

    ts: datetime
    tenant: str
    model: str
    route: str
    kinds: set[str] = field(default_factory=set)


class FeedbackSink(BatchingSink[FeedbackItem]):
    """Inserts feedback events into ``feedback`` and missed records into ``review_items``.

    Args:
        client: clickhouse-connect client.
        database: Database holding ``feedback``, ``records`` and ``review_items``.
        missed_queue: Review queue of missed records; empty: do not route.
        negative_rating_max: A rating at or below this is negative.
        clock: Current UTC time (tests).
    """

    metric_label = "clickhouse_feedback"

    def __init__(
        self,
        client: Client,
        database: str,
        missed_queue: str = "missed",
        negative_rating_max: float = 2.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__()
        self.client = client
        self.database = database
        self.missed_queue = missed_queue
        self.negative_rating_max = negative_rating_max
        self._clock = clock

    def write(self, batch: Sequence[FeedbackItem]) -> None:
        """Insert the events, then enqueue missed records; raises :class:`SinkError` (the batch is retried)."""
        events = [e for e in batch if isinstance(e, FeedbackEvent)]
        records = [s for s in batch if isinstance(s, ScoredSample)]
        now = self._clock()
        try:
            if events:
                rows = [_row(e, now) for e in events]
                self.client.insert(f"{self.database}.feedback", rows, column_names=list(FEEDBACK_COLUMNS))
            if self.missed_queue:
                enqueued = self._route_missed(events, records, now)
                if enqueued:
                    metrics.feedback_missed.inc(enqueued)
                    log.debug("missed records enqueued", queue=self.missed_queue, items=enqueued)
        except Exception as exc:
            raise SinkError(f"feedback write into {self.database} failed: {exc}") from exc

    def _negative_sql(self) -> str:
        return "(kind IN {neg_kinds:Array(String)} OR (kind = 'rating' AND value <= {rating_max:Float64}))"

    def _params(self, **more: Any) -> dict[str, Any]:
        return {"neg_kinds": list(NEGATIVE_KINDS), "rating_max": self.negative_rating_max, **more}

    def _route_missed(self, events: list[FeedbackEvent], records: list[ScoredSample], now: datetime) -> int:
        missed: dict[str, _Missed] = {}
        self._records_with_stored_feedback(records, missed)
        negative = [e for e in events if e.is_negative(self.negative_rating_max)]
        self._stored_records_of(negative, missed)
        if not missed:
            return 0
        ids = sorted(missed)
        stored = self.client.query(
            f"SELECT record_id FROM {self.database}.review_items "
            "WHERE queue = {queue:String} AND record_id IN {ids:Array(String)}",
            parameters={"queue": self.missed_queue, "ids": ids},
        ).result_rows
        queued = {str(r[0]) for r in stored}
        fresh = [i for i in ids if i not in queued]
        if not fresh:
            return 0
        rows = []
        for record_id in fresh:
            m = missed[record_id]
            rows.append(
                [self.missed_queue, record_id, now, m.ts, m.tenant, m.model, m.route, MISSED_PRIORITY,
                 sorted(m.kinds), MISSED_RULE, 0]
            )  # fmt: skip
        self.client.insert(f"{self.database}.review_items", rows, column_names=list(ITEM_COLUMNS))
        return len(rows)

    def _records_with_stored_feedback(self, records: list[ScoredSample], missed: dict[str, _Missed]) -> None:
        """This batch's unflagged records that already have negative feedback (it came first, or with them)."""
        unflagged = [r.sample for r in records if not detector_flags(r.flags)]
        if not unflagged:
            return
        ids = sorted({s.id for s in unflagged})
        traces = sorted({s.trace_id for s in unflagged if s.trace_id})
        rows = self.client.query(
            f"SELECT record_id, trace_id, kind FROM {self.database}.feedback "
            "WHERE (record_id IN {ids:Array(String)} OR (trace_id != '' AND trace_id IN {traces:Array(String)})) "
            f"AND {self._negative_sql()}",
            parameters=self._params(ids=ids, traces=traces),
        ).result_rows
        by_record: dict[str, set[str]] = {}
        by_trace: dict[str, set[str]] = {}
        for record_id, trace_id, kind in rows:
            if record_id:
                by_record.setdefault(str(record_id), set()).add(str(kind))
            else:
                by_trace.setdefault(str(trace_id), set()).add(str(kind))
        for s in unflagged:
            kinds = by_record.get(s.id, set()) | (by_trace.get(s.trace_id, set()) if s.trace_id else set())
            if kinds:
                entry = missed.setdefault(s.id, _Missed(s.ts, s.tenant, s.model, s.route))
                entry.kinds |= kinds

    def _stored_records_of(self, negative: list[FeedbackEvent], missed: dict[str, _Missed]) -> None:
        """The stored, unflagged records this batch's negative events are about (records that came first)."""
        if not negative:
            return
        ids = sorted({e.record_id for e in negative if e.record_id})
        traces = sorted({e.trace_id for e in negative if e.trace_id})
        rows = self.client.query(
            f"SELECT id, trace_id, ts, tenant, model, route, flags FROM {self.database}.records "
            "WHERE superseded = 0 AND (id IN {ids:Array(String)} "  # a tombstone is newer than the copy it hides
            "OR (trace_id != '' AND trace_id IN {traces:Array(String)})) "
            "ORDER BY id, ingested_at DESC LIMIT 1 BY id",
            parameters={"ids": ids, "traces": traces},
        ).result_rows
        kinds_by_record: dict[str, set[str]] = {}
        kinds_by_trace: dict[str, set[str]] = {}
        for e in negative:
            target = kinds_by_record.setdefault(e.record_id, set()) if e.record_id else None
            target = target if target is not None else kinds_by_trace.setdefault(e.trace_id, set())
            target.add(e.kind)
        for record_id, trace_id, ts, tenant, model, route, flags in rows:
            if detector_flags(flags):
                continue
            kinds = kinds_by_record.get(str(record_id), set()) | kinds_by_trace.get(str(trace_id), set())
            if kinds:
                entry = missed.setdefault(str(record_id), _Missed(_utc(ts), str(tenant), str(model), str(route)))
                entry.kinds |= kinds


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _row(e: FeedbackEvent, now: datetime) -> list[Any]:
    origin = e.origin
    return [
        e.id, e.ts, now, e.record_id, e.trace_id, e.kind, e.value, e.user_id, e.comment,
        origin.topic if origin else "", origin.partition if origin else 0, origin.offset if origin else 0,
    ]  # fmt: skip
