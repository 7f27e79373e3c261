"""Output files written atomically: a hidden temp file in the target directory, renamed into place at the end."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One finished file, as listed in the manifest."""

    path: str
    """File name relative to the export directory."""
    rows: int
    """Rows (records, lines, tasks) it holds."""
    sha256: str
    """Hex digest of its bytes."""


def dumps(obj: Any) -> str:
    """Canonical JSON: sorted keys, no extra spaces, UTF-8 text kept as is (byte-identical on re-runs)."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class AtomicFile:
    """A file under construction: ``tmp`` while written, renamed to ``final`` by :meth:`commit`."""

    def __init__(self, directory: Path, name: str) -> None:
        self.name = name
        self.final = directory / name
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)  # O_EXCL: never a planted link
        self.tmp = Path(tmp)
        self.rows = 0
        self._fd: int | None = fd

    def take_fd(self) -> int:
        """The temp file's descriptor, opened when the file was created (write through it, never by name)."""
        if self._fd is None:
            raise RuntimeError(f"{self.tmp} is already open")
        fd, self._fd = self._fd, None
        return fd

    def commit(self) -> FileEntry:
        """fsync, rename into place, and describe the result."""
        with self.tmp.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(self.tmp, self.final)
        return FileEntry(path=self.name, rows=self.rows, sha256=sha256_file(self.final))

    def abort(self) -> None:
        """Remove the temp file (the previous ``final``, if any, is left untouched)."""
        if self._fd is not None:
            os.close(self.take_fd())
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


class TextFile(AtomicFile):
    """UTF-8 text with LF line endings on every platform."""

    def __init__(self, directory: Path, name: str) -> None:
        super().__init__(directory, name)
        self._f: IO[str] = os.fdopen(self.take_fd(), "w", encoding="utf-8", newline="\n")

    def write(self, text: str) -> None:
        """Append text."""
        self._f.write(text)

    def commit(self) -> FileEntry:
        """Close, then rename into place."""
        self._f.close()
        return super().commit()

    def abort(self) -> None:
        """Close and remove the temp file."""
        self._f.close()
        super().abort()


class JsonLinesFile(TextFile):
    """One canonical JSON object per line."""

    def add(self, obj: Any) -> None:
        """Append one object as a line."""
        self.write(dumps(obj) + "\n")
        self.rows += 1


class JsonArrayFile(TextFile):
    """A JSON array with one canonical element per line, streamed (``[``, elements, ``]``)."""

    def __init__(self, directory: Path, name: str) -> None:
        super().__init__(directory, name)
        self.write("[")

    def add(self, obj: Any) -> None:
        """Append one element."""
        self.write(("\n" if self.rows == 0 else ",\n") + dumps(obj))
        self.rows += 1

    def commit(self) -> FileEntry:
        """Close the array, then rename into place."""
        self.write("\n]\n" if self.rows else "]\n")
        return super().commit()
