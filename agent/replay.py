"""Produce a JSONL file's lines to a topic, unchanged (malformed lines too), with a progress bar."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from agent.broker import ensure_topic
from agent.errors import BrokerError, LookoutError


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    for line in stream:
        line = line.rstrip(b"\r\n")
        if line.strip():
            yield line


def message_key(line: bytes) -> bytes:
    """The record's ``id`` when it has one, else a hash of the line.

    The same line always lands on the same partition, so replaying a file twice yields the same layout.
    """
    try:
        obj = json.loads(line)
        if isinstance(obj, dict) and isinstance(obj.get("id"), str) and obj["id"]:
            return str(obj["id"]).encode("utf-8")
    except (ValueError, RecursionError):
        pass
    return hashlib.sha256(line).hexdigest()[:32].encode()


def tenant_key(line: bytes) -> bytes:
    """The record's ``tenant`` (a stream stays on one partition, in order), else :func:`message_key`."""
    try:
        obj = json.loads(line)
        if isinstance(obj, dict) and isinstance(obj.get("tenant"), str):
            return str(obj["tenant"]).encode("utf-8")
    except (ValueError, RecursionError):
        pass
    return message_key(line)


def read_lines(path: str) -> list[bytes]:
    """The non-blank lines of ``path`` (``-`` = stdin), without line endings."""
    if path == "-":
        return list(_lines(sys.stdin.buffer))
    try:
        with Path(path).open("rb") as f:
            return list(_lines(f))
    except OSError as exc:
        raise LookoutError(f"cannot read {path}: {exc.strerror}") from None


def replay(
    path: str,
    topic: str,
    bootstrap: str,
    rate: float | None = None,
    partitions: int = 3,
    show_progress: bool = True,
) -> int:
    """Produce every non-blank line of ``path`` (``-`` = stdin); returns how many were acknowledged."""
    if rate is not None and rate <= 0:
        raise LookoutError("--rate must be positive")
    return produce(read_lines(path), topic, bootstrap, rate, partitions, show_progress)


def produce(
    lines: Sequence[bytes],
    topic: str,
    bootstrap: str,
    rate: float | None = None,
    partitions: int = 3,
    show_progress: bool = True,
    key: Callable[[bytes], bytes] = message_key,
) -> int:
    """Produce ``lines`` in order, each keyed by ``key``; returns how many were acknowledged."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    ensure_topic(bootstrap, topic, partitions)
    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=10, client_id="lookout-replay")
    except KafkaError as exc:
        raise BrokerError(f"Kafka unreachable at {bootstrap} ({type(exc).__name__}); start a broker") from None
    interval = 1.0 / rate if rate else 0.0
    start = time.monotonic()
    futures = []
    progress = Progress(
        TextColumn("replay {task.fields[topic]}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        disable=not show_progress, transient=False,
    )  # fmt: skip
    with progress:
        task = progress.add_task("replay", total=len(lines), topic=topic)
        for i, line in enumerate(lines):
            if interval:
                delay = start + i * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            futures.append(producer.send(topic, value=line, key=key(line)))
            progress.advance(task)
        producer.flush(timeout=60)
    try:
        for fut in futures:
            fut.get(timeout=60)
    except KafkaError as exc:
        raise BrokerError(f"produce to {topic} failed: {exc}") from None
    finally:
        producer.close(timeout=10)
    return len(futures)
