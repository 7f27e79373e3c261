"""``lookout export --group-by session``: one row per conversation, every turn in ``ts`` order.

Which sessions: the export's filters choose records exactly as for a record export (reviewed records,
``--since``, ``--detector``, ``--queue``...); every ``(tenant, session_id)`` among them is exported **whole**:
all its stored turns, also those before ``--since``, under another model or route, or never reviewed. A turn
is ``matched`` when the filters chose it; only those carry ``review``, ``label`` and ``feedback``. Matched
records without a ``session_id`` are left out and counted (``no_session``), like ``record_missing``.

Formats: ``jsonl`` (``sessions.jsonl``, one ``{"session_id", "tenant", "turns"}`` object a line, each turn a
``records.jsonl`` row plus ``matched``) and ``parquet`` (``sessions.parquet``, the same as one row per session
with ``turns`` a list of structs). The manifest entry is ``FORMAT:session``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from agent.errors import LookoutError
from agent.export.files import AtomicFile, JsonLinesFile
from agent.export.run import Manifest, Progress, prepare_directory, record_export
from agent.export.writer import ExportOptions, SessionWriter, Turns
from agent.storage.client import Client
from agent.storage.records import ExportFilter, Row, iter_rows, score_columns
from agent.storage.sessions import SessionKey, StoredSession, iter_sessions

FORMATS = ("jsonl", "parquet")
"""Formats that can hold a session."""
PROGRESS_EVERY = 1_000
RecordKey = tuple[str, str]
"""``(tenant, record id)``."""


class JsonlSessionWriter(SessionWriter):
    """``sessions.jsonl``: ``{"session_id", "tenant", "turns"}`` per line."""

    def __init__(self, directory: Path, scores: Sequence[str]) -> None:
        super().__init__(directory, scores)
        self.out = JsonLinesFile(directory, "sessions.jsonl")

    @property
    def files(self) -> list[AtomicFile]:
        """The one file."""
        return [self.out]

    def add_session(self, tenant: str, session_id: str, turns: Turns) -> None:
        """Write the session as one line."""
        rows = [{**row.to_json(), "matched": matched} for row, matched in turns]
        self.out.add({"session_id": session_id, "tenant": tenant, "turns": rows})


def session_writer(format_name: str, directory: Path, scores: Sequence[str]) -> SessionWriter:
    """The session writer of ``format_name``; any other format is a one-line error."""
    if format_name == "jsonl":
        return JsonlSessionWriter(directory, scores)
    if format_name == "parquet":
        from agent.export.parquet import ParquetSessionWriter

        return ParquetSessionWriter(directory, scores)
    raise LookoutError(f"--group-by session writes {' or '.join(FORMATS)}, not {format_name}")


def turns_of(session: StoredSession, matched: Mapping[RecordKey, Row]) -> list[tuple[Row, bool]]:
    """The session's turns as export rows: a matched turn with its review, label and feedback; others bare."""
    out = []
    for turn in session.turns:
        record_id = str(turn.record["id"])
        found = matched.get((session.tenant, record_id))
        row = Row(record_id, turn.record, turn.scores, None, None)
        out.append((replace(found, record=turn.record, scores=turn.scores) if found else row, found is not None))
    return out


def export_sessions(
    client: Client, db: str, out_dir: Path, format_name: str, filt: ExportFilter, progress: Progress | None = None
) -> Manifest:
    """Write the sessions of the records ``filt`` matches into ``out_dir``; files appear only when complete.

    ``query_rows`` counts the matched records, ``skipped`` those left out (``no_session``, ``record_missing``);
    each file's ``rows`` counts sessions.
    """
    if format_name not in FORMATS:
        raise LookoutError(f"--group-by session writes {' or '.join(FORMATS)}, not {format_name}")
    prepare_directory(out_dir)
    scores = score_columns(client, db)
    matched: dict[RecordKey, Row] = {}
    keys: set[SessionKey] = set()
    skipped: Counter[str] = Counter()
    rows = 0
    for row in iter_rows(client, db, filt):
        rows += 1
        if progress is not None and rows % PROGRESS_EVERY == 0:
            progress(rows)
        if row.record is None:
            skipped["record_missing"] += 1
        elif not row.record["session_id"]:
            skipped["no_session"] += 1
        else:
            tenant = str(row.record["tenant"])
            keys.add((tenant, str(row.record["session_id"])))
            matched[(tenant, row.record_id)] = replace(row, record=None)  # the text comes back with the session
    writer = session_writer(format_name, out_dir, scores)
    try:
        for session in iter_sessions(client, db, keys, scores):
            writer.add_session(session.tenant, session.session_id, turns_of(session, matched))
        files = writer.commit()
    except BaseException:
        writer.abort()
        raise
    if progress is not None:
        progress(rows)
    return record_export(out_dir, format_name, files, filt, rows, skipped, ExportOptions(group_by="session"))
