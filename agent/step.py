"""The Step protocol: what the runner hands each batch to, in order, between the source and the checkpoint.

A record's path is a list of steps (``decode → redact → shed → score → drift → judge → store → route``), each
a small object with a ``name``, an ``apply(batch)`` that reads and updates the :class:`BatchState`, and the sinks
it buffers into. The checkpoint flushes those sinks, in step order, before it commits the batch's offsets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.sinks.base import BatchingSink
from agent.types import DeadLetter, RawMessage, Sample, ScoredSample, ShedPlan
from detectors.types import TextField, Vectors


@dataclass
class BatchState:
    """One poll's messages on their way through the steps."""

    messages: Sequence[RawMessage]
    """Every polled message: all of them are committed and counted once the batch is written."""
    pending: list[RawMessage] = field(default_factory=list)
    """Messages no step has taken yet; the decode step decodes these."""
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


def sinks_of(steps: Iterable[Step]) -> list[BatchingSink[Any]]:
    """Every step's sinks, in step order (the checkpoint's flush order)."""
    return [sink for step in steps for sink in step.sinks()]
