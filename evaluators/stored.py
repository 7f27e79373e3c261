"""Reading what the agent stored: records in ``(ts, id)`` pages, and their Int8 embeddings as unit vectors.

Selection reuses ``lookout export``'s :class:`~agent.storage.records.ExportFilter` (since, until, tenant, model,
route; ``detectors`` means "flagged by", ``queues`` "in this review queue", ``feedback_kinds`` "with user
feedback of this kind"), applied to ``v_records``.
Pages are keyset-paginated on ``(ts, id)``, so a job can stop after any page and resume after its last row.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from agent.errors import StorageError
from agent.sinks.embeddings import dequantise
from agent.storage import migrations
from agent.storage.client import Client, history_turns, reason
from agent.storage.records import ExportFilter
from detectors.registry import NAMES
from detectors.types import TextField, Vectors

Cursor = tuple[datetime, str]
"""``(ts, id)`` of the last record a job has finished; the next page starts after it."""


@dataclass(frozen=True, slots=True)
class StoredTurn:
    """One element of a stored record's ``history``."""

    role: str
    """Speaker role."""
    content: str
    """Text of the turn."""


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One row of ``v_records`` as the evaluators see it (it satisfies the detectors' ``Scorable``)."""

    id: str
    """Record id."""
    ts: datetime
    """Record time (UTC)."""
    tenant: str
    """Tenant."""
    model: str
    """Model."""
    route: str
    """Route."""
    prompt: str
    """Prompt ('' once the raw-text TTL removed it)."""
    response: str
    """Response ('' once the raw-text TTL removed it)."""
    context: tuple[str, ...] = ()
    """Retrieved passages."""
    metadata: Mapping[str, str] = field(default_factory=dict)
    """Free-form metadata (``reference``, ``reference_contexts`` are read by ``evaluate ragas``)."""
    scores: Mapping[str, float | None] = field(default_factory=dict)
    """Detector → score as stored at ingest."""
    versions: Mapping[str, str] = field(default_factory=dict)
    """Detector → version that produced the stored score."""
    flags: tuple[str, ...] = ()
    """Detectors that flagged it at ingest."""
    history: tuple[StoredTurn, ...] = ()
    """Earlier turns of the conversation ('' contents once the raw-text TTL removed them)."""

    @property
    def has_text(self) -> bool:
        """False when both prompt and response are empty (the text TTL expired them)."""
        return bool(self.prompt or self.response)


def utc(value: datetime) -> datetime:
    """Aware UTC (ClickHouse returns naive UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def where(filt: ExportFilter, db: str, alias: str = "") -> tuple[str, dict[str, Any]]:
    """The WHERE condition of ``filt`` on ``v_records`` (column prefix ``alias``) and its parameters."""
    a = f"{alias}." if alias else ""
    parts: list[str] = []
    params: dict[str, Any] = {}
    if filt.since is not None:
        parts.append(f"{a}ts >= {{since:DateTime64(3, 'UTC')}}")
        params["since"] = filt.since
    if filt.until is not None:
        parts.append(f"{a}ts < {{until:DateTime64(3, 'UTC')}}")
        params["until"] = filt.until
    for column, values in (("tenant", filt.tenants), ("model", filt.models), ("route", filt.routes)):
        if values:
            parts.append(f"toString({a}{column}) IN {{{column}s:Array(String)}}")
            params[f"{column}s"] = list(values)
    if filt.detectors:
        parts.append(f"hasAny({a}flags, {{detectors:Array(String)}})")
        params["detectors"] = list(filt.detectors)
    if filt.queues:
        parts.append(f"{a}id IN (SELECT record_id FROM {db}.v_review_items WHERE queue IN {{queues:Array(String)}})")
        params["queues"] = list(filt.queues)
    if filt.feedback_kinds:
        parts.append(
            f"{a}id IN (SELECT record_id FROM {db}.v_record_feedback "
            "WHERE toString(kind) IN {feedback_kinds:Array(String)})"
        )
        params["feedback_kinds"] = list(filt.feedback_kinds)
    return " AND ".join(parts) or "1", params


def score_columns(client: Client, db: str) -> list[str]:
    """Detector columns present in ``records``, in registry order."""
    present = migrations.record_columns(client, db)
    return [n for n in NAMES if n in present]


def count_records(client: Client, db: str, filt: ExportFilter, after: Cursor | None = None) -> int:
    """How many records match (after ``after``)."""
    cond, params = where(filt, db)
    if after is not None:
        cond += " AND (ts, id) > ({after_ts:DateTime64(3, 'UTC')}, {after_id:String})"
        params.update(after_ts=after[0], after_id=after[1])
    sql = f"SELECT count() FROM {db}.v_records WHERE {cond}"
    return int(client.query(sql, parameters=params).result_rows[0][0])


def iter_pages(
    client: Client, db: str, filt: ExportFilter, page_size: int, after: Cursor | None = None
) -> Iterator[list[StoredRecord]]:
    """Matching records in ``(ts, id)`` order, ``page_size`` at a time, starting after ``after``."""
    scores = score_columns(client, db)
    cond, params = where(filt, db)
    columns = ["id", "ts", "tenant", "model", "route", "prompt", "response", "context", "metadata",
               "detector_versions", "flags", "history", *scores]  # fmt: skip
    while True:
        page_cond = cond
        page_params = {**params, "n": page_size}
        if after is not None:
            page_cond += " AND (ts, id) > ({after_ts:DateTime64(3, 'UTC')}, {after_id:String})"
            page_params.update(after_ts=after[0], after_id=after[1])
        sql = (
            f"SELECT {', '.join(columns)} FROM {db}.v_records WHERE {page_cond} "
            "ORDER BY ts, id LIMIT 1 BY id LIMIT {n:UInt32}"
        )
        try:
            rows = client.query(sql, parameters=page_params).result_rows
        except Exception as exc:
            raise StorageError(f"reading {db}.v_records failed: {reason(exc)}") from None
        if not rows:
            return
        page = [_record(row, scores) for row in rows]
        yield page
        after = (page[-1].ts, page[-1].id)
        if len(rows) < page_size:
            return


def _record(row: Sequence[Any], scores: list[str]) -> StoredRecord:
    rid, ts, tenant, model, route, prompt, response, context, metadata, versions, flags, history = row[:12]
    return StoredRecord(
        id=rid,
        ts=utc(ts),
        tenant=tenant,
        model=model,
        route=route,
        prompt=prompt,
        response=response,
        context=tuple(context),
        metadata=dict(metadata),
        scores={name: (None if v is None else float(v)) for name, v in zip(scores, row[12:], strict=True)},
        versions=dict(versions),
        flags=tuple(flags),
        history=tuple(StoredTurn(role, content) for role, content in history_turns(history)),
    )


def load_embeddings(client: Client, db: str, ids: Sequence[str], field: TextField, encoder: str) -> dict[str, Vectors]:
    """Stored unit vectors of ``field`` made by ``encoder`` for the given record ids (ids without one are absent)."""
    if not ids:
        return {}
    rows = client.query(
        f"SELECT record_id, scale, vector FROM {db}.v_record_embeddings "
        "WHERE field = {field:String} AND encoder = {encoder:String} AND record_id IN {ids:Array(String)} "
        "ORDER BY record_id, ingested_at DESC LIMIT 1 BY record_id",
        parameters={"field": field, "encoder": encoder, "ids": list(ids)},
    ).result_rows
    if not rows:
        return {}
    vectors = dequantise(np.array([r[2] for r in rows], dtype=np.int8), [r[1] for r in rows])
    return {r[0]: v for r, v in zip(rows, vectors, strict=True)}
