"""The OTLP/HTTP receiver: ``POST /v1/traces`` → the consumed Kafka topic, one message per trace.

Apps export spans with any OpenTelemetry SDK (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://HOST:PORT/v1/traces``);
the receiver checks the request (token, media type, encoding, size, that the body is an OTLP trace export), splits
it per trace id the way the Collector's Kafka exporter does with ``partition_traces_by_id``, and produces one
message per trace keyed by the trace id (hex), so all spans of a trace reach one partition and one consumer, which
joins a trace's retriever and LLM spans. A message keeps the request's encoding: protobuf stays protobuf, OTLP/JSON
stays OTLP/JSON. The request is answered 200 only once Kafka acknowledged every message of it; otherwise 503 with
``Retry-After``, and the exporter sends it again (delivery is at least once, like the rest of lookout).

Errors are answered with a one-line reason in a ``google.rpc.Status`` (protobuf for protobuf requests, else
``{"code": N, "message": "..."}``), as OTLP/HTTP asks.
"""

from __future__ import annotations

import hmac
import json
import re
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import APIRouter, Request, Response
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from agent import metrics
from agent.config import KafkaSettings
from agent.config_otel import OtlpSettings
from agent.decode import Invalid, parse_object
from agent.source import kafka_client_config, unreachable

log = structlog.get_logger(__name__)

TRACES_PATH = "/v1/traces"
"""The OTLP/HTTP traces path."""
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
RETRY_AFTER_S = 5
"""``Retry-After`` of a 503: when the exporter should try the request again."""
SIZE_MARGIN = 65_536
"""Bytes the producer's ``max_request_size`` allows beyond ``otlp.max_body_bytes`` (a message's key and headers)."""

_GRPC_CODES = {400: 3, 401: 16, 413: 8, 415: 3, 500: 13, 503: 14}
"""HTTP status → ``google.rpc.Code``: INVALID_ARGUMENT, UNAUTHENTICATED, RESOURCE_EXHAUSTED, INTERNAL, UNAVAILABLE."""
_HEX_TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")

Message = tuple[str | None, bytes]
"""One Kafka message: the trace id in hex (None for spans without a valid one) and the value."""


class Rejected(Exception):
    """A request answered with an error: the HTTP status and the one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Split:
    """A request split per trace."""

    messages: list[Message]
    """One per trace, in order of first appearance; empty when the request holds no span."""
    spans: int
    """Spans in the request."""


# --- the request's headers and body ---------------------------------------------------------------------------


def _essence(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def media_type(content_type: str | None) -> str:
    """``PROTOBUF`` or ``JSON`` from a Content-Type (parameters such as ``; charset=utf-8`` allowed), else 415."""
    kind = _essence(content_type)
    if kind not in (PROTOBUF, JSON):
        shown = kind or "none"
        raise Rejected(415, f"unsupported Content-Type {shown!r}; send {PROTOBUF} or {JSON}")
    return kind


def gzipped(content_encoding: str | None) -> bool:
    """Whether the body is gzip-compressed (``gzip``), or plain (none, ``identity``); other encodings are 415."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return False
    if encoding == "gzip":
        return True
    raise Rejected(415, f"unsupported Content-Encoding {encoding!r}; send gzip or identity")


def check_token(authorization: str | None, token: str) -> None:
    """The ``Authorization: Bearer TOKEN`` header must carry ``token`` (compared in constant time), else 401."""
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise Rejected(401, "missing bearer token; send Authorization: Bearer <otlp.token>")
    if not hmac.compare_digest(credentials.strip().encode("utf-8"), token.encode("utf-8")):
        raise Rejected(401, "wrong bearer token")


def check_length(content_length: str | None, limit: int) -> None:
    """413 when the declared Content-Length is over ``limit`` (the stream is counted too, as it is read)."""
    if content_length is not None and content_length.strip().isdigit() and int(content_length) > limit:
        raise Rejected(413, f"body of {int(content_length)} bytes is over the {limit}-byte limit (otlp.max_body_bytes)")


@dataclass
class BodyReader:
    """Collects a body chunk by chunk, inflating gzip as it comes; raw or inflated past ``limit`` bytes is 413.

    Args:
        limit: ``otlp.max_body_bytes``; the compressed and the decompressed size are each held to it (a zip bomb
            stops at ``limit + 1`` inflated bytes).
        gzip: Whether the body is gzip (several members allowed, as ``gzip -c a b`` writes them).
    """

    limit: int
    gzip: bool
    _raw: int = 0
    _out: bytearray = field(default_factory=bytearray)
    _inflater: Any = None

    def feed(self, chunk: bytes) -> None:
        """Take the next chunk."""
        self._raw += len(chunk)
        if self._raw > self.limit:
            raise Rejected(413, f"body is over the {self.limit}-byte limit (otlp.max_body_bytes)")
        if not self.gzip:
            self._out += chunk
            return
        try:
            self._inflate(chunk)
        except zlib.error as exc:
            raise Rejected(400, f"body is not valid gzip ({exc})") from None

    def _inflate(self, data: bytes) -> None:
        while data:
            if self._inflater is None:
                self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            inflater = self._inflater
            out = inflater.decompress(data, self.limit + 1 - len(self._out))
            self._out += out
            if len(self._out) > self.limit:
                raise Rejected(413, f"decompressed body is over the {self.limit}-byte limit (otlp.max_body_bytes)")
            if inflater.eof:  # a member ended; what follows is the next member
                data, self._inflater = inflater.unused_data, None
            else:
                data = inflater.unconsumed_tail
                if not out:
                    break

    def body(self) -> bytes:
        """The whole (decompressed) body; 400 when a gzip member is cut short."""
        if self._inflater is not None:
            raise Rejected(400, "body is not valid gzip (truncated)")
        return bytes(self._out)


# --- splitting per trace --------------------------------------------------------------------------------------


def proto_key(trace_id: bytes) -> str | None:
    """The message key of a protobuf trace id: 32 hex digits, or None for an invalid id (not 16 bytes, all zero)."""
    return trace_id.hex() if len(trace_id) == 16 and any(trace_id) else None


def json_key(trace_id: object) -> str | None:
    """The message key of an OTLP/JSON ``traceId`` (hex): lower-case, or None for an invalid id."""
    if isinstance(trace_id, str) and _HEX_TRACE_ID.fullmatch(trace_id) and trace_id.strip("0"):
        return trace_id.lower()
    return None


def split_proto(body: bytes) -> Split:
    """A protobuf ``ExportTraceServiceRequest`` split per trace id (400 when it does not parse)."""
    try:
        request = ExportTraceServiceRequest.FromString(body)
    except (DecodeError, RecursionError) as exc:
        raise Rejected(400, f"body is not a protobuf ExportTraceServiceRequest ({exc})") from None
    parts: dict[str | None, _ProtoPart] = {}
    spans = 0
    for i, resource in enumerate(request.resource_spans):
        for j, scope in enumerate(resource.scope_spans):
            for span in scope.spans:
                spans += 1
                key = proto_key(span.trace_id)
                part = parts.get(key)
                if part is None:
                    part = parts[key] = _ProtoPart()
                part.scope(i, resource, j, scope).spans.add().CopyFrom(span)
    if len(parts) == 1:  # one trace: the body as it came
        return Split([(next(iter(parts)), body)], spans)
    return Split([(key, part.request.SerializeToString()) for key, part in parts.items()], spans)


class _ProtoPart:
    """One trace's share of a protobuf export: copies of the resources and scopes its spans sit in."""

    def __init__(self) -> None:
        self.request = ExportTraceServiceRequest()
        self.at = (-1, -1)
        self.resource = ResourceSpans()
        self.current = ScopeSpans()

    def scope(self, i: int, resource: ResourceSpans, j: int, scope: ScopeSpans) -> ScopeSpans:
        """The part's copy of resource ``i``'s scope ``j`` (without spans), added when first needed."""
        if self.at[0] != i:
            self.resource = self.request.resource_spans.add(schema_url=resource.schema_url)
            self.resource.resource.CopyFrom(resource.resource)
        if self.at != (i, j):
            self.current = self.resource.scope_spans.add(schema_url=scope.schema_url)
            self.current.scope.CopyFrom(scope.scope)
        self.at = (i, j)
        return self.current


def split_json(body: bytes, limit: int) -> Split:
    """An OTLP/JSON export split per trace id (400 when it is not a JSON object of OTLP's shape)."""
    try:
        export = parse_object(body, limit, "OTLP/JSON export")
    except Invalid as exc:
        raise Rejected(400, str(exc)) from None
    except RecursionError:
        raise Rejected(400, "OTLP/JSON export nested too deeply") from None
    parts: dict[str | None, _JsonPart] = {}
    spans = 0
    for i, resource, j, scope, span in _json_spans(export):
        spans += 1
        key = json_key(span.get("traceId", span.get("trace_id")))
        part = parts.get(key)
        if part is None:
            part = parts[key] = _JsonPart(export)
        part.scope(i, resource, j, scope).append(span)
    if len(parts) == 1:  # one trace: the body as it came
        return Split([(next(iter(parts)), body)], spans)
    return Split([(key, part.encoded()) for key, part in parts.items()], spans)


_RESOURCE_SPANS = ("resourceSpans", "resource_spans")
_SCOPE_SPANS = ("scopeSpans", "scope_spans")
_SPANS = ("spans",)


def _present(obj: Mapping[str, Any], names: tuple[str, ...]) -> str:
    """The first of ``names`` (one field, camelCase or snake_case) that ``obj`` has; the first when none."""
    return next((name for name in names if name in obj), names[0])


def _array(obj: Mapping[str, Any], names: tuple[str, ...], where: str) -> tuple[str, list[Any]]:
    """The field's name and value, which must be an array (absent or null: empty)."""
    name = _present(obj, names)
    value = obj.get(name)
    if value is None:
        return name, []
    if not isinstance(value, list):
        raise Rejected(400, f"{where}{name} must be an array")
    return name, value


def _objects(items: list[Any], where: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise Rejected(400, f"{where}[{n}] must be an object")
        yield n, item


def _json_spans(
    export: Mapping[str, Any],
) -> Iterator[tuple[int, dict[str, Any], int, dict[str, Any], dict[str, Any]]]:
    """(resource index, resource, scope index, scope, span) for every span, checking the shape on the way."""
    name, resources = _array(export, _RESOURCE_SPANS, "")
    for i, resource in _objects(resources, name):
        scopes_name, scopes = _array(resource, _SCOPE_SPANS, f"{name}[{i}].")
        where = f"{name}[{i}].{scopes_name}"
        for j, scope in _objects(scopes, where):
            spans_name, spans = _array(scope, _SPANS, f"{where}[{j}].")
            for _, span in _objects(spans, f"{where}[{j}].{spans_name}"):
                yield i, resource, j, scope, span


def _without(obj: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in names}


class _JsonPart:
    """One trace's share of an OTLP/JSON export: the export's, resources' and scopes' other fields, its spans."""

    def __init__(self, export: Mapping[str, Any]) -> None:
        self.resources: list[dict[str, Any]] = []
        self.export = {**_without(export, _RESOURCE_SPANS), _present(export, _RESOURCE_SPANS): self.resources}
        self.at = (-1, -1)
        self.scopes: list[dict[str, Any]] = []
        self.spans: list[Any] = []

    def scope(self, i: int, resource: Mapping[str, Any], j: int, scope: Mapping[str, Any]) -> list[Any]:
        """The span list of the part's copy of resource ``i``'s scope ``j``, added when first needed."""
        if self.at[0] != i:
            self.scopes = []
            self.resources.append({**_without(resource, _SCOPE_SPANS), _present(resource, _SCOPE_SPANS): self.scopes})
        if self.at != (i, j):
            self.spans = []
            self.scopes.append({**_without(scope, _SPANS), "spans": self.spans})
        self.at = (i, j)
        return self.spans

    def encoded(self) -> bytes:
        """The part as OTLP/JSON bytes."""
        return json.dumps(self.export, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --- responses --------------------------------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def status_proto(code: int, message: str) -> bytes:
    """A ``google.rpc.Status`` (code, message) in protobuf: two fields, written by hand (no googleapis dependency)."""
    text = message.encode("utf-8")
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def error_response(status: int, reason: str, kind: str) -> Response:
    """The error answer: a ``google.rpc.Status`` in the request's encoding (JSON when it is unknown)."""
    code = _GRPC_CODES.get(status, 2)
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if kind == PROTOBUF:
        return Response(status_proto(code, reason), status_code=status, media_type=PROTOBUF, headers=headers)
    body = json.dumps({"code": code, "message": reason}).encode("utf-8")
    return Response(body, status_code=status, media_type=JSON, headers=headers)


def ok_response(kind: str) -> Response:
    """200 with an empty ``ExportTraceServiceResponse`` (``{}`` in JSON)."""
    if kind == PROTOBUF:
        return Response(ExportTraceServiceResponse().SerializeToString(), media_type=PROTOBUF)
    return Response(b"{}", media_type=JSON)


# --- the receiver -----------------------------------------------------------------------------------------------


class OtlpReceiver:
    """``POST /v1/traces`` (:attr:`router`) writing each export to Kafka through one shared producer.

    The producer is opened by :meth:`connect`, or by the first request that needs it (a request while Kafka is
    unreachable is answered 503 and the next one tries again); :meth:`close` closes it.

    Args:
        settings: ``otlp.*``: token, body limit, topic, acknowledgement timeout.
        kafka: ``kafka.*``: the brokers, security, and ``kafka.topic`` (the default topic).
    """

    def __init__(self, settings: OtlpSettings, kafka: KafkaSettings) -> None:
        self.settings = settings
        self.kafka = kafka
        self.topic = settings.topic or kafka.topic
        self._producer: Any = None
        self._lock = threading.Lock()
        self._closed = False
        self.router = APIRouter()
        self.router.add_api_route(TRACES_PATH, self.export, methods=["POST"], include_in_schema=False)

    def __repr__(self) -> str:
        return f"OtlpReceiver(topic={self.topic!r}, bootstrap={self.kafka.bootstrap_servers!r})"

    def connect(self) -> None:
        """Open the producer now; raise the one-line :class:`~agent.errors.BrokerError` if Kafka is unreachable."""
        from kafka.errors import KafkaError

        try:
            self._open()
        except KafkaError as exc:
            raise unreachable(self.kafka, exc) from None

    def close(self) -> None:
        """Close the producer (requests after this are answered 503)."""
        with self._lock:
            self._closed = True
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=self.settings.ack_timeout_s)

    async def export(self, request: Request) -> Response:
        """One OTLP/HTTP export: check, read, split per trace, produce, wait for every acknowledgement."""
        headers = request.headers
        kind = PROTOBUF if _essence(headers.get("content-type")) == PROTOBUF else JSON  # how errors are encoded
        try:
            if self.settings.token is not None:
                check_token(headers.get("authorization"), self.settings.token.get_secret_value())
            kind = media_type(headers.get("content-type"))
            reader = BodyReader(self.settings.max_body_bytes, gzipped(headers.get("content-encoding")))
            check_length(headers.get("content-length"), self.settings.max_body_bytes)
            async for chunk in request.stream():
                reader.feed(chunk)
            spans = await run_in_threadpool(self._write, kind, reader.body())
        except Rejected as exc:
            metrics.otlp_requests.labels(code=str(exc.status)).inc()
            if exc.status >= 500:
                log.warning("OTLP export not written", reason=exc.reason, topic=self.topic)
            return error_response(exc.status, exc.reason, kind)
        except ClientDisconnect:
            metrics.otlp_requests.labels(code="400").inc()
            return error_response(400, "the client went away before the body was read", kind)
        metrics.otlp_requests.labels(code="200").inc()
        metrics.otlp_spans_received.inc(spans)
        return ok_response(kind)

    def _write(self, kind: str, body: bytes) -> int:
        """Split ``body`` per trace and produce it; the number of spans written."""
        split = split_proto(body) if kind == PROTOBUF else split_json(body, self.settings.max_body_bytes)
        if split.messages:
            self._produce(split.messages)
        return split.spans

    def _open(self) -> Any:
        """The shared producer, opened on first use (raises kafka-python's error when Kafka cannot be reached)."""
        with self._lock:
            if self._closed:
                raise Rejected(503, "the receiver is stopping")
            if self._producer is None:
                from kafka import KafkaProducer

                config = kafka_client_config(self.kafka)
                wait_ms = int(self.settings.ack_timeout_s * 1000)
                config["bootstrap_timeout_ms"] = min(config["bootstrap_timeout_ms"], wait_ms)
                self._producer = KafkaProducer(
                    acks="all",
                    max_request_size=self.settings.max_body_bytes + SIZE_MARGIN,
                    max_block_ms=wait_ms,
                    **config,
                )
            return self._producer

    def _produce(self, messages: list[Message]) -> None:
        """Send every message, then wait for every acknowledgement within ``otlp.ack_timeout_s`` (else 503)."""
        from kafka.errors import KafkaError, KafkaTimeoutError, MessageSizeTooLargeError

        try:
            producer = self._open()
        except KafkaError as exc:
            raise Rejected(503, f"Kafka unreachable at {self.kafka.bootstrap_servers} ({type(exc).__name__})") from None
        timeout_s = self.settings.ack_timeout_s
        deadline = time.monotonic() + timeout_s
        try:
            futures = [
                producer.send(self.topic, value=value, key=key.encode("ascii") if key else None)
                for key, value in messages
            ]
            for future in futures:
                future.get(timeout=max(0.001, deadline - time.monotonic()))
        except MessageSizeTooLargeError as exc:
            raise Rejected(413, f"a trace is too large for topic {self.topic} ({exc})") from None
        except KafkaTimeoutError:
            raise Rejected(503, f"Kafka did not acknowledge within {timeout_s:g} s (otlp.ack_timeout_s)") from None
        except KafkaError as exc:
            raise Rejected(503, f"Kafka did not take the export ({type(exc).__name__}: {exc})") from None
