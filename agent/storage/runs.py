"""The ``agent_runs`` table: each run's counters, replaced as the run goes."""

from __future__ import annotations

import socket
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from agent.storage.client import Client


@dataclass
class RunCounters:
    """What one agent run has done so far (mutable: owned by the agent loop)."""

    consumed: int = 0
    """Messages read from Kafka."""
    stored: int = 0
    """Records written to ClickHouse (redeliveries included; reads deduplicate)."""
    dead_lettered: int = 0
    """Messages sent to the DLQ."""
    unpriced: int = 0
    """Records with usage whose model has no price."""
    batches: int = 0
    """Batches committed."""
    commit_failures: int = 0
    """Commits refused because the group had moved on (records re-delivered and deduplicated)."""
    write_retries: int = 0
    """Failed sink writes that were retried."""
    flagged: Counter[str] = field(default_factory=Counter)
    """Records flagged, per detector."""


class RunLog:
    """Writes one ``agent_runs`` row per update for this run (ReplacingMergeTree keeps the latest)."""

    def __init__(self, client: Client, database: str, topic: str, group_id: str) -> None:
        self.client = client
        self.database = database
        self.topic = topic
        self.group_id = group_id
        self.run_id = uuid.uuid4().hex
        self.started_at = datetime.now(UTC)
        self._host = socket.gethostname()

    def update(self, counters: RunCounters, status: str) -> None:
        """Record the counters now."""
        row = [
            self.run_id, self._host, self.topic, self.group_id, self.started_at, datetime.now(UTC), status,
            counters.consumed, counters.stored, counters.dead_lettered, counters.unpriced, counters.batches,
            counters.commit_failures, counters.write_retries, dict(counters.flagged),
        ]  # fmt: skip
        columns = [
            "run_id", "host", "topic", "group_id", "started_at", "updated_at", "status", "consumed", "stored",
            "dead_lettered", "unpriced", "batches", "commit_failures", "write_retries", "flagged",
        ]  # fmt: skip
        self.client.insert(f"{self.database}.agent_runs", [row], column_names=columns)
