"""The Kafka source: a kafka-python group consumer with auto-commit off.

kafka-python delivers rebalances only inside ``poll()``, and the agent fully processes, writes and commits
each polled batch before it polls again, so when partitions are revoked nothing handed to lookout is
uncommitted: "flush and commit before revocation" holds by construction. The one exception is a commit the
broker could not take (an outage, :class:`CommitDeferred`): the agent keeps those offsets and retries, and if the
partitions move first, their new owner re-reads the stored records and the writes deduplicate. The listener only
records assignment events (it runs on kafka-python's IO thread and must not block).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import structlog

from agent import metrics
from agent.config import KafkaSettings
from agent.errors import BrokerError
from agent.types import Origin, RawMessage

log = structlog.get_logger(__name__)

TopicPartitionKey = tuple[str, int]

LAG_UPDATE_S = 1.0
"""Least time between two updates of the consumer-lag gauges."""
JOIN_SETTLE_S = 15.0
"""Longest :meth:`KafkaSource.close` lets a join in progress finish before leaving the group."""
COMMIT_TIMEOUT_MS = 10_000
"""Longest one offset commit may block (kafka-python's default is 30 s), so that while the broker is away the
agent gets back to its loop, and to a SIGTERM, within seconds."""


def missing_client_speedups() -> list[str]:
    """What kafka-python lacks in this environment: codecs it cannot decompress, and the C CRC-32C.

    lookout depends on ``kafka-python[crc32c,lz4,snappy,zstd]``, so this is empty unless an install dropped them.
    Without ``crc32c`` kafka-python checks every fetched batch in pure Python, which caps the whole agent (see
    docs/benchmarks.md); a batch in a missing codec cannot be read at all.
    """
    from kafka import codec

    missing = [
        name
        for name, have in (("lz4", codec.has_lz4), ("snappy", codec.has_snappy), ("zstd", codec.has_zstd))
        if not have()
    ]
    try:
        import crc32c  # noqa: F401
    except ImportError:
        missing.append("crc32c")
    return missing


class CommitFailed(Exception):
    """The group moved on (rebalance) before the commit; the records will be re-delivered and deduplicated."""


class CommitDeferred(Exception):
    """The broker could not take the commit now (unreachable, timed out): keep the offsets and try again later."""


class Source(Protocol):
    """What the agent needs from a message source."""

    def poll(self, timeout_ms: int, max_records: int) -> list[RawMessage]:
        """Up to ``max_records`` messages, waiting at most ``timeout_ms`` for the first."""
        ...

    def commit(self, offsets: Mapping[TopicPartitionKey, int]) -> None:
        """Commit the next offset to read per partition.

        Raises :class:`CommitFailed` if the group moved on, :class:`CommitDeferred` if the broker cannot be
        reached now.
        """
        ...

    def last_assigned_at(self) -> float | None:
        """Monotonic time of the latest (re)assignment; None before the first."""
        ...

    def close(self) -> None:
        """Leave the group and release connections."""
        ...


def kafka_client_config(settings: KafkaSettings) -> dict[str, Any]:
    """Connection settings shared by consumer, producer and admin client."""
    config: dict[str, Any] = {
        "bootstrap_servers": [s.strip() for s in settings.bootstrap_servers.split(",") if s.strip()],
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol,
        "bootstrap_timeout_ms": settings.connect_timeout_ms,
    }
    if settings.sasl_mechanism is not None:
        config["sasl_mechanism"] = settings.sasl_mechanism
        config["sasl_plain_username"] = settings.sasl_username
        if settings.sasl_password is not None:
            config["sasl_plain_password"] = settings.sasl_password.get_secret_value()
    for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        path = getattr(settings, key)
        if path is not None:
            config[key] = str(path)
    if settings.ssl_password is not None:
        config["ssl_password"] = settings.ssl_password.get_secret_value()
    return config


def unreachable(settings: KafkaSettings, exc: BaseException) -> BrokerError:
    """The one-line error for a broker that cannot be reached."""
    return BrokerError(
        f"Kafka unreachable at {settings.bootstrap_servers} ({type(exc).__name__}); "
        "set LOOKOUT_KAFKA__BOOTSTRAP_SERVERS or start a broker (`lookout broker`)"
    )


class PartitionMoves:
    """Partitions that left this consumer: revoked by a rebalance and not assigned back by the same rebalance.

    State built from a partition's records (the drift step's streams) is current while the partition stays here;
    once it has left, another consumer may have read on from it, even if a later rebalance brings it back.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._revoked: set[TopicPartitionKey] = set()
        self._lost: set[TopicPartitionKey] = set()

    def revoked(self, partitions: Iterable[TopicPartitionKey]) -> None:
        """A rebalance took these partitions (they may come straight back)."""
        with self._lock:
            self._revoked |= set(partitions)

    def assigned(self, partitions: Iterable[TopicPartitionKey]) -> None:
        """The rebalance ended with these partitions here; the revoked ones not among them have left."""
        with self._lock:
            self._lost |= self._revoked - set(partitions)
            self._revoked = set()

    def take_lost(self) -> frozenset[TopicPartitionKey]:
        """Partitions that left since the last call."""
        with self._lock:
            lost, self._lost = frozenset(self._lost), set()
        return lost


class KafkaSource:
    """Group consumer on the records topic (and ``extra_topics``, e.g. feedback). Parameters public, state private."""

    def __init__(self, settings: KafkaSettings, max_records: int = 500, extra_topics: Sequence[str] = ()) -> None:
        from kafka import ConsumerRebalanceListener, KafkaConsumer
        from kafka.errors import KafkaError

        self.settings = settings
        self.max_records = max_records
        self.extra_topics = tuple(extra_topics)
        self._assigned_at: float | None = None
        self._moves = PartitionMoves()
        self._lag_updated = 0.0
        self._lock = threading.Lock()
        source = self

        class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # kafka-python ships no types
            def on_partitions_revoked(self, revoked: Any) -> None:
                if not revoked:
                    return
                source._moves.revoked((tp.topic, tp.partition) for tp in revoked)
                log.info("partitions revoked", partitions=sorted(f"{tp.topic}/{tp.partition}" for tp in revoked))

            def on_partitions_assigned(self, assigned: Any) -> None:
                with source._lock:
                    source._assigned_at = time.monotonic()
                source._moves.assigned((tp.topic, tp.partition) for tp in assigned)
                log.info("partitions assigned", partitions=sorted(f"{tp.topic}/{tp.partition}" for tp in assigned))

        try:
            self._consumer = KafkaConsumer(
                group_id=settings.group_id,
                enable_auto_commit=False,
                auto_offset_reset=settings.auto_offset_reset,
                session_timeout_ms=settings.session_timeout_ms,
                heartbeat_interval_ms=settings.heartbeat_interval_ms,
                max_poll_interval_ms=settings.max_poll_interval_ms,
                max_poll_records=max_records,
                **kafka_client_config(settings),
            )
        except KafkaError as exc:
            raise unreachable(settings, exc) from None
        self._consumer.subscribe([settings.topic, *extra_topics], listener=_Listener())
        missing = missing_client_speedups()
        if missing:
            effects = []
            if "crc32c" in missing:
                effects.append("fetched batches are checksummed in pure Python (~5 MB/s per core)")
            if any(m != "crc32c" for m in missing):
                effects.append("a batch compressed with a missing codec cannot be read")
            log.warning(
                "kafka client incomplete: reinstall lookout with its dependencies",
                missing=missing,
                effect="; ".join(effects),
            )

    def poll(self, timeout_ms: int, max_records: int) -> list[RawMessage]:
        """Messages from all assigned partitions, in offset order within each partition.

        A batch compressed with a codec this install lacks raises :class:`BrokerError` (one line; nothing of it
        was handed out or committed, so a fixed install reads it again).
        """
        from kafka.errors import UnsupportedCodecError

        try:
            polled = self._consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        except UnsupportedCodecError as exc:
            raise BrokerError(
                f"cannot read a fetched batch ({exc}); reinstall lookout with its dependencies "
                "(kafka-python[crc32c,lz4,snappy,zstd])"
            ) from None
        out = []
        for tp, records in polled.items():
            for r in records:
                out.append(
                    RawMessage(
                        origin=Origin(tp.topic, tp.partition, r.offset),
                        value=r.value,
                        key=r.key,
                        timestamp_ms=r.timestamp if r.timestamp is not None and r.timestamp >= 0 else None,
                    )
                )
        now = time.monotonic()
        if now - self._lag_updated >= LAG_UPDATE_S:
            self._lag_updated = now
            metrics.set_lag(self.lag())
        return out

    def commit(self, offsets: Mapping[TopicPartitionKey, int]) -> None:
        """Synchronous commit of the given next offsets, for the partitions this consumer is assigned now.

        Offsets of partitions assigned elsewhere since are dropped: their new owner reads on from the committed
        offset, and the rows it writes again are deduplicated. A broker that is unreachable or does not answer
        within :data:`COMMIT_TIMEOUT_MS` raises :class:`CommitDeferred` (kafka-python raises its connection or
        timeout error, a retriable one, from inside ``commit``).
        """
        from kafka import OffsetAndMetadata, TopicPartition
        from kafka.errors import (
            CommitFailedError,
            IllegalGenerationError,
            RebalanceInProgressError,
            RetriableError,
        )

        assigned = self._consumer.assignment()
        payload = {
            tp: OffsetAndMetadata(o, "", -1)
            for (t, p), o in offsets.items()
            if (tp := TopicPartition(t, p)) in assigned
        }
        if not payload:
            return
        try:
            self._consumer.commit(payload, timeout_ms=COMMIT_TIMEOUT_MS)
        except (CommitFailedError, IllegalGenerationError, RebalanceInProgressError) as exc:
            raise CommitFailed(str(exc)) from exc
        except RetriableError as exc:
            raise CommitDeferred(f"{type(exc).__name__}: {exc}") from exc

    def hold(self, seconds: float) -> None:
        """Wait ``seconds`` without taking records, staying in the group (the agent's backoff while storage is down).

        Sleeping instead would let ``max_poll_interval_ms`` run out during a long outage and cost the partitions:
        here the assigned partitions are paused and ``poll()`` keeps the membership alive. Records it hands out
        anyway (a partition assigned by a rebalance during the wait is not paused) are rewound, so none is skipped.
        """
        from kafka import TopicPartition

        deadline = time.monotonic() + seconds
        try:
            while (left := deadline - time.monotonic()) > 0:
                self._consumer.pause(*self._consumer.assignment())
                polled = self._consumer.poll(timeout_ms=max(1, int(min(left, 1.0) * 1000)))
                for tp, records in polled.items():
                    if records:
                        self._consumer.seek(TopicPartition(tp.topic, tp.partition), min(r.offset for r in records))
        finally:
            self._consumer.resume(*self._consumer.paused())

    def last_assigned_at(self) -> float | None:
        """Monotonic time of the latest assignment callback."""
        with self._lock:
            return self._assigned_at

    def lost_partitions(self) -> frozenset[TopicPartitionKey]:
        """Partitions a rebalance took away since the last call (see :class:`PartitionMoves`)."""
        return self._moves.take_lost()

    def lag(self) -> dict[TopicPartitionKey, int]:
        """Per assigned partition: highwater minus position (``end_offsets`` under-reports on tansu)."""
        out = {}
        for tp in self._consumer.assignment():
            high = self._consumer.highwater(tp)
            if high is not None:
                out[(tp.topic, tp.partition)] = max(0, high - self._consumer.position(tp))
        return out

    def close(self) -> None:
        """Leave the group (no auto-commit: every processed batch was committed already).

        A consumer caught in the middle of a join (SIGTERM right after start, or during a rebalance) first lets
        the join finish, for up to :data:`JOIN_SETTLE_S`; records handed out meanwhile are dropped, never
        processed nor committed, so the next owner reads them. kafka-python sends LeaveGroup as soon as it
        holds a member id, and tansu 0.6 answers a LeaveGroup sent while that member's JoinGroup is pending
        with success yet keeps the member as the group's leader: no later consumer of the group was assigned a
        partition (none in 90 s). Leaving from a settled membership works on every broker.
        """
        from kafka.coordinator.base import MemberState

        coordinator = getattr(self._consumer, "_coordinator", None)  # kafka-python internals: checked, not assumed
        deadline = time.monotonic() + JOIN_SETTLE_S
        while getattr(coordinator, "state", None) is MemberState.REBALANCING and time.monotonic() < deadline:
            self._consumer.poll(timeout_ms=200)
        self._consumer.close(autocommit=False)
