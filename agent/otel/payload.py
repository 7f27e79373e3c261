"""OTLP trace exports (protobuf or OTLP/JSON bytes) → :class:`Span` values. Never raises anything but ``Invalid``.

The JSON form is the OpenTelemetry spec's OTLP/JSON encoding as the Collector's ``ptrace.JSONMarshaler`` writes
it (the Kafka exporter's ``otlp_json``): lowerCamelCase keys (the proto's snake_case names are read too), trace
and span ids as hex strings, 64-bit integers as decimal strings or numbers, enums as numbers or names. Malformed
input raises :class:`agent.decode.Invalid` with a one-line reason naming where it is
(``OTLP span resourceSpans[0].scopeSpans[1].spans[3]: traceId must be 32 hex characters``).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from agent.decode import Invalid, kind_of, parse_object

AttrValue: TypeAlias = str | bool | int | float | bytes | tuple["AttrValue", ...] | Mapping[str, "AttrValue"]
"""An OTLP ``AnyValue``: arrays become tuples, key-value lists dicts."""

MAX_DEPTH = 16
"""Deepest nesting of array and key-value list attribute values."""

_SPAN_KINDS = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
_STATUS_CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_HEX = re.compile(r"[0-9a-fA-F]*")
_INT = re.compile(r"-?[0-9]{1,20}")
_FLOAT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|NaN|-?Infinity")
_UNEXPECTED = (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError, RecursionError)


@dataclass(frozen=True, slots=True)
class SpanEvent:
    """A span event (a timestamped annotation inside a span)."""

    name: str
    """Event name (``gen_ai.user.message``, ``exception``...)."""
    time_ns: int
    """When it happened (Unix nanoseconds)."""
    attributes: Mapping[str, AttrValue]
    """Event attributes."""


@dataclass(frozen=True, slots=True)
class Span:
    """One span of an OTLP trace export, with its resource's attributes and its scope's name."""

    trace_id: str
    """32 lowercase hex characters."""
    span_id: str
    """16 lowercase hex characters."""
    parent_span_id: str
    """The parent span's id; "" for a root span."""
    name: str
    """Span name."""
    kind: int
    """OTLP ``SpanKind`` number (0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer)."""
    start_ns: int
    """Start (Unix nanoseconds)."""
    end_ns: int
    """End (Unix nanoseconds)."""
    status_code: int
    """0 unset, 1 ok, 2 error."""
    status_message: str
    """The status description (errors)."""
    attributes: Mapping[str, AttrValue]
    """Span attributes."""
    events: tuple[SpanEvent, ...]
    """Span events, in order."""
    resource: Mapping[str, AttrValue]
    """The resource's attributes (``service.name``...)."""
    scope_name: str
    """The instrumentation scope's name."""


def parse(raw: bytes, encoding: Literal["json", "proto"], max_bytes: int) -> list[Span]:
    """The spans of one export (an ``ExportTraceServiceRequest``, protobuf or OTLP/JSON); raises ``Invalid``."""
    if len(raw) > max_bytes:
        raise Invalid(f"OTLP export is {len(raw)} bytes, over the {max_bytes}-byte limit")
    if encoding == "proto":
        return spans_from_proto(raw)
    try:
        obj = parse_object(raw, max_bytes, "OTLP/JSON export")
    except RecursionError:
        raise Invalid("OTLP/JSON export nested too deeply") from None
    return spans_from_json(obj)


# --- checks shared by both encodings ---------------------------------------------------------------------------


def _text(value: str, where: str) -> str:
    if "\x00" in value:
        raise Invalid(f"{where} contains a NUL character")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate escape (\ud800) in JSON: no sink could write it
            raise Invalid(f"{where} contains a lone UTF-16 surrogate") from None
    return value


def _id_hex(raw: bytes, size: int, name: str, where: str, required: bool) -> str:
    if not raw:
        if required:
            raise Invalid(f"{where}: {name} is missing")
        return ""
    if len(raw) != size:
        raise Invalid(f"{where}: {name} must be {size} bytes ({2 * size} hex characters), got {len(raw)}")
    if not any(raw):
        if required:
            raise Invalid(f"{where}: {name} must not be all zeros")
        return ""  # an all-zero parent id means no parent
    return raw.hex()


def _enum(value: int, names: Mapping[str, int], name: str, where: str) -> int:
    if value not in names.values():
        raise Invalid(f"{where}: {name} {value} is not one of {', '.join(str(v) for v in names.values())}")
    return value


# --- protobuf --------------------------------------------------------------------------------------------------


def spans_from_proto(raw: bytes) -> list[Span]:
    """The spans of a serialized ``ExportTraceServiceRequest``; raises ``Invalid`` with the reason."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(raw)
    except (DecodeError, RecursionError, ValueError, TypeError):
        raise Invalid("not an OTLP protobuf trace export (ExportTraceServiceRequest): wire format is corrupt") from None
    try:
        return _proto_request(request)
    except _UNEXPECTED as exc:  # belt and braces: data never crashes the caller
        raise Invalid(f"malformed OTLP protobuf export ({type(exc).__name__})") from None


def _proto_request(request: ExportTraceServiceRequest) -> list[Span]:
    spans: list[Span] = []
    for r, resource_spans in enumerate(request.resource_spans):
        resource = _proto_attributes(resource_spans.resource.attributes, f"OTLP resourceSpans[{r}].resource")
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            scope = _text(scope_spans.scope.name, f"OTLP resourceSpans[{r}].scopeSpans[{s}].scope.name")
            for i, span in enumerate(scope_spans.spans):
                where = f"OTLP span resourceSpans[{r}].scopeSpans[{s}].spans[{i}]"
                spans.append(_proto_span(span, where, resource, scope))
    return spans


def _proto_span(span: Any, where: str, resource: Mapping[str, AttrValue], scope: str) -> Span:
    return Span(
        trace_id=_id_hex(span.trace_id, 16, "traceId", where, True),
        span_id=_id_hex(span.span_id, 8, "spanId", where, True),
        parent_span_id=_id_hex(span.parent_span_id, 8, "parentSpanId", where, False),
        name=_text(span.name, f"{where}: name"),
        kind=_enum(span.kind, _SPAN_KINDS, "kind", where),
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
        status_code=_enum(span.status.code, _STATUS_CODES, "status.code", where),
        status_message=_text(span.status.message, f"{where}: status.message"),
        attributes=_proto_attributes(span.attributes, where),
        events=tuple(
            SpanEvent(
                name=_text(event.name, f"{where}: events[{e}].name"),
                time_ns=event.time_unix_nano,
                attributes=_proto_attributes(event.attributes, f"{where}: events[{e}]"),
            )
            for e, event in enumerate(span.events)
        ),
        resource=resource,
        scope_name=scope,
    )


def _proto_attributes(pairs: Sequence[KeyValue], where: str, depth: int = 0) -> dict[str, AttrValue]:
    out: dict[str, AttrValue] = {}
    for pair in pairs:
        key = _text(pair.key, f"{where}: attribute key")
        value = _proto_value(pair.value, key, where, depth)
        if value is not None:
            out[key] = value
    return out


def _proto_value(value: AnyValue, key: str, where: str, depth: int) -> AttrValue | None:
    which = value.WhichOneof("value")
    if which == "string_value":
        return _text(value.string_value, f"{where}: attribute '{key[:80]}'")
    if which == "bool_value":
        return value.bool_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "bytes_value":
        return value.bytes_value
    if which not in ("array_value", "kvlist_value"):
        return None  # empty (or a profiles-only string table index): no value
    if depth >= MAX_DEPTH:
        raise Invalid(f"{where}: attribute '{key[:80]}' is nested deeper than {MAX_DEPTH} levels")
    if which == "array_value":
        items = (_proto_value(v, key, where, depth + 1) for v in value.array_value.values)
        return tuple(v for v in items if v is not None)
    return _proto_attributes(value.kvlist_value.values, where, depth + 1)


# --- OTLP/JSON -------------------------------------------------------------------------------------------------


def spans_from_json(obj: Mapping[str, Any]) -> list[Span]:
    """The spans of a parsed OTLP/JSON ``ExportTraceServiceRequest``; raises ``Invalid`` with the reason."""
    try:
        return _json_request(obj)
    except _UNEXPECTED as exc:  # belt and braces: data never crashes the caller
        raise Invalid(f"malformed OTLP/JSON export ({type(exc).__name__})") from None


def _get(obj: Mapping[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _json_list(obj: Mapping[str, Any], camel: str, snake: str, where: str) -> list[Any]:
    value = _get(obj, camel, snake)
    if value is None:
        return []
    if not isinstance(value, list):
        raise Invalid(f"{where}.{camel} must be an array, got {kind_of(value)}")
    return value


def _json_object(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(f"{where} must be an object, got {kind_of(value)}")
    return value


def _json_str(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Invalid(f"{where} must be a string, got {kind_of(value)}")
    return _text(value, where)


def _json_request(obj: Mapping[str, Any]) -> list[Span]:
    if not isinstance(obj, Mapping):
        raise Invalid(f"OTLP/JSON export must be an object, got {kind_of(obj)}")
    if _get(obj, "resourceSpans", "resource_spans") is None:
        raise Invalid("OTLP/JSON export has no resourceSpans")
    spans: list[Span] = []
    for r, resource_spans in enumerate(_json_list(obj, "resourceSpans", "resource_spans", "OTLP export")):
        here = f"OTLP resourceSpans[{r}]"
        resource_spans = _json_object(resource_spans, here)
        resource_obj = _json_object(resource_spans.get("resource"), f"{here}.resource")
        resource = _json_attributes(resource_obj, f"{here}.resource")
        for s, scope_spans in enumerate(_json_list(resource_spans, "scopeSpans", "scope_spans", here)):
            scope_here = f"{here}.scopeSpans[{s}]"
            scope_spans = _json_object(scope_spans, scope_here)
            scope_obj = _json_object(scope_spans.get("scope"), f"{scope_here}.scope")
            scope = _json_str(scope_obj.get("name"), f"{scope_here}.scope.name")
            for i, span in enumerate(_json_list(scope_spans, "spans", "spans", scope_here)):
                where = f"OTLP span resourceSpans[{r}].scopeSpans[{s}].spans[{i}]"
                spans.append(_json_span(_json_object(span, where), where, resource, scope))
    return spans


def _json_span(span: Mapping[str, Any], where: str, resource: Mapping[str, AttrValue], scope: str) -> Span:
    status = _json_object(span.get("status"), f"{where}: status")
    return Span(
        trace_id=_json_id(_get(span, "traceId", "trace_id"), 16, "traceId", where, True),
        span_id=_json_id(_get(span, "spanId", "span_id"), 8, "spanId", where, True),
        parent_span_id=_json_id(_get(span, "parentSpanId", "parent_span_id"), 8, "parentSpanId", where, False),
        name=_json_str(span.get("name"), f"{where}: name"),
        kind=_json_enum(span.get("kind"), _SPAN_KINDS, "kind", where),
        start_ns=_json_uint64(_get(span, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano", where),
        end_ns=_json_uint64(_get(span, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano", where),
        status_code=_json_enum(status.get("code"), _STATUS_CODES, "status.code", where),
        status_message=_json_str(status.get("message"), f"{where}: status.message"),
        attributes=_json_attributes(span, where),
        events=tuple(
            _json_event(e, event, where) for e, event in enumerate(_json_list(span, "events", "events", where))
        ),
        resource=resource,
        scope_name=scope,
    )


def _json_event(e: int, event: Any, where: str) -> SpanEvent:
    here = f"{where}: events[{e}]"
    event = _json_object(event, here)
    return SpanEvent(
        name=_json_str(event.get("name"), f"{here}.name"),
        time_ns=_json_uint64(_get(event, "timeUnixNano", "time_unix_nano"), f"events[{e}].timeUnixNano", where),
        attributes=_json_attributes(event, here),
    )


def _json_id(value: Any, size: int, name: str, where: str, required: bool) -> str:
    if value is None or value == "":
        if required:
            raise Invalid(f"{where}: {name} is missing")
        return ""
    if not isinstance(value, str):
        raise Invalid(f"{where}: {name} must be a hex string, got {kind_of(value)}")
    if len(value) != 2 * size or not _HEX.fullmatch(value):
        hint = " (OTLP/JSON writes ids as hex, not base64)" if len(value) == 4 * math.ceil(size / 3) else ""
        raise Invalid(f"{where}: {name} must be {2 * size} hex characters{hint}")
    return _id_hex(bytes.fromhex(value), size, name, where, required)


def _json_uint64(value: Any, name: str, where: str) -> int:
    number = _json_int(value, name, where)
    if not 0 <= number < 2**64:
        raise Invalid(f"{where}: {name} must be an unsigned 64-bit integer")
    return number


def _json_int(value: Any, name: str, where: str) -> int:
    if value is None:
        return 0
    if isinstance(value, str) and _INT.fullmatch(value):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{where}: {name} must be an integer (a number or a decimal string)")
    return value


def _json_enum(value: Any, names: Mapping[str, int], name: str, where: str) -> int:
    if isinstance(value, str) and value in names:
        return names[value]
    if isinstance(value, str) and not _INT.fullmatch(value):
        raise Invalid(f"{where}: {name} {value[:40]!r} is not one of {', '.join(names)}")
    return _enum(_json_int(value, name, where), names, name, where)


def _json_attributes(obj: Mapping[str, Any], where: str) -> dict[str, AttrValue]:
    return _json_pairs(_json_list(obj, "attributes", "attributes", where), where, 0)


def _json_pairs(pairs: list[Any], where: str, depth: int) -> dict[str, AttrValue]:
    out: dict[str, AttrValue] = {}
    for a, pair in enumerate(pairs):
        here = f"{where}: attributes[{a}]"
        pair = _json_object(pair, here)
        key = pair.get("key")
        if not isinstance(key, str):
            raise Invalid(f"{here}.key must be a string, got {kind_of(key)}")
        _text(key, f"{here}.key")
        value = _json_value(pair.get("value"), key, where, depth)
        if value is not None:
            out[key] = value
    return out


_ANY_VALUE_FIELDS = (
    ("stringValue", "string_value"),
    ("boolValue", "bool_value"),
    ("intValue", "int_value"),
    ("doubleValue", "double_value"),
    ("bytesValue", "bytes_value"),
    ("arrayValue", "array_value"),
    ("kvlistValue", "kvlist_value"),
)


def _json_value(value: Any, key: str, where: str, depth: int) -> AttrValue | None:
    value = _json_object(value, f"{where}: attribute '{key[:80]}'")
    for camel, snake in _ANY_VALUE_FIELDS:
        item = _get(value, camel, snake)
        if item is not None:
            return _json_typed(camel, item, key, where, depth)
    return None  # an empty AnyValue: no value


def _json_typed(kind: str, item: Any, key: str, where: str, depth: int) -> AttrValue:
    here = f"{where}: attribute '{key[:80]}'"
    if kind == "stringValue":
        return _json_str(item, here)
    if kind == "boolValue":
        if not isinstance(item, bool):
            raise Invalid(f"{here}: boolValue must be true or false, got {kind_of(item)}")
        return item
    if kind == "intValue":
        number = _json_int(item, "intValue", here)
        if not -(2**63) <= number < 2**63:
            raise Invalid(f"{here}: intValue must be a signed 64-bit integer")
        return number
    if kind == "doubleValue":
        return _json_double(item, here)
    if kind == "bytesValue":
        return _json_bytes(item, here)
    if depth >= MAX_DEPTH:
        raise Invalid(f"{here} is nested deeper than {MAX_DEPTH} levels")
    values = _json_object(item, f"{here}: {kind}").get("values")
    if values is None:
        values = []
    if not isinstance(values, list):
        raise Invalid(f"{here}: {kind}.values must be an array, got {kind_of(values)}")
    if kind == "kvlistValue":
        return _json_pairs(values, where, depth + 1)
    items = (_json_value(v, key, where, depth + 1) for v in values)
    return tuple(v for v in items if v is not None)


def _json_double(item: Any, here: str) -> float:
    if isinstance(item, str) and _FLOAT.fullmatch(item):
        return float(item)
    if isinstance(item, bool) or not isinstance(item, int | float):
        raise Invalid(f"{here}: doubleValue must be a number, got {kind_of(item)}")
    return float(item)


def _json_bytes(item: Any, here: str) -> bytes:
    if not isinstance(item, str):
        raise Invalid(f"{here}: bytesValue must be a base64 string, got {kind_of(item)}")
    try:
        return base64.b64decode(item, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(f"{here}: bytesValue is not valid base64") from None
