"""Run an export: stream rows into the format's writer, move the files into place, write ``manifest.json`` last.

A directory's manifest therefore always describes complete files.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from agent.errors import LookoutError
from agent.export import formats
from agent.export.files import FileEntry, TextFile
from agent.storage.client import Client
from agent.storage.records import ExportFilter, iso, iter_rows, score_columns

Progress = Callable[[int], None]
"""Called with the number of rows handled so far."""
MANIFEST = "manifest.json"
PROGRESS_EVERY = 1_000


@dataclass(frozen=True, slots=True)
class Manifest:
    """What an export wrote; ``query_rows == sum(file rows of the main file) + sum(skipped)``."""

    format: str
    """Format name."""
    files: list[FileEntry]
    """Data files written."""
    filters: dict[str, Any]
    """The filter, times resolved."""
    query_rows: int
    """Rows the query returned (distinct record ids)."""
    skipped: dict[str, int]
    """Rows the format could not represent, by reason."""
    created_at: str
    """When the export finished (the only field that changes on a re-run)."""
    lookout_version: str
    """Version of lookout that wrote it."""

    def to_json(self) -> dict[str, Any]:
        """The ``manifest.json`` object."""
        return {
            "format": self.format,
            "files": [{"path": f.path, "rows": f.rows, "sha256": f.sha256} for f in self.files],
            "filters": self.filters,
            "query_rows": self.query_rows,
            "skipped": self.skipped,
            "created_at": self.created_at,
            "lookout_version": self.lookout_version,
        }


def lookout_version() -> str:
    """The installed package version."""
    try:
        return metadata.version("llm-lookout")
    except metadata.PackageNotFoundError:
        return "unknown"


def export(
    client: Client,
    db: str,
    out_dir: Path,
    format_name: str,
    filt: ExportFilter,
    progress: Progress | None = None,
) -> Manifest:
    """Write one export into ``out_dir`` (created if missing); files appear only when complete."""
    factory = formats.resolve(format_name)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LookoutError(f"cannot create export directory {out_dir}: {exc.strerror}") from None
    writer = factory(out_dir, score_columns(client, db))
    skipped: Counter[str] = Counter()
    rows = 0
    try:
        for row in iter_rows(client, db, filt):
            reason = writer.add(row)
            if reason is not None:
                skipped[reason] += 1
            rows += 1
            if progress is not None and rows % PROGRESS_EVERY == 0:
                progress(rows)
        files = writer.commit()
    except BaseException:
        writer.abort()
        raise
    if progress is not None:
        progress(rows)
    manifest = Manifest(
        format=format_name,
        files=files,
        filters=filt.to_json(),
        query_rows=rows,
        skipped=dict(sorted(skipped.items())),
        created_at=iso(datetime.now(UTC)),
        lookout_version=lookout_version(),
    )
    out = TextFile(out_dir, MANIFEST)
    try:
        out.write(json.dumps(manifest.to_json(), ensure_ascii=False, indent=2, sort_keys=True) + "\n")
        out.commit()
    except BaseException:
        out.abort()
        raise
    return manifest
