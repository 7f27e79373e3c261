"""``records.parquet``: the ``jsonl`` rows flattened into typed columns (pyarrow, written in row groups).

``sessions.parquet`` (``--group-by session``): one row per session, ``session_id``, ``tenant`` and ``turns``, a
list of the same flattened rows as structs (plus ``matched``), in ``(ts, id)`` order.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from agent.export.files import AtomicFile, FileEntry
from agent.export.writer import ExportOptions, SessionWriter, Skip, Turns, Writer
from agent.storage.records import Row

ROW_GROUP = 10_000
SESSION_ROW_GROUP = 1_000
_TURN = pa.struct([("role", pa.string()), ("content", pa.string())])
_MAP = pa.map_(pa.string(), pa.string())
_TS = pa.timestamp("us", tz="UTC")
_FEEDBACK = pa.struct(
    [("event_id", pa.string()), ("ts", _TS), ("kind", pa.string()), ("value", pa.float64()), ("user_id", pa.string()),
     ("comment", pa.string()), ("via_trace", pa.bool_())]
)  # fmt: skip


def schema(scores: Sequence[str]) -> pa.Schema:
    """Column types: record fields, one float32 column per detector, queue fields, ``label_*`` fields, feedback."""
    return pa.schema(
        [
            ("id", pa.string()), ("ts", _TS), ("tenant", pa.string()), ("user_id", pa.string()),
            ("model", pa.string()), ("route", pa.string()), ("trace_id", pa.string()), ("span_id", pa.string()),
            ("parent_span_id", pa.string()), ("session_id", pa.string()), ("prompt", pa.string()),
            ("response", pa.string()), ("history", pa.list_(_TURN)), ("context", pa.list_(pa.string())),
            ("prompt_tokens", pa.int64()), ("completion_tokens", pa.int64()), ("cost_usd", pa.float64()),
            ("latency_ms", pa.float32()), ("error", pa.string()), ("metadata", _MAP),
            *((name, pa.float32()) for name in scores),
            ("detector_versions", _MAP), ("flags", pa.list_(pa.string())),
            ("queues", pa.list_(pa.string())), ("priority", pa.int32()), ("reasons", pa.list_(pa.string())),
            ("rules", pa.list_(pa.string())), ("control", pa.bool_()), ("enqueued_at", _TS),
            ("label_id", pa.string()), ("label_queue", pa.string()), ("annotator", pa.string()),
            ("labeled_at", _TS), ("verdicts", _MAP), ("severity", pa.int32()), ("note", pa.string()),
            ("corrected_response", pa.string()), ("preference", pa.string()), ("label_source", pa.string()),
            ("n_labels", pa.int32()), ("feedback", pa.list_(_FEEDBACK)),
        ]
    )  # fmt: skip


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def flatten(row: Row) -> dict[str, Any]:
    """One parquet row (a row with a record; maps as sorted key/value pairs)."""
    record = dict(row.record or {})
    out: dict[str, Any] = {**record, **row.scores}
    out["ts"] = _ts(record["ts"])
    out["metadata"] = list(record["metadata"].items())
    out["detector_versions"] = list(record["detector_versions"].items())
    out["feedback"] = [{**f.to_json(), "ts": f.ts} for f in row.feedback]
    q, lab = row.queued, row.label
    out.update(
        queues=list(q.queues) if q else None,
        priority=q.priority if q else None,
        reasons=list(q.reasons) if q else None,
        rules=list(q.rules) if q else None,
        control=q.control if q else None,
        enqueued_at=_ts(q.to_json()["enqueued_at"]) if q else None,
    )
    if lab is not None:
        j = lab.to_json()
        out.update(
            label_id=lab.label_id, label_queue=lab.queue, annotator=lab.annotator, labeled_at=_ts(j["labeled_at"]),
            verdicts=list(j["verdicts"].items()), severity=lab.severity, note=lab.note,
            corrected_response=lab.corrected_response, preference=lab.preference, label_source=lab.source,
            n_labels=lab.n_labels,
        )  # fmt: skip
    return out


def session_schema(scores: Sequence[str]) -> pa.Schema:
    """``session_id``, ``tenant``, and ``turns``: a list of :func:`schema` rows as structs, plus ``matched``."""
    turn = pa.struct([*schema(scores), pa.field("matched", pa.bool_())])
    return pa.schema([("session_id", pa.string()), ("tenant", pa.string()), ("turns", pa.list_(turn))])


class _Table:
    """One parquet file under construction: rows buffered, written a row group at a time."""

    def __init__(self, directory: Path, name: str, table_schema: pa.Schema, row_group: int) -> None:
        self.out = AtomicFile(directory, name)
        self.schema = table_schema
        self.row_group = row_group
        self._file = os.fdopen(self.out.take_fd(), "wb")  # the exclusively created temp file, never reopened by name
        self._writer = pq.ParquetWriter(self._file, self.schema, compression="zstd")
        self._buffer: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        """Buffer a row; a full buffer becomes a row group."""
        self._buffer.append(row)
        self.out.rows += 1
        if len(self._buffer) >= self.row_group:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._writer.write_table(pa.Table.from_pylist(self._buffer, schema=self.schema))
            self._buffer = []

    def close(self) -> None:
        """Write the last row group and the footer."""
        self._flush()
        self.abandon()

    def abandon(self) -> None:
        """Close without writing what is buffered."""
        self._writer.close()
        self._file.close()


class ParquetWriter(Writer):
    """Rows buffered and written one row group at a time (deterministic for the same rows)."""

    def __init__(self, directory: Path, scores: Sequence[str], options: ExportOptions | None = None) -> None:
        super().__init__(directory, scores, options)
        self.table = _Table(directory, "records.parquet", schema(scores), ROW_GROUP)
        self.out = self.table.out
        self.schema = self.table.schema

    @property
    def files(self) -> list[AtomicFile]:
        """The parquet file."""
        return [self.out]

    def add(self, row: Row) -> Skip:
        """Buffer the row; a full buffer becomes a row group."""
        if row.record is None:
            return "record_missing"
        self.table.add(flatten(row))
        return None

    def commit(self) -> list[FileEntry]:
        """Write the last row group and the footer, then move the file into place."""
        self.table.close()
        return super().commit()

    def abort(self) -> None:
        """Close and remove the temp file."""
        self.table.abandon()
        super().abort()


class ParquetSessionWriter(SessionWriter):
    """``sessions.parquet``: one row per session, its turns as a list of structs."""

    def __init__(self, directory: Path, scores: Sequence[str]) -> None:
        super().__init__(directory, scores)
        self.table = _Table(directory, "sessions.parquet", session_schema(scores), SESSION_ROW_GROUP)

    @property
    def files(self) -> list[AtomicFile]:
        """The parquet file."""
        return [self.table.out]

    def add_session(self, tenant: str, session_id: str, turns: Turns) -> None:
        """Buffer the session; a full buffer becomes a row group."""
        rows = [{**flatten(row), "matched": matched} for row, matched in turns]
        self.table.add({"session_id": session_id, "tenant": tenant, "turns": rows})

    def commit(self) -> list[FileEntry]:
        """Write the last row group and the footer, then move the file into place."""
        self.table.close()
        return super().commit()

    def abort(self) -> None:
        """Close and remove the temp file."""
        self.table.abandon()
        super().abort()
