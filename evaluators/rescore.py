"""``lookout rescore``: run a detector version over stored records, beside the scores they were stored with.

New scores go to ``record_scores`` keyed by ``(detector, detector_version, record_id)`` (ReplacingMergeTree),
so re-running a version replaces its rows instead of adding copies. A run is identified by its arguments
(detector, version, filters as typed): its ``(ts, id)`` cursor is saved in ``rescore_runs`` after each page is
written, and the same command run again resumes after it. Records whose text the raw-text TTL removed are
skipped and counted. Embeddings the detector declares in ``needs`` come from ``record_embeddings`` when stored
(same encoder); anything else is encoded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from agent.errors import LookoutError
from agent.storage.records import ExportFilter
from detectors.types import Batch, Detector, Encoder, TextField, Vectors, is_flagged
from evaluators.stored import Cursor, StoredRecord, count_records, iter_pages, load_embeddings, score_columns, utc
from evaluators.stored import where as record_where

Progress = Callable[[int, int], None]
"""Called with (records done, records in scope) after each page."""

SCORE_COLUMNS = (
    "record_id", "detector", "detector_version", "score", "flagged", "record_ts", "tenant", "model", "route",
    "run_id", "scored_at",
)  # fmt: skip
RUN_COLUMNS = (
    "run_id", "detector", "detector_version", "since", "until", "filter", "started_at", "updated_at", "status",
    "cursor_ts", "cursor_id", "scored", "skipped_no_text", "from_stored_embeddings",
)  # fmt: skip
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RescoreOutcome:
    """What one invocation did (counts are the run's totals, across resumes)."""

    run_id: str
    """Identity of the run (same arguments → same id)."""
    detector: str
    """Detector re-run."""
    version: str
    """Its version (the ``detector_version`` of the new rows)."""
    since: datetime
    """Records at or after this time..."""
    until: datetime
    """...and before this one (fixed when the run started)."""
    scored: int
    """Records scored."""
    skipped_no_text: int
    """Records skipped because their text expired."""
    from_stored_embeddings: int
    """Records whose needed embeddings all came from ``record_embeddings``."""
    resumed: bool
    """This invocation continued an earlier, unfinished run."""
    complete: bool
    """Every record in scope is done."""


@dataclass(frozen=True, slots=True)
class Comparison:
    """Stored (old) versus re-run (new) scores of one detector on the records in scope."""

    detector: str
    """Detector."""
    new_version: str
    """The re-run version."""
    old_versions: tuple[str, ...]
    """Versions the stored scores came from."""
    n: int
    """Records with a new score."""
    old_mean: float | None
    """Mean stored score (None: no stored column or no values)."""
    new_mean: float | None
    """Mean new score."""
    old_flag_rate: float | None
    """Share of those records flagged at ingest."""
    new_flag_rate: float | None
    """Share flagged by the new version (its threshold)."""
    agreement: float | None
    """Share where old and new flag decisions agree."""
    mean_abs_diff: float | None
    """Mean |new - old| where both scores exist."""


def run_id_for(detector: str, version: str, spec: Mapping[str, Any]) -> str:
    """The run's identity: detector, version and the arguments as typed (``7d`` stays ``7d``)."""
    text = json.dumps({"detector": detector, "version": version, **spec}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _run_row(client: Any, db: str, run_id: str) -> dict[str, Any] | None:
    result = client.query(
        f"SELECT {', '.join(RUN_COLUMNS)} FROM {db}.v_rescore_runs WHERE run_id = {{r:String}}",
        parameters={"r": run_id},
    )
    rows = result.result_rows
    return dict(zip(RUN_COLUMNS, rows[0], strict=True)) if rows else None


def _save_run(client: Any, db: str, row: Mapping[str, Any]) -> None:
    values = {**row, "updated_at": datetime.now(UTC)}
    client.insert(f"{db}.rescore_runs", [[values[c] for c in RUN_COLUMNS]], column_names=list(RUN_COLUMNS))


def _vectors(
    client: Any, db: str, records: Sequence[StoredRecord], needs: frozenset[TextField], encoder: Encoder | None
) -> tuple[dict[TextField, Vectors], bool]:
    """Vectors of each needed field (stored when every record has one, else encoded), and whether all were stored."""
    out: dict[TextField, Vectors] = {}
    all_stored = True
    for field in sorted(needs):
        stored = load_embeddings(client, db, [r.id for r in records], field, encoder.name) if encoder else {}
        if len(stored) == len(records):
            out[field] = np.stack([stored[r.id] for r in records]).astype(np.float32)
            continue
        all_stored = False
        if encoder is None:
            raise LookoutError(f"field {field!r} has no stored embeddings and there is no encoder")
        out[field] = encoder.encode([getattr(r, field) for r in records])
    return out, all_stored


def rescore(
    client: Any,
    db: str,
    detector: Detector,
    encoder: Encoder | None,
    filt: ExportFilter,
    spec: Mapping[str, Any],
    *,
    threshold: float | None = None,
    page_size: int = 500,
    max_records: int | None = None,
    restart: bool = False,
    progress: Progress | None = None,
) -> RescoreOutcome:
    """Re-run ``detector`` over the records ``filt`` selects, resuming the run ``spec`` identifies.

    Args:
        client: ClickHouse client.
        db: Database.
        detector: The detector (version) to run.
        encoder: Shared encoder, for embeddings that are not stored and detectors that encode other texts.
        filt: Which records; ``since`` is required, ``until`` defaults to now (fixed for the run's lifetime).
        spec: The arguments as typed; with detector and version they identify the run.
        threshold: Flag threshold (default the detector's).
        page_size: Records per page (one write and one cursor update each).
        max_records: Stop after about this many records in this invocation (the run stays resumable).
        restart: Start again from the beginning even if an earlier run with these arguments exists.
        progress: Called after each page.
    """
    if filt.since is None:
        raise LookoutError("rescore needs --since")
    limit = detector.default_threshold if threshold is None else threshold
    run_id = run_id_for(detector.name, detector.version, spec)
    row = None if restart else _run_row(client, db, run_id)
    now = datetime.now(UTC)
    resumed = row is not None and row["status"] != "done"
    if row is None:
        row = {
            "run_id": run_id, "detector": detector.name, "detector_version": detector.version,
            "since": filt.since, "until": filt.until or now, "filter": json.dumps(dict(spec), sort_keys=True),
            "started_at": now, "status": "running", "cursor_ts": _EPOCH, "cursor_id": "", "scored": 0,
            "skipped_no_text": 0, "from_stored_embeddings": 0,
        }  # fmt: skip
        _save_run(client, db, row)
    row = {**row, "since": utc(row["since"]), "until": utc(row["until"])}
    scope = ExportFilter(since=row["since"], until=row["until"], tenants=filt.tenants, models=filt.models,
                         routes=filt.routes, detectors=filt.detectors, queues=filt.queues)  # fmt: skip
    if row["status"] != "done":
        row = _work(client, db, detector, encoder, scope, row, limit, page_size, max_records, progress)
    return RescoreOutcome(
        run_id=run_id,
        detector=detector.name,
        version=detector.version,
        since=row["since"],
        until=row["until"],
        scored=int(row["scored"]),
        skipped_no_text=int(row["skipped_no_text"]),
        from_stored_embeddings=int(row["from_stored_embeddings"]),
        resumed=resumed,
        complete=row["status"] == "done",
    )


def _work(
    client: Any,
    db: str,
    detector: Detector,
    encoder: Encoder | None,
    scope: ExportFilter,
    row: dict[str, Any],
    threshold: float,
    page_size: int,
    max_records: int | None,
    progress: Progress | None,
) -> dict[str, Any]:
    after: Cursor | None = (utc(row["cursor_ts"]), row["cursor_id"]) if row["cursor_id"] else None
    total = count_records(client, db, scope)
    done = total - count_records(client, db, scope, after) if after else 0
    this_run = 0
    for page in iter_pages(client, db, scope, page_size, after):
        records = [r for r in page if r.has_text]
        if records:
            vectors, all_stored = _vectors(client, db, records, detector.needs, encoder)
            scores = detector.score(Batch(records, vectors, encoder))
            now = datetime.now(UTC)
            client.insert(
                f"{db}.record_scores",
                [
                    [
                        r.id,
                        detector.name,
                        detector.version,
                        s.value,
                        int(is_flagged(detector, s.value, threshold)),
                        r.ts,
                        r.tenant,
                        r.model,
                        r.route,
                        row["run_id"],
                        now,
                    ]
                    for r, s in zip(records, scores, strict=True)
                ],
                column_names=list(SCORE_COLUMNS),
            )
            row["scored"] += len(records)
            if detector.needs and all_stored:
                row["from_stored_embeddings"] += len(records)
        row["skipped_no_text"] += len(page) - len(records)
        row["cursor_ts"], row["cursor_id"] = page[-1].ts, page[-1].id
        done += len(page)
        this_run += len(page)
        finished = done >= total
        row["status"] = "done" if finished else "running"
        _save_run(client, db, row)
        if progress is not None:
            progress(done, total)
        if not finished and max_records is not None and this_run >= max_records:
            row["status"] = "partial"
            _save_run(client, db, row)
            return row
    row["status"] = "done"
    _save_run(client, db, row)
    return row


def compare(client: Any, db: str, detector: str, version: str, scope: ExportFilter) -> Comparison:
    """Old (stored at ingest) versus new (``record_scores`` of ``version``) on the records in ``scope``."""
    cond, params = record_where(scope, db, alias="r")
    has_column = detector in score_columns(client, db)
    old = f"r.{detector}" if has_column else "CAST(NULL, 'Nullable(Float32)')"
    sql = (
        f"SELECT count(), avg({old}), avg(s.score), "
        f"if(count({old}) = 0, NULL, avg(has(r.flags, {{det:String}}))), avg(s.flagged), "
        f"if(count({old}) = 0, NULL, avg(has(r.flags, {{det:String}}) = s.flagged)), avg(abs(s.score - {old})), "
        "arraySort(groupUniqArray(r.detector_versions[{det:String}])) "
        f"FROM {db}.v_record_scores AS s "
        f"INNER JOIN (SELECT * FROM {db}.v_records ORDER BY id, ingested_at DESC LIMIT 1 BY id) AS r "
        "ON r.id = s.record_id "
        f"WHERE s.detector = {{det:String}} AND s.detector_version = {{ver:String}} AND {cond}"
    )
    n, old_mean, new_mean, old_rate, new_rate, agree, diff, versions = client.query(
        sql, parameters={**params, "det": detector, "ver": version}
    ).result_rows[0]

    def num(value: Any) -> float | None:
        return None if value is None or n == 0 or value != value else float(value)

    return Comparison(
        detector=detector,
        new_version=version,
        old_versions=tuple(v for v in versions if v),
        n=int(n),
        old_mean=num(old_mean),
        new_mean=num(new_mean),
        old_flag_rate=num(old_rate),
        new_flag_rate=num(new_rate),
        agreement=num(agree),
        mean_abs_diff=num(diff),
    )
