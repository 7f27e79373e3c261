"""Reading what reviewers said about stored records: one :class:`LabeledRecord` per labeled record, and traffic counts.

A verdict says whether a detector's flag (or its silence) is right for the record: ``confirm`` = right,
``reject`` = wrong. A record labeled more than once (in two queues, or again after a lease ran out) keeps, per
detector, the verdict of its latest label that gave one. Records are joined to their labels through
``v_review_items`` (which carries the tenant; records are identified by (tenant, id)).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agent.storage.client import Client
from detectors.registry import NAMES

Stream = tuple[str, str, str]
"""(tenant, model, route)."""
ANY = "*"
"""The stream field of an estimate over every tenant, model or route."""


@dataclass(frozen=True, slots=True)
class Window:
    """Which stored records count: record time in ``[since, until)``, tenant in ``tenants`` (empty: all)."""

    since: datetime | None = None
    """Earliest record time; None: no lower bound."""
    until: datetime | None = None
    """Record time before; None: no upper bound."""
    tenants: tuple[str, ...] = ()
    """Only these tenants."""

    def where(self, ts: str = "ts", tenant: str = "tenant") -> tuple[str, dict[str, Any]]:
        """A SQL condition on the columns ``ts`` and ``tenant``, and its parameters."""
        parts: list[str] = ["1"]
        params: dict[str, Any] = {}
        if self.since is not None:
            parts.append(f"{ts} >= {{since:DateTime64(3, 'UTC')}}")
            params["since"] = self.since
        if self.until is not None:
            parts.append(f"{ts} < {{until:DateTime64(3, 'UTC')}}")
            params["until"] = self.until
        if self.tenants:
            parts.append(f"{tenant} IN {{tenants:Array(String)}}")
            params["tenants"] = list(self.tenants)
        return " AND ".join(parts), params


@dataclass(frozen=True, slots=True)
class LabeledRecord:
    """A stored record that has at least one review label."""

    record_id: str
    """Record id."""
    ts: datetime
    """Record time (UTC)."""
    stream: Stream
    """(tenant, model, route)."""
    flags: frozenset[str]
    """Detectors that flagged it when it was scored."""
    control: bool
    """In the control sample (routed because nothing flagged it)."""
    verdicts: Mapping[str, str]
    """Detector → ``confirm`` or ``reject`` (the latest label's that gave one)."""
    scores: Mapping[str, float | None] = field(default_factory=dict)
    """Detector → its stored score."""
    label_ids: tuple[str, ...] = ()
    """Every label of the record."""

    def missed(self, detector: str) -> bool:
        """A control record whose verdict says the detector's silence was wrong."""
        return self.control and detector not in self.flags and self.verdicts.get(detector) == "reject"


@dataclass(frozen=True, slots=True)
class Traffic:
    """Stored records per stream: how many each detector flagged, and how many nothing flagged."""

    flagged: Mapping[tuple[str, Stream], int]
    """(detector, stream) → records it flagged."""
    unflagged: Mapping[Stream, int]
    """Stream → records no detector flagged (what the control sample is drawn from)."""

    def streams(self) -> set[Stream]:
        """Every stream with stored records."""
        return set(self.unflagged) | {s for _, s in self.flagged}


def read_traffic(client: Client, db: str, window: Window) -> Traffic:
    """Flag counts per detector and stream, and unflagged counts per stream, from ``v_records``."""
    where, params = window.where()
    rows = client.query(
        f"SELECT tenant, model, route, flag, count() FROM {db}.v_records "
        f"ARRAY JOIN if(empty(flags), [''], flags) AS flag WHERE {where} GROUP BY tenant, model, route, flag",
        parameters=params,
    ).result_rows
    flagged: dict[tuple[str, Stream], int] = {}
    unflagged: dict[Stream, int] = {}
    for tenant, model, route, flag, n in rows:
        stream = (str(tenant), str(model), str(route))
        if flag:
            flagged[(str(flag), stream)] = int(n)
        else:
            unflagged[stream] = int(n)
    return Traffic(flagged, unflagged)


def read_labeled(client: Client, db: str, window: Window, detectors: Sequence[str] = ()) -> list[LabeledRecord]:
    """Every labeled record in ``window``, with its flags, verdicts and the stored scores of ``detectors``."""
    columns = [d for d in dict.fromkeys(detectors) if d in NAMES]  # column names: only the registry's
    scores = "".join(f", r.{d}" for d in columns)
    where, params = window.where("r.ts", "r.tenant")
    rows = client.query(
        f"SELECT r.id, r.ts, r.tenant, r.model, r.route, r.flags, li.control, li.label_id, li.labeled_at, "
        f"li.verdicts{scores} FROM {db}.v_records AS r INNER JOIN ("
        "SELECT i.tenant AS tenant, i.record_id AS record_id, i.control AS control, l.label_id AS label_id, "
        f"l.labeled_at AS labeled_at, l.verdicts AS verdicts FROM {db}.v_review_labels AS l "
        f"INNER JOIN {db}.v_review_items AS i ON i.queue = l.queue AND i.record_id = l.record_id"
        ") AS li ON li.tenant = r.tenant AND li.record_id = r.id "
        f"WHERE r.id IN (SELECT record_id FROM {db}.v_review_labels) AND {where}",
        parameters=params,
    ).result_rows
    return merge_labels(rows, columns)


def merge_labels(rows: Iterable[Sequence[Any]], columns: Sequence[str]) -> list[LabeledRecord]:
    """One record per (tenant, id) from label-level rows; per detector the latest label's verdict wins."""
    grouped: dict[tuple[str, str], list[Sequence[Any]]] = {}
    for row in rows:
        grouped.setdefault((str(row[2]), str(row[0])), []).append(row)
    out = []
    for (tenant, record_id), labels in sorted(grouped.items()):
        first = labels[0]
        verdicts: dict[str, str] = {}
        for label in sorted(labels, key=lambda r: (r[8], r[7])):  # oldest first: later labels overwrite
            verdicts.update({str(k): str(v) for k, v in dict(label[9]).items()})
        out.append(
            LabeledRecord(
                record_id=record_id,
                ts=first[1],
                stream=(tenant, str(first[3]), str(first[4])),
                flags=frozenset(str(f) for f in first[5]),
                control=any(bool(r[6]) for r in labels),
                verdicts=verdicts,
                scores={name: None if v is None else float(v) for name, v in zip(columns, first[10:], strict=True)},
                label_ids=tuple(sorted({str(r[7]) for r in labels})),
            )
        )
    return out


def label_set_hash(records: Iterable[LabeledRecord]) -> str:
    """SHA-256 of the sorted label ids, one per line: the same labels give the same hash."""
    ids = sorted({i for r in records for i in r.label_ids})
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()
