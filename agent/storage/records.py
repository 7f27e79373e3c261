"""Which rows an export holds: reviewed records, one per record id, with their latest label, in ``(ts, id)`` order.

The population comes from the review tables: records with a label (``v_review_labels``) and, with
``label_state`` ``unlabeled`` or ``all``, records waiting in a queue (``v_review_items``) with no label yet.
Each record id appears once:

- the record is the latest ingested copy of that id in ``v_records`` (a re-delivered record with another
  ``ts`` is one record);
- the label is the latest one (``labeled_at``, then ``label_id`` to break ties) among the matching queues;
  ``n_labels`` says how many there were;
- queue membership is folded into one :class:`Queued` (every queue, highest priority, every reason).

A label whose record id is not in ``v_records`` is still a row (``record is None``); formats count it as
skipped (``record_missing``) rather than dropping it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np

from agent.errors import LookoutError, StorageError
from agent.storage import feedback as feedback_store
from agent.storage import migrations
from agent.storage.client import Client, history_turns, reason
from agent.types import FEEDBACK_KINDS
from detectors.registry import NAMES

LabelState = Literal["labeled", "unlabeled", "all"]
"""Which reviewed records: with a label (default), queued without one, or both."""

_RELATIVE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """An RFC 3339 time (no offset = UTC) or an age before ``now`` such as ``7d``, ``12h``, ``30m``, ``2w``."""
    match = _RELATIVE.match(text.strip())
    if match:
        now = now or datetime.now(UTC)
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        parsed = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise LookoutError(
            f"invalid time {text!r}; use RFC 3339 (2026-11-25T08:00:00Z) or an age such as 7d, 12h, 30m"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def iso(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` (ClickHouse returns naive UTC datetimes)."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.isoformat().replace("+00:00", "Z")


def f32(value: float | None) -> float | None:
    """A Float32 column value as the shortest decimal that reads back as the same float32 (0.9, not 0.89999…)."""
    return None if value is None else float(str(np.float32(value)))


@dataclass(frozen=True, slots=True)
class ExportFilter:
    """What to export; empty tuples mean no restriction."""

    since: datetime | None = None
    """Records with ``ts`` at or after this time."""
    until: datetime | None = None
    """Records with ``ts`` before this time."""
    tenants: tuple[str, ...] = ()
    """Only these tenants."""
    models: tuple[str, ...] = ()
    """Only these models."""
    routes: tuple[str, ...] = ()
    """Only these routes."""
    detectors: tuple[str, ...] = ()
    """Only records flagged by, queued for, or labeled on one of these detectors."""
    queues: tuple[str, ...] = ()
    """Only labels and queue items of these review queues."""
    label_state: LabelState = "labeled"
    """Labeled records, queued-but-unlabeled ones, or both."""
    feedback_kinds: tuple[str, ...] = ()
    """Only records with user feedback of one of these kinds (``thumbs_down``, ``report``...)."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.detectors) - set(NAMES))
        if unknown:
            raise LookoutError(f"unknown detector(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}")
        unknown = sorted(set(self.feedback_kinds) - set(FEEDBACK_KINDS))
        if unknown:
            raise LookoutError(
                f"unknown feedback kind(s) {', '.join(unknown)}; choose from {', '.join(FEEDBACK_KINDS)}"
            )

    def to_json(self) -> dict[str, Any]:
        """The filter as written into the manifest (times resolved to RFC 3339)."""
        return {
            "since": iso(self.since) if self.since else None,
            "until": iso(self.until) if self.until else None,
            "tenants": list(self.tenants),
            "models": list(self.models),
            "routes": list(self.routes),
            "detectors": list(self.detectors),
            "queues": list(self.queues),
            "label_state": self.label_state,
            "feedback_kinds": list(self.feedback_kinds),
        }


@dataclass(frozen=True, slots=True)
class Label:
    """The latest label of a record (``v_review_labels``)."""

    label_id: str
    """Idempotency key of the label."""
    queue: str
    """Queue it was labeled in."""
    annotator: str
    """Who labeled it."""
    labeled_at: datetime
    """When (UTC)."""
    verdicts: Mapping[str, str]
    """Detector → ``confirm`` or ``reject``."""
    severity: int
    """Annotator's severity (0 = none given)."""
    note: str
    """Free text."""
    corrected_response: str | None
    """A better response written by the annotator."""
    preference: str
    """``none``, ``corrected`` (the correction is better) or ``original``."""
    source: str
    """Where it came from (``web``, ``labelstudio``, …)."""
    n_labels: int
    """How many labels the record has in the matching queues (this is the latest)."""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "label_id": self.label_id,
            "queue": self.queue,
            "annotator": self.annotator,
            "labeled_at": iso(self.labeled_at),
            "verdicts": dict(sorted(self.verdicts.items())),
            "severity": self.severity,
            "note": self.note,
            "corrected_response": self.corrected_response,
            "preference": self.preference,
            "source": self.source,
            "n_labels": self.n_labels,
        }


@dataclass(frozen=True, slots=True)
class Queued:
    """A record's review-queue membership (``v_review_items``), folded over its queues."""

    queues: tuple[str, ...]
    """Every matching queue holding it, sorted."""
    priority: int
    """Highest priority among them."""
    reasons: tuple[str, ...]
    """Every reason it was flagged for, sorted."""
    rules: tuple[str, ...]
    """Routing rules that queued it, sorted."""
    control: bool
    """A control item (queued without being flagged) in any queue."""
    enqueued_at: datetime
    """First enqueue time (UTC)."""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "queues": list(self.queues),
            "priority": self.priority,
            "reasons": list(self.reasons),
            "rules": list(self.rules),
            "control": self.control,
            "enqueued_at": iso(self.enqueued_at),
        }


@dataclass(frozen=True, slots=True)
class Row:
    """One exported record id."""

    record_id: str
    """The record id (unique within an export)."""
    record: Mapping[str, Any] | None
    """JSON-ready ``v_records`` fields without scores (``None``: the id is not in ``v_records``)."""
    scores: Mapping[str, float | None]
    """Detector → score, in registry order."""
    label: Label | None
    """Latest label, if labeled."""
    queued: Queued | None
    """Queue membership, if still in a queue."""
    feedback: tuple[feedback_store.StoredFeedback, ...] = ()
    """User feedback about the record (directly or through its trace), oldest first."""

    def to_json(self) -> dict[str, Any]:
        """The full row: record fields, ``scores``, ``review`` (queues), ``label`` and ``feedback``."""
        return {
            **(self.record or {"id": self.record_id}),
            "scores": dict(self.scores),
            "review": self.queued.to_json() if self.queued else None,
            "label": self.label.to_json() if self.label else None,
            "feedback": [f.to_json() for f in self.feedback],
        }


RECORD_COLUMNS = (
    "ts", "tenant", "user_id", "model", "route", "trace_id", "span_id", "parent_span_id", "session_id", "prompt",
    "response", "history", "context", "prompt_tokens", "completion_tokens", "cost_usd", "latency_ms", "error",
    "metadata", "detector_versions", "flags",
)  # fmt: skip
"""The ``v_records`` columns a row's ``record`` holds (besides ``id``), in the order they are selected."""
LABEL_COLUMNS = (
    "label_id", "label_queue", "annotator", "labeled_at", "verdicts", "severity", "note", "corrected_response",
    "preference", "source", "n_labels",
)  # fmt: skip
QUEUE_COLUMNS = ("queues", "priority", "reasons", "rules", "control", "enqueued_at")


def score_columns(client: Client, db: str) -> list[str]:
    """Detector columns present in ``records``, in registry order."""
    present = migrations.record_columns(client, db)
    return [n for n in NAMES if n in present]


def build_query(db: str, filt: ExportFilter, scores: list[str]) -> tuple[str, dict[str, Any]]:
    """The export SELECT and its parameters: one row per record id, ordered by ``(ts, id)``."""
    params: dict[str, Any] = {}
    queue_where = "1"
    if filt.queues:
        queue_where = "queue IN {queues:Array(String)}"
        params["queues"] = list(filt.queues)
    labels = (
        "SELECT record_id, 1 AS labeled, label_id, queue AS label_queue, annotator, labeled_at, verdicts, "
        "severity, note, corrected_response, toString(preference) AS preference, toString(source) AS source, "
        "count() OVER (PARTITION BY record_id) AS n_labels "
        f"FROM {db}.v_review_labels WHERE {queue_where} "
        f"AND (queue, record_id) NOT IN (SELECT queue, record_id FROM {db}.v_gold_items) "  # annotator tests, no data
        "ORDER BY record_id, labeled_at DESC, label_id DESC LIMIT 1 BY record_id"
    )
    items = (
        "SELECT record_id, 1 AS queued, arraySort(groupUniqArray(toString(queue))) AS queues, "
        "max(priority) AS priority, arraySort(arrayDistinct(arrayFlatten(groupArray(reasons)))) AS reasons, "
        "arraySort(groupUniqArray(rule)) AS rules, max(control) AS control, min(enqueued_at) AS enqueued_at "
        f"FROM {db}.v_review_items WHERE {queue_where} GROUP BY record_id"
    )
    ids = {
        "labeled": "SELECT record_id FROM labels",
        "unlabeled": "SELECT record_id FROM items WHERE record_id NOT IN (SELECT record_id FROM labels)",
        "all": "SELECT record_id FROM labels UNION DISTINCT SELECT record_id FROM items",
    }[filt.label_state]
    score_select = "".join(f", {s}" for s in scores)
    records = (
        f"SELECT id, 1 AS has_record, {', '.join(RECORD_COLUMNS)}{score_select} FROM {db}.v_records "
        "WHERE id IN (SELECT record_id FROM ids) ORDER BY id, ingested_at DESC LIMIT 1 BY id"
    )
    where = []
    if filt.since is not None:
        where.append("r.ts >= {since:DateTime64(3, 'UTC')}")
        params["since"] = filt.since
    if filt.until is not None:
        where.append("r.ts < {until:DateTime64(3, 'UTC')}")
        params["until"] = filt.until
    for column, values in (("tenant", filt.tenants), ("model", filt.models), ("route", filt.routes)):
        if values:
            where.append(f"r.has_record AND toString(r.{column}) IN {{{column}s:Array(String)}}")
            params[f"{column}s"] = list(values)
    if filt.feedback_kinds:
        where.append("hasAny(fb.feedback_kinds, {feedback_kinds:Array(String)})")
        params["feedback_kinds"] = list(filt.feedback_kinds)
    if filt.detectors:
        where.append(
            "(hasAny(r.flags, {detectors:Array(String)}) OR hasAny(mapKeys(l.verdicts), {detectors:Array(String)}) "
            "OR hasAny(i.reasons, {detectors:Array(String)}))"
        )
        params["detectors"] = list(filt.detectors)
    columns = ", ".join(
        ["ids.record_id", "r.has_record"]
        + [f"r.{c}" for c in RECORD_COLUMNS + tuple(scores)]
        + ["l.labeled"]
        + [f"l.{c}" for c in LABEL_COLUMNS]
        + ["i.queued"]
        + [f"i.{c}" for c in QUEUE_COLUMNS]
        + ["fb.feedback"]
    )
    sql = (
        f"WITH labels AS ({labels}), items AS ({items}), ids AS ({ids}), "
        f"fb AS ({feedback_store.per_record_sql(db, 'ids')}) "
        f"SELECT {columns} FROM ids "
        f"LEFT JOIN ({records}) AS r ON r.id = ids.record_id "
        "LEFT JOIN labels AS l ON l.record_id = ids.record_id "
        "LEFT JOIN items AS i ON i.record_id = ids.record_id "
        "LEFT JOIN fb ON fb.record_id = ids.record_id "
        f"WHERE {' AND '.join(where) or '1'} "
        "ORDER BY r.has_record DESC, r.ts, ids.record_id"
    )
    return sql, params


def count_rows(client: Client, db: str, filt: ExportFilter) -> int:
    """How many rows :func:`iter_rows` yields for this filter (for progress)."""
    sql, params = build_query(db, filt, score_columns(client, db))
    return int(client.query(f"SELECT count() FROM ({sql})", parameters=params).result_rows[0][0])


def iter_rows(client: Client, db: str, filt: ExportFilter) -> Iterator[Row]:
    """Stream the export rows in order (records first by ``(ts, id)``, then ids missing from ``v_records``)."""
    scores = score_columns(client, db)
    sql, params = build_query(db, filt, scores)
    try:
        with client.query_row_block_stream(sql, parameters=params) as stream:
            for block in stream:
                for raw in block:
                    yield _row(raw, scores)
    except (StorageError, GeneratorExit):
        raise
    except Exception as exc:
        raise StorageError(f"export query failed: {reason(exc)}") from None


def record_json(record_id: str, rec: Mapping[str, Any]) -> dict[str, Any]:
    """A record's JSON-ready fields from its :data:`RECORD_COLUMNS` values (``ts`` as RFC 3339, maps sorted)."""
    return {
        "id": record_id,
        "ts": iso(rec["ts"]),
        "tenant": rec["tenant"],
        "user_id": rec["user_id"],
        "model": rec["model"],
        "route": rec["route"],
        "trace_id": rec["trace_id"],
        "span_id": rec["span_id"],
        "parent_span_id": rec["parent_span_id"],
        "session_id": rec["session_id"],
        "prompt": rec["prompt"],
        "response": rec["response"],
        "history": [{"role": role, "content": content} for role, content in history_turns(rec["history"])],
        "context": list(rec["context"]),
        "prompt_tokens": rec["prompt_tokens"],
        "completion_tokens": rec["completion_tokens"],
        "cost_usd": rec["cost_usd"],
        "latency_ms": f32(rec["latency_ms"]),
        "error": rec["error"],
        "metadata": dict(sorted(rec["metadata"].items())),
        "detector_versions": dict(sorted(rec["detector_versions"].items())),
        "flags": list(rec["flags"]),
    }


def _row(raw: tuple[Any, ...], scores: list[str]) -> Row:
    record_id, has_record = raw[0], raw[1]
    n_rec = len(RECORD_COLUMNS)
    rec = dict(zip(RECORD_COLUMNS, raw[2 : 2 + n_rec], strict=True))
    score_values = raw[2 + n_rec : 2 + n_rec + len(scores)]
    at = 2 + n_rec + len(scores)
    labeled, lab = raw[at], dict(zip(LABEL_COLUMNS, raw[at + 1 : at + 1 + len(LABEL_COLUMNS)], strict=True))
    at += 1 + len(LABEL_COLUMNS)
    queued, que = raw[at], dict(zip(QUEUE_COLUMNS, raw[at + 1 : -1], strict=True))
    record = record_json(record_id, rec) if has_record else None
    label = None
    if labeled:
        label = Label(
            label_id=lab["label_id"],
            queue=lab["label_queue"],
            annotator=lab["annotator"],
            labeled_at=lab["labeled_at"],
            verdicts=dict(lab["verdicts"]),
            severity=int(lab["severity"]),
            note=lab["note"],
            corrected_response=lab["corrected_response"],
            preference=lab["preference"],
            source=lab["source"],
            n_labels=int(lab["n_labels"]),
        )
    queue = None
    if queued:
        queue = Queued(
            queues=tuple(que["queues"]),
            priority=int(que["priority"]),
            reasons=tuple(que["reasons"]),
            rules=tuple(que["rules"]),
            control=bool(que["control"]),
            enqueued_at=que["enqueued_at"],
        )
    return Row(
        record_id=record_id,
        record=record,
        scores={s: (f32(v) if has_record else None) for s, v in zip(scores, score_values, strict=True)},
        label=label,
        queued=queue,
        feedback=tuple(feedback_store.parse(raw[-1])),
    )
