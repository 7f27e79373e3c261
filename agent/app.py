"""Wiring: settings → storage, scorer, source, sinks → :class:`Agent`."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from agent.config import Settings
from agent.errors import StorageError
from agent.pipeline import Scorer
from agent.runner import Agent
from agent.sinks.clickhouse import DeadLetterTableSink, RecordSink
from agent.sinks.kafka import DeadLetterTopicSink
from agent.source import KafkaSource, kafka_client_config, unreachable
from agent.storage import migrations
from agent.storage.client import Client, connect, mask_dsn
from agent.storage.runs import RunLog

log = structlog.get_logger(__name__)


def open_storage(settings: Settings) -> Client:
    """Connect and migrate (idempotent); the schema is always current when the agent starts."""
    ch = settings.clickhouse
    client = connect(ch)
    applied = migrations.migrate(client, ch.database, ch.raw_text_ttl_days)
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


@dataclass
class Running:
    """An agent and what it holds open."""

    agent: Agent
    client: Client


def build_agent(settings: Settings) -> Running:
    """Everything ``lookout run`` needs, opened and checked; models loaded."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    client = open_storage(settings)
    scorer = Scorer.from_settings(settings)
    names = tuple(d.name for d in scorer.detectors)
    check_score_columns(client, settings.clickhouse.database, names)
    k = settings.kafka
    try:  # reach Kafka before the slow model load, so a wrong address fails fast
        producer = KafkaProducer(acks="all", linger_ms=5, **kafka_client_config(k))
    except KafkaError as exc:
        raise unreachable(k, exc) from None
    scorer.warm_up()
    source = KafkaSource(k, max_records=settings.batch.max_records)
    db = settings.clickhouse.database
    agent = Agent(
        source=source,
        scorer=scorer,
        record_sink=RecordSink(client, db, names),
        dead_letter_sinks=[
            DeadLetterTopicSink(producer, k.dead_letter_topic),
            DeadLetterTableSink(client, db, k.dead_letter_topic),
        ],
        max_records=settings.batch.max_records,
        max_wait_ms=settings.batch.max_wait_ms,
        max_record_bytes=settings.limits.max_record_bytes,
        write_retries=settings.clickhouse.write_retries,
        retry_backoff_max_s=settings.clickhouse.retry_backoff_max_s,
        run_log=RunLog(client, db, k.topic, k.group_id),
        crash_after_write_batches=settings.fault.crash_after_write_batches,
    )
    log.info(
        "agent ready",
        topic=k.topic, group=k.group_id, dlq=k.dead_letter_topic, clickhouse=mask_dsn(settings.clickhouse.dsn),
        detectors=list(names),
    )  # fmt: skip
    return Running(agent=agent, client=client)
