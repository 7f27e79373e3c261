"""Reading feedback back: per record, joined when read (by ``record_id``, or ``trace_id`` for a whole trace)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agent.storage.client import Client


@dataclass(frozen=True, slots=True)
class StoredFeedback:
    """One feedback event about a record, as stored."""

    event_id: str
    """Event identity."""
    ts: datetime
    """When it was given (UTC)."""
    kind: str
    """``thumbs_up``, ``thumbs_down``, ``report`` or ``rating``."""
    value: float | None
    """+1, -1, the rating, or None (report)."""
    user_id: str
    """Who gave it."""
    comment: str
    """Free text (redacted)."""
    via_trace: bool
    """Given about the record's trace rather than the record itself."""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (``ts`` as RFC 3339 with ``Z``)."""
        return {
            "event_id": self.event_id,
            "ts": self.ts.isoformat().replace("+00:00", "Z"),
            "kind": self.kind,
            "value": self.value,
            "user_id": self.user_id,
            "comment": self.comment,
            "via_trace": self.via_trace,
        }


def per_record_sql(db: str, ids: str) -> str:
    """SQL with one row per record id of the subquery ``ids`` (a ``record_id`` column) that has feedback.

    Columns: ``record_id``; ``feedback``, an array of (event_id, ts, kind, value, user_id, comment, via_trace)
    sorted by time; ``feedback_kinds``, the distinct kinds.
    """
    events = "event_id, ts, toString(kind) AS kind, value, user_id, comment"
    return (
        "SELECT rid AS record_id, "
        "arraySort(x -> (x.2, x.1), groupArray((event_id, ts, kind, value, user_id, comment, via_trace))) AS feedback, "
        "arraySort(groupUniqArray(kind)) AS feedback_kinds FROM ("
        f"SELECT record_id AS rid, {events}, 0 AS via_trace FROM {db}.v_feedback "
        f"WHERE record_id != '' AND record_id IN (SELECT record_id FROM {ids}) "
        "UNION ALL "
        "SELECT r.id AS rid, f.event_id, f.ts, toString(f.kind) AS kind, f.value, f.user_id, f.comment, "
        f"1 AS via_trace FROM {db}.v_feedback AS f INNER JOIN (SELECT DISTINCT id, trace_id FROM {db}.v_records "
        f"WHERE trace_id != '' AND id IN (SELECT record_id FROM {ids})) AS r ON r.trace_id = f.trace_id "
        "WHERE f.trace_id != '') GROUP BY rid"
    )


def parse(entries: Any) -> list[StoredFeedback]:
    """The ``feedback`` array of :func:`per_record_sql` as values."""
    out = []
    for event_id, ts, kind, value, user_id, comment, via_trace in entries:
        aware = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
        value = None if value is None else float(f"{float(value):.6g}")  # Float32 → the decimal that was sent
        out.append(StoredFeedback(str(event_id), aware, str(kind), value, str(user_id), str(comment), bool(via_trace)))
    return out


def feedback_for(client: Client, db: str, record_id: str) -> list[StoredFeedback]:
    """Every feedback event about one record (directly or through its trace), oldest first."""
    sql = f"WITH ids AS (SELECT {{r:String}} AS record_id) SELECT feedback FROM ({per_record_sql(db, 'ids')})"
    rows = client.query(sql, parameters={"r": record_id}).result_rows
    return parse(rows[0][0]) if rows else []
