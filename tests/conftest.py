"""Fixtures with real parts: a tansu broker on a free loopback port, chDB in temp dirs, the agent as a process."""

from __future__ import annotations

import functools
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agent.broker import Broker, ensure_topic
from detectors.types import Encoder

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    """One real tansu broker (memory engine) for the session; tests use their own topics and groups."""
    with Broker() as b:
        yield b


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Any]:
    """A migrated chDB database (``lookout``) in the test's temp dir, closed after the test.

    One client per process may hold a chDB directory, so closing lets the next test open another.
    """
    with open_chdb(tmp_path / "data", migrate=True) as c:
        yield c


@contextmanager
def open_chdb(path: Path, migrate: bool = False) -> Iterator[Any]:
    """A clickhouse-connect client on the chDB directory ``path`` (migrated first if asked), closed afterwards."""
    from agent.config import ClickHouseSettings
    from agent.storage import migrations
    from agent.storage.client import connect

    c = connect(ClickHouseSettings(dsn=f"chdb://{path}"))
    try:
        if migrate:
            migrations.migrate(c, "lookout")
        yield c
    finally:
        c.close()


def wait_for_port(port: int, timeout: float = 60) -> None:
    """Return once something listens on 127.0.0.1:``port`` (a server a test started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listened on port {port} within {timeout} s")


def csrf_of(html: str) -> str:
    """The CSRF token of the first form of a review page."""
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None, html[:500]
    return match.group(1)


def seeded_data_dir(path: Path, seed: Callable[[Any], None]) -> Path:
    """``path`` as a migrated chDB directory holding what ``seed`` wrote, closed again.

    Tests reopen it with :func:`open_chdb`, or run ``lookout`` on it.
    """
    with open_chdb(path, migrate=True) as c:
        seed(c)
    return path


@functools.cache
def real_encoder() -> Encoder:
    """The bundled all-MiniLM-L6-v2, loaded once per test session."""
    from detectors.encoder import SentenceTransformerEncoder

    return SentenceTransformerEncoder()


def record(i: int, **fields: Any) -> dict[str, Any]:
    """A valid v1 record with id ``r-<i>``."""
    base: dict[str, Any] = {
        "id": f"r-{i:05d}",
        "ts": 1_764_000_000_000 + i * 1000,
        "prompt": f"What is the capital of country number {i}?",
        "response": f"The capital of country number {i} is City {i}.",
        "model": "gpt-4o-mini",
        "tenant": "acme",
        "usage": {"prompt_tokens": 10, "completion_tokens": 20},
    }
    base.update(fields)
    return base


MALFORMED: tuple[bytes, ...] = (
    b"not json at all",
    b"[1, 2, 3]",
    b'{"ts": 1, "prompt": "p"}',
    b'{"ts": 1, "prompt": "p", "response": 42}',
    b"\xff\xfe invalid utf-8",
)


def http_get(url: str) -> tuple[int, str]:
    """Status and body of a GET on a local test URL; (0, "") when nothing answers."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310  # a local test URL
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def read_topic(broker: Broker, name: str, at_least: int, timeout_s: float = 20) -> list[Any]:
    """Read topic ``name`` from the start with a fresh group until ``at_least`` messages arrived (or timeout)."""
    import time

    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        name,
        bootstrap_servers=broker.bootstrap,
        group_id=f"reader-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    out: list[Any] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(out) < at_least and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                out.extend(batch)
    finally:
        consumer.close()
    return out


@dataclass
class Topic:
    """A fresh topic on the session broker, with helpers to produce to it."""

    broker: Broker
    name: str
    partitions: int

    def produce(self, values: Sequence[bytes], key: bytes | None = None) -> dict[int, int]:
        """Produce and wait for acks; returns partition → next offset (what a full commit must equal).

        Messages are spread over the partitions, unless ``key`` is given: then they all share it, land on one
        partition and are consumed in order (how a stream is kept together in production).
        """
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=self.broker.bootstrap, acks="all", linger_ms=5)
        futures = [producer.send(self.name, value=v, key=key or str(i).encode()) for i, v in enumerate(values)]
        producer.flush(timeout=30)
        ends: dict[int, int] = {}
        for fut in futures:
            meta = fut.get(timeout=30)
            ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
        producer.close()
        return ends

    def produce_records(self, records: Sequence[dict[str, Any]]) -> dict[int, int]:
        """Produce records as JSON."""
        return self.produce([json.dumps(r).encode() for r in records])

    def committed(self, group: str) -> dict[int, int]:
        """The group's committed offsets on this topic, partition → offset."""
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=self.broker.bootstrap)
        try:
            offsets = admin.list_group_offsets(group)
        finally:
            admin.close()
        return {tp.partition: om.offset for tp, om in offsets.get(group, {}).items() if tp.topic == self.name}

    def dead_letters(self, expected: int, timeout_ms: int = 20_000) -> list[Any]:
        """Read the DLQ topic from the start until ``expected`` messages arrived (or timeout)."""
        return read_topic(self.broker, f"{self.name}.dlq", expected, timeout_ms / 1000)


@pytest.fixture
def topic(broker: Broker) -> Topic:
    """A new 3-partition topic."""
    name = f"logs-{uuid.uuid4().hex[:8]}"
    ensure_topic(broker.bootstrap, name, 3)
    return Topic(broker, name, 3)


CRASH_RUN = Path(__file__).resolve().parent / "crash_run.py"
"""The test-only ``lookout run`` that kills itself between write and commit."""


@dataclass
class AgentEnv:
    """Everything needed to run ``lookout`` subprocesses against one topic and one chDB directory."""

    topic: Topic
    data_dir: Path
    group: str

    @property
    def dsn(self) -> str:
        """The chDB DSN."""
        return f"chdb://{self.data_dir}"

    def env(self, **extra: str) -> dict[str, str]:
        """Process environment: settings through LOOKOUT_* variables only (the public contract)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOOKOUT_")}
        env.update(
            {
                "LOOKOUT_KAFKA__BOOTSTRAP_SERVERS": self.topic.broker.bootstrap,
                "LOOKOUT_KAFKA__TOPIC": self.topic.name,
                "LOOKOUT_KAFKA__GROUP_ID": self.group,
                "LOOKOUT_CLICKHOUSE__DSN": self.dsn,
                "LOOKOUT_KAFKA__SESSION_TIMEOUT_MS": "6000",
                "LOOKOUT_KAFKA__HEARTBEAT_INTERVAL_MS": "1000",
                "LOOKOUT_BATCH__MAX_RECORDS": "40",
                "LOOKOUT_BATCH__MAX_WAIT_MS": "300",
                "LOOKOUT_METRICS__PORT": "0",  # agents run side by side; a test that scrapes sets a free port
                "HF_HUB_OFFLINE": "1",
            }
        )
        env.update(extra)
        return env

    def start(self, *args: str, **extra_env: str) -> subprocess.Popen[str]:
        """Start ``lookout ARGS`` in the background."""
        return subprocess.Popen(
            [sys.executable, "-m", "agent", *args],
            env=self.env(**extra_env),
            cwd=self.data_dir.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, *args: str, timeout: float = 180, **extra_env: str) -> subprocess.CompletedProcess[str]:
        """Run ``lookout ARGS`` to completion."""
        return self._run([sys.executable, "-m", "agent", *args], timeout, extra_env)

    def run_crashing(
        self, after_batches: int, timeout: float = 180, **extra_env: str
    ) -> subprocess.CompletedProcess[str]:
        """``lookout run`` through the test-only entry point that SIGKILLs itself before its Nth commit."""
        return self._run([sys.executable, str(CRASH_RUN), str(after_batches)], timeout, extra_env)

    def _run(self, argv: list[str], timeout: float, extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            env=self.env(**extra_env),
            cwd=self.data_dir.parent,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run SQL on the chDB directory from this process (only while no agent holds it)."""
        import clickhouse_connect

        client = clickhouse_connect.get_client(dsn=self.dsn)
        try:
            return [tuple(r) for r in client.query(sql).result_rows]
        finally:
            client.close()


@pytest.fixture
def agent_env(topic: Topic, tmp_path: Path) -> AgentEnv:
    """A topic, an empty chDB directory and a fresh consumer group."""
    return AgentEnv(topic=topic, data_dir=tmp_path / "lookout-data", group=f"g-{uuid.uuid4().hex[:8]}")


class StubOpenAI:
    """Local OpenAI-compatible chat server (the mock for the LLM): fixed JSON per ragas output schema.

    Statements: always two; NLI verdicts 1 then 0 (faithfulness 0.5); generated question: ``question``;
    context precision verdict 1 unless the context under evaluation contains ``irrelevant``.
    """

    def __init__(self, question: str = "", irrelevant: str = "") -> None:
        self.question = question
        self.irrelevant = irrelevant
        self.requests: list[dict[str, Any]] = []
        self.auth: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append(body)
                stub.auth.append(self.headers.get("Authorization", ""))
                content = json.dumps(stub.answer(body["messages"]))
                data = json.dumps({
                    "id": "stub", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }).encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        text = "\n".join(str(m["content"]) for m in messages)
        task = text.rsplit("Now perform the same with the following input", 1)[-1]
        if '"StatementGeneratorOutput"' in text:
            return {"statements": ["Paris is a city.", "Paris is in Germany."]}
        if '"NLIStatementOutput"' in text:
            verdicts = [("Paris is a city.", 1), ("Paris is in Germany.", 0)]
            return {"statements": [{"statement": st, "reason": "-", "verdict": v} for st, v in verdicts]}
        if '"AnswerRelevanceOutput"' in text:
            return {"question": self.question, "noncommittal": 0}
        if '"ContextPrecisionOutput"' in text:
            return {"reason": "checked", "verdict": 0 if self.irrelevant and self.irrelevant in task else 1}
        return {}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
