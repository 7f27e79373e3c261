"""Wiring: settings → storage, source, the record path's steps, checkpoint → :class:`Agent`. Only the CLI calls it."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from agent.checkpoint import Checkpoint
from agent.config import Settings
from agent.decode import DecodeStep
from agent.errors import ConfigError
from agent.feedback.step import feedback_step
from agent.metrics import Health
from agent.redact import RedactStep, redactor_from_settings
from agent.review.sink import review_sinks
from agent.route import RouteStep
from agent.runner import Agent
from agent.score import Scorer, ScoreStep
from agent.sinks.base import BatchingSink
from agent.sinks.clickhouse import DeadLetterTableSink, RecordSink
from agent.sinks.kafka import DeadLetterTopicSink
from agent.source import KafkaSource, kafka_client_config, unreachable
from agent.step import Step, held_offsets, sinks_of
from agent.storage.client import Client, mask_dsn
from agent.storage.database import check_score_columns, open_storage
from agent.storage.runs import RunLog
from agent.store import StoreStep

if TYPE_CHECKING:
    from fastapi import APIRouter

    from agent.drift import DriftStep
    from agent.judge import JudgeStep
    from agent.otel.receiver import OtlpReceiver
    from agent.otel.step import TraceStep
    from agent.shedding import Shedder
    from agent.sinks.embeddings import EmbeddingSink
    from agent.web import WebServer
    from evaluators.detector_quality import QualityGauges

log = structlog.get_logger(__name__)


@dataclass
class Running:
    """An agent and what it holds open."""

    agent: Agent
    client: Client
    scorer: Scorer
    """The score step's scorer (the benchmark swaps its encoder)."""
    health: Health = field(default_factory=Health)
    """What ``/readyz`` reports."""
    web: WebServer | None = None
    """The ``/metrics`` + probes server, when ``metrics.port`` is not 0."""
    receiver: OtlpReceiver | None = None
    """The OTLP/HTTP receiver, when ``otlp.listen`` is set."""
    receiver_web: WebServer | None = None
    """The receiver's own server, when ``otlp.listen`` is not the ``metrics`` address."""
    quality: QualityGauges | None = None
    """Refreshes the detector quality gauges on ``/metrics`` from the review labels."""

    def close(self) -> None:
        """Stop the gauges' refresher and the web servers, close the receiver's producer and storage."""
        if self.quality is not None:
            self.quality.stop()
        for server in (self.receiver_web, self.web):
            if server is not None:
                server.stop()
        if self.receiver is not None:
            self.receiver.close()
        self.client.close()


def start_web(settings: Settings, health: Health, routers: Sequence[APIRouter] = ()) -> WebServer | None:
    """Serve ``/metrics``, ``/healthz``, ``/readyz`` and ``routers`` in the background; None when disabled."""
    if settings.metrics.port == 0:
        return None
    from agent.web import WebServer, build_app

    server = WebServer(build_app(health, routers), settings.metrics.host, settings.metrics.port)
    server.start()
    return server


def listen_address(listen: str) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) → (host, port)."""
    host, _, port = listen.rpartition(":")
    return host.removeprefix("[").removesuffix("]"), int(port)


def otlp_receiver(settings: Settings) -> OtlpReceiver | None:
    """The OTLP/HTTP receiver, its producer connected (None when ``otlp.listen`` is unset)."""
    if settings.otlp.listen is None:
        return None
    from agent.otel.receiver import OtlpReceiver

    receiver = OtlpReceiver(settings.otlp, settings.kafka)
    receiver.connect()
    return receiver


def shares_metrics_port(settings: Settings) -> bool:
    """Whether ``otlp.listen`` is the ``metrics`` address: the receiver is then served by that server."""
    m = settings.metrics
    return settings.otlp.listen is not None and m.port != 0 and listen_address(settings.otlp.listen) == (m.host, m.port)


def serve_receiver(receiver: OtlpReceiver, listen: str, health: Health | None = None) -> WebServer:
    """Serve ``POST /v1/traces`` on ``listen`` in the background; with ``health``, the probes and /metrics too."""
    from fastapi import FastAPI

    from agent.otel.receiver import TRACES_PATH
    from agent.web import WebServer, build_app

    if health is not None:
        app = build_app(health, [receiver.router])
    else:
        app = FastAPI(title="lookout OTLP receiver", docs_url=None, redoc_url=None, openapi_url=None)
        app.include_router(receiver.router)
    host, port = listen_address(listen)
    fix = "set LOOKOUT_OTLP__LISTEN (or `lookout receive --listen`) to a free HOST:PORT"
    server = WebServer(app, host, port, path=TRACES_PATH, fix=fix)
    server.start()
    return server


def drift_step(
    settings: Settings,
    client: Client,
    scorer: Scorer,
    lost_partitions: Callable[[], Collection[tuple[str, int]]] | None = None,
) -> DriftStep | None:
    """The drift step the settings ask for (None when ``drift.enabled`` is false).

    With ``drift.restore``, streams are rebuilt from storage when first seen, and again when seen after
    ``lost_partitions`` (the source's) reported one of their partitions gone.
    """
    d = settings.drift
    if not d.enabled:
        return None
    from agent.drift import DriftMonitor, DriftSink, DriftStep, load_pinned
    from agent.drift_state import ReferenceSink, StateReader

    pinned = {}
    if d.reference_file is not None:
        if scorer.encoder is None:
            raise ConfigError("drift.reference_file needs the encoder")
        pinned = load_pinned(d.reference_file, d.fields, scorer.encoder)
    db = settings.clickhouse.database
    encoder = scorer.encoder.name if scorer.encoder is not None else None
    reader = StateReader(client, db, d, encoder) if d.restore else None
    monitor = DriftMonitor(
        d,
        available=[det.name for det in scorer.detectors],
        pinned=pinned,
        reader=reader,
        redelivered=settings.batch.max_records,
    )
    references = ReferenceSink(client, db, d.reference_size, encoder) if d.restore else None
    return DriftStep(monitor, DriftSink(client, db), references, lost_partitions if d.restore else None)


def trace_step(settings: Settings) -> TraceStep | None:
    """The trace step (OTLP spans → records), unless ``kafka.format`` says the topic holds v1 records only."""
    if settings.kafka.format == "record":
        return None
    from agent.otel.step import TraceStep

    return TraceStep(settings.otel, otlp_max_bytes(settings))


def otlp_max_bytes(settings: Settings) -> int:
    """Size limit of one consumed OTLP export: it holds many spans, so as large as the receiver accepts."""
    return max(settings.limits.max_record_bytes, settings.otlp.max_body_bytes)


def embedding_sink(settings: Settings, client: Client, scorer: Scorer) -> EmbeddingSink | None:
    """The ``record_embeddings`` sink (None when ``embeddings.store`` is false or there is no encoder)."""
    e = settings.embeddings
    if not e.store or not e.fields or scorer.encoder is None:
        return None
    from agent.sinks.embeddings import EmbeddingSink

    return EmbeddingSink(client, settings.clickhouse.database, scorer.encoder.name, e.fields)


def shedder(settings: Settings, scorer: Scorer, lag: Callable[[], int | None]) -> Shedder | None:
    """The load-shedding step (None when ``shedding.enabled`` is false)."""
    if not settings.shedding.enabled:
        return None
    from agent.shedding import Shedder

    names = [d.name for d in scorer.detectors]
    return Shedder(settings.shedding, names, settings.drift.enabled, lag)


def judge_step(settings: Settings) -> JudgeStep | None:
    """The LLM judge step (None when ``judge.enabled`` is false)."""
    if not settings.judge.enabled:
        return None
    from agent.judge import JUDGE, JudgeStep, ragas_judge

    try:
        judge, version = ragas_judge(settings.judge)
    except ImportError as exc:
        raise ConfigError(f"judge.enabled needs the eval extra (pip install 'llm-lookout[eval]'): {exc}") from None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return JudgeStep(settings.judge, judge, settings.detectors.thresholds.get(JUDGE, 0.5), version)


def quality_gauges(settings: Settings, client: Client, web: WebServer | None) -> QualityGauges | None:
    """The detector quality gauges' refresher, started (None without ``/metrics`` or with ``quality_refresh_s`` 0)."""
    interval = settings.detectors.quality_refresh_s
    if web is None or interval <= 0:
        return None
    from evaluators.detector_quality import QualityGauges

    db = settings.clickhouse.database
    return QualityGauges(client, db, settings.detectors.enabled, interval).start()


def optional(*steps: Step | None) -> list[Step]:
    """The steps that are enabled (not None), in order."""
    return [s for s in steps if s is not None]


def build_agent(settings: Settings, routers: Sequence[APIRouter] = ()) -> Running:
    """Everything ``lookout run`` needs, opened and checked; models loaded; ``routers`` served with /metrics."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    client = open_storage(settings)
    scorer = Scorer.from_settings(settings)
    from agent.drift import stream_signals

    judge = judge_step(settings)
    names = (*(d.name for d in scorer.detectors), *stream_signals(settings.drift))  # novelty etc. come from drift
    names = (*names, "hallucination_judge") if judge is not None else names
    check_score_columns(client, settings.clickhouse.database, names)
    k = settings.kafka
    try:  # reach Kafka before the slow model load, so a wrong address fails fast
        producer = KafkaProducer(acks="all", linger_ms=5, **kafka_client_config(k))
    except KafkaError as exc:
        raise unreachable(k, exc) from None
    health = Health()
    health.storage_ok()  # connected and migrated above: lookout_storage_up starts at 1
    receiver = otlp_receiver(settings)
    shared = shares_metrics_port(settings)
    if receiver is not None and shared:
        routers = [*routers, receiver.router]
    if settings.review.serve_ui:  # one process holds an embedded ClickHouse directory: serve the UI here
        from agent.review.app import agent_router

        routers = [*routers, agent_router(settings, client)]
    web = start_web(settings, health, routers)  # before the model load: /healthz answers while it runs
    listen = settings.otlp.listen
    receiver_web = serve_receiver(receiver, listen) if receiver is not None and listen and not shared else None
    scorer.warm_up()
    health.warmed_up = True
    feedback = feedback_step(settings, client, producer)
    source = KafkaSource(k, max_records=settings.batch.max_records, extra_topics=[feedback.topic] if feedback else [])
    health.assigned = lambda: source.last_assigned_at() is not None
    db = settings.clickhouse.database
    redactor = redactor_from_settings(settings.redact)
    shed = shedder(settings, scorer, lambda: sum(source.lag().values()))
    dead_letter_sinks = [
        DeadLetterTopicSink(producer, k.dead_letter_topic),
        DeadLetterTableSink(client, db, k.dead_letter_topic),
    ]
    route_sinks: list[BatchingSink[Any]] = [*review_sinks(settings, client, producer)]
    if feedback is not None:
        route_sinks.append(feedback.sink)
    steps = optional(
        feedback,
        DecodeStep(settings.limits.max_record_bytes, k.format, otlp_max_bytes(settings)),
        trace_step(settings),
        RedactStep(redactor) if redactor is not None else None,
        shed,
        ScoreStep(scorer, shed.observe_inference if shed is not None else None),
        drift_step(settings, client, scorer, source.lost_partitions),
        judge,
        StoreStep(
            RecordSink(client, db, names, scorer.thresholds_version),
            dead_letter_sinks,
            redactor,
            embedding_sink(settings, client, scorer),
        ),
        RouteStep(route_sinks),
    )
    checkpoint = Checkpoint(
        source,
        sinks_of(steps),
        write_retries=settings.clickhouse.write_retries,
        retry_backoff_max_s=settings.clickhouse.retry_backoff_max_s,
        health=health,
        sleep=source.hold,  # backoff while storage is down: partitions paused, group membership kept
        held=lambda: held_offsets(steps),  # records the trace step holds keep their offsets back
    )
    agent = Agent(
        source,
        steps,
        checkpoint,
        max_records=settings.batch.max_records,
        max_wait_ms=settings.batch.max_wait_ms,
        run_log=RunLog(client, db, k.topic, k.group_id),
        health=health,
        storage_probe=lambda: client.command("SELECT 1"),
    )
    log.info(
        "agent ready",
        topic=k.topic, group=k.group_id, dlq=k.dead_letter_topic, clickhouse=mask_dsn(settings.clickhouse.dsn),
        detectors=list(names), feedback=feedback.topic if feedback else None,
        thresholds_version=scorer.thresholds_version or None,
    )  # fmt: skip
    return Running(
        agent=agent, client=client, scorer=scorer, health=health, web=web, receiver=receiver, receiver_web=receiver_web,
        quality=quality_gauges(settings, client, web),
    )  # fmt: skip
