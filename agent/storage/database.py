"""Opening storage: connect, then migrate, so every command finds the schema current."""

from __future__ import annotations

import structlog

from agent.config import Settings
from agent.errors import StorageError
from agent.storage import migrations
from agent.storage.client import Client, connect

log = structlog.get_logger(__name__)


def open_storage(settings: Settings) -> Client:
    """Connect and migrate (idempotent); the schema is always current when the agent starts."""
    ch = settings.clickhouse
    client = connect(ch)
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
