"""The route step: each scored record to the route sinks (review queues, feedback matches), after the store step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agent.sinks.base import BatchingSink
from agent.step import BatchState


class RouteStep:
    """Hands the batch's scored records to every route sink.

    The sinks decide what to keep (the review sinks apply the routing rules; the feedback sink matches events to
    records). They come after the store step, so they are flushed after the records they refer to.

    Args:
        sinks: Sinks of scored records.
    """

    name = "route"

    def __init__(self, sinks: Sequence[BatchingSink[Any]]) -> None:
        self._sinks = tuple(sinks)

    def __repr__(self) -> str:
        return f"RouteStep(sinks={[type(s).__name__ for s in self._sinks]})"

    def apply(self, batch: BatchState) -> None:
        """Buffer ``batch.scored`` into every sink."""
        for sink in self._sinks:
            sink.extend(batch.scored)

    def sinks(self) -> Sequence[BatchingSink[Any]]:
        """The route sinks, in the order given."""
        return self._sinks
