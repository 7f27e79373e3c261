"""The agent's HTTP endpoint (/metrics, /healthz, /readyz, extra routers) and the metrics the loop records."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from conftest import http_get
from fastapi import APIRouter
from prometheus_client import REGISTRY

from agent import metrics
from agent.decode import DecodeStep
from agent.errors import LookoutError
from agent.metrics import Health
from agent.score import Scorer, ScoreStep
from agent.step import Step
from agent.store import StoreStep
from agent.testing import ListSink, ListSource, loop, messages
from agent.web import WebServer, build_app
from detectors.types import Batch, Score


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def health() -> Health:
    """A fresh readiness state."""
    return Health()


@pytest.fixture
def server(health: Health) -> Iterator[WebServer]:
    """The app with one extra router, served on a free port."""
    extra = APIRouter()

    @extra.get("/review/ping")
    def ping() -> dict[str, str]:
        return {"review": "ok"}

    web = WebServer(build_app(health, [extra]), "127.0.0.1", 0)
    web.start()
    yield web
    web.stop()


class TestWebServer:
    """Probes for Kubernetes, Prometheus text, and routers mounted in the same process."""

    def test_healthz_answers_while_not_ready(self, server: WebServer) -> None:
        """/healthz is 200 as soon as the process serves, even before models load."""
        assert http_get(f"http://127.0.0.1:{server.port}/healthz") == (200, '{"status":"ok"}')

    def test_readyz_reports_each_missing_condition(self, server: WebServer, health: Health) -> None:
        """Not ready (503) until warmed up, assigned and storage reachable; then 200 and the ready gauge is 1."""
        url = f"http://127.0.0.1:{server.port}/readyz"
        status, body = http_get(url)
        assert status == 503
        assert json.loads(body)["reasons"] == ["models still loading", "no partitions assigned yet"]
        health.warmed_up = True
        health.assigned = lambda: True
        health.storage_failed("connection refused")
        status, body = http_get(url)
        assert (status, json.loads(body)["reasons"]) == (503, ["storage unreachable: connection refused"])
        assert _value(metrics.READY) == 0
        health.storage_ok()
        assert http_get(url) == (200, '{"status":"ready","reasons":[]}')
        assert _value(metrics.READY) == 1

    def test_metrics_in_prometheus_text_format(self, server: WebServer) -> None:
        """/metrics serves the registry, including lookout's metric families."""
        status, body = http_get(f"http://127.0.0.1:{server.port}/metrics")
        assert status == 200
        assert "# TYPE lookout_records_consumed_total counter" in body
        assert "# TYPE lookout_batch_duration_seconds histogram" in body

    def test_extra_router_is_served(self, server: WebServer) -> None:
        """A router passed to build_app (e.g. the review UI) is served next to the probes."""
        assert http_get(f"http://127.0.0.1:{server.port}/review/ping") == (200, '{"review":"ok"}')

    def test_port_in_use_is_one_line(self, health: Health) -> None:
        """A taken port fails at start with a line naming the setting."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            with pytest.raises(LookoutError, match=rf"127.0.0.1:{port} .*LOOKOUT_METRICS__PORT"):
                WebServer(build_app(health), "127.0.0.1", port).start()


class _Flagger:
    """A detector that flags every response containing 'bad'."""

    name = "fake"
    version = "1"
    higher_is_worse = True
    default_threshold = 0.5
    needs: frozenset[str] = frozenset()

    def score(self, batch: Batch) -> list[Score]:
        return [Score(1.0 if "bad" in s.response else 0.0) for s in batch.items]


class TestAgentMetrics:
    """The loop counts consumed, scored, flagged and dead-lettered records and times batches and sinks."""

    def test_counters_follow_a_batch(self, health: Health) -> None:
        """3 valid (1 flagged) and 1 malformed message move each counter by exactly that much."""
        topic = "metrics-unit"
        before = {
            n: _value(n, topic=topic)
            for n in (metrics.RECORDS_CONSUMED, metrics.RECORDS_SCORED, metrics.RECORDS_DEAD_LETTERED)
        }
        flagged_before = _value(metrics.RECORDS_FLAGGED, topic=topic, detector="fake")
        batches_before = _value(metrics.BATCH_DURATION + "_count", topic=topic)
        writes_before = _value(metrics.SINK_WRITE_DURATION + "_count", sink="ListSink")
        rows = [b'{"ts": 1, "prompt": "p", "response": "%s"}' % w for w in (b"good", b"bad", b"fine")] + [b"nope"]
        scorer = Scorer([_Flagger()], None)  # type: ignore[list-item]  # a structural stand-in for a Detector
        steps: list[Step] = [DecodeStep(), ScoreStep(scorer), StoreStep(ListSink(), [ListSink()])]
        agent = loop(ListSource(messages(rows, topic=topic)), steps, max_wait_ms=1000, health=health)
        agent.run(exit_when_idle=0.05)
        assert _value(metrics.RECORDS_CONSUMED, topic=topic) - before[metrics.RECORDS_CONSUMED] == 4
        assert _value(metrics.RECORDS_SCORED, topic=topic) - before[metrics.RECORDS_SCORED] == 3
        assert _value(metrics.RECORDS_DEAD_LETTERED, topic=topic) - before[metrics.RECORDS_DEAD_LETTERED] == 1
        assert _value(metrics.RECORDS_FLAGGED, topic=topic, detector="fake") - flagged_before == 1
        assert _value(metrics.BATCH_DURATION + "_count", topic=topic) - batches_before == 1
        assert _value(metrics.SINK_WRITE_DURATION + "_count", sink="ListSink") - writes_before == 2
        assert _value(metrics.DETECTOR_INFERENCE + "_count", detector="fake") >= 1
        assert health.storage_error is None

    def test_failed_write_counts_and_marks_storage(self, health: Health) -> None:
        """A failing sink write increments the failure counter and makes storage unready until a write succeeds."""
        failures_before = _value(metrics.SINK_WRITE_FAILURES, sink="ListSink")
        seen: list[str | None] = []
        scorer = Scorer([_Flagger()], None)  # type: ignore[list-item]  # a structural stand-in for a Detector
        steps: list[Step] = [DecodeStep(), ScoreStep(scorer), StoreStep(ListSink(fail_next=1), [])]
        source = ListSource(messages([b'{"ts": 1, "prompt": "p", "response": "r"}']))
        agent = loop(source, steps, max_wait_ms=1000, health=health, sleep=lambda _: seen.append(health.storage_error))
        agent.run(exit_when_idle=0.05)
        assert _value(metrics.SINK_WRITE_FAILURES, sink="ListSink") - failures_before == 1
        assert seen and seen[0] is not None  # unready while retrying
        assert health.storage_error is None  # the retry succeeded

    def test_lag_gauges_replace_old_partitions(self) -> None:
        """set_lag publishes one gauge per partition and drops partitions no longer assigned."""
        metrics.set_lag({("t", 0): 5, ("t", 1): 7})
        metrics.set_lag({("t", 1): 2})
        assert _value(metrics.CONSUMER_LAG, topic="t", partition="1") == 2
        assert REGISTRY.get_sample_value(metrics.CONSUMER_LAG, {"topic": "t", "partition": "0"}) is None
