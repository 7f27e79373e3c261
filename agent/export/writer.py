"""The writer base every export format implements: rows in, files committed together or not at all."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

from agent.export.files import AtomicFile, FileEntry, JsonArrayFile, JsonLinesFile

if TYPE_CHECKING:
    from agent.storage.records import Row

Skip = str | None
"""``None`` when the row was written, else the reason it was skipped."""

SftHistory = Literal["none", "context", "weighted"]
"""What an SFT row keeps of the turns before the prompt (their assistant turns were never reviewed):
``none`` drops them (system turns stay), ``context`` writes them as the prompt of a prompt-completion row,
``weighted`` keeps them in ``messages`` with ``"weight": 0`` on each earlier assistant turn."""
SFT_HISTORIES: tuple[str, ...] = get_args(SftHistory)

GroupBy = Literal["record", "session"]
"""What one exported row is: a record (the default), or a session with all its turns (``jsonl``, ``parquet``)."""
GROUP_BYS: tuple[str, ...] = get_args(GroupBy)


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """Per-format choices of an export (recorded in the manifest entry of the formats they apply to)."""

    sft_history: SftHistory = "none"
    """How ``sft`` rows carry the earlier conversation (see :data:`SftHistory`)."""
    group_by: GroupBy = "record"
    """One row per record, or one per session (see :mod:`agent.export.sessions`)."""

    def for_format(self, format_name: str) -> dict[str, Any]:
        """The options that apply to ``format_name``, as the manifest records them."""
        out: dict[str, Any] = {"sft_history": self.sft_history} if format_name == "sft" else {}
        if self.group_by != "record":
            out["group_by"] = self.group_by
        return out


class Files(ABC):
    """Files written into a directory together: temporary until :meth:`commit`, removed by :meth:`abort`."""

    @property
    @abstractmethod
    def files(self) -> list[AtomicFile]:
        """The files being written."""

    def commit(self) -> list[FileEntry]:
        """Finish every file and move it into place."""
        return [f.commit() for f in self.files]

    def abort(self) -> None:
        """Remove every temporary file."""
        for f in self.files:
            f.abort()


class Writer(Files):
    """Writes one format into a directory, one row per record; files stay temporary until :meth:`commit`."""

    def __init__(self, directory: Path, scores: Sequence[str], options: ExportOptions | None = None) -> None:
        self.directory = directory
        self.scores = tuple(scores)
        self.options = options or ExportOptions()

    @abstractmethod
    def add(self, row: Row) -> Skip:
        """Write a row, or say why this format cannot hold it."""


Turns = Sequence[tuple["Row", bool]]
"""A session's turns in ``(ts, id)`` order, each a row and whether the export's filters matched it."""


class SessionWriter(Files):
    """Writes one format into a directory, one row per session (``--group-by session``)."""

    def __init__(self, directory: Path, scores: Sequence[str]) -> None:
        self.directory = directory
        self.scores = tuple(scores)

    @abstractmethod
    def add_session(self, tenant: str, session_id: str, turns: Turns) -> None:
        """Write one session."""


class OneFileWriter(Writer):
    """A format written to one file, ``out``: ``FILE`` is its class (JSON lines or a JSON array) and name."""

    FILE: ClassVar[tuple[type[JsonLinesFile] | type[JsonArrayFile], str]]

    def __init__(self, directory: Path, scores: Sequence[str], options: ExportOptions | None = None) -> None:
        super().__init__(directory, scores, options)
        kind, name = self.FILE
        self.out: JsonLinesFile | JsonArrayFile = kind(directory, name)

    @property
    def files(self) -> list[AtomicFile]:
        """The one file."""
        return [self.out]
