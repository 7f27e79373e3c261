"""Opening storage: connect, then migrate, so every command finds the schema current."""

from __future__ import annotations

import structlog

from agent.config import Settings
from agent.errors import StorageBusyError, StorageError
from agent.storage import migrations
from agent.storage.client import Client, chdb_path, connect
from agent.storage.owner import owner_client

log = structlog.get_logger(__name__)


def open_storage(settings: Settings, *, shared: bool = False) -> Client:
    """Connect and migrate (idempotent); the schema is always current when the agent starts.

    With ``shared``, an embedded store another process holds is used through that process (its control
    socket, :mod:`agent.storage.owner`): same queries, same results. Commands that read or add a little
    (stats, query, export, add-annotator, evaluate) pass it; the agent, the review server and the demo need
    the store to themselves.
    """
    ch = settings.clickhouse
    try:
        client = connect(ch)
    except StorageBusyError:
        path = chdb_path(ch.dsn)
        remote = owner_client(path) if shared and path is not None else None
        if remote is None:
            raise
        log.debug("store held by another process; going through it", socket=str(remote.path))
        return remote
    applied = migrations.migrate(client, ch.database, ch.raw_text_ttl_days, cluster=ch.cluster)
    for m in applied:
        log.info("migration applied", version=m.version, name=m.name)
    return client


def check_score_columns(client: Client, database: str, detector_names: tuple[str, ...]) -> None:
    """Every enabled detector must have its column; say what to do if not."""
    missing = [n for n in detector_names if n not in migrations.record_columns(client, database)]
    if missing:
        raise StorageError(
            f"detectors {missing} have no column in {database}.records; upgrade lookout and run `lookout migrate`"
        )
