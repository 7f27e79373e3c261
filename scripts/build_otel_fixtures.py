"""Builds tests/data/otel/: real instrumented OpenAI apps' spans, as the Collector's Kafka exporter writes them.

Each fixture is one request of an app from ``tests/otel_apps.py`` (the real ``openai`` client, instrumented by
OpenLLMetry or OpenInference, against the stand-in OpenAI API; seeded ids), captured as the one
``ExportTraceServiceRequest`` its OTLP exporter sends, and written in the two encodings of the Collector's
``kafkaexporter`` for traces (one Kafka message value = one ``ExportTraceServiceRequest``):

- ``NAME.otlp_proto``: the serialized protobuf (``ptrace.ProtoMarshaler``; field order inside a message may differ
  from Go's, which no protobuf reader depends on);
- ``NAME.otlp_json``: what ``ptrace.JSONMarshaler`` writes (``pdata/internal/generated_proto_*.go``
  ``MarshalJSON`` of open-telemetry/opentelemetry-collector, and ``pdata/internal/json/stream.go``), followed here:
  compact JSON, lowerCamelCase field names in ``.proto`` declaration order; ``traceId``/``spanId``/
  ``parentSpanId`` (spans and links) as lowercase hex, omitted when empty; other ``bytes`` (``bytesValue``) as
  base64; 64-bit integers (``startTimeUnixNano``, ``intValue``) as decimal strings; 32-bit integers and enums
  (``kind``, ``status.code``) as JSON numbers; scalars and repeated fields omitted at their zero value; embedded
  messages that are not oneof members (``resource``, ``scope``, ``status``, a key-value's ``value``) always
  written, ``{}`` when empty (so every span has ``"status"``); AnyValue as its one set member
  (``stringValue``, ``intValue``, ``arrayValue``...); non-ASCII text unescaped.

Also ``fixtures.json``: per fixture, what the app sent (question, answer, model, tokens, session, user, service,
documents), the ids it made and the LLM span's latency, for the tests to compare with what lookout stored.

Run: ``.venv/bin/python scripts/build_otel_fixtures.py`` (about 10 s; ids are seeded, timestamps are not).
"""

from __future__ import annotations

import base64
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "data" / "otel"
APPS = REPO / "tests" / "otel_apps.py"

TOKENS = {"prompt_tokens": 42, "completion_tokens": 7}
"""What the stand-in reports for every answer (``tests/otel_apps.py`` defaults)."""
DELAY_MS = 120
"""The stand-in's delay, so the LLM span's latency is well above zero."""

FRANCE = {
    "question": "What is the capital of France?",
    "documents": ["Paris is the capital and largest city of France.", "France is a country in Western Europe."],
}
EIFFEL = {
    "question": "How tall is the Eiffel Tower?",
    "documents": ["The Eiffel Tower is 330 metres tall.", "It was completed in 1889 on the Champ de Mars."],
}
FIXTURES: dict[str, dict[str, Any]] = {
    "openllmetry_rag": {
        "library": "openllmetry",
        "seed": 101,
        "answers": ["Paris is the capital of France.", "About 2.1 million people live in Paris."],
        "call": {
            **FRANCE,
            "followup": "How many people live there?",
            "session_id": "sess-llm-1",
            "user_id": "user-llm-1",
            "service": "support-bot",
        },
    },
    "openinference_rag": {
        "library": "openinference",
        "seed": 102,
        "answers": ["The Eiffel Tower is 330 metres tall."],
        "call": {**EIFFEL, "session_id": "sess-oi-1", "user_id": "user-oi-1", "service": "docs-rag"},
    },
    "openllmetry_error": {
        "library": "openllmetry",
        "seed": 103,
        "fail": 500,
        "answers": [],
        "call": {**FRANCE, "session_id": "sess-llm-2", "user_id": "user-llm-2", "service": "support-bot"},
    },
    "openinference_error": {
        "library": "openinference",
        "seed": 104,
        "fail": 429,
        "answers": [],
        "call": {**EIFFEL, "session_id": "sess-oi-2", "user_id": "user-oi-2", "service": "docs-rag"},
    },
}
"""Fixture name → the app run that makes it."""

_HEX_IDS = frozenset({"trace_id", "span_id", "parent_span_id"})
_INT64 = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
    }
)


def collector_json(message: Message) -> bytes:
    """``message`` as the Collector's pdata JSON marshaler writes it (the rules in the module docstring)."""
    return json.dumps(_message(message), separators=(",", ":"), ensure_ascii=False).encode()


def _message(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        if _is_repeated(field):
            values = getattr(message, field.name)
            if len(values):
                out[field.json_name] = [_value(field, v) for v in values]
        elif field.type == FieldDescriptor.TYPE_MESSAGE and field.containing_oneof is None:
            out[field.json_name] = _message(getattr(message, field.name))  # embedded: always written
        elif message.HasField(field.name) if field.containing_oneof is not None else _is_set(message, field):
            out[field.json_name] = _value(field, getattr(message, field.name))
    return out


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _is_set(message: Message, field: FieldDescriptor) -> bool:
    return bool(getattr(message, field.name) != field.default_value)


def _value(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return _message(value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return value.hex() if field.name in _HEX_IDS else base64.b64encode(value).decode()
    if field.type in _INT64:
        return str(value)
    if field.type == FieldDescriptor.TYPE_DOUBLE and not math.isfinite(value):
        return {"inf": "+Inf", "-inf": "-Inf"}.get(str(value), "NaN")  # Go's %f of the non-finite
    return value  # bool, string, 32-bit integers and enums (numbers), finite doubles


def _check(request: ExportTraceServiceRequest, encoded: bytes) -> None:
    """The JSON says what the protobuf says: protobuf's own JSON mapping, ids as hex, enums as numbers, equal."""
    expected = MessageToDict(request, use_integers_for_enums=True)
    for rs in expected.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                span.setdefault("status", {})
                for item in [span, *span.get("links", [])]:
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in item:
                            item[key] = base64.b64decode(item[key]).hex()
    if json.loads(encoded) != expected:
        raise SystemExit("the Collector JSON encoding does not match the protobuf; see collector_json")


def build(name: str, spec: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Run the fixture's app, write its two encodings; what it sent and made, for ``fixtures.json``."""
    proto_path = workdir / f"{name}.pb"
    argv = [sys.executable, str(APPS), spec["library"], "--out", str(proto_path), "--seed", str(spec["seed"])]
    argv += ["--delay-ms", str(DELAY_MS), "--call", json.dumps(spec["call"])]
    for answer in spec["answers"]:
        argv += ["--answer", answer]
    if "fail" in spec:
        argv += ["--fail", str(spec["fail"])]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=REPO, timeout=120)
    run = json.loads(done.stdout.splitlines()[-1])
    request = ExportTraceServiceRequest()
    request.ParseFromString(proto_path.read_bytes())
    encoded = collector_json(request)
    _check(request, encoded)
    (OUT / f"{name}.otlp_proto").write_bytes(request.SerializeToString())
    (OUT / f"{name}.otlp_json").write_bytes(encoded)
    spans = {s.span_id.hex(): s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans}
    questions = [spec["call"]["question"], spec["call"].get("followup")]
    llm_spans = [
        {
            "span_id": span_id,
            "prompt": questions[n],
            "response": spec["answers"][n] if spec["answers"] else "",
            "start_ns": spans[span_id].start_time_unix_nano,
            "latency_ms": (spans[span_id].end_time_unix_nano - spans[span_id].start_time_unix_nano) / 1e6,
        }
        for n, span_id in enumerate(run["llm_span_ids"])
    ]
    return {
        "library": spec["library"],
        **spec["call"],
        "model": "gpt-4o",
        "response_model": "gpt-4o-2024-08-06",
        **TOKENS,
        "fail": spec.get("fail"),
        "error": run["error"],
        "trace_id": run["trace_id"],
        "root_span_id": run["root_span_id"],
        "retriever_span_id": run["retriever_span_id"],
        "llm_spans": llm_spans,
        "spans": run["spans"],
    }


def main() -> int:
    """Write every fixture and ``fixtures.json``."""
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        manifest = {name: build(name, spec, Path(tmp)) for name, spec in FIXTURES.items()}
    (OUT / "fixtures.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for path in sorted(OUT.iterdir()):
        sys.stdout.write(f"{path.relative_to(REPO)}: {path.stat().st_size} bytes\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
