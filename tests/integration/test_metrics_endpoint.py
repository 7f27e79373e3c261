"""/metrics, /healthz and /readyz scraped over HTTP from a running ``lookout run`` (real broker, real chDB)."""

from __future__ import annotations

import json
import signal
import time

from conftest import MALFORMED, AgentEnv, http_get, record
from prometheus_client.parser import text_string_to_metric_families

from agent import metrics
from agent.broker import free_port


def _samples(text: str, topic: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("topic", topic) == topic:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


class TestMetricsEndpoint:
    """The running agent exposes counters equal to what was produced, and answers the probes."""

    def test_scraped_counters_match_produced_records(self, agent_env: AgentEnv) -> None:
        """N valid + M malformed records: consumed N+M, scored N, dead-lettered M; lag per partition; ready."""
        n = 30
        topic = agent_env.topic.name
        agent_env.topic.produce([json.dumps(record(i)).encode() for i in range(n)] + list(MALFORMED))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = agent_env.start("run", LOOKOUT_METRICS__PORT=str(port))
        try:
            deadline = time.monotonic() + 150
            scraped: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
            consumed_key = (metrics.RECORDS_CONSUMED, (("topic", topic),))
            while time.monotonic() < deadline:
                status, body = http_get(f"{base}/metrics")
                if status == 200:
                    scraped = _samples(body, topic)
                    if scraped.get(consumed_key) == n + len(MALFORMED):
                        break
                assert proc.poll() is None, proc.communicate()[1][-2000:]
                time.sleep(0.5)
            assert scraped.get(consumed_key) == n + len(MALFORMED)
            assert scraped[(metrics.RECORDS_SCORED, (("topic", topic),))] == n
            assert scraped[(metrics.RECORDS_DEAD_LETTERED, (("topic", topic),))] == len(MALFORMED)
            assert scraped[(metrics.BATCH_DURATION + "_count", (("topic", topic),))] >= 1
            assert scraped[(metrics.SINK_WRITE_DURATION + "_count", (("sink", "clickhouse_records"),))] >= 1
            assert scraped[(metrics.DETECTOR_INFERENCE + "_count", (("detector", "toxicity"),))] >= 1
            assert http_get(f"{base}/healthz")[0] == 200
            deadline = time.monotonic() + 15  # lag is refreshed at most once a second, after a poll
            lag: dict[str, float] = {}
            while time.monotonic() < deadline and len(lag) < agent_env.topic.partitions:
                lag = {
                    dict(labels)["partition"]: v
                    for (name, labels), v in _samples(http_get(f"{base}/metrics")[1], topic).items()
                    if name == metrics.CONSUMER_LAG
                }
                time.sleep(0.5)
            assert lag == {str(p): 0.0 for p in range(agent_env.topic.partitions)}
            status, body = http_get(f"{base}/readyz")
            assert (status, json.loads(body)["status"]) == (200, "ready")
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
