"""The Step protocol: what the runner hands each batch to, in order, between the source and the checkpoint.

A record's path is a list of steps (``decode → trace → redact → shed → score → drift → judge → store → route``), each
a small object with a ``name``, an ``apply(batch)`` that reads and updates the :class:`BatchState`, and the sinks
it buffers into. The checkpoint flushes those sinks, in step order, before it commits the batch's offsets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from agent.sinks.base import BatchingSink
from agent.types import DeadLetter, RawMessage, Sample, ScoredSample, ShedPlan
from detectors.types import TextField, Vectors


@dataclass(frozen=True, slots=True)
class OtlpMessage:
    """A message the decode step recognised as an OTLP trace export (``ExportTraceServiceRequest``)."""

    message: RawMessage
    """The message as consumed."""
    encoding: Literal["json", "proto"]
    """OTLP/JSON or protobuf."""
    parsed: Mapping[str, Any] | None = None
    """The JSON object, when the decode step parsed it already."""


@dataclass
class BatchState:
    """One poll's messages on their way through the steps."""

    messages: Sequence[RawMessage]
    """Every polled message: all of them are committed and counted once the batch is written."""
    pending: list[RawMessage] = field(default_factory=list)
    """Messages no step has taken yet; the decode step decodes these."""
    otlp: list[OtlpMessage] = field(default_factory=list)
    """OTLP trace exports the decode step recognised, for the trace step."""
    samples: list[Sample] = field(default_factory=list)
    """Decoded (and redacted) records, waiting for the score step."""
    scored: list[ScoredSample] = field(default_factory=list)
    """Scored records, in batch order."""
    vectors: Mapping[TextField, Vectors] = field(default_factory=dict)
    """The score step's embeddings of each text field, in ``scored`` order (none when scored one by one)."""
    dead_letters: list[DeadLetter] = field(default_factory=list)
    """Failures for the dead-letter sinks (the store step writes them)."""
    dead_lettered: list[DeadLetter] = field(default_factory=list)
    """Failures a step sent to its own dead-letter sinks (feedback events): counted, not written again."""
    plan: ShedPlan | None = None
    """The shedding plan, while shedding."""
    unpriced: int = 0
    """Records with token usage but no price for their model."""

    @classmethod
    def of(cls, messages: Sequence[RawMessage]) -> BatchState:
        """A batch whose messages are all pending."""
        return cls(messages=messages, pending=list(messages))


class Step(Protocol):
    """One step of the record path."""

    @property
    def name(self) -> str:
        """Named in logs and in the notes of the errors it raises."""
        ...

    def apply(self, batch: BatchState) -> None:
        """Read and update ``batch``; buffer into :meth:`sinks`. Bad data becomes a dead letter, never an error."""
        ...

    def sinks(self) -> Sequence[BatchingSink[Any]]:
        """The sinks this step buffers into; flushed, in step order, before the commit."""
        ...


@runtime_checkable
class Holding(Protocol):
    """A step that keeps records across batches (the trace step, waiting for the rest of a trace).

    The checkpoint commits no partition past the lowest offset a holding step still holds, and the runner hands
    an empty batch to the steps when :meth:`due` says held records are ready while nothing is being consumed.
    """

    def held_offsets(self) -> Mapping[tuple[str, int], int]:
        """Per (topic, partition), the lowest offset of a message whose records are held."""
        ...

    def due(self) -> bool:
        """Whether held records are ready to go on (their wait is over)."""
        ...

    def holding(self) -> bool:
        """Whether any record is held."""
        ...


def held_offsets(steps: Iterable[Step]) -> dict[tuple[str, int], int]:
    """The lowest held offset per partition over every holding step."""
    floor: dict[tuple[str, int], int] = {}
    for step in steps:
        if isinstance(step, Holding):
            for key, offset in step.held_offsets().items():
                floor[key] = min(offset, floor.get(key, offset))
    return floor


def sinks_of(steps: Iterable[Step]) -> list[BatchingSink[Any]]:
    """Every step's sinks, in step order (the checkpoint's flush order)."""
    return [sink for step in steps for sink in step.sinks()]
