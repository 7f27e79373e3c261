"""The writer base every export format implements: rows in, files committed together or not at all."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from agent.export.files import AtomicFile, FileEntry, JsonArrayFile, JsonLinesFile

if TYPE_CHECKING:
    from agent.storage.records import Row

Skip = str | None
"""``None`` when the row was written, else the reason it was skipped."""


class Writer(ABC):
    """Writes one format into a directory; files stay temporary until :meth:`commit`."""

    def __init__(self, directory: Path, scores: Sequence[str]) -> None:
        self.directory = directory
        self.scores = tuple(scores)

    @property
    @abstractmethod
    def files(self) -> list[AtomicFile]:
        """The files being written."""

    @abstractmethod
    def add(self, row: Row) -> Skip:
        """Write a row, or say why this format cannot hold it."""

    def commit(self) -> list[FileEntry]:
        """Finish every file and move it into place."""
        return [f.commit() for f in self.files]

    def abort(self) -> None:
        """Remove every temporary file."""
        for f in self.files:
            f.abort()


class OneFileWriter(Writer):
    """A format written to one file, ``out``: ``FILE`` is its class (JSON lines or a JSON array) and name."""

    FILE: ClassVar[tuple[type[JsonLinesFile] | type[JsonArrayFile], str]]

    def __init__(self, directory: Path, scores: Sequence[str]) -> None:
        super().__init__(directory, scores)
        kind, name = self.FILE
        self.out: JsonLinesFile | JsonArrayFile = kind(directory, name)

    @property
    def files(self) -> list[AtomicFile]:
        """The one file."""
        return [self.out]
