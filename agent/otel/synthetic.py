"""v1 records as OTLP trace exports, the way an instrumented app would send them, and what decoding them costs.

Used by ``lookout bench`` (``otlp_decode_records_per_s``).

Each record becomes one trace: a root span (the app's request), an OpenInference retriever span when the record
has context, and a chat span under the current GenAI semantic conventions (messages as JSON strings, model,
token usage, conversation id). Ids derive from the record id, so the same records always give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from agent.config_otel import OtelSettings
from agent.decode import DecodeStep
from agent.otel.step import TraceStep
from agent.step import BatchState
from agent.types import Origin, RawMessage


def _id(seed: str, n: int) -> bytes:
    return hashlib.sha256(seed.encode()).digest()[:n]


def _attrs(values: Mapping[str, str | int]) -> list[KeyValue]:
    return [
        KeyValue(key=k, value=AnyValue(int_value=v) if isinstance(v, int) else AnyValue(string_value=v))
        for k, v in values.items()
    ]


def _parts(text: str) -> list[dict[str, str]]:
    return [{"type": "text", "content": text}]


def _spans(record: Mapping[str, Any], start_ns: int) -> list[ProtoSpan]:
    rid = str(record.get("id", ""))
    trace_id, root_id, llm_id = _id(rid, 16), _id(rid + "/root", 8), _id(rid + "/llm", 8)
    history = [m for m in record.get("messages", []) if isinstance(m, dict)]
    if "prompt" in record:
        history.append({"role": "user", "content": record["prompt"]})
    inputs = [{"role": m["role"], "parts": _parts(str(m["content"]))} for m in history]
    outputs = [{"role": "assistant", "parts": _parts(str(record["response"])), "finish_reason": "stop"}]
    usage = record.get("usage") or {}
    attrs: dict[str, str | int] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": str(record.get("model", "")),
        "gen_ai.input.messages": json.dumps(inputs),
        "gen_ai.output.messages": json.dumps(outputs),
        "gen_ai.conversation.id": f"session-{rid}",
    }
    for name, key in (("input_tokens", "prompt_tokens"), ("output_tokens", "completion_tokens")):
        if isinstance(usage.get(key), int):
            attrs[f"gen_ai.usage.{name}"] = usage[key]
    spans = [
        ProtoSpan(
            trace_id=trace_id, span_id=root_id, name="POST /chat", kind=ProtoSpan.SPAN_KIND_SERVER,
            start_time_unix_nano=start_ns, end_time_unix_nano=start_ns + 900_000_000,
        ),
        ProtoSpan(
            trace_id=trace_id, span_id=llm_id, parent_span_id=root_id, name="chat", kind=ProtoSpan.SPAN_KIND_CLIENT,
            start_time_unix_nano=start_ns + 100_000_000, end_time_unix_nano=start_ns + 800_000_000,
            attributes=_attrs(attrs),
        ),
    ]  # fmt: skip
    context = record.get("context") or []
    if context:
        docs = {f"retrieval.documents.{i}.document.content": str(t) for i, t in enumerate(context)}
        spans.insert(1, ProtoSpan(
            trace_id=trace_id, span_id=_id(rid + "/retrieve", 8), parent_span_id=root_id, name="retrieve",
            start_time_unix_nano=start_ns + 1_000_000, end_time_unix_nano=start_ns + 90_000_000,
            attributes=_attrs({"openinference.span.kind": "RETRIEVER", **docs}),
        ))  # fmt: skip
    return spans


def exports(records: Sequence[Mapping[str, Any]], per_export: int = 16, service: str = "bench-app") -> list[bytes]:
    """``records`` as serialized ``ExportTraceServiceRequest`` messages of ``per_export`` traces each."""
    out = []
    resource = Resource(attributes=_attrs({"service.name": service}))
    scope = InstrumentationScope(name="lookout.synthetic")
    for i in range(0, len(records), per_export):
        spans = [
            s
            for j, r in enumerate(records[i : i + per_export])
            for s in _spans(r, 1_764_000_000_000_000_000 + (i + j) * 10**9)
        ]
        request = ExportTraceServiceRequest(
            resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(scope=scope, spans=spans)])]
        )
        out.append(request.SerializeToString())
    return out


def measure_decode(records: Sequence[Mapping[str, Any]], rounds: int = 3) -> float:
    """Records/s the decode and trace steps get out of :func:`exports` of ``records`` (best of ``rounds``).

    Raises RuntimeError when a record does not come out (the bench must measure what it claims).
    """
    values = exports(records)
    messages = [RawMessage(Origin("bench", 0, i), v) for i, v in enumerate(values)]
    best = 0.0
    for _ in range(rounds):
        decode, trace = DecodeStep(format="auto"), TraceStep(OtelSettings(trace_wait_s=0))
        start = time.perf_counter()
        batch = BatchState.of(messages)
        decode.apply(batch)
        trace.apply(batch)
        elapsed = time.perf_counter() - start
        if len(batch.samples) != len(records):
            reasons = sorted({d.reason for d in batch.dead_letters})[:3]
            raise RuntimeError(f"bench: {len(batch.samples)} of {len(records)} OTLP records decoded; {reasons}")
        best = max(best, len(records) / elapsed)
    return best
