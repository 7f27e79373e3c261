"""OTLP payloads: protobuf and OTLP/JSON exports → Span values, and every malformed export → Invalid with a reason."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from agent.decode import Invalid
from agent.otel.payload import MAX_DEPTH, Span, SpanEvent, parse, spans_from_json, spans_from_proto

TRACE = "5b8efff798038103d269b633813fc60c"
SPAN = "eee19b7ec3c1b174"
PARENT = "eee19b7ec3c1b173"
START = 1_700_000_000_123_456_789
END = START + 1_500_000_000


def collector_json() -> dict[str, Any]:
    """An export written the way the Collector's ``ptrace.JSONMarshaler`` writes it (the ``otlp_json`` encoding)."""
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": "chatbot"}},
                        {"key": "host.cpus", "value": {"intValue": "8"}},
                    ]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "opentelemetry.instrumentation.openai.v1", "version": "0.62.4"},
                        "spans": [
                            {
                                "traceId": TRACE,
                                "spanId": SPAN,
                                "parentSpanId": PARENT,
                                "flags": 256,
                                "name": "chat gpt-4o-mini",
                                "kind": 3,
                                "startTimeUnixNano": str(START),
                                "endTimeUnixNano": str(END),
                                "attributes": [
                                    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "12"}},
                                    {"key": "gen_ai.request.temperature", "value": {"doubleValue": 0.2}},
                                    {"key": "gen_ai.is_streaming", "value": {"boolValue": False}},
                                    {"key": "blob", "value": {"bytesValue": base64.b64encode(b"\x00\x01").decode()}},
                                    {
                                        "key": "gen_ai.response.finish_reasons",
                                        "value": {"arrayValue": {"values": [{"stringValue": "stop"}]}},
                                    },
                                    {
                                        "key": "nested",
                                        "value": {
                                            "kvlistValue": {
                                                "values": [
                                                    {"key": "a", "value": {"intValue": "-5"}},
                                                    {
                                                        "key": "b",
                                                        "value": {
                                                            "arrayValue": {
                                                                "values": [{"doubleValue": 1.5}, {"boolValue": True}]
                                                            }
                                                        },
                                                    },
                                                ]
                                            }
                                        },
                                    },
                                ],
                                "events": [
                                    {
                                        "timeUnixNano": str(START + 1),
                                        "name": "gen_ai.user.message",
                                        "attributes": [{"key": "content", "value": {"stringValue": "hi"}}],
                                    }
                                ],
                                "status": {"code": 2, "message": "rate limited"},
                            }
                        ],
                    }
                ],
            }
        ]
    }


def kv(key: str, value: AnyValue) -> KeyValue:
    """A protobuf attribute."""
    return KeyValue(key=key, value=value)


def proto_request() -> ExportTraceServiceRequest:
    """The protobuf twin of :func:`collector_json`."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(
        [kv("service.name", AnyValue(string_value="chatbot")), kv("host.cpus", AnyValue(int_value=8))]
    )
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "opentelemetry.instrumentation.openai.v1"
    scope_spans.scope.version = "0.62.4"
    span = scope_spans.spans.add()
    span.trace_id = bytes.fromhex(TRACE)
    span.span_id = bytes.fromhex(SPAN)
    span.parent_span_id = bytes.fromhex(PARENT)
    span.flags = 256
    span.name = "chat gpt-4o-mini"
    span.kind = 3
    span.start_time_unix_nano = START
    span.end_time_unix_nano = END
    nested = KeyValueList(
        values=[
            kv("a", AnyValue(int_value=-5)),
            kv("b", AnyValue(array_value=ArrayValue(values=[AnyValue(double_value=1.5), AnyValue(bool_value=True)]))),
        ]
    )
    span.attributes.extend(
        [
            kv("gen_ai.operation.name", AnyValue(string_value="chat")),
            kv("gen_ai.usage.input_tokens", AnyValue(int_value=12)),
            kv("gen_ai.request.temperature", AnyValue(double_value=0.2)),
            kv("gen_ai.is_streaming", AnyValue(bool_value=False)),
            kv("blob", AnyValue(bytes_value=b"\x00\x01")),
            kv(
                "gen_ai.response.finish_reasons",
                AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="stop")])),
            ),
            kv("nested", AnyValue(kvlist_value=nested)),
        ]
    )
    event = span.events.add()
    event.time_unix_nano = START + 1
    event.name = "gen_ai.user.message"
    event.attributes.append(kv("content", AnyValue(string_value="hi")))
    span.status.code = 2
    span.status.message = "rate limited"
    return request


EXPECTED = Span(
    trace_id=TRACE,
    span_id=SPAN,
    parent_span_id=PARENT,
    name="chat gpt-4o-mini",
    kind=3,
    start_ns=START,
    end_ns=END,
    status_code=2,
    status_message="rate limited",
    attributes={
        "gen_ai.operation.name": "chat",
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.is_streaming": False,
        "blob": b"\x00\x01",
        "gen_ai.response.finish_reasons": ("stop",),
        "nested": {"a": -5, "b": (1.5, True)},
    },
    events=(SpanEvent(name="gen_ai.user.message", time_ns=START + 1, attributes={"content": "hi"}),),
    resource={"service.name": "chatbot", "host.cpus": 8},
    scope_name="opentelemetry.instrumentation.openai.v1",
)


def reason(call: Callable[[], object]) -> str:
    """The Invalid reason ``call`` raises (and fails the test when it raises nothing)."""
    with pytest.raises(Invalid) as info:
        call()
    return str(info.value)


def b64_ids_to_hex(obj: Any) -> Any:
    """Protobuf's ``MessageToDict`` writes ids as base64; OTLP/JSON writes them as hex."""
    if isinstance(obj, dict):
        ids = ("traceId", "spanId", "parentSpanId")
        return {k: base64.b64decode(v).hex() if k in ids else b64_ids_to_hex(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [b64_ids_to_hex(v) for v in obj]
    return obj


class TestValidExports:
    """Both encodings of one export give the same Span values."""

    def test_proto_and_json_give_the_same_spans(self) -> None:
        """The protobuf export and the Collector's OTLP/JSON of it both give exactly the expected span."""
        from_proto = spans_from_proto(proto_request().SerializeToString())
        from_json = spans_from_json(collector_json())
        assert from_proto == [EXPECTED]
        assert from_json == [EXPECTED]

    def test_real_sdk_export_round_trip(self) -> None:
        """Spans the OpenTelemetry SDK exports (its OTLP encoder) read the same from protobuf and from JSON."""
        exporter = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"service.name": "svc"}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("probe")
        with (
            tracer.start_as_current_span("root", kind=SpanKind.SERVER, attributes={"n": [1, 2]}),
            tracer.start_as_current_span("child", attributes={"x": 1.25, "ok": True}) as child,
        ):
            child.add_event("gen_ai.choice", {"index": 0})
            child.set_status(Status(StatusCode.ERROR, "boom"))
        request = encode_spans(exporter.get_finished_spans())
        from_proto = spans_from_proto(request.SerializeToString())
        from_json = spans_from_json(b64_ids_to_hex(MessageToDict(request)))  # enums as names, int64 as strings
        assert from_proto == from_json
        child_span, root = from_proto
        assert (root.name, root.kind, root.parent_span_id, root.attributes) == ("root", 2, "", {"n": (1, 2)})
        assert child_span.parent_span_id == root.span_id and child_span.trace_id == root.trace_id
        assert (child_span.status_code, child_span.status_message) == (2, "boom")
        assert child_span.events[0].attributes == {"index": 0}
        assert root.resource["service.name"] == "svc" and root.scope_name == "probe"

    def test_hex_ids_are_lowercase(self) -> None:
        """Ids are read as hex, any case, and come out lowercase; an all-zero parent is a root."""
        obj = collector_json()
        span = obj["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        span["traceId"], span["spanId"], span["parentSpanId"] = TRACE.upper(), SPAN.upper(), "0" * 16
        (got,) = spans_from_json(obj)
        assert (got.trace_id, got.span_id, got.parent_span_id) == (TRACE, SPAN, "")

    def test_numbers_strings_and_enum_names(self) -> None:
        """64-bit integers read from numbers or decimal strings; enums from numbers or names."""
        obj = collector_json()
        span = obj["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        span["startTimeUnixNano"] = START
        span["kind"] = "SPAN_KIND_CLIENT"
        span["status"]["code"] = "STATUS_CODE_ERROR"
        span["attributes"][1]["value"] = {"intValue": 12}
        span["attributes"][2]["value"] = {"doubleValue": "0.2"}
        assert spans_from_json(obj) == [EXPECTED]

    def test_snake_case_keys(self) -> None:
        """The proto's own field names (snake_case) are read too, as receivers do."""
        text = json.dumps(collector_json())
        for camel, snake in [
            ("resourceSpans", "resource_spans"),
            ("scopeSpans", "scope_spans"),
            ("traceId", "trace_id"),
            ("parentSpanId", "parent_span_id"),
            ("spanId", "span_id"),
            ("startTimeUnixNano", "start_time_unix_nano"),
            ("endTimeUnixNano", "end_time_unix_nano"),
            ("timeUnixNano", "time_unix_nano"),
            ("stringValue", "string_value"),
            ("intValue", "int_value"),
            ("arrayValue", "array_value"),
            ("kvlistValue", "kvlist_value"),
        ]:
            text = text.replace(f'"{camel}"', f'"{snake}"')
        assert spans_from_json(json.loads(text)) == [EXPECTED]

    def test_empty_values_are_dropped(self) -> None:
        """An AnyValue with no value (``{}``) leaves the attribute out, as the Collector reads it."""
        obj = collector_json()
        span = obj["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        span["attributes"].append({"key": "empty", "value": {}})
        span["attributes"].append({"key": "missing"})
        (got,) = spans_from_json(obj)
        assert "empty" not in got.attributes and "missing" not in got.attributes

    def test_empty_export(self) -> None:
        """An export without spans gives no spans, in both encodings."""
        assert spans_from_proto(b"") == []
        assert spans_from_json({"resourceSpans": []}) == []
        assert spans_from_json({"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": []}]}]}) == []

    def test_parse_both_encodings(self) -> None:
        """``parse`` reads bytes of either encoding."""
        assert parse(proto_request().SerializeToString(), "proto", 1 << 20) == [EXPECTED]
        assert parse(json.dumps(collector_json()).encode(), "json", 1 << 20) == [EXPECTED]

    def test_nesting_up_to_the_limit(self) -> None:
        """Arrays nested exactly MAX_DEPTH deep are read."""
        value: dict[str, Any] = {"stringValue": "leaf"}
        for _ in range(MAX_DEPTH):
            value = {"arrayValue": {"values": [value]}}
        obj = collector_json()
        obj["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"] = [{"key": "deep", "value": value}]
        (got,) = spans_from_json(obj)
        leaf: Any = got.attributes["deep"]
        for _ in range(MAX_DEPTH):
            (leaf,) = leaf
        assert leaf == "leaf"


def span_path(obj: dict[str, Any]) -> dict[str, Any]:
    """The one span of a :func:`collector_json` export."""
    span: dict[str, Any] = obj["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    return span


def deep_value(levels: int) -> dict[str, Any]:
    """An AnyValue of key-value lists nested ``levels`` deep."""
    value: dict[str, Any] = {"stringValue": "x"}
    for _ in range(levels):
        value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
    return value


def set_attr(value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation that sets the span's first attribute's value."""

    def mutate(obj: dict[str, Any]) -> None:
        span_path(obj)["attributes"][0]["value"] = value

    return mutate


def set_span(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation that sets a field of the span."""

    def mutate(obj: dict[str, Any]) -> None:
        span_path(obj)[key] = value

    return mutate


WHERE = "OTLP span resourceSpans[0].scopeSpans[0].spans[0]"
JSON_CASES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("no resourceSpans", lambda o: o.clear(), "OTLP/JSON export has no resourceSpans"),
    ("resourceSpans not a list", lambda o: o.update(resourceSpans={}), "resourceSpans must be an array"),
    ("resourceSpans item", lambda o: o["resourceSpans"].append(3), "OTLP resourceSpans[1] must be an object"),
    ("spans not a list", lambda o: o["resourceSpans"][0]["scopeSpans"][0].update(spans="x"), "spans must be an array"),
    ("span not an object", lambda o: o["resourceSpans"][0]["scopeSpans"][0]["spans"].append(None), "spans[1]"),
    ("trace id missing", set_span("traceId", ""), f"{WHERE}: traceId is missing"),
    ("trace id short", set_span("traceId", TRACE[:30]), f"{WHERE}: traceId must be 32 hex characters"),
    ("trace id not hex", set_span("traceId", "g" * 32), "traceId must be 32 hex characters"),
    ("trace id base64", set_span("traceId", base64.b64encode(bytes(range(1, 17))).decode()), "not base64"),
    ("trace id zeros", set_span("traceId", "0" * 32), "traceId must not be all zeros"),
    ("trace id number", set_span("traceId", 5), "traceId must be a hex string, got number"),
    ("span id long", set_span("spanId", SPAN + "00"), "spanId must be 16 hex characters"),
    ("span id zeros", set_span("spanId", "0" * 16), "spanId must not be all zeros"),
    ("parent id short", set_span("parentSpanId", "abc"), "parentSpanId must be 16 hex characters"),
    ("name not a string", set_span("name", ["x"]), f"{WHERE}: name must be a string, got array"),
    ("name with NUL", set_span("name", "a\x00b"), f"{WHERE}: name contains a NUL character"),
    ("name surrogate", set_span("name", "a\ud800"), "contains a lone UTF-16 surrogate"),
    ("kind unknown number", set_span("kind", 9), "kind 9 is not one of"),
    ("kind unknown name", set_span("kind", "SPAN_KIND_WEIRD"), "kind 'SPAN_KIND_WEIRD' is not one of"),
    ("kind bool", set_span("kind", True), "kind must be an integer"),
    ("start negative", set_span("startTimeUnixNano", "-1"), "startTimeUnixNano must be an unsigned 64-bit integer"),
    ("start too big", set_span("startTimeUnixNano", str(2**64)), "startTimeUnixNano must be an unsigned 64-bit"),
    ("start not a number", set_span("startTimeUnixNano", "1e9x"), "startTimeUnixNano must be an integer"),
    ("start fraction", set_span("startTimeUnixNano", 1.5), "startTimeUnixNano must be an integer"),
    ("start underscores", set_span("startTimeUnixNano", "1_000"), "startTimeUnixNano must be an integer"),
    ("status code", set_span("status", {"code": 7}), "status.code 7 is not one of"),
    ("status not object", set_span("status", "ERROR"), "status must be an object, got string"),
    ("attributes not list", set_span("attributes", {"a": 1}), f"{WHERE}.attributes must be an array"),
    ("attribute not object", set_span("attributes", ["a"]), "attributes[0] must be an object, got string"),
    ("attribute key missing", set_span("attributes", [{"value": {}}]), "attributes[0].key must be a string, got null"),
    ("attribute key NUL", set_span("attributes", [{"key": "a\x00"}]), "attributes[0].key contains a NUL"),
    ("value not object", set_attr("chat"), "attribute 'gen_ai.operation.name' must be an object, got string"),
    ("string value type", set_attr({"stringValue": 1}), "must be a string, got number"),
    ("string value NUL", set_attr({"stringValue": "a\x00"}), "attribute 'gen_ai.operation.name' contains a NUL"),
    ("bool value type", set_attr({"boolValue": "true"}), "boolValue must be true or false, got string"),
    ("int value text", set_attr({"intValue": "12a"}), "intValue must be an integer"),
    ("int value range", set_attr({"intValue": str(2**63)}), "intValue must be a signed 64-bit integer"),
    ("double value type", set_attr({"doubleValue": [1]}), "doubleValue must be a number, got array"),
    ("double value text", set_attr({"doubleValue": "1.2.3"}), "doubleValue must be a number, got string"),
    ("bytes not base64", set_attr({"bytesValue": "***"}), "bytesValue is not valid base64"),
    ("bytes type", set_attr({"bytesValue": 5}), "bytesValue must be a base64 string, got number"),
    ("array values type", set_attr({"arrayValue": {"values": {}}}), "arrayValue.values must be an array"),
    ("array not object", set_attr({"arrayValue": []}), "arrayValue must be an object, got array"),
    ("kvlist item", set_attr({"kvlistValue": {"values": [1]}}), "attributes[0] must be an object, got number"),
    ("too deep", set_attr(deep_value(MAX_DEPTH + 1)), f"nested deeper than {MAX_DEPTH} levels"),
    ("events not list", set_span("events", {}), "events must be an array"),
    ("event name", set_span("events", [{"name": 3}]), "events[0].name must be a string, got number"),
    ("event time", set_span("events", [{"name": "e", "timeUnixNano": "x"}]), "events[0].timeUnixNano must be an"),
    ("resource not object", lambda o: o["resourceSpans"][0].update(resource=[]), "resource must be an object"),
    (
        "resource attribute NUL",
        lambda o: o["resourceSpans"][0]["resource"]["attributes"][0].update(value={"stringValue": "\x00"}),
        "OTLP resourceSpans[0].resource: attribute 'service.name' contains a NUL character",
    ),
    (
        "scope name type",
        lambda o: o["resourceSpans"][0]["scopeSpans"][0]["scope"].update(name=1),
        "OTLP resourceSpans[0].scopeSpans[0].scope.name must be a string",
    ),
]


class TestMalformedJson:
    """Every malformed OTLP/JSON export raises Invalid with a one-line reason naming the place."""

    @pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in JSON_CASES], ids=[c[0] for c in JSON_CASES])
    def test_reason(self, mutate: Callable[[dict[str, Any]], None], expected: str) -> None:
        """The mutation is rejected and the reason says what is wrong, and where."""
        obj = copy.deepcopy(collector_json())
        mutate(obj)
        text = reason(lambda: spans_from_json(obj))
        assert expected in text
        assert "\n" not in text

    def test_not_an_object(self) -> None:
        """A top-level value that is not an object is rejected, not crashed on."""
        assert "must be an object, got array" in reason(lambda: spans_from_json([]))  # type: ignore[arg-type]


def proto_with(mutate: Callable[[Any], None]) -> bytes:
    """:func:`proto_request` with its span mutated, serialized."""
    request = proto_request()
    mutate(request.resource_spans[0].scope_spans[0].spans[0])
    raw: bytes = request.SerializeToString()
    return raw


def set_field(name: str, value: Any) -> Callable[[Any], None]:
    """A mutation setting one field of the protobuf span."""
    return lambda span: setattr(span, name, value)


def deep_proto(levels: int) -> Callable[[Any], None]:
    """A mutation adding an attribute of arrays nested ``levels`` deep."""

    def mutate(span: Any) -> None:
        value = AnyValue(string_value="x")
        for _ in range(levels):
            value = AnyValue(array_value=ArrayValue(values=[value]))
        span.attributes.append(kv("deep", value))

    return mutate


PROTO_CASES: list[tuple[str, Callable[[Any], None], str]] = [
    ("trace id missing", set_field("trace_id", b""), f"{WHERE}: traceId is missing"),
    ("trace id short", set_field("trace_id", b"\x01" * 15), "traceId must be 16 bytes (32 hex characters), got 15"),
    ("trace id zeros", set_field("trace_id", bytes(16)), "traceId must not be all zeros"),
    ("span id long", set_field("span_id", b"\x01" * 9), "spanId must be 8 bytes"),
    ("span id zeros", set_field("span_id", bytes(8)), "spanId must not be all zeros"),
    ("parent id short", set_field("parent_span_id", b"\x01"), "parentSpanId must be 8 bytes"),
    ("name NUL", set_field("name", "a\x00"), f"{WHERE}: name contains a NUL character"),
    ("kind unknown", set_field("kind", 12), "kind 12 is not one of"),
    ("status unknown", lambda s: setattr(s.status, "code", 5), "status.code 5 is not one of"),
    ("attribute NUL", lambda s: s.attributes.append(kv("k", AnyValue(string_value="\x00"))), "attribute 'k' contains"),
    ("key NUL", lambda s: s.attributes.append(kv("k\x00", AnyValue(int_value=1))), "attribute key contains a NUL"),
    ("event NUL", lambda s: setattr(s.events[0], "name", "\x00"), "events[0].name contains a NUL"),
    ("too deep", deep_proto(MAX_DEPTH + 1), f"nested deeper than {MAX_DEPTH} levels"),
]


class TestMalformedProto:
    """Every malformed protobuf export raises Invalid with a one-line reason, never a protobuf error."""

    @pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in PROTO_CASES], ids=[c[0] for c in PROTO_CASES])
    def test_reason(self, mutate: Callable[[Any], None], expected: str) -> None:
        """The mutated span is rejected and the reason says what is wrong, and where."""
        raw = proto_with(mutate)
        assert expected in reason(lambda: spans_from_proto(raw))

    @pytest.mark.parametrize(
        "raw",
        [b"\xff\xff\xff", b"\n\x05\x12\x03\n\x01", b"{}", b"\n" + b"\xff" * 11, b"\n\x02\x12\x00\x00"],
        ids=["garbage", "truncated", "json", "bad length", "trailing"],
    )
    def test_corrupt_bytes(self, raw: bytes) -> None:
        """Bytes that are not an ExportTraceServiceRequest are rejected."""
        assert reason(lambda: spans_from_proto(raw)).startswith("not an OTLP protobuf trace export")

    def test_invalid_utf8_string(self) -> None:
        """A span name that is not UTF-8 (protobuf strings must be) is rejected."""
        good = proto_with(set_field("name", "NAMEX"))
        raw = good.replace(b"NAMEX", b"NAM\xffX")
        assert "wire format is corrupt" in reason(lambda: spans_from_proto(raw))

    def test_deep_message_nesting(self) -> None:
        """Protobuf nesting past the parser's recursion limit is rejected, not a RecursionError."""
        value = field(1, b"x")  # AnyValue.string_value
        for _ in range(200):
            value = field(5, field(1, value))  # AnyValue.array_value → ArrayValue.values
        span = (
            field(1, bytes.fromhex(TRACE))
            + field(2, bytes.fromhex(SPAN))
            + field(9, field(1, b"deep") + field(2, value))
        )
        raw = field(1, field(2, field(2, span)))  # request.resource_spans → scope_spans → spans
        assert reason(lambda: spans_from_proto(raw)).startswith("not an OTLP protobuf trace export")


def field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field, by hand (protobuf itself refuses to build messages this deep)."""
    size, length = len(payload), bytearray()
    while True:
        length.append((size & 0x7F) | (0x80 if size > 0x7F else 0))
        size >>= 7
        if not size:
            break
    return bytes([number << 3 | 2]) + bytes(length) + payload


class TestParse:
    """``parse``: the size limit, then UTF-8 and JSON, then the spans."""

    def test_size_limit(self) -> None:
        """An export over ``max_bytes`` is rejected before it is parsed, in both encodings."""
        raw = proto_request().SerializeToString()
        assert reason(lambda: parse(raw, "proto", 10)) == f"OTLP export is {len(raw)} bytes, over the 10-byte limit"
        assert "over the 5-byte limit" in reason(lambda: parse(b'{"resourceSpans": []}', "json", 5))

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            (b"\xff{}", "invalid UTF-8 at byte 0"),
            (b"{", "not JSON"),
            (b"[]", "OTLP/JSON export must be a JSON object, got array"),
            (b'{"resourceSpans": NaN}', "JSON constant NaN is not allowed"),
            (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        ],
        ids=["utf8", "json", "array", "nan", "deep"],
    )
    def test_json_errors(self, raw: bytes, expected: str) -> None:
        """Bytes that are not a JSON object are rejected with the JSON reason."""
        assert expected in reason(lambda: parse(raw, "json", 1 << 20))
