"""The checkpoint: every sink flushes, then the batch's offsets commit. Never an offset before its records.

A sink that fails is retried with capped exponential backoff; if writes keep failing the agent stops without
committing and the batch is re-read on restart (writes are idempotent on the record id, so no reader sees a
record twice). A commit the broker cannot take now is deferred: the offsets are kept and tried again with the
next batch or idle poll.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import structlog

from agent import metrics
from agent.errors import StorageError
from agent.metrics import Health
from agent.sinks.base import BatchingSink, SinkError
from agent.source import CommitDeferred, CommitFailed, TopicPartitionKey
from agent.types import RawMessage

log = structlog.get_logger(__name__)


class Committer(Protocol):
    """Where offsets are committed (the source)."""

    def commit(self, offsets: Mapping[TopicPartitionKey, int]) -> None:
        """Commit the next offset to read of each partition; raise CommitFailed or CommitDeferred."""
        ...


class Checkpoint:
    """Flushes the sinks and commits the offsets of what they wrote.

    Args:
        committer: Takes the offsets (the source).
        sinks: Flushed in this order before every commit (the steps' sinks, in step order).
        write_retries: Failed-flush retries before giving up without committing.
        retry_backoff_max_s: Cap of the exponential backoff between retries.
        health: Readiness state: storage is reported up after a flush, down while one fails.
        sleep: How to wait between retries; the Kafka source's ``hold`` pauses its partitions and keeps polling,
            so a long storage outage does not cost the group membership.
        held: Per partition, the lowest offset whose records a step still holds (the trace step's): no commit
            goes past it, and the rest is committed once they are written.
    """

    def __init__(
        self,
        committer: Committer,
        sinks: Sequence[BatchingSink[Any]],
        *,
        write_retries: int = 5,
        retry_backoff_max_s: float = 30.0,
        health: Health | None = None,
        sleep: Callable[[float], None] = time.sleep,
        held: Callable[[], Mapping[TopicPartitionKey, int]] | None = None,
    ) -> None:
        self.committer = committer
        self.sinks = tuple(sinks)
        self.write_retries = write_retries
        self.retry_backoff_max_s = retry_backoff_max_s
        self.health = health
        self._sleep = sleep
        self._held = held
        self._committed: dict[TopicPartitionKey, int] = {}
        """The last offset committed per partition (a held partition's floor is not committed twice)."""
        self.retries = 0
        """Failed flushes retried so far."""
        self.commit_failures = 0
        """Commits refused after a rebalance so far."""
        self._uncommitted: dict[TopicPartitionKey, int] = {}
        """Next offsets of written batches whose commit the broker has not taken yet."""
        self._deferring = False

    def __repr__(self) -> str:
        return f"Checkpoint(sinks={[type(s).__name__ for s in self.sinks]}, write_retries={self.write_retries})"

    def write(self, messages: Sequence[RawMessage], stopping: Callable[[], bool] = lambda: False) -> None:
        """Flush every sink, then commit ``messages``' offsets."""
        self.flush(stopping)
        self.commit(messages)

    def flush(self, stopping: Callable[[], bool] = lambda: False) -> None:
        """Flush every sink, retrying with capped exponential backoff; raise if writes keep failing.

        ``stopping`` cuts the retries short (a SIGTERM is answered within a second).
        """
        attempt = 0
        while True:
            try:
                for sink in self.sinks:
                    sink.flush()
                if self.health is not None:
                    self.health.storage_ok()
                return
            except SinkError as exc:
                attempt += 1
                if self.health is not None:
                    self.health.storage_failed(str(exc)[:200])
                self.retries += 1
                if attempt > self.write_retries or stopping():
                    raise StorageError(
                        f"writes keep failing after {attempt} attempts ({exc}); stopped without committing, "
                        "nothing is lost: the batch is re-read on restart"
                    ) from None
                delay = min(self.retry_backoff_max_s, 0.5 * 2 ** (attempt - 1))
                log.warning("write failed, retrying", attempt=attempt, delay_s=delay, error=str(exc)[:300])
                waited = 0.0
                while waited < delay and not stopping():  # in steps, so SIGTERM is answered within a second
                    step = min(1.0, delay - waited)
                    self._sleep(step)
                    waited += step

    def commit(self, messages: Sequence[RawMessage]) -> None:
        """Commit the offsets after ``messages`` (and any deferred ones)."""
        for m in messages:
            key = (m.origin.topic, m.origin.partition)
            self._uncommitted[key] = max(self._uncommitted.get(key, 0), m.origin.offset + 1)
        self.commit_pending()

    def commit_pending(self) -> None:
        """Commit the written batches' offsets.

        A broker outage defers the commit: the offsets are kept and tried again with the next batch or the next
        idle poll, and the agent keeps running (the rows are stored already; if it stops first, the next owner
        re-reads them and the writes deduplicate).
        """
        if not self._uncommitted:
            return
        wanted = dict(self._uncommitted)
        floor = self._held() if self._held is not None else {}
        capped = {key: min(offset, floor[key]) if key in floor else offset for key, offset in wanted.items()}
        offsets = {key: offset for key, offset in capped.items() if self._committed.get(key) != offset}
        if not offsets:
            return
        topics = sorted({topic for topic, _ in offsets})
        try:
            self.committer.commit(offsets)
        except CommitFailed as exc:
            self._uncommitted.clear()
            self._committed.clear()
            self.commit_failures += 1
            metrics.commit_failures.labels(topic=topics[0]).inc()
            log.warning("commit refused after a rebalance; the new owner re-reads and writes dedupe", error=str(exc))
        except CommitDeferred as exc:
            for topic in topics:
                metrics.commits_deferred.labels(topic=topic).inc()
            if not self._deferring:
                log.warning("commit deferred: Kafka unreachable; the offsets are kept and retried", error=str(exc))
            self._deferring = True
        else:
            self._committed.update(offsets)
            # what a held record kept back stays wanted, and is committed once the record is written
            self._uncommitted = {key: offset for key, offset in wanted.items() if capped[key] < offset}
            if self._deferring:
                log.info("deferred commit went through")
            self._deferring = False

    def close(self) -> None:
        """Close every sink."""
        for sink in self.sinks:
            sink.close()
