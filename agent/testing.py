"""Test helpers shipped with the code: an in-memory source and sinks (no Kafka, no ClickHouse)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

from agent.checkpoint import Checkpoint
from agent.metrics import Health
from agent.runner import Agent
from agent.sinks.base import BatchingSink, SinkError
from agent.source import CommitDeferred, CommitFailed, TopicPartitionKey
from agent.step import Step, held_offsets, sinks_of
from agent.types import Origin, RawMessage

T = TypeVar("T")


def messages(values: Iterable[bytes | None], topic: str = "t", partition: int = 0) -> list[RawMessage]:
    """Raw messages at consecutive offsets of one partition."""
    return [RawMessage(origin=Origin(topic, partition, i), value=v) for i, v in enumerate(values)]


class ListSource:
    """Hands out prepared messages in polls of ``max_records``; records commits and an event log.

    ``commit_errors`` are raised, one per commit call, before commits go through again (a broker outage is
    :class:`CommitDeferred`, a rebalance :class:`CommitFailed`).
    """

    def __init__(
        self,
        items: Sequence[RawMessage],
        events: list[str] | None = None,
        commit_errors: Sequence[CommitDeferred | CommitFailed] = (),
    ) -> None:
        self._items = list(items)
        self.commit_errors = list(commit_errors)
        self._assigned_at = time.monotonic()
        self.committed: dict[TopicPartitionKey, int] = {}
        self.events = events if events is not None else []
        self.closed = False

    def poll(self, timeout_ms: int, max_records: int) -> list[RawMessage]:
        """Next chunk, or nothing (after a short sleep, like an idle consumer)."""
        chunk, self._items = self._items[:max_records], self._items[max_records:]
        if not chunk:
            time.sleep(min(timeout_ms, 20) / 1000)
        return chunk

    def commit(self, offsets: Mapping[TopicPartitionKey, int]) -> None:
        """Remember the offsets and log the commit (or raise the next of ``commit_errors``)."""
        if self.commit_errors:
            error = self.commit_errors.pop(0)
            self.events.append(f"commit {type(error).__name__} {sorted(offsets.items())}")
            raise error
        self.committed.update(offsets)
        self.events.append(f"commit {sorted(offsets.items())}")

    def last_assigned_at(self) -> float | None:
        """Assigned from construction on."""
        return self._assigned_at

    def close(self) -> None:
        """Mark closed."""
        self.closed = True


class ListSink(BatchingSink[T]):
    """Keeps written items in ``written``; ``fail_next`` makes the next N writes raise :class:`SinkError`."""

    def __init__(self, name: str = "sink", events: list[str] | None = None, fail_next: int = 0) -> None:
        super().__init__()
        self.name = name
        self.written: list[T] = []
        self.events = events if events is not None else []
        self.fail_next = fail_next

    def write(self, batch: Sequence[T]) -> None:
        """Store, or fail on purpose."""
        if self.fail_next > 0:
            self.fail_next -= 1
            self.events.append(f"{self.name} failed")
            raise SinkError(f"{self.name}: injected failure")
        self.written.extend(batch)
        self.events.append(f"{self.name} wrote {len(batch)}")


def loop(
    source: ListSource,
    steps: Sequence[Step],
    *,
    max_records: int = 256,
    max_wait_ms: int = 10,
    write_retries: int = 5,
    retry_backoff_max_s: float = 30.0,
    health: Health | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Agent:
    """An agent over ``steps`` whose checkpoint flushes their sinks, in step order, and commits to ``source``."""
    checkpoint = Checkpoint(
        source, sinks_of(steps), write_retries=write_retries, retry_backoff_max_s=retry_backoff_max_s,
        health=health, sleep=sleep, held=lambda: held_offsets(steps),
    )  # fmt: skip
    return Agent(source, steps, checkpoint, max_records=max_records, max_wait_ms=max_wait_ms, health=health)
