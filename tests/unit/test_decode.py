"""The decode step: bytes → Sample or DecodeFailure, in step with record schema v1, never raising on data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from agent.decode import DecodeStep, MessageFormat, decode
from agent.step import BatchState
from agent.testing import messages
from agent.types import DecodeFailure, Message, Origin, RawMessage, Sample, Usage

TS_MS = 1_700_000_000_000
TS = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
ORIGIN = Origin("llm-logs", 3, 42)


def raw(value: bytes | None, origin: Origin = ORIGIN) -> RawMessage:
    """One raw message at ``origin``."""
    return RawMessage(origin=origin, value=value)


def encode(obj: Any) -> bytes:
    """JSON bytes of ``obj``."""
    return json.dumps(obj).encode()


def ok(obj: Any, origin: Origin = ORIGIN) -> Sample:
    """Decode ``obj`` and insist on a Sample."""
    result = decode(raw(encode(obj), origin))
    assert isinstance(result, Sample), result
    return result


def record(**fields: Any) -> dict[str, Any]:
    """A minimal valid record with ``fields`` added or replaced."""
    return {"ts": TS_MS, "prompt": "p", "response": "r", **fields}


class TestDecodeValid:
    """Valid records become Samples with every field filled as the schema describes."""

    def test_every_optional_field(self) -> None:
        """A prompt record with every optional field fills every Sample field."""
        obj = {
            "id": "rec-1",
            "ts": "2026-01-02T03:04:05.678Z",
            "prompt": "What is the capital of France?",
            "response": "Paris.",
            "model": "gpt-4o-mini",
            "tenant": "acme",
            "user_id": "u-7",
            "route": "chat",
            "trace_id": "abc123",
            "context": ["Paris is the capital of France.", "France is in Europe."],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3},
            "latency_ms": 250,
            "metadata": {"source": "web", "score": 0.5},
        }
        assert ok(obj) == Sample(
            id="rec-1",
            ts=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
            prompt="What is the capital of France?",
            response="Paris.",
            history=(),
            model="gpt-4o-mini",
            tenant="acme",
            user_id="u-7",
            route="chat",
            context=("Paris is the capital of France.", "France is in Europe."),
            usage=Usage(prompt_tokens=12, completion_tokens=3),
            latency_ms=250.0,
            trace_id="abc123",
            metadata={"source": "web", "score": 0.5},
            origin=ORIGIN,
        )

    def test_ts_is_utc_datetime(self) -> None:
        """The decoded ts is a timezone-aware datetime in UTC."""
        ts = ok(record(ts="2026-01-02T03:04:05Z")).ts
        assert ts.tzinfo is UTC
        assert ts == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    def test_optional_fields_absent_or_null_take_defaults(self) -> None:
        """Null optional fields decode like absent ones: empty strings, empty tuples, None."""
        nulls = dict.fromkeys(
            ("id", "model", "tenant", "user_id", "route", "trace_id", "context", "usage", "latency_ms", "metadata")
        )
        expected = Sample(id="llm-logs/3/42", ts=TS, prompt="p", response="r", origin=ORIGIN)
        assert ok(record(**nulls)) == expected
        assert ok(record()) == expected

    def test_messages_form(self) -> None:
        """Without prompt, the last user message is the prompt; the other turns, system included, are history."""
        sample = ok(
            {
                "ts": TS_MS,
                "response": "r",
                "messages": [
                    {"role": "system", "content": "You are terse."},
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"},
                    {"role": "user", "content": "what time is it?"},
                    {"role": "tool", "content": "12:00"},
                ],
            }
        )
        assert sample.prompt == "what time is it?"
        assert sample.history == (
            Message("system", "You are terse."),
            Message("user", "hi"),
            Message("assistant", "hello"),
            Message("tool", "12:00"),
        )

    def test_prompt_wins_over_messages(self) -> None:
        """With prompt and messages, prompt is the prompt and every message is history."""
        sample = ok(
            record(
                prompt="explicit",
                messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
            )
        )
        assert sample.prompt == "explicit"
        assert sample.history == (Message("system", "s"), Message("user", "u"))

    def test_content_parts_joined(self) -> None:
        """OpenAI content parts keep their text parts, joined by newlines; other parts are dropped."""
        parts = [
            {"type": "text", "text": "first"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            {"type": "text", "text": "second"},
        ]
        sample = ok({"ts": TS_MS, "response": "r", "messages": [{"role": "user", "content": parts}]})
        assert sample.prompt == "first\nsecond"
        assert sample.history == ()

    def test_id_derived_from_origin(self) -> None:
        """A record without id gets ``topic/partition/offset``."""
        assert ok(record()).id == "llm-logs/3/42"
        assert ok(record(), Origin("other", 0, 7)).id == "other/0/7"

    def test_id_kept(self) -> None:
        """A record's own id is used unchanged."""
        assert ok(record(id="  spaced id  ")).id == "  spaced id  "

    @pytest.mark.parametrize(
        ("ts", "expected"),
        [
            (TS_MS, TS),
            (TS_MS + 250.0, datetime(2023, 11, 14, 22, 13, 20, 250000, tzinfo=UTC)),
            (0, datetime(1970, 1, 1, tzinfo=UTC)),
        ],
        ids=["int", "float", "epoch"],
    )
    def test_epoch_milliseconds(self, ts: float, expected: datetime) -> None:
        """Numeric ts is epoch milliseconds, int or float."""
        assert ok(record(ts=ts)).ts == expected

    def test_naive_iso_is_utc(self) -> None:
        """An ISO timestamp without an offset is taken as UTC."""
        assert ok(record(ts="2024-05-01T12:30:00")).ts == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)

    @pytest.mark.parametrize(
        "ts", ["2024-05-01T14:30:00+02:00", "2024-05-01T07:30:00-05:00", "2024-05-01T12:30:00Z", " 2024-05-01T12:30Z "]
    )
    def test_offset_converted_to_utc(self, ts: str) -> None:
        """Timestamps with an offset are converted to the same instant in UTC."""
        decoded = ok(record(ts=ts)).ts
        assert decoded == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
        assert decoded.tzinfo is UTC

    def test_integral_float_usage(self) -> None:
        """Usage counts like 3.0 are accepted as the integer 3."""
        usage = ok(record(usage={"prompt_tokens": 3.0, "completion_tokens": None})).usage
        assert usage == Usage(prompt_tokens=3, completion_tokens=None)
        assert usage is not None
        assert type(usage.prompt_tokens) is int

    def test_unknown_fields_ignored(self) -> None:
        """Unknown top-level fields do not change the result."""
        extra = record(future_field={"nested": [1, 2]}, another=None, v=2)
        assert ok(extra) == ok(record())

    def test_metadata_numbers_are_floats(self) -> None:
        """Metadata numbers are kept as floats, strings as strings."""
        metadata = ok(record(metadata={"n": 3, "x": 1.5, "s": "3"})).metadata
        assert metadata == {"n": 3.0, "x": 1.5, "s": "3"}
        assert type(metadata["n"]) is float

    def test_unicode_kept(self) -> None:
        """Non-ASCII text, escaped or not, comes through unchanged."""
        body = '{"ts": 0, "prompt": "caf\\u00e9", "response": "日本語 ✓"}'.encode()
        sample = decode(raw(body))
        assert isinstance(sample, Sample)
        assert (sample.prompt, sample.response) == ("café", "日本語 ✓")

    def test_batch_helper_offsets(self) -> None:
        """Messages from ``agent.testing.messages`` decode with ids from consecutive offsets."""
        results = [decode(m) for m in messages([encode(record()), encode(record())], topic="logs", partition=2)]
        assert [r.id for r in results if isinstance(r, Sample)] == ["logs/2/0", "logs/2/1"]


INVALID: list[tuple[str, bytes | None, int, str]] = [
    ("not-json", b"not json", 1_048_576, "not JSON: Expecting value at line 1 column 1"),
    ("json-array", b"[1, 2]", 1_048_576, "record must be a JSON object, got array"),
    ("json-string", b'"hello"', 1_048_576, "record must be a JSON object, got string"),
    ("missing-response", encode({"ts": TS_MS, "prompt": "p"}), 1_048_576, "missing required field 'response'"),
    ("response-number", encode(record(response=42)), 1_048_576, "field 'response' must be a string, got number"),
    ("missing-ts", encode({"prompt": "p", "response": "r"}), 1_048_576, "missing required field 'ts'"),
    (
        "ts-not-a-date",
        encode(record(ts="not-a-date")),
        1_048_576,
        "field 'ts' is not an RFC 3339 timestamp: 'not-a-date'",
    ),
    (
        "ts-boolean",
        encode(record(ts=True)),
        1_048_576,
        "field 'ts' must be an RFC 3339 string or epoch milliseconds, got boolean",
    ),
    ("ts-before-1970", encode(record(ts=-1)), 1_048_576, "field 'ts' out of range (1970..2200)"),
    ("ts-after-2200", encode(record(ts="2200-01-01T00:00:00Z")), 1_048_576, "field 'ts' out of range (1970..2200)"),
    (
        "ts-offset-overflow",
        encode(record(ts="0001-01-01T00:00:00+01:00")),
        1_048_576,
        "field 'ts' out of range (1970..2200)",
    ),
    ("nan", b'{"ts": NaN, "prompt": "p", "response": "r"}', 1_048_576, "JSON constant NaN is not allowed"),
    ("infinity", b'{"ts": 1, "prompt": "p", "response": "r", "latency_ms": Infinity}', 1_048_576, "Infinity"),
    ("minus-infinity", b'{"ts": -Infinity, "prompt": "p", "response": "r"}', 1_048_576, "constant -Infinity"),
    ("invalid-utf8", b'{"ts": 1, "prompt": "\xff", "response": "r"}', 1_048_576, "invalid UTF-8 at byte 21"),
    ("oversize", encode(record(response="x" * 100)), 64, "over the 64-byte limit"),
    ("nul-in-response", encode(record(response="a\x00b")), 1_048_576, "field 'response' contains a NUL character"),
    ("tombstone", None, 1_048_576, "empty message value (tombstone)"),
    (
        "context-string",
        encode(record(context="passage")),
        1_048_576,
        "field 'context' must be an array of strings, got string",
    ),
    ("context-item-number", encode(record(context=["a", 1])), 1_048_576, "context[1] must be a string, got number"),
    (
        "metadata-nested",
        encode(record(metadata={"k": {"a": 1}})),
        1_048_576,
        "metadata.k must be a string or number, got object",
    ),
    (
        "metadata-boolean",
        encode(record(metadata={"flag": True})),
        1_048_576,
        "metadata.flag must be a string or number, got boolean",
    ),
    (
        "usage-negative",
        encode(record(usage={"prompt_tokens": -1})),
        1_048_576,
        "usage.prompt_tokens must be a non-negative integer",
    ),
    (
        "usage-fraction",
        encode(record(usage={"completion_tokens": 2.5})),
        1_048_576,
        "usage.completion_tokens must be a non-negative integer",
    ),
    (
        "messages-no-user",
        encode({"ts": TS_MS, "response": "r", "messages": [{"role": "system", "content": "s"}]}),
        1_048_576,
        "field 'messages' has no user message and there is no 'prompt'",
    ),
    (
        "no-prompt-no-messages",
        encode({"ts": TS_MS, "response": "r"}),
        1_048_576,
        "missing required field: 'prompt' or 'messages'",
    ),
    ("prompt-null", encode(record(prompt=None)), 1_048_576, "field 'prompt' must be a string, got null"),
    (
        "messages-not-list",
        encode(record(messages={"role": "user", "content": "u"})),
        1_048_576,
        "field 'messages' must be an array, got object",
    ),
    (
        "content-part-not-object",
        encode(record(messages=[{"role": "user", "content": ["text"]}])),
        1_048_576,
        "messages[0].content parts must be objects",
    ),
    (
        "content-text-part-not-string",
        encode(record(messages=[{"role": "user", "content": [{"type": "text", "text": 1}]}])),
        1_048_576,
        "messages[0].content text parts must be strings",
    ),
    ("blank-id", encode(record(id=" \t")), 1_048_576, "field 'id' must not be blank"),
    ("id-too-long", encode(record(id="x" * 513)), 1_048_576, "field 'id' is longer than 512 characters"),
]


class TestDecodeInvalid:
    """Anything that is not a valid v1 record becomes a DecodeFailure with a reason, never an exception."""

    @pytest.mark.parametrize(("value", "max_bytes", "reason"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
    def test_reason(self, value: bytes | None, max_bytes: int, reason: str) -> None:
        """Each invalid record fails with a one-line reason naming what is wrong."""
        result = decode(raw(value), max_bytes=max_bytes)
        assert isinstance(result, DecodeFailure)
        assert reason in result.reason
        assert "\n" not in result.reason

    @pytest.mark.parametrize("value", [b"[" * 100_000, b'{"a":' * 100_000, b"{" * 100_000])
    def test_deep_nesting(self, value: bytes) -> None:
        """Deeply nested JSON is a failure (too deep or not JSON), not a RecursionError."""
        result = decode(raw(value), max_bytes=10_000_000)
        assert isinstance(result, DecodeFailure)
        assert result.reason == "JSON nested too deeply" or result.reason.startswith("not JSON: ")

    def test_failure_keeps_original_message(self) -> None:
        """A failure carries the original bytes, origin, key and timestamp unchanged."""
        value = b"\x00\xffnot a record"
        message = RawMessage(origin=ORIGIN, value=value, key=b"k-1", timestamp_ms=1_234)
        assert decode(message) == DecodeFailure(
            raw=value, reason="invalid UTF-8 at byte 1", origin=ORIGIN, key=b"k-1", timestamp_ms=1_234
        )

    def test_tombstone_raw_is_empty(self) -> None:
        """A tombstone fails with empty raw bytes and keeps its key."""
        result = decode(RawMessage(origin=ORIGIN, value=None, key=b"k"))
        assert result == DecodeFailure(
            raw=b"", reason="empty message value (tombstone)", origin=ORIGIN, key=b"k", timestamp_ms=None
        )

    def test_size_limit_is_inclusive(self) -> None:
        """A record exactly at max_bytes is accepted; one byte over is not."""
        body = encode(record())
        assert isinstance(decode(raw(body), max_bytes=len(body)), Sample)
        assert isinstance(decode(raw(body), max_bytes=len(body) - 1), DecodeFailure)


def load_schema() -> dict[str, Any]:
    """The bundled record schema v1."""
    text = resources.files("agent").joinpath("schema/record-v1.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


USER = {"role": "user", "content": "u"}

# JSON objects the schema can judge: no decoder-only rule (size, UTF-8, NaN, NUL, ts format or range,
# messages without a user turn, content-part text) decides any of them.
SCHEMA_CASES: list[tuple[str, Any]] = [
    ("minimal-prompt", record()),
    ("minimal-messages", {"ts": TS_MS, "response": "r", "messages": [USER]}),
    ("ts-string", record(ts="2024-05-01T12:30:00Z")),
    ("ts-float", record(ts=TS_MS + 0.5)),
    ("all-optional-null", record(id=None, model=None, tenant=None, user_id=None, route=None, trace_id=None)),
    ("null-collections", record(context=None, usage=None, latency_ms=None, metadata=None)),
    ("unknown-field", record(extra={"a": [1]})),
    ("usage-integral-float", record(usage={"prompt_tokens": 3.0})),
    ("usage-max", record(usage={"prompt_tokens": 4_294_967_295, "completion_tokens": 0})),
    ("usage-extra-key", record(usage={"total_tokens": 9})),
    ("latency-zero", record(latency_ms=0)),
    ("metadata-flat", record(metadata={"a": "x", "b": 2, "c": -1.5})),
    ("content-parts", {"ts": TS_MS, "response": "r", "messages": [{"role": "user", "content": [{"type": "x"}]}]}),
    ("prompt-and-messages", record(messages=[{"role": "system", "content": "s"}])),
    ("id-inner-space", record(id=" a ")),
    ("id-max-length", record(id="x" * 512)),
    ("not-object-array", [record()]),
    ("not-object-string", "record"),
    ("not-object-null", None),
    ("missing-ts", {"prompt": "p", "response": "r"}),
    ("missing-response", {"ts": TS_MS, "prompt": "p"}),
    ("missing-prompt-and-messages", {"ts": TS_MS, "response": "r"}),
    ("ts-null", record(ts=None)),
    ("ts-boolean", record(ts=False)),
    ("ts-object", record(ts={"ms": 1})),
    ("response-number", record(response=42)),
    ("response-null", record(response=None)),
    ("prompt-null", record(prompt=None)),
    ("prompt-number", record(prompt=1)),
    ("id-empty", record(id="")),
    ("id-blank", record(id="   ")),
    ("id-too-long", record(id="x" * 513)),
    ("id-number", record(id=7)),
    ("model-number", record(model=4)),
    ("tenant-list", record(tenant=["a"])),
    ("trace-id-boolean", record(trace_id=True)),
    ("context-string", record(context="c")),
    ("context-item-number", record(context=["a", 2])),
    ("context-item-null", record(context=[None])),
    ("usage-list", record(usage=[1, 2])),
    ("usage-negative", record(usage={"prompt_tokens": -1})),
    ("usage-fraction", record(usage={"prompt_tokens": 1.5})),
    ("usage-too-big", record(usage={"completion_tokens": 4_294_967_296})),
    ("usage-string", record(usage={"prompt_tokens": "3"})),
    ("usage-boolean", record(usage={"prompt_tokens": True})),
    ("latency-negative", record(latency_ms=-0.1)),
    ("latency-too-big", record(latency_ms=1e9)),
    ("latency-string", record(latency_ms="5")),
    ("latency-boolean", record(latency_ms=False)),
    ("metadata-list", record(metadata=["a"])),
    ("metadata-nested", record(metadata={"a": {"b": 1}})),
    ("metadata-boolean", record(metadata={"a": True})),
    ("metadata-null-value", record(metadata={"a": None})),
    ("metadata-list-value", record(metadata={"a": [1]})),
    ("messages-object", record(messages={"role": "user"})),
    ("messages-item-string", record(messages=["hi"])),
    ("messages-missing-role", record(messages=[{"content": "c"}])),
    ("messages-missing-content", record(messages=[{"role": "user"}])),
    ("messages-role-empty", record(messages=[{"role": "", "content": "c"}])),
    ("messages-role-blank", record(messages=[{"role": "  ", "content": "c"}])),
    ("messages-role-number", record(messages=[{"role": 1, "content": "c"}])),
    ("messages-content-null", record(messages=[{"role": "user", "content": None}])),
    ("messages-content-number", record(messages=[{"role": "user", "content": 5}])),
    ("messages-content-object", record(messages=[{"role": "user", "content": {"type": "text"}}])),
    ("messages-content-part-string", record(messages=[{"role": "user", "content": ["text"]}])),
    ("messages-invalid-with-prompt", {"ts": TS_MS, "prompt": "p", "response": "r", "messages": [{"role": "u"}]}),
]


class TestSchemaAgreement:
    """The JSON Schema and the decoder accept and reject the same schema-expressible records."""

    def test_schema_is_valid(self) -> None:
        """The bundled schema is a valid Draft 2020-12 schema."""
        Draft202012Validator.check_schema(load_schema())

    @pytest.mark.parametrize("obj", [c[1] for c in SCHEMA_CASES], ids=[c[0] for c in SCHEMA_CASES])
    def test_same_verdict(self, obj: Any) -> None:
        """Schema-valid and decoder-valid agree."""
        validator = Draft202012Validator(load_schema())
        schema_valid = validator.is_valid(obj)
        result = decode(raw(encode(obj)))
        decoder_valid = isinstance(result, Sample)
        assert schema_valid == decoder_valid, (
            f"schema says {schema_valid}, decoder says {decoder_valid}: {getattr(result, 'reason', '')}"
        )

    def test_cases_cover_both_verdicts(self) -> None:
        """The curated list holds both valid and invalid records, so agreement is not trivial."""
        validator = Draft202012Validator(load_schema())
        verdicts = [validator.is_valid(obj) for _, obj in SCHEMA_CASES]
        assert verdicts.count(True) == 16
        assert verdicts.count(False) == len(SCHEMA_CASES) - 16


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
RECORD_KEYS = st.sampled_from(
    [
        "id",
        "ts",
        "prompt",
        "messages",
        "response",
        "model",
        "context",
        "usage",
        "latency_ms",
        "metadata",
        "role",
        "content",
        "prompt_tokens",
        "text",
        "type",
    ]
)
RECORD_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(RECORD_KEYS, children, max_size=8),
    max_leaves=30,
)


def assert_decoded(result: Sample | DecodeFailure, message: RawMessage) -> None:
    """A Sample, or a DecodeFailure with a one-line reason and the original bytes."""
    assert isinstance(result, Sample | DecodeFailure)
    if isinstance(result, DecodeFailure):
        assert result.reason.strip()
        assert "\n" not in result.reason
        assert result.raw == (message.value or b"")
        assert result.origin == message.origin


class TestDecodeNeverRaises:
    """Property: decode returns a value for any input."""

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(st.binary(max_size=200))
    def test_arbitrary_bytes(self, value: bytes) -> None:
        """Any bytes decode to a Sample or a DecodeFailure with a reason."""
        message = raw(value)
        assert_decoded(decode(message), message)

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(JSON_VALUES)
    def test_arbitrary_json(self, value: Any) -> None:
        """Any JSON value (NaN and Infinity included) decodes to a Sample or a DecodeFailure with a reason."""
        message = raw(json.dumps(value).encode())
        assert_decoded(decode(message), message)

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(
        st.fixed_dictionaries(
            {"ts": st.integers(0, 7_000_000_000_000) | JSON_VALUES, "response": st.text() | JSON_VALUES},
            optional={"prompt": st.text() | RECORD_LIKE},
        ),
        st.dictionaries(RECORD_KEYS, RECORD_LIKE, max_size=6),
    )
    def test_record_like_json(self, required: dict[str, Any], rest: dict[str, Any]) -> None:
        """Objects with record keys and arbitrary values reach every field rule without raising."""
        message = raw(json.dumps({**rest, **required}).encode())
        assert_decoded(decode(message), message)


class TestMessageFormat:
    """``kafka.format``: v1 records and OTLP exports told apart per message (``auto``) or forced."""

    @staticmethod
    def _apply(values: list[bytes], fmt: MessageFormat = "auto") -> BatchState:
        batch = BatchState.of([RawMessage(Origin("t", 0, i), v) for i, v in enumerate(values)])
        DecodeStep(format=fmt).apply(batch)
        return batch

    def test_auto_tells_records_otlp_json_and_protobuf_apart(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
        from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

        proto = ExportTraceServiceRequest(resource_spans=[ResourceSpans()]).SerializeToString()
        record = b'\n {"ts": 1, "prompt": "p", "response": "r"}'  # leading whitespace is still JSON
        otlp_json = b'{"resourceSpans": []}'
        batch = self._apply([record, otlp_json, proto, b"junk"])
        assert [s.response for s in batch.samples] == ["r"]
        assert [(o.encoding, o.message.origin.offset) for o in batch.otlp] == [("json", 1), ("proto", 2)]
        assert batch.otlp[0].parsed == {"resourceSpans": []}
        assert [d.reason for d in batch.dead_letters] == ["not JSON: Expecting value at line 1 column 1"]

    def test_a_record_that_mentions_resource_spans_stays_a_record(self) -> None:
        batch = self._apply([b'{"ts": 1, "prompt": "p", "response": "r", "resourceSpans": 1}'])
        assert len(batch.samples) == 1 and not batch.otlp

    def test_forced_formats(self) -> None:
        assert self._apply([b'{"resourceSpans": []}'], "record").dead_letters[0].reason == (
            "missing required field 'response'"
        )
        assert self._apply([b'{"ts": 1, "prompt": "p", "response": "r"}'], "otlp_json").otlp[0].encoding == "json"
        assert self._apply([b'{"x": 1}'], "otlp_proto").otlp[0].encoding == "proto"
        assert self._apply([b"[1]"], "otlp_json").dead_letters[0].reason == (
            "OTLP/JSON export must be a JSON object, got array"
        )

    def test_an_otlp_export_may_be_larger_than_a_record(self) -> None:
        big = json.dumps({"resourceSpans": [], "pad": "x" * 2_000}).encode()
        record = json.dumps({"ts": 1, "prompt": "p", "response": "x" * 2_000}).encode()
        batch = BatchState.of([RawMessage(Origin("t", 0, i), v) for i, v in enumerate([big, record])])
        DecodeStep(1_024, "auto", otlp_max_bytes=4_096).apply(batch)
        assert len(batch.otlp) == 1
        assert [d.reason for d in batch.dead_letters] == [f"record is {len(record)} bytes, over the 1024-byte limit"]
