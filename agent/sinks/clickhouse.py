"""ClickHouse sinks: scored records and dead letters, through clickhouse-connect."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from agent.sinks.base import BatchingSink, SinkError
from agent.storage.client import Client
from agent.types import DeadLetter, ScoredSample

BASE_COLUMNS = (
    "id", "ts", "ingested_at", "tenant", "user_id", "model", "route", "trace_id", "prompt", "response",
    "history", "context", "prompt_tokens", "completion_tokens", "cost_usd", "latency_ms", "metadata",
    "detector_versions", "flags", "src_topic", "src_partition", "src_offset", "shed_weight", "judge_weight",
)  # fmt: skip


def _meta_value(value: str | float) -> str:
    return value if isinstance(value, str) else format(value, ".15g")


def _now() -> datetime:
    return datetime.now(UTC)


class RecordSink(BatchingSink[ScoredSample]):
    """Inserts scored records into ``records`` (idempotent on the record id; see migrations).

    Args:
        client: clickhouse-connect client.
        database: Database holding ``records``.
        score_columns: Detector names, each a ``Nullable(Float32)`` column.
    """

    metric_label = "clickhouse_records"

    def __init__(self, client: Client, database: str, score_columns: Sequence[str]) -> None:
        super().__init__()
        self.client = client
        self.database = database
        self.score_columns = tuple(score_columns)
        self._columns = list(BASE_COLUMNS) + list(self.score_columns)

    def _row(self, item: ScoredSample, now: datetime) -> list[Any]:
        s = item.sample
        origin = s.origin
        usage = s.usage
        return [
            s.id, s.ts, now, s.tenant, s.user_id, s.model, s.route, s.trace_id, s.prompt, s.response,
            [(m.role, m.content) for m in s.history], list(s.context),
            usage.prompt_tokens if usage else None, usage.completion_tokens if usage else None,
            item.cost_usd, s.latency_ms, {k: _meta_value(v) for k, v in s.metadata.items()},
            dict(item.versions), list(item.flags),
            origin.topic if origin else "", origin.partition if origin else 0, origin.offset if origin else 0,
            item.shed_weight, item.judge_weight,
        ] + [item.scores.get(name) for name in self.score_columns]  # fmt: skip

    def write(self, batch: Sequence[ScoredSample]) -> None:
        """One INSERT for the whole batch."""
        now = _now()
        rows = [self._row(item, now) for item in batch]
        try:
            self.client.insert(f"{self.database}.records", rows, column_names=self._columns)
        except Exception as exc:
            raise SinkError(f"insert into {self.database}.records failed: {exc}") from exc


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
