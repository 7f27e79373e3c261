"""Spans of real instrumented OpenAI apps, as the Collector's Kafka exporter writes them, through the agent into chDB.

``tests/data/otel`` (built by ``scripts/build_otel_fixtures.py``) holds, per app run, the one
``ExportTraceServiceRequest`` an OpenLLMetry- or OpenInference-instrumented app exported, in the Collector's two
Kafka encodings (``otlp_json``, ``otlp_proto``), and ``fixtures.json``: what each app sent and the ids it made.
Each encoding goes to a topic of the real tansu broker; ``lookout run`` (``kafka.format: auto``) must store one
record per LLM span, carrying what the app sent, joined with its trace's retrieved documents. Bad payloads become
dead letters with their reason.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import AgentEnv, read_topic

FIXTURES = Path(__file__).resolve().parent.parent / "data" / "otel"
MANIFEST: dict[str, dict[str, Any]] = json.loads((FIXTURES / "fixtures.json").read_text())
COLUMNS = (
    "span_id", "id", "ts", "prompt", "response", "history", "context", "model", "prompt_tokens", "completion_tokens",
    "latency_ms", "trace_id", "parent_span_id", "session_id", "user_id", "tenant", "route", "error",
)  # fmt: skip
IDLE = "4"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BROKEN_TRACE = "cd" * 16
TRUNCATED = '[{"role": "user", "parts": [{"type": "text", "content": "What'
"""A ``gen_ai.input.messages`` value cut short: not JSON."""
"""The trace id of the export whose first LLM span is malformed (its other spans are fine)."""


def _hashed(value: str) -> str:
    """``redact.identifiers: hash`` without a key."""
    return "h:" + hashlib.sha256(value.encode()).hexdigest()[:16]


def _rows(env: AgentEnv) -> dict[str, dict[str, Any]]:
    """Stored records by span id."""
    found = env.query(f"SELECT {', '.join(COLUMNS)} FROM lookout.v_records")  # noqa: S608  # constant columns
    rows = {row[0]: dict(zip(COLUMNS, row, strict=True)) for row in found}
    for row in rows.values():  # history turns as (role, content)
        row["history"] = [(t["role"], t["content"]) if isinstance(t, dict) else tuple(t) for t in row["history"]]
    return rows


def _spans(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [span for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for span in ss["spans"]]


def _bad_payloads() -> list[bytes]:
    """Garbage that reads as protobuf, an export with a malformed span id, one with a malformed LLM span.

    The last one's first LLM span's messages are not JSON; it has a trace id of its own, so its good second LLM
    span becomes a record of its own.
    """
    bad_id = json.loads((FIXTURES / "openinference_rag.otlp_json").read_bytes())
    llm = next(s for s in _spans(bad_id) if s["name"] == "ChatCompletion")
    llm["spanId"] = "not-a-span-id"
    broken = json.loads((FIXTURES / "openllmetry_rag.otlp_json").read_bytes())
    for span in _spans(broken):
        span["traceId"] = BROKEN_TRACE
    first = next(s for s in _spans(broken) if s["spanId"] == MANIFEST["openllmetry_rag"]["llm_spans"][0]["span_id"])
    messages = next(a for a in first["attributes"] if a["key"] == "gen_ai.input.messages")
    messages["value"] = {"stringValue": TRUNCATED}
    return [b"\n\x05\xff\xfe\x00garbage", json.dumps(bad_id).encode(), json.dumps(broken).encode()]


def _check(rows: dict[str, dict[str, Any]], identifiers: str) -> None:
    """Every LLM span of every fixture is one record carrying what its app sent."""
    for name, fx in MANIFEST.items():
        trace_ids = set()
        for n, llm in enumerate(fx["llm_spans"]):
            row = rows[llm["span_id"]]
            where = f"{name} LLM span {n}"
            assert row["prompt"] == llm["prompt"], where
            assert row["response"] == llm["response"], where
            assert (row["ts"].replace(tzinfo=UTC) - EPOCH) // timedelta(milliseconds=1) == llm["start_ns"] // 10**6
            assert row["latency_ms"] == pytest.approx(llm["latency_ms"], abs=0.01), where
            assert row["latency_ms"] >= 120, where  # the stand-in's delay
            assert row["context"] == fx["documents"], where  # joined from the trace's retriever span
            assert row["parent_span_id"] == fx["root_span_id"], where
            assert (row["tenant"], row["route"]) == ("acme", fx["service"]), where
            assert row["history"][0][0] == "system", where
            assert row["history"][0][1].startswith("You answer from the documents"), where
            if fx["fail"]:
                assert str(fx["fail"]) in row["error"] and "Error code" in row["error"], where
                assert (row["response"], row["prompt_tokens"], row["completion_tokens"]) == ("", None, None), where
                assert row["model"] == fx["model"], where  # the requested model: no response came
            else:
                assert row["error"] == "", where
                tokens = (fx["prompt_tokens"], fx["completion_tokens"])
                assert (row["prompt_tokens"], row["completion_tokens"]) == tokens, where
                assert row["model"] == fx["response_model"], where
            if identifiers == "keep":
                assert (row["trace_id"], row["session_id"]) == (fx["trace_id"], fx["session_id"]), where
                assert row["user_id"] == fx["user_id"], where
            else:
                assert row["trace_id"] == _hashed(fx["trace_id"]), where
                assert row["user_id"] == _hashed(fx["user_id"]), where
                assert row["session_id"] == _hashed(fx["session_id"]), where
            trace_ids.add(row["trace_id"])
        assert len(trace_ids) == 1, name  # the rows of one trace share its (hashed) trace id
    followup = rows[MANIFEST["openllmetry_rag"]["llm_spans"][1]["span_id"]]
    assert [role for role, _ in followup["history"]] == ["system", "user", "assistant"]
    assert followup["history"][2][1] == MANIFEST["openllmetry_rag"]["llm_spans"][0]["response"]


class TestCollectorKafkaEncodings:
    """The Collector's otlp_json and otlp_proto messages of real instrumented apps become the records they describe."""

    @pytest.mark.parametrize(("encoding", "identifiers"), [("otlp_json", "keep"), ("otlp_proto", "hash")])
    def test_fixtures_become_records(self, agent_env: AgentEnv, encoding: str, identifiers: str) -> None:
        """One record per LLM span: prompt, response, model, tokens, latency, ids, session, error, RAG context."""
        agent_env.topic.produce([(FIXTURES / f"{name}.{encoding}").read_bytes() for name in MANIFEST])
        done = agent_env.run(
            "run", "--exit-when-idle", IDLE, LOOKOUT_OTEL__TRACE_WAIT_S="1", LOOKOUT_REDACT__IDENTIFIERS=identifiers
        )
        assert done.returncode == 0, done.stderr[-3000:]
        rows = _rows(agent_env)
        assert len(rows) == sum(len(fx["llm_spans"]) for fx in MANIFEST.values())
        _check(rows, identifiers)

    def test_bad_payloads_are_dead_letters(self, agent_env: AgentEnv) -> None:
        """Garbage, a bad span id, a malformed LLM span: dead letters with their reason; the good span is stored."""
        agent_env.topic.produce(_bad_payloads())
        done = agent_env.run("run", "--exit-when-idle", IDLE, LOOKOUT_OTEL__TRACE_WAIT_S="1")
        assert done.returncode == 0, done.stderr[-3000:]
        letters = agent_env.topic.dead_letters(3)
        reasons = sorted(dict(m.headers)["lookout.reason"].decode() for m in letters)
        assert len(reasons) == 3, reasons
        assert any("protobuf" in r for r in reasons), reasons
        assert any("spanId" in r for r in reasons), reasons
        assert any("gen_ai.input.messages" in r and "JSON" in r for r in reasons), reasons
        rows = _rows(agent_env)
        good = MANIFEST["openllmetry_rag"]["llm_spans"][1]
        assert list(rows) == [good["span_id"]]
        assert rows[good["span_id"]]["prompt"] == good["prompt"]
        assert rows[good["span_id"]]["context"] == MANIFEST["openllmetry_rag"]["documents"]
        assert read_topic(agent_env.topic.broker, f"{agent_env.topic.name}.dlq", 4, timeout_s=2)[3:] == []
