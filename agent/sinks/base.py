"""The batching sink base: concrete sinks implement one method, ``write(batch)``.

The agent adds items as it goes and calls ``flush()`` before committing offsets; a write that raises
leaves the buffer intact so the same items can be retried.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, Generic, TypeVar

from agent import metrics

T = TypeVar("T")


class SinkError(Exception):
    """A write failed; the items were not (all) stored. Retrying the same batch is safe."""


class BatchingSink(ABC, Generic[T]):
    """Buffers items and writes them in one call on ``flush``."""

    metric_label: ClassVar[str] = ""
    """The ``sink`` label of the write metrics; default the class name."""

    def __init__(self) -> None:
        self._buffer: list[T] = []

    def add(self, item: T) -> None:
        """Buffer one item."""
        self._buffer.append(item)

    def extend(self, items: Sequence[T]) -> None:
        """Buffer many items."""
        self._buffer.extend(items)

    @property
    def pending(self) -> int:
        """Items buffered and not yet written."""
        return len(self._buffer)

    def flush(self) -> None:
        """Write everything buffered; on error nothing is dropped and the exception propagates."""
        if not self._buffer:
            return
        label = self.metric_label or type(self).__name__
        try:
            with metrics.timed(metrics.sink_write_duration, sink=label):
                self.write(self._buffer)
        except Exception:
            metrics.sink_write_failures.labels(sink=label).inc()
            raise
        self._buffer = []

    @abstractmethod
    def write(self, batch: Sequence[T]) -> None:
        """Store ``batch`` durably or raise :class:`SinkError`."""

    def close(self) -> None:
        """Release resources."""
