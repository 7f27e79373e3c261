"""Issue 21's "done when": instrumented OpenAI apps → OTLP/HTTP → ``lookout run``'s receiver → tansu → agent → chDB.

Two real apps (``tests/otel_apps.py``), one instrumented by OpenLLMetry and one by OpenInference, each call the
real ``openai`` client against a stand-in OpenAI API and export their spans with the real OTLP/HTTP exporter to
the receiver inside one ``lookout run`` (``otlp.listen``, with a bearer token). The OpenLLMetry app exports every
span on its own as it ends (its LLM spans wait for the rest of their trace); the OpenInference app exports one
gzipped batch. The stored records must carry what the apps sent.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from conftest import AgentEnv, http_get, wait_for_port
from prometheus_client.parser import text_string_to_metric_families

from agent import metrics
from agent.broker import free_port

APPS = Path(__file__).resolve().parent.parent / "otel_apps.py"
TOKEN = "e2e-otlp-token"  # noqa: S105  # the test's own receiver token
DELAY_MS = 150
COLUMNS = (
    "span_id", "prompt", "response", "history", "context", "model", "prompt_tokens", "completion_tokens",
    "latency_ms", "trace_id", "parent_span_id", "session_id", "user_id", "tenant", "route", "error",
)  # fmt: skip
APPS_RUN: dict[str, dict[str, Any]] = {
    "openllmetry": {
        "args": ["--simple", "--answer", "Paris is the capital of France.", "--answer", "About 2.1 million."],
        "call": {
            "question": "What is the capital of France?",
            "followup": "How many people live there?",
            "documents": ["Paris is the capital and largest city of France.", "France is in Western Europe."],
            "session_id": "sess-e2e-llm",
            "user_id": "user-e2e-llm",
        },
        "responses": ["Paris is the capital of France.", "About 2.1 million."],
        "service": "support-bot",
        "spans": 4,
    },
    "openinference": {
        "args": ["--gzip", "--answer", "The Eiffel Tower is 330 metres tall."],
        "call": {
            "question": "How tall is the Eiffel Tower?",
            "documents": ["The Eiffel Tower is 330 metres tall.", "It was completed in 1889."],
            "session_id": "sess-e2e-oi",
            "user_id": "user-e2e-oi",
        },
        "responses": ["The Eiffel Tower is 330 metres tall."],
        "service": "docs-rag",
        "spans": 3,
    },
}
"""Library → the app's options, its request, and what it must produce."""
RECORDS = sum(len(app["responses"]) for app in APPS_RUN.values())


def _app(library: str, otlp_port: int) -> dict[str, Any]:
    """Run one instrumented app exporting to the receiver; the ids it made."""
    spec = APPS_RUN[library]
    argv = [sys.executable, str(APPS), library, "--endpoint", f"http://127.0.0.1:{otlp_port}/v1/traces"]
    argv += ["--token", TOKEN, "--delay-ms", str(DELAY_MS), "--call", json.dumps(spec["call"]), *spec["args"]]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    run: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return run


def _scrape(port: int, topic: str) -> dict[str, float]:
    """Metric samples (name and labels other than ``topic`` → value) of the agent's ``/metrics``."""
    status, body = http_get(f"http://127.0.0.1:{port}/metrics")
    if status != 200:
        return {}
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            if s.labels.pop("topic", topic) == topic:
                out[s.name + "".join(f",{k}={v}" for k, v in sorted(s.labels.items()))] = s.value
    return out


def _rows(env: AgentEnv) -> dict[str, dict[str, Any]]:
    """Stored records by span id."""
    found = env.query(f"SELECT {', '.join(COLUMNS)} FROM lookout.v_records")  # noqa: S608  # constant columns
    rows = {row[0]: dict(zip(COLUMNS, row, strict=True)) for row in found}
    for row in rows.values():  # history turns as (role, content)
        row["history"] = [(t["role"], t["content"]) if isinstance(t, dict) else tuple(t) for t in row["history"]]
    return rows


class TestOtlpEndToEnd:
    """Spans of real instrumented apps, exported over OTLP/HTTP, are stored as the LLM calls they describe."""

    def test_instrumented_apps_reach_storage(self, agent_env: AgentEnv) -> None:
        """OpenLLMetry and OpenInference apps → receiver → Kafka → agent → chDB: every field the apps sent."""
        otlp_port, metrics_port = free_port(), free_port()
        topic = agent_env.topic.name
        proc = agent_env.start(
            "run",
            LOOKOUT_OTLP__LISTEN=f"127.0.0.1:{otlp_port}",
            LOOKOUT_OTLP__TOKEN=TOKEN,
            LOOKOUT_METRICS__PORT=str(metrics_port),
            LOOKOUT_OTEL__TRACE_WAIT_S="3",
            LOOKOUT_REDACT__IDENTIFIERS="keep",
        )
        try:
            wait_for_port(otlp_port, timeout=90)
            with ThreadPoolExecutor(max_workers=2) as pool:
                runs = dict(zip(APPS_RUN, pool.map(lambda lib: _app(lib, otlp_port), APPS_RUN), strict=True))
            scored = metrics.RECORDS_SCORED
            deadline, scraped = time.monotonic() + 120, dict[str, float]()
            while time.monotonic() < deadline and scraped.get(scored, 0) < RECORDS:
                assert proc.poll() is None, proc.communicate()[1][-3000:]
                time.sleep(0.5)
                scraped = _scrape(metrics_port, topic)
            assert scraped.get(scored) == RECORDS, scraped
            assert scraped[metrics.OTLP_SPANS_RECEIVED] == sum(app["spans"] for app in APPS_RUN.values())
            assert scraped[f"{metrics.OTLP_REQUESTS},code=200"] >= 1 + APPS_RUN["openllmetry"]["spans"]
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-3000:]
        rows = _rows(agent_env)
        assert len(rows) == RECORDS
        for library, spec in APPS_RUN.items():
            run, call = runs[library], spec["call"]
            assert len(run["llm_span_ids"]) == len(spec["responses"]), run
            for n, span_id in enumerate(run["llm_span_ids"]):
                row, where = rows[span_id], f"{library} LLM span {n}"
                assert row["prompt"] == (call["question"], call.get("followup"))[n], where
                assert row["response"] == spec["responses"][n], where
                assert row["model"] == "gpt-4o-2024-08-06", where
                assert (row["prompt_tokens"], row["completion_tokens"]) == (42, 7), where
                assert DELAY_MS <= row["latency_ms"] < 10_000, where
                assert (row["trace_id"], row["parent_span_id"]) == (run["trace_id"], run["root_span_id"]), where
                assert (row["session_id"], row["user_id"]) == (call["session_id"], call["user_id"]), where
                assert (row["tenant"], row["route"], row["error"]) == ("acme", spec["service"], ""), where
                assert row["context"] == call["documents"], where  # from the trace's retriever span
                assert row["history"][0][0] == "system", where
        followup = rows[runs["openllmetry"]["llm_span_ids"][1]]
        assert followup["history"][1:] == [
            ("user", APPS_RUN["openllmetry"]["call"]["question"]),
            ("assistant", "Paris is the capital of France."),
        ]
