"""The OTLP/HTTP receiver's parts without a broker: body limits, the split per trace, errors, where it is served."""

from __future__ import annotations

import gzip
import json
import socket
from typing import Any

import httpx
import pytest
from google.rpc.status_pb2 import Status  # type: ignore[import-untyped]  # googleapis-common-protos: no stubs
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from agent.app import listen_address, serve_receiver, shares_metrics_port, start_web
from agent.cli import build_parser
from agent.config import KafkaSettings, load_settings
from agent.config_otel import OtlpSettings
from agent.errors import LookoutError
from agent.metrics import Health
from agent.otel.receiver import (
    BodyReader,
    OtlpReceiver,
    Rejected,
    check_token,
    gzipped,
    json_key,
    media_type,
    proto_key,
    split_json,
    split_proto,
    status_proto,
)

A = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
B = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")


def rejected(call: Any, *args: Any) -> Rejected:
    """The :class:`Rejected` that ``call(*args)`` raises."""
    with pytest.raises(Rejected) as info:
        call(*args)
    return info.value


class TestBodyReader:
    """Raw and inflated bodies are each held to the limit; gzip is read chunk by chunk."""

    def test_gzip_across_chunks_and_members(self) -> None:
        """Two gzip members fed a few bytes at a time inflate to both members' bytes."""
        data = gzip.compress(b"hello ") + gzip.compress(b"world")
        reader = BodyReader(1024, gzip=True)
        for i in range(0, len(data), 3):
            reader.feed(data[i : i + 3])
        assert reader.body() == b"hello world"

    def test_zip_bomb_stops_at_the_limit(self) -> None:
        """A 64 MiB bomb (65 KiB compressed) is refused after inflating limit + 1 bytes."""
        bomb = gzip.compress(b"\0" * (64 << 20))
        limit = 1 << 20
        reader = BodyReader(limit, gzip=True)
        error = rejected(reader.feed, bomb)
        assert (error.status, error.reason) == (
            413,
            "decompressed body is over the 1048576-byte limit (otlp.max_body_bytes)",
        )
        assert len(reader._out) == limit + 1

    def test_raw_limit(self) -> None:
        """Plain bytes past the limit are 413 as they come."""
        reader = BodyReader(10, gzip=False)
        reader.feed(b"x" * 10)
        assert rejected(reader.feed, b"x").status == 413

    @pytest.mark.parametrize(
        "data", [gzip.compress(b"{}" * 50, mtime=0)[:-9], b"not gzip at all", gzip.compress(b"{}", mtime=0) + b"junk"]
    )
    def test_broken_gzip_is_400(self, data: bytes) -> None:
        """Truncated gzip, plain bytes and trailing garbage are 400."""
        reader = BodyReader(4096, gzip=True)
        with pytest.raises(Rejected) as info:
            reader.feed(data)
            reader.body()
        assert info.value.status == 400 and "gzip" in info.value.reason


class TestHeaders:
    """Media type, encoding and token."""

    @pytest.mark.parametrize(
        ("value", "kind"),
        [("application/x-protobuf", "application/x-protobuf"), ("Application/JSON; charset=utf-8", "application/json")],
    )
    def test_media_types(self, value: str, kind: str) -> None:
        """Parameters and case do not matter."""
        assert media_type(value) == kind

    @pytest.mark.parametrize("value", [None, "", "text/plain", "application/protobuf2"])
    def test_other_media_types_are_415(self, value: str | None) -> None:
        """Anything else is 415."""
        assert rejected(media_type, value).status == 415

    def test_encodings(self) -> None:
        """Gzip and identity (or none) are read; deflate is 415."""
        assert (gzipped("GZIP"), gzipped(None), gzipped("identity")) == (True, False, False)
        assert rejected(gzipped, "deflate").reason == "unsupported Content-Encoding 'deflate'; send gzip or identity"

    def test_token(self) -> None:
        """The right bearer token passes (scheme case-insensitive); wrong or absent is 401."""
        check_token("bearer t0k", "t0k")
        assert rejected(check_token, "Bearer t0kx", "t0k").reason == "wrong bearer token"
        assert rejected(check_token, None, "t0k").status == 401
        assert rejected(check_token, "Bearer ", "t0k").status == 401


def request(*resources: tuple[str, list[Span]]) -> ExportTraceServiceRequest:
    """Resources (service name, spans), one scope each."""
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=name))]),
                scope_spans=[ScopeSpans(scope=InstrumentationScope(name=f"scope-{name}"), spans=spans)],
                schema_url=f"https://schema/{name}",
            )
            for name, spans in resources
        ]
    )


class TestSplitProto:
    """Protobuf exports split per trace id."""

    def test_a_trace_across_resources_keeps_each_resource(self) -> None:
        """Trace A in two resources: its message holds both resources with their scopes; B only its own."""
        body = request(
            ("svc1", [Span(trace_id=A, name="a1"), Span(trace_id=B, name="b1")]),
            ("svc2", [Span(trace_id=A, name="a2")]),
        ).SerializeToString()
        split = split_proto(body)
        assert split.spans == 3
        parts = {key: ExportTraceServiceRequest.FromString(value) for key, value in split.messages}
        a = parts[A.hex()]
        assert [r.schema_url for r in a.resource_spans] == ["https://schema/svc1", "https://schema/svc2"]
        assert [r.scope_spans[0].scope.name for r in a.resource_spans] == ["scope-svc1", "scope-svc2"]
        assert [s.name for r in a.resource_spans for s in r.scope_spans[0].spans] == ["a1", "a2"]
        assert [s.name for r in parts[B.hex()].resource_spans for s in r.scope_spans[0].spans] == ["b1"]

    def test_invalid_trace_ids_share_one_unkeyed_message(self) -> None:
        """Empty, short and all-zero ids: one message with key None."""
        body = request(("s", [Span(name="x"), Span(trace_id=b"\0" * 16, name="y"), Span(trace_id=b"1", name="z")]))
        assert [key for key, _ in split_proto(body.SerializeToString()).messages] == [None]

    def test_keys(self) -> None:
        """Trace ids are keyed in lower-case hex, the same for both encodings."""
        assert proto_key(A) == json_key(A.hex().upper()) == "0af7651916cd43dd8448eb211c80319c"
        assert json_key("0" * 32) is json_key(12) is json_key("g" * 32) is None

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.lists(st.sampled_from([A, B, b"", bytes(range(1, 17))]), max_size=6), max_size=4))
    def test_split_keeps_every_span_once(self, layout: list[list[bytes]]) -> None:
        """Whatever the layout, every span is in exactly one message, the one of its trace."""
        resources = [
            (f"r{i}", [Span(trace_id=t, name=f"{i}.{j}") for j, t in enumerate(ids)]) for i, ids in enumerate(layout)
        ]
        split = split_proto(request(*resources).SerializeToString())
        seen: list[str] = []
        for key, value in split.messages:
            for resource in ExportTraceServiceRequest.FromString(value).resource_spans:
                for s in resource.scope_spans[0].spans:
                    assert proto_key(s.trace_id) == key
                    seen.append(s.name)
        assert sorted(seen) == sorted(f"{i}.{j}" for i, ids in enumerate(layout) for j in range(len(ids)))
        assert split.spans == len(seen)


class TestSplitJson:
    """OTLP/JSON exports split per trace id."""

    def test_snake_case_names_and_other_fields_kept(self) -> None:
        """Field names as sent (snake_case too) and unknown fields survive the split."""
        obj = {
            "resource_spans": [
                {
                    "resource": {"attributes": []},
                    "schemaUrl": "u",
                    "scope_spans": [{"scope": {"name": "s"}, "spans": [{"trace_id": A.hex()}, {"trace_id": B.hex()}]}],
                }
            ],
            "extra": 1,
        }
        split = split_json(json.dumps(obj).encode(), 4096)
        part = json.loads(dict(split.messages)[B.hex()])
        scope = {"scope": {"name": "s"}, "spans": [{"trace_id": B.hex()}]}
        resource = {"resource": {"attributes": []}, "schemaUrl": "u", "scope_spans": [scope]}
        assert part == {"extra": 1, "resource_spans": [resource]}

    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            (b"[1]", "OTLP/JSON export must be a JSON object, got array"),
            (b"[" * 100_000, "OTLP/JSON export nested too deeply"),
            (b'{"resourceSpans": [{"scopeSpans": 3}]}', "resourceSpans[0].scopeSpans must be an array"),
            (b'{"resourceSpans": [{"scopeSpans": [{"spans": {}}]}]}',
             "resourceSpans[0].scopeSpans[0].spans must be an array"),
            (b'{"resourceSpans": [7]}', "resourceSpans[0] must be an object"),
        ],
    )  # fmt: skip
    def test_shape_errors_are_400(self, body: bytes, reason: str) -> None:
        """A body that is not OTLP/JSON's shape says where."""
        error = rejected(split_json, body, 1 << 20)
        assert (error.status, error.reason) == (400, reason)

    def test_no_spans(self) -> None:
        """An object without spans: no message."""
        assert split_json(b'{"resourceSpans": null}', 4096).messages == []


def test_status_proto_is_a_google_rpc_status() -> None:
    """The hand-written Status parses with googleapis' own message, long messages included."""
    status = Status.FromString(status_proto(16, "é" * 300))
    assert (status.code, status.message) == (16, "é" * 300)


class TestServing:
    """Where ``lookout run`` and ``lookout receive`` serve the receiver."""

    def test_listen_address(self) -> None:
        """host:port and [v6]:port."""
        assert listen_address("10.0.0.5:4318") == ("10.0.0.5", 4318)
        assert listen_address("[::1]:4318") == ("::1", 4318)

    def test_shares_the_metrics_port(self) -> None:
        """otlp.listen equal to the metrics address shares that server; another port, or metrics off, does not."""
        assert shares_metrics_port(load_settings(otlp={"listen": "127.0.0.1:9464"}))
        assert not shares_metrics_port(load_settings(otlp={"listen": "127.0.0.1:4318"}))
        assert not shares_metrics_port(load_settings(otlp={"listen": "127.0.0.1:0"}, metrics={"port": 0}))
        assert not shares_metrics_port(load_settings())

    def test_mounted_on_the_metrics_server(self) -> None:
        """Mounted next to /metrics, /v1/traces answers there (415 for a wrong media type, no broker needed)."""
        receiver = OtlpReceiver(OtlpSettings(), KafkaSettings(bootstrap_servers="127.0.0.1:1"))
        web = start_web(load_settings(metrics={"port": _free_port()}), Health(), [receiver.router])
        assert web is not None
        try:
            resp = httpx.post(
                f"http://127.0.0.1:{web.port}/v1/traces", content=b"x", headers={"Content-Type": "text/csv"}
            )
            assert resp.status_code == 415
            assert httpx.get(f"http://127.0.0.1:{web.port}/metrics").text.count("lookout_otlp_requests_total") > 0
        finally:
            web.stop()

    def test_port_taken_names_the_setting(self) -> None:
        """A busy listen address is one line naming LOOKOUT_OTLP__LISTEN."""
        receiver = OtlpReceiver(OtlpSettings(), KafkaSettings())
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            with pytest.raises(
                LookoutError, match=r"cannot listen for /v1/traces on 127\.0\.0\.1:\d+ .*LOOKOUT_OTLP__LISTEN"
            ):
                serve_receiver(receiver, f"127.0.0.1:{port}")

    def test_receive_listen_option(self, capsys: pytest.CaptureFixture[str]) -> None:
        """``--listen`` takes HOST:PORT and refuses anything else as a usage error."""
        assert build_parser().parse_args(["receive", "--listen", "[::1]:4318"]).listen == "[::1]:4318"
        with pytest.raises(SystemExit) as info:
            build_parser().parse_args(["receive", "--listen", "localhost"])
        assert info.value.code == 2
        assert "'localhost' is not HOST:PORT" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
