"""One owner, many clients: the process holding an embedded store answers the others on a Unix socket.

chDB lets one process open a data directory. Whichever process opened it (``lookout run``, ``review serve``,
``demo``, even a long ``export``) runs an :class:`OwnerChannel`: a socket beside the data (owner-only
permissions, peers of another uid refused) that runs ``query``, ``command``, ``insert`` and streamed queries on
its own client. A command that finds the directory locked gets an :class:`OwnerClient` instead, with the same
methods, so it prints the same output and exits the same way. Statements sent with ``readonly`` are checked by
:func:`agent.storage.query.check_query` here as well, so the channel is no way around ``lookout query``'s rules.

Wire format: frames of a 4-byte big-endian length and UTF-8 JSON; values that JSON lacks (datetimes, dates,
decimals, UUIDs, bytes, tuples, maps with non-string keys, NaN) are tagged objects (:func:`encode`).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import json
import math
import os
import socket
import socketserver
import struct
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog

from agent.errors import LookoutError, StorageError
from agent.storage.query import check_query

log = structlog.get_logger(__name__)

SOCKET_NAME = "lookout.sock"
MAX_FRAME = 256 * 1024 * 1024
"""Largest frame either side accepts (a request or one streamed block)."""
_UNIX_PATH_MAX = 100  # sun_path is 108 bytes on Linux; keep a margin
_LENGTH = struct.Struct(">I")


def socket_path(data_dir: Path) -> Path:
    """Where the owner of ``data_dir`` listens: inside it, or (a path too long for a socket) in a private temp dir."""
    inside = data_dir / SOCKET_NAME
    if len(os.fsencode(inside)) <= _UNIX_PATH_MAX:
        return inside
    digest = hashlib.sha256(os.fsencode(data_dir.resolve())).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"lookout-{os.getuid()}" / f"{digest}.sock"


# the wire codec


def encode(value: Any) -> Any:
    """``value`` as JSON-able data; :func:`decode` gives it back."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$f": repr(value)}
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$d": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if isinstance(value, bytes | bytearray):
        return {"$b": base64.b64encode(value).decode("ascii")}
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return {"$ip": str(value)}
    if isinstance(value, tuple):
        return {"$t": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: encode(v) for k, v in value.items()}
        return {"$m": [[encode(k), encode(v)] for k, v in value.items()]}
    raise TypeError(f"cannot send a {type(value).__name__} to or from the store's owner")


_TAGS: dict[str, Any] = {
    "$f": float,
    "$dt": datetime.fromisoformat,
    "$d": date.fromisoformat,
    "$dec": Decimal,
    "$uuid": uuid.UUID,
    "$b": base64.b64decode,
    "$ip": ipaddress.ip_address,
}


def decode(value: Any) -> Any:
    """The value :func:`encode` was given."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            ((tag, inner),) = value.items()
            if tag in _TAGS:
                return _TAGS[tag](inner)
            if tag == "$t":
                return tuple(decode(v) for v in inner)
            if tag == "$m":
                return {decode(k): decode(v) for k, v in inner}
        return {k: decode(v) for k, v in value.items()}
    return value


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    data = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    sock.sendall(_LENGTH.pack(len(data)) + data)


def _read_exactly(sock: socket.socket, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _receive(sock: socket.socket) -> dict[str, Any] | None:
    head = _read_exactly(sock, _LENGTH.size)
    if head is None:
        return None
    (size,) = _LENGTH.unpack(head)
    if size > MAX_FRAME:
        raise ValueError(f"frame of {size} bytes is over the {MAX_FRAME} limit")
    body = _read_exactly(sock, size)
    if body is None:
        return None
    message = json.loads(body)
    if not isinstance(message, dict):
        raise ValueError("a frame must hold a JSON object")
    return message


# the owner's side


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        if not _same_user(sock):
            log.warning("control channel: refused a peer of another user")
            return
        while True:
            try:
                request = _receive(sock)
            except (OSError, ValueError) as exc:
                with contextlib.suppress(OSError):
                    _send(sock, {"error": f"bad request: {exc}", "kind": "lookout"})
                return
            if request is None:
                return
            try:
                with self.server.lock:
                    self._answer(sock, request)
            except OSError:  # the client went away mid-answer
                return

    def _answer(self, sock: socket.socket, request: dict[str, Any]) -> None:
        client = self.server.client
        op = request.get("op")
        sql = str(request.get("sql", ""))
        parameters = decode(request.get("parameters"))
        settings = decode(request.get("settings"))
        try:
            if settings and str(settings.get("readonly", "0")) != "0":
                check_query(sql)
            if op == "query":
                result = client.query(sql, parameters=parameters, settings=settings)
                columns = list(result.column_names)
                _send(sock, {"columns": columns, "rows": encode([list(r) for r in result.result_rows])})
            elif op == "stream":
                with client.query_row_block_stream(sql, parameters=parameters, settings=settings) as stream:
                    for block in stream:
                        _send(sock, {"block": encode([list(r) for r in block])})
                _send(sock, {"end": True})
            elif op == "command":
                _send(sock, {"result": encode(_plain(client.command(sql, parameters=parameters, settings=settings)))})
            elif op == "owner":
                _send(sock, {"result": {"pid": os.getpid(), "command": _command_line()}})
            elif op == "insert":
                data = decode(request.get("data"))
                client.insert(str(request["table"]), data, column_names=request.get("column_names"))
                _send(sock, {"result": None})
            else:
                _send(sock, {"error": f"unknown operation {op!r}", "kind": "lookout"})
        except LookoutError as exc:
            _send(sock, {"error": str(exc), "kind": "lookout"})
        except Exception as exc:  # a database error: sent as its text, raised again on the client's side
            _send(sock, {"error": str(exc), "kind": "database"})


def _command_line() -> str:
    """How this process was started, shortly: ``lookout review serve --port 8700``."""
    argv = [Path(sys.argv[0]).name if sys.argv else "python", *sys.argv[1:]]
    if argv[0] in ("__main__.py", "-m"):
        argv[0] = "lookout"
    return " ".join(argv)[:200]


def _plain(value: Any) -> Any:
    """What ``command`` returned, as a value the wire carries (a summary object becomes its string)."""
    try:
        encode(value)
    except TypeError:
        return str(value)
    return value


def _same_user(sock: socket.socket) -> bool:
    """Whether the peer runs as this process's user (SO_PEERCRED; allowed where the platform lacks it)."""
    peercred = getattr(socket, "SO_PEERCRED", None)
    if peercred is None:  # pragma: no cover - Linux has it
        return True
    _, uid, _ = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, peercred, struct.calcsize("3i")))
    return bool(uid == os.getuid())


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    client: Any
    lock: threading.Lock


class OwnerChannel:
    """Answers other lookout processes on :func:`socket_path` for as long as this process holds the store.

    Args:
        client: This process's clickhouse-connect client on the store.
        data_dir: The embedded store's directory.
    """

    def __init__(self, client: Any, data_dir: Path) -> None:
        self.path = socket_path(data_dir)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._client = client
        self._inode: int | None = None

    def start(self) -> OwnerChannel:
        """Listen (a socket left by a killed owner is replaced: holding the store proves this process owns it)."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        old_umask = os.umask(0o177)  # the socket is created 0600: only this user may connect
        try:
            server = _Server(str(self.path), _Handler)
        finally:
            os.umask(old_umask)
        server.client = self._client
        server.lock = threading.Lock()
        self._inode = self.path.stat().st_ino
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="lookout-owner", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop answering and remove the socket (unless another owner has replaced it since)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        with contextlib.suppress(OSError):
            if self.path.stat().st_ino == self._inode:
                self.path.unlink()


class OwnedClient:
    """This process's client on an embedded store, plus the channel that serves the store to others."""

    def __init__(self, client: Any, channel: OwnerChannel | None) -> None:
        self._client = client
        self.channel = channel

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def close(self) -> None:
        """Stop the channel, then close the client."""
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        self._client.close()


def serve_store(client: Any, data_dir: Path) -> OwnedClient:
    """``client`` with an :class:`OwnerChannel` running (without one, and a warning, if the socket can't be made)."""
    try:
        channel: OwnerChannel | None = OwnerChannel(client, data_dir).start()
    except OSError as exc:
        log.warning("control channel not started: other lookout commands cannot use this store", error=str(exc))
        channel = None
    return OwnedClient(client, channel)


# the clients' side


class OwnerQueryError(Exception):
    """A database error raised by the owner's client; its text is the original one."""


@dataclass
class RemoteResult:
    """What :meth:`OwnerClient.query` returns: the parts of a clickhouse-connect result lookout reads."""

    column_names: tuple[str, ...]
    """Column names, in order."""
    result_rows: list[tuple[Any, ...]] = field(default_factory=list)
    """Rows, as tuples."""

    @property
    def first_row(self) -> tuple[Any, ...]:
        """The first row."""
        return self.result_rows[0]


def _statement(op: str, sql: str, parameters: dict[str, Any] | None, settings: dict[str, Any] | None) -> dict[str, Any]:
    """A request that runs ``sql`` on the owner (``query``, ``command`` or ``stream``)."""
    return {"op": op, "sql": sql, "parameters": encode(parameters), "settings": encode(settings)}


class OwnerClient:
    """A client that runs everything through the store's owner (see :class:`OwnerChannel`).

    Args:
        path: The owner's socket.
        data_dir: The store (for messages).
    """

    def __init__(self, path: Path, data_dir: Path) -> None:
        self.path = path
        self.data_dir = data_dir
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.connect(str(path))
        except OSError:
            self._sock.close()
            raise
        self._lock = threading.Lock()

    def _gone(self) -> StorageError:
        return StorageError(
            f"the process holding {self.data_dir} stopped answering; run the command again once it is back or stopped"
        )

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            _send(self._sock, request)
            answer = _receive(self._sock)
        except (OSError, ValueError):
            raise self._gone() from None
        if answer is None:
            raise self._gone()
        return self._checked(answer)

    @staticmethod
    def _checked(answer: dict[str, Any]) -> dict[str, Any]:
        if "error" in answer:
            if answer.get("kind") == "lookout":
                raise LookoutError(str(answer["error"]))
            raise OwnerQueryError(str(answer["error"]))
        return answer

    def query(
        self, sql: str, parameters: dict[str, Any] | None = None, settings: dict[str, Any] | None = None
    ) -> RemoteResult:
        """Run a query on the owner; the whole result."""
        with self._lock:
            answer = self._call(_statement("query", sql, parameters, settings))
        rows = [tuple(r) for r in decode(answer["rows"])]
        return RemoteResult(tuple(answer["columns"]), rows)

    def command(
        self, sql: str, parameters: dict[str, Any] | None = None, settings: dict[str, Any] | None = None
    ) -> Any:
        """Run a statement on the owner; what it returned."""
        with self._lock:
            answer = self._call(_statement("command", sql, parameters, settings))
        return decode(answer["result"])

    def insert(self, table: str, data: Sequence[Sequence[Any]], column_names: Sequence[str] | None = None) -> None:
        """Insert rows through the owner."""
        request = {
            "op": "insert", "table": table, "data": encode([list(r) for r in data]),
            "column_names": list(column_names) if column_names is not None else None,
        }  # fmt: skip
        with self._lock:
            self._call(request)

    @contextlib.contextmanager
    def query_row_block_stream(
        self, sql: str, parameters: dict[str, Any] | None = None, settings: dict[str, Any] | None = None
    ) -> Iterator[Iterator[list[tuple[Any, ...]]]]:
        """Stream a query's rows block by block (an export never holds the whole result on either side)."""
        with self._lock:
            try:
                _send(self._sock, _statement("stream", sql, parameters, settings))
            except OSError:
                raise self._gone() from None
            blocks = self._blocks()
            try:
                yield blocks
            finally:
                for _ in blocks:  # drain what the owner still sends, so the connection stays usable
                    pass

    def _blocks(self) -> Iterator[list[tuple[Any, ...]]]:
        while True:
            try:
                answer = _receive(self._sock)
            except (OSError, ValueError):
                raise self._gone() from None
            if answer is None:
                raise self._gone()
            answer = self._checked(answer)
            if answer.get("end"):
                return
            yield [tuple(r) for r in decode(answer["block"])]

    def owner(self) -> tuple[int, str]:
        """The owner's pid and command line."""
        with self._lock:
            answer = self._call({"op": "owner"})
        return int(answer["result"]["pid"]), str(answer["result"]["command"])

    def close(self) -> None:
        """Disconnect."""
        with contextlib.suppress(OSError):
            self._sock.close()


def describe_owner(data_dir: Path) -> str | None:
    """How to name the process holding ``data_dir`` (its command line and pid), or None when none answers."""
    remote = owner_client(data_dir)
    if remote is None:
        return None
    try:
        pid, command = remote.owner()
    except (LookoutError, OwnerQueryError):
        return None
    finally:
        remote.close()
    return f"`{command}` (pid {pid})"


def owner_client(data_dir: Path) -> OwnerClient | None:
    """A client through the owner of ``data_dir``, or None when no owner answers."""
    path = socket_path(data_dir)
    try:
        return OwnerClient(path, data_dir)
    except OSError:
        return None
