"""ClickHouse sinks: scored records and dead letters, through clickhouse-connect."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.sinks.base import BatchingSink, SinkError
from agent.storage.client import Client
from agent.types import DeadLetter, ScoredSample

BASE_COLUMNS = (
    "id", "ts", "ingested_at", "tenant", "user_id", "model", "route", "trace_id", "span_id", "parent_span_id",
    "session_id", "prompt", "response", "history", "context", "prompt_tokens", "completion_tokens", "cost_usd",
    "latency_ms", "error", "metadata", "detector_versions", "flags", "src_topic", "src_partition", "src_offset",
    "shed_weight", "judge_weight", "score_tiers", "audited", "audit_disagree",
)  # fmt: skip


def _meta_value(value: str | float) -> str:
    return value if isinstance(value, str) else format(value, ".15g")


def _now() -> datetime:
    return datetime.now(UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TOMBSTONE_COLUMNS = ["id", "ts", "ingested_at", "tenant", "model", "superseded"]
Key = tuple[str, int]
"""A stored copy of a (tenant, id): its model and its ``ts`` in epoch milliseconds (``DateTime64(3)`` truncates)."""


def _key(model: str, ts: datetime) -> Key:
    aware = ts if ts.tzinfo else ts.replace(tzinfo=UTC)  # ClickHouse returns naive UTC
    return model, (aware - _EPOCH) // timedelta(milliseconds=1)


class RecordSink(BatchingSink[ScoredSample]):
    """Inserts scored records into ``records``: one record per (tenant, id), the latest written wins.

    A record written twice under the same key (a re-delivery) collapses in ``FINAL``. A (tenant, id) already
    stored under another model or ``ts`` (a re-send, a correction) has each earlier copy superseded: after the
    batch's rows, a tombstone (``superseded = 1``, a newer version) is written under the earlier key, which
    ``v_records`` hides. The earlier copies are found by one read of ``records``' ``id`` column per batch.

    Args:
        client: clickhouse-connect client.
        database: Database holding ``records``.
        score_columns: Detector names, each a ``Nullable(Float32)`` column.
        thresholds_version: The thresholds file's version the flags were made under ('' without one).
    """

    metric_label = "clickhouse_records"

    def __init__(
        self, client: Client, database: str, score_columns: Sequence[str], thresholds_version: str = ""
    ) -> None:
        super().__init__()
        self.client = client
        self.database = database
        self.score_columns = tuple(score_columns)
        self.thresholds_version = thresholds_version
        self._columns = [*BASE_COLUMNS, "thresholds_version", *self.score_columns]

    def _row(self, item: ScoredSample, now: datetime) -> list[Any]:
        s = item.sample
        origin = s.origin
        usage = s.usage
        return [
            s.id, s.ts, now, s.tenant, s.user_id, s.model, s.route, s.trace_id, s.span_id, s.parent_span_id,
            s.session_id, s.prompt, s.response, [(m.role, m.content) for m in s.history], list(s.context),
            usage.prompt_tokens if usage else None, usage.completion_tokens if usage else None,
            item.cost_usd, s.latency_ms, s.error, {k: _meta_value(v) for k, v in s.metadata.items()},
            dict(item.versions), list(item.flags),
            origin.topic if origin else "", origin.partition if origin else 0, origin.offset if origin else 0,
            item.shed_weight, item.judge_weight, dict(item.tiers), int(item.audited), list(item.audit_disagree),
            self.thresholds_version,
        ] + [item.scores.get(name) for name in self.score_columns]  # fmt: skip

    def write(self, batch: Sequence[ScoredSample]) -> None:
        """One INSERT for the batch, then one of tombstones for the copies it supersedes (if any)."""
        now = _now()
        rows = [self._row(item, now) for item in batch]
        try:
            tombstones = [[i, ts, now + timedelta(microseconds=1), t, m, 1] for t, i, m, ts in self._superseded(batch)]
            # rows first: a crash in between leaves a second copy until the replay, never no copy at all
            self.client.insert(f"{self.database}.records", rows, column_names=self._columns)
            if tombstones:
                self.client.insert(f"{self.database}.records", tombstones, column_names=_TOMBSTONE_COLUMNS)
        except Exception as exc:
            raise SinkError(f"insert into {self.database}.records failed: {exc}") from exc

    def _superseded(self, batch: Sequence[ScoredSample]) -> list[tuple[str, str, str, datetime]]:
        """(tenant, id, model, ts) of each copy, stored or earlier in ``batch``, that the batch's last copy replaces."""
        latest: dict[tuple[str, str], Key] = {}
        copies: dict[tuple[str, str], dict[Key, datetime]] = {}
        for item in batch:
            s = item.sample
            latest[(s.tenant, s.id)] = _key(s.model, s.ts)
            copies.setdefault((s.tenant, s.id), {})[_key(s.model, s.ts)] = s.ts
        stored = self.client.query(
            f"SELECT DISTINCT tenant, id, model, ts FROM {self.database}.records "
            "WHERE id IN {ids:Array(String)} AND superseded = 0",
            parameters={"ids": sorted({i for _, i in latest})},
        ).result_rows
        for tenant, record_id, model, ts in stored:
            if (tenant, record_id) in copies:
                copies[(tenant, record_id)].setdefault(_key(model, ts), ts.replace(tzinfo=UTC))
        return [
            (tenant, record_id, key[0], ts)
            for (tenant, record_id), keys in copies.items()
            for key, ts in keys.items()
            if key != latest[(tenant, record_id)]
        ]


class DeadLetterTableSink(BatchingSink[DeadLetter]):
    """Counts dead letters in ``dead_letters`` (reason and coordinates; the bytes live in the DLQ topic)."""

    metric_label = "clickhouse_dead_letters"

    def __init__(self, client: Client, database: str, dlq_topic: str) -> None:
        super().__init__()
        self.client = client
        self.database = database
        self.dlq_topic = dlq_topic

    def write(self, batch: Sequence[DeadLetter]) -> None:
        """One INSERT for the whole batch."""
        now = _now()
        rows = [
            [
                f.origin.topic,
                f.origin.partition,
                f.origin.offset,
                datetime.fromtimestamp(f.timestamp_ms / 1000, tz=UTC) if f.timestamp_ms is not None else now,
                now,
                f.reason,
                len(f.raw),
                self.dlq_topic,
            ]
            for f in batch
        ]
        columns = [
            "src_topic", "src_partition", "src_offset", "message_ts", "received_at", "reason", "size_bytes",
            "dlq_topic",
        ]  # fmt: skip
        try:
            self.client.insert(f"{self.database}.dead_letters", rows, column_names=columns)
        except Exception as exc:
            raise SinkError(f"insert into {self.database}.dead_letters failed: {exc}") from exc
