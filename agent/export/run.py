"""Run an export: rows into the format's writer, files into place, then its entry merged into ``manifest.json``.

A directory holds one manifest for every format exported into it: exporting another format adds its entry,
exporting a format again replaces that format's entry, and the others are kept. The manifest is written last
(atomically, under a lock on the directory), so it always describes complete files.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from agent.errors import LookoutError
from agent.export import formats
from agent.export.files import FileEntry, TextFile
from agent.export.writer import ExportOptions
from agent.storage.client import Client
from agent.storage.records import ExportFilter, iso, iter_rows, score_columns

Progress = Callable[[int], None]
"""Called with the number of rows handled so far."""
MANIFEST = "manifest.json"
MANIFEST_VERSION = 2
"""2: one entry per format under ``exports``; 1 (before): one export's fields at the top level."""
PROGRESS_EVERY = 1_000


@dataclass(frozen=True, slots=True)
class Manifest:
    """What one format's export wrote (its entry in ``manifest.json``); ``query_rows == written + sum(skipped)``."""

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
    options: dict[str, Any] = field(default_factory=dict)
    """The export options that apply to this format (``sft_history`` for ``sft``)."""

    @property
    def written(self) -> int:
        """Records written: one row each, or (``group_by`` session) a turn of a session row."""
        return self.query_rows - sum(self.skipped.values())

    @property
    def key(self) -> str:
        """The entry's name under ``exports``: the format, ``FORMAT:session`` for a ``--group-by session`` export."""
        group_by = self.options.get("group_by")
        return f"{self.format}:{group_by}" if group_by else self.format

    def to_json(self) -> dict[str, Any]:
        """The format's entry under ``exports`` in ``manifest.json``."""
        return {
            "format": self.format,
            "files": [{"path": f.path, "rows": f.rows, "sha256": f.sha256} for f in self.files],
            "filters": self.filters,
            "options": self.options,
            "query_rows": self.query_rows,
            "written": self.written,
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


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def summary(m: Manifest, out_dir: Path) -> str:
    """One line saying what was written where: rows per file, then what the query matched and what was skipped."""
    files = ", ".join(f"{f.path} ({_plural(f.rows, 'row')})" for f in m.files)
    reasons = ", ".join(f"{k} {v}" for k, v in m.skipped.items())
    skipped = f"{sum(m.skipped.values())} skipped ({reasons})" if m.skipped else "none skipped"
    return f"wrote {files} to {out_dir}; {_plural(m.query_rows, 'record')} matched, {skipped}"


@contextlib.contextmanager
def _directory_lock(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the export directory (two exports into one directory merge one at a time)."""
    fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def read_manifest(out_dir: Path) -> dict[str, dict[str, Any]]:
    """The format entries of ``out_dir/manifest.json`` (empty when there is none); version 1 files are read too.

    The manifest is opened without following a link, so one planted at its name is never read.
    """
    path = out_dir / MANIFEST
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise LookoutError(
            f"cannot read {path} ({exc.strerror}); move it away or export into another directory"
        ) from None
    try:
        with os.fdopen(fd, encoding="utf-8") as f:
            doc = json.load(f)
    except (ValueError, UnicodeDecodeError):
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("exports"), dict):
        return {str(k): v for k, v in doc["exports"].items() if isinstance(v, dict)}
    if isinstance(doc, dict) and isinstance(doc.get("format"), str):  # version 1: one export's fields at the top
        return {doc["format"]: doc}
    raise LookoutError(f"{path} is not a lookout export manifest; move it away or export into another directory")


def manifest_json(entries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The whole ``manifest.json``: every format's entry, and every data file of the directory with its format."""
    exports = dict(sorted(entries.items()))
    files = sorted(
        ({**f, "format": name} for name, entry in exports.items() for f in entry.get("files", [])),
        key=lambda f: str(f.get("path")),
    )
    return {"manifest_version": MANIFEST_VERSION, "exports": exports, "files": files}


def merge_manifest(out_dir: Path, entry: Manifest) -> dict[str, Any]:
    """Add or replace ``entry``'s format (its :attr:`~Manifest.key`) in ``out_dir/manifest.json``, keeping the others.

    Atomic: the new manifest is renamed into place under a lock on the directory.
    """
    with _directory_lock(out_dir):
        entries = read_manifest(out_dir)
        entries[entry.key] = entry.to_json()
        doc = manifest_json(entries)
        out = TextFile(out_dir, MANIFEST)
        try:
            out.write(json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
            out.commit()
        except BaseException:
            out.abort()
            raise
    return doc


def prepare_directory(out_dir: Path) -> None:
    """Create ``out_dir`` if missing, and stop (before any file changes) when its manifest cannot be read."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LookoutError(f"cannot create export directory {out_dir}: {exc.strerror}") from None
    read_manifest(out_dir)


def export(
    client: Client,
    db: str,
    out_dir: Path,
    format_name: str,
    filt: ExportFilter,
    progress: Progress | None = None,
    options: ExportOptions | None = None,
) -> Manifest:
    """Write one export into ``out_dir`` (created if missing); files appear only when complete."""
    factory = formats.resolve(format_name)
    options = options or ExportOptions()
    prepare_directory(out_dir)
    writer = factory(out_dir, score_columns(client, db), options)
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
    return record_export(out_dir, format_name, files, filt, rows, skipped, options)


def record_export(
    out_dir: Path,
    format_name: str,
    files: list[FileEntry],
    filt: ExportFilter,
    rows: int,
    skipped: Mapping[str, int],
    options: ExportOptions,
) -> Manifest:
    """The finished export's manifest entry, merged into ``out_dir``'s manifest."""
    manifest = Manifest(
        format=format_name,
        files=files,
        filters=filt.to_json(),
        query_rows=rows,
        skipped=dict(sorted(skipped.items())),
        created_at=iso(datetime.now(UTC)),
        lookout_version=lookout_version(),
        options=options.for_format(format_name),
    )
    merge_manifest(out_dir, manifest)
    return manifest
