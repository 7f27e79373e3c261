"""Open ClickHouse through clickhouse-connect: ``chdb://PATH`` (embedded) or ``http(s)://`` (server).

Embedded mode allows one process per data directory: the one that opens it serves it to other lookout
commands on a control socket (:mod:`agent.storage.owner`); :func:`agent.storage.database.open_storage` with
``shared=True`` goes through that owner, anything else gets :class:`StorageBusyError` naming the holder.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from agent.config import ClickHouseSettings
from agent.errors import StorageBusyError, StorageError

Client = Any
"""A clickhouse-connect client (the library ships no type information)."""


_SECRET_PARAMS = frozenset({"password", "pass", "pwd", "token", "access_token", "api_key", "secret"})
"""Query parameters whose values :func:`mask_dsn` hides."""


def mask_dsn(dsn: str) -> str:
    """The DSN with any password replaced by ``***``: in ``user:password@`` and in ``?password=`` parameters."""
    parts = urlsplit(dsn)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    query = "&".join(
        f"{key}=***" if sep and key.lower() in _SECRET_PARAMS else f"{key}{sep}{value}"
        for key, sep, value in (item.partition("=") for item in parts.query.split("&") if item)
    )
    if netloc == parts.netloc and query == parts.query:
        return dsn
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def chdb_path(dsn: str) -> Path | None:
    """The data directory of a ``chdb://`` DSN (relative paths resolve against the working directory)."""
    if not dsn.startswith("chdb://"):
        return None
    rest = dsn[len("chdb://") :]
    if not rest:
        raise StorageError("chdb:// DSN needs a directory, e.g. chdb://./lookout-data")
    return Path(rest).expanduser().resolve()


def connect(settings: ClickHouseSettings) -> Client:
    """A client with the database created; raises :class:`StorageError` with a one-line reason."""
    import clickhouse_connect

    path = chdb_path(settings.dsn)
    if path is not None:
        client = _open_chdb(clickhouse_connect, path)
    elif settings.dsn.startswith(("http://", "https://", "clickhouse://", "clickhouses://")):
        try:
            # on a cluster, a write returns only once every shard has it: offsets commit after durable writes
            sync = {"insert_distributed_sync": 1} if settings.cluster else None
            client = clickhouse_connect.get_client(dsn=settings.dsn, settings=sync, **server_options(settings))
        except Exception as exc:
            raise StorageError(
                f"ClickHouse unreachable at {mask_dsn(settings.dsn)} ({reason(exc)}); "
                "set LOOKOUT_CLICKHOUSE__DSN or start the server"
            ) from None
    else:
        raise StorageError(
            f"unsupported ClickHouse DSN {mask_dsn(settings.dsn)!r}; use chdb://PATH or http(s)://host:port"
        )
    try:
        on_cluster = f" ON CLUSTER {settings.cluster}" if settings.cluster else ""
        client.command(f"CREATE DATABASE IF NOT EXISTS {settings.database}{on_cluster}")
    except Exception as exc:
        raise StorageError(f"cannot create database {settings.database}: {reason(exc)}") from None
    return client


def server_options(settings: ClickHouseSettings) -> dict[str, Any]:
    """Credentials and TLS options for a ClickHouse server (``http(s)://`` DSN), as clickhouse-connect takes them."""
    options: dict[str, Any] = {"verify": settings.verify}
    if settings.username is not None:
        options["username"] = settings.username
    if settings.password is not None:
        options["password"] = settings.password.get_secret_value()
    if settings.ca_cert is not None:
        options["ca_cert"] = str(settings.ca_cert)
    return options


def _open_chdb(clickhouse_connect: Any, path: Path) -> Client:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create ClickHouse data directory {path}: {exc.strerror}") from None
    from agent.storage.owner import describe_owner, serve_store

    holder = describe_owner(path)  # a live owner answers: don't even try (chDB would print its lock error)
    if holder is not None:
        raise StorageBusyError(f"ClickHouse data directory {path} is held by {holder}")
    try:
        with _quiet_stderr() as said:
            client = clickhouse_connect.get_client(dsn=f"chdb://{path}")
        if "".join(said).strip():  # anything but a lock error is the user's to see
            sys.stderr.write("".join(said))
    except Exception as exc:
        text = str(exc)
        if "Error initializing EmbeddedServer" in text or "Cannot lock file" in text:
            holder = describe_owner(path)
            if holder is None:
                raise StorageBusyError(
                    f"ClickHouse data directory {path} is locked by a process that does not answer on its control "
                    "socket (an older lookout?); stop that process, or wait for it to finish, and retry"
                ) from None
            raise StorageBusyError(f"ClickHouse data directory {path} is held by {holder}") from None
        if "already initialized with path" in text:
            raise StorageError(f"this process already opened another embedded ClickHouse directory: {text}") from None
        raise StorageError(f"cannot open embedded ClickHouse at {path}: {reason(exc)}") from None
    return serve_store(client, path)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[list[str]]:
    """Hold back what native code writes to file descriptor 2 (chDB prints its lock error there itself).

    Yields a one-item list filled, on exit, with what was written.
    """
    said: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as buffer:
        os.dup2(buffer.fileno(), 2)
        try:
            yield said
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            buffer.seek(0)
            said.append(buffer.read().decode("utf-8", errors="replace"))


_NETWORK_REASONS = (
    ("Connection refused", "connection refused"),
    ("Name or service not known", "unknown host"),
    ("Temporary failure in name resolution", "unknown host"),
    ("timed out", "timed out"),
    ("Authentication failed", "authentication failed"),
)


def history_turns(value: Any) -> list[tuple[str, str]]:
    """A stored ``history`` value as (role, content) pairs.

    The column is ``Array(Tuple(role String, content String))``: clickhouse-connect returns named tuples as dicts
    (iterating one yields its keys, not its values), plain tuples as tuples; both are read here.
    """
    return [(str(t["role"]), str(t["content"])) if isinstance(t, Mapping) else (str(t[0]), str(t[1])) for t in value]


def reason(exc: BaseException) -> str:
    """A short, single-line reason for a ClickHouse error (network cause or the DB::Exception text)."""
    text = " ".join(str(exc).split())
    for needle, reason in _NETWORK_REASONS:
        if needle in text:
            return reason
    if "DB::Exception: " in text:  # the innermost exception says what went wrong (a nested one starts "Code: N")
        match = re.match(r"(.*?)(?: \(\w+\))?(?:\.(?=\s|$)|$)", text.rsplit("DB::Exception: ", 1)[1])
        if match:
            text = match.group(1)
    return text[:300] or type(exc).__name__
