"""The OTLP/HTTP receiver against the real tansu broker over real HTTP: per-trace messages, errors, acknowledgements."""

from __future__ import annotations

import gzip
import json
import re
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from conftest import AgentEnv, Topic, http_get, read_topic
from google.rpc.status_pb2 import Status  # type: ignore[import-untyped]  # googleapis-common-protos: no stubs
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from prometheus_client import REGISTRY

from agent.app import serve_receiver
from agent.broker import Broker
from agent.config import KafkaSettings
from agent.config_otel import OtlpSettings
from agent.otel.receiver import OtlpReceiver

TOKEN = "s3cret-token"  # noqa: S105  # the test receiver's token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROTO = {**AUTH, "Content-Type": "application/x-protobuf"}
JSON_TYPE = {**AUTH, "Content-Type": "application/json; charset=utf-8"}
LIMIT = 65_536
TRACE_A = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
TRACE_B = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")


def attr(key: str, value: str) -> KeyValue:
    """A string attribute."""
    return KeyValue(key=key, value=AnyValue(string_value=value))


def span(trace_id: bytes, n: int, name: str) -> Span:
    """A span of ``trace_id`` with span id ``n``."""
    return Span(
        trace_id=trace_id, span_id=n.to_bytes(8, "big"), name=name, start_time_unix_nano=1, end_time_unix_nano=2
    )


def export(*spans: Span, service: str = "rag-app") -> ExportTraceServiceRequest:
    """One resource, one scope, these spans."""
    scope = ScopeSpans(scope=InstrumentationScope(name="test"), spans=list(spans))
    resource = ResourceSpans(resource=Resource(attributes=[attr("service.name", service)]), scope_spans=[scope])
    return ExportTraceServiceRequest(resource_spans=[resource])


def json_export(*spans: tuple[str, str]) -> dict[str, Any]:
    """OTLP/JSON with hex ids: (trace id, span name) per span."""
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "rag-app"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "test"},
                        "spans": [
                            {"traceId": tid, "spanId": f"{n + 1:016x}", "name": name}
                            for n, (tid, name) in enumerate(spans)
                        ],
                    }
                ],
            }
        ]
    }


def end_offsets(broker: Broker, name: str) -> int:
    """Messages in topic ``name`` (all partitions)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    try:
        partitions = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or ()]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def counter(code: str) -> float:
    """``lookout_otlp_requests_total{code}`` now."""
    return REGISTRY.get_sample_value("lookout_otlp_requests_total", {"code": code}) or 0.0


Serve = Callable[..., str]


@pytest.fixture
def serve(topic: Topic) -> Iterator[Serve]:
    """Start a receiver (settings overridable) on a free port, writing to ``topic``; returns its /v1/traces URL."""
    started: list[tuple[Any, OtlpReceiver]] = []

    def start(bootstrap: str | None = None, **otlp: Any) -> str:
        kafka = KafkaSettings(bootstrap_servers=bootstrap or topic.broker.bootstrap, topic=topic.name)
        receiver = OtlpReceiver(OtlpSettings(**{"token": TOKEN, "max_body_bytes": LIMIT, **otlp}), kafka)
        server = serve_receiver(receiver, "127.0.0.1:0")
        started.append((server, receiver))
        return f"http://127.0.0.1:{server.port}/v1/traces"

    yield start
    for server, receiver in started:
        server.stop()
        receiver.close()


def post(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    """POST with a 30 s timeout."""
    return httpx.post(url, content=body, headers=headers, timeout=30)


class TestSplitPerTrace:
    """One Kafka message per trace, keyed by the hex trace id, in the request's encoding."""

    def test_protobuf_two_traces_become_two_keyed_messages(self, serve: Serve, topic: Topic) -> None:
        """Three spans of two traces: two messages, each with only its trace's spans, resource and scope kept."""
        url = serve()
        body = export(
            span(TRACE_A, 1, "retrieve"), span(TRACE_B, 2, "chat"), span(TRACE_A, 3, "chat")
        ).SerializeToString()
        before = REGISTRY.get_sample_value("lookout_otlp_spans_received_total") or 0.0
        resp = post(url, body, PROTO)
        assert resp.status_code == 200, resp.content
        assert resp.headers["content-type"] == "application/x-protobuf"
        assert ExportTraceServiceResponse.FromString(resp.content) == ExportTraceServiceResponse()
        assert REGISTRY.get_sample_value("lookout_otlp_spans_received_total") == before + 3
        messages = read_topic(topic.broker, topic.name, 2)
        by_key = {m.key.decode(): ExportTraceServiceRequest.FromString(m.value) for m in messages}
        assert sorted(by_key) == sorted([TRACE_A.hex(), TRACE_B.hex()])
        a = by_key[TRACE_A.hex()].resource_spans[0]
        assert [s.name for s in a.scope_spans[0].spans] == ["retrieve", "chat"]
        assert {s.trace_id for s in a.scope_spans[0].spans} == {TRACE_A}
        assert a.resource.attributes[0].value.string_value == "rag-app"
        assert a.scope_spans[0].scope.name == "test"
        assert [s.name for s in by_key[TRACE_B.hex()].resource_spans[0].scope_spans[0].spans] == ["chat"]

    def test_a_trace_stays_on_one_partition(self, serve: Serve, topic: Topic) -> None:
        """The same trace in two requests (its LLM span later than its retriever span) lands on one partition."""
        url = serve()
        assert post(
            url, export(span(TRACE_A, 1, "retrieve"), span(TRACE_B, 9, "x")).SerializeToString(), PROTO
        ).is_success
        assert post(url, export(span(TRACE_A, 2, "chat")).SerializeToString(), PROTO).is_success
        messages = read_topic(topic.broker, topic.name, 3)
        partitions = {m.partition for m in messages if m.key == TRACE_A.hex().encode()}
        assert len([m for m in messages if m.key == TRACE_A.hex().encode()]) == 2
        assert len(partitions) == 1

    def test_one_trace_is_forwarded_byte_for_byte(self, serve: Serve, topic: Topic) -> None:
        """A request holding a single trace is produced as it came."""
        url = serve()
        body = export(span(TRACE_A, 1, "chat"), span(TRACE_A, 2, "retrieve")).SerializeToString()
        assert post(url, body, PROTO).status_code == 200
        [message] = read_topic(topic.broker, topic.name, 1)
        assert (message.key, message.value) == (TRACE_A.hex().encode(), body)

    def test_json_gzip_split_with_unkeyed_invalid_ids(self, serve: Serve, topic: Topic) -> None:
        """Gzipped OTLP/JSON: a JSON message per trace; the spans without a valid trace id in one unkeyed message."""
        url = serve()
        obj = json_export(
            (TRACE_A.hex().upper(), "retrieve"), (TRACE_B.hex(), "chat"), ("0" * 32, "zero"), ("xyz", "bad"),
            (TRACE_A.hex(), "chat"),
        )  # fmt: skip
        resp = post(url, gzip.compress(json.dumps(obj).encode()), {**JSON_TYPE, "Content-Encoding": "gzip"})
        assert (resp.status_code, resp.json()) == (200, {})
        messages = read_topic(topic.broker, topic.name, 3)
        by_key = {m.key.decode() if m.key else None: json.loads(m.value) for m in messages}
        assert set(by_key) == {TRACE_A.hex(), TRACE_B.hex(), None}

        def names(o: dict[str, Any]) -> list[str]:
            return [s["name"] for r in o["resourceSpans"] for sc in r["scopeSpans"] for s in sc["spans"]]

        assert names(by_key[TRACE_A.hex()]) == ["retrieve", "chat"]
        assert names(by_key[TRACE_B.hex()]) == ["chat"]
        assert names(by_key[None]) == ["zero", "bad"]
        resource = by_key[TRACE_B.hex()]["resourceSpans"][0]
        assert resource["resource"]["attributes"][0]["value"] == {"stringValue": "rag-app"}
        assert resource["scopeSpans"][0]["scope"] == {"name": "test"}

    def test_empty_export_writes_nothing(self, serve: Serve, topic: Topic) -> None:
        """No spans: 200 and no message."""
        url = serve()
        assert post(url, b"", PROTO).status_code == 200
        assert post(url, json.dumps({"resourceSpans": []}).encode(), JSON_TYPE).status_code == 200
        assert post(
            url, ExportTraceServiceRequest(resource_spans=[ResourceSpans()]).SerializeToString(), PROTO
        ).is_success
        assert end_offsets(topic.broker, topic.name) == 0


def _bomb() -> bytes:
    return gzip.compress(b"\0" * (50 * LIMIT))


def _chunks() -> Iterator[bytes]:
    for _ in range(10):
        yield b"\n" * (LIMIT // 4)


REJECTIONS = [
    # (name, body, headers, status, reason pattern)
    ("bad protobuf", b"\xff\xff\xff", PROTO, 400, r"not a protobuf ExportTraceServiceRequest"),
    ("json array", b"[]", JSON_TYPE, 400, r"must be a JSON object, got array"),
    ("json not json", b"{nope", JSON_TYPE, 400, r"not JSON"),
    ("resourceSpans not array", b'{"resourceSpans": {}}', JSON_TYPE, 400, r"resourceSpans must be an array"),
    ("span not object", json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [1]}]}]}).encode(), JSON_TYPE, 400,
     r"resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[0\] must be an object"),
    ("truncated gzip", gzip.compress(b"{}" * 100)[:20], {**JSON_TYPE, "Content-Encoding": "gzip"}, 400, r"truncated"),
    ("not gzip", b"plain", {**JSON_TYPE, "Content-Encoding": "gzip"}, 400, r"not valid gzip"),
    ("no token", b"", {"Content-Type": "application/x-protobuf"}, 401, r"missing bearer token"),
    ("wrong token", b"", {**PROTO, "Authorization": "Bearer nope"}, 401, r"wrong bearer token"),
    ("basic auth", b"", {**PROTO, "Authorization": f"Basic {TOKEN}"}, 401, r"missing bearer token"),
    ("too large", b"\n" * (LIMIT + 1), PROTO, 413, r"over the 65536-byte limit"),
    ("zip bomb", _bomb(), {**PROTO, "Content-Encoding": "gzip"}, 413, r"decompressed body is over the 65536-byte"),
    ("text/plain", b"{}", {**AUTH, "Content-Type": "text/plain"}, 415, r"unsupported Content-Type 'text/plain'"),
    ("no content type", b"{}", AUTH, 415, r"unsupported Content-Type 'none'"),
    ("brotli", b"{}", {**JSON_TYPE, "Content-Encoding": "br"}, 415, r"unsupported Content-Encoding 'br'"),
]  # fmt: skip


class TestRejections:
    """Every refusal is an error status with a one-line reason, in the request's encoding; nothing is produced."""

    @pytest.mark.parametrize(("body", "headers", "status", "reason"), [r[1:] for r in REJECTIONS],
                             ids=[r[0] for r in REJECTIONS])  # fmt: skip
    def test_rejected(
        self, serve: Serve, topic: Topic, body: bytes, headers: dict[str, str], status: int, reason: str
    ) -> None:
        """The status, the reason, the counter, an empty topic."""
        url = serve()
        before = counter(str(status))
        resp = post(url, body, headers)
        assert resp.status_code == status
        if resp.headers["content-type"] == "application/x-protobuf":
            message = Status.FromString(resp.content).message
        else:
            message = resp.json()["message"]
        assert re.search(reason, message), message
        assert "\n" not in message
        assert counter(str(status)) == before + 1
        if status == 401:
            assert resp.headers["www-authenticate"] == "Bearer"
        assert end_offsets(topic.broker, topic.name) == 0

    def test_protobuf_errors_are_rpc_status(self, serve: Serve) -> None:
        """A protobuf request's error is a google.rpc.Status with the gRPC code (INVALID_ARGUMENT for 400)."""
        resp = post(serve(), b"\xff\xff", PROTO)
        assert resp.headers["content-type"] == "application/x-protobuf"
        assert Status.FromString(resp.content).code == 3

    def test_stream_over_the_limit_without_length(self, serve: Serve) -> None:
        """A chunked body (no Content-Length) is cut off at the limit while it is read."""
        resp = httpx.post(serve(), content=_chunks(), headers=PROTO, timeout=30)
        assert resp.status_code == 413
        assert "over the 65536-byte limit" in Status.FromString(resp.content).message

    def test_no_token_asked_when_unset(self, serve: Serve, topic: Topic) -> None:
        """Without ``otlp.token`` an export without Authorization is taken."""
        url = serve(token=None)
        assert post(url, export(span(TRACE_A, 1, "chat")).SerializeToString(), PROTO | {"Authorization": ""}).is_success


class TestAcknowledgement:
    """200 only after Kafka acknowledged; a broker that is away is a 503 the exporter retries."""

    def test_broker_down_is_503_with_retry_after(self, serve: Serve) -> None:
        """Kafka unreachable: 503, Retry-After, a one-line reason, answered within the acknowledgement timeout."""
        url = serve(bootstrap=f"127.0.0.1:{closed_port()}", ack_timeout_s=1.0)
        before = counter("503")
        started = time.monotonic()
        resp = post(url, export(span(TRACE_A, 1, "chat")).SerializeToString(), PROTO)
        assert resp.status_code == 503
        assert resp.headers["retry-after"] == "5"
        status = Status.FromString(resp.content)
        assert status.code == 14
        assert status.message.startswith("Kafka unreachable at 127.0.0.1:")
        assert time.monotonic() - started < 10
        assert counter("503") == before + 1

    def test_sdk_exporter_span_arrives(self, serve: Serve, topic: Topic) -> None:
        """The OpenTelemetry SDK's OTLP/HTTP exporter (gzip, bearer header) exports a span that arrives in the topic."""
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource as SdkResource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        url = serve()
        exporter = OTLPSpanExporter(endpoint=url, headers=AUTH, compression=Compression.Gzip, timeout=10)
        provider = TracerProvider(resource=SdkResource.create({"service.name": "sdk-app"}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        with provider.get_tracer("lookout-test").start_as_current_span("chat gpt-4o") as sdk_span:
            sdk_span.set_attribute("gen_ai.request.model", "gpt-4o")
            trace_id = sdk_span.get_span_context().trace_id
        provider.shutdown()
        [message] = read_topic(topic.broker, topic.name, 1)
        assert message.key == f"{trace_id:032x}".encode()
        resource = ExportTraceServiceRequest.FromString(message.value).resource_spans[0]
        [got] = resource.scope_spans[0].spans
        assert (got.name, got.trace_id) == ("chat gpt-4o", trace_id.to_bytes(16, "big"))
        assert {a.key: a.value.string_value for a in resource.resource.attributes}["service.name"] == "sdk-app"


def test_lookout_receive(agent_env: AgentEnv) -> None:
    """``lookout receive`` serves /v1/traces and the probes, never opens storage, and exits 0 on SIGTERM."""
    proc = agent_env.start("receive", "--listen", "127.0.0.1:0")
    try:
        assert proc.stderr is not None
        url = ""
        deadline = time.monotonic() + 60
        while not url and time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "lookout receive exited early"
            found = re.search(r"OTLP/HTTP receiver on (http://\S+/v1/traces)", line)
            url = found.group(1) if found else ""
        assert url, "no URL line"
        trace = uuid.uuid4().bytes
        resp = post(url, export(span(trace, 1, "chat")).SerializeToString(), {"Content-Type": "application/x-protobuf"})
        assert resp.status_code == 200, resp.content
        assert http_get(url.replace("/v1/traces", "/healthz"))[0] == 200
        [message] = read_topic(agent_env.topic.broker, agent_env.topic.name, 1)
        assert message.key == trace.hex().encode()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not agent_env.data_dir.exists()
