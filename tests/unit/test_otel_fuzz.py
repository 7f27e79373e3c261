"""Fuzzing the OTLP path: random and mutated exports never raise anything but Invalid.

Random bytes and byte-level mutations of a valid protobuf export go to ``spans_from_proto`` and ``parse``; mutations
of a valid OTLP/JSON export (any node replaced by any JSON value, attribute values replaced by odd JSON strings)
go to ``spans_from_json`` and then, span by span, to ``role``, ``to_sample``, ``documents`` and ``span_json``.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

from google.protobuf.json_format import ParseDict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from agent.config_otel import OtelSettings
from agent.decode import Invalid
from agent.otel.conventions import documents, role, span_json, to_sample
from agent.otel.payload import Span, parse, spans_from_json, spans_from_proto
from agent.types import Origin, Sample

ORIGIN = Origin("otlp-spans", 0, 1)
SETTINGS = OtelSettings()
FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def s(value: str) -> dict[str, Any]:
    """A string AnyValue."""
    return {"stringValue": value}


def attrs(**values: dict[str, Any]) -> list[dict[str, Any]]:
    """OTLP/JSON attributes (dots spelled as ``__`` in the keyword names)."""
    return [{"key": key.replace("__", "."), "value": value} for key, value in values.items()]


def span(span_id: str, attributes: list[dict[str, Any]], events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An OTLP/JSON span of one trace."""
    return {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": span_id,
        "parentSpanId": "eee19b7ec3c1b100",
        "name": "chat",
        "kind": 3,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000001000000000",
        "attributes": attributes,
        "events": events or [],
        "status": {"code": 0},
    }


MESSAGES = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "hi"}]}])
OUTPUT = json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "hello"}], "finish_reason": "stop"}])


def valid_export() -> dict[str, Any]:
    """An export with one span of each convention (and a retriever), every one of them valid."""
    text_part = {"kvlistValue": {"values": attrs(type=s("text"), content=s("structured"))}}
    structured = {
        "arrayValue": {
            "values": [
                {"kvlistValue": {"values": attrs(role=s("user"), parts={"arrayValue": {"values": [text_part]}})}}
            ]
        }
    }
    spans = [
        span(
            "eee19b7ec3c1b101",
            attrs(
                gen_ai__operation__name=s("chat"),
                gen_ai__input__messages=s(MESSAGES),
                gen_ai__output__messages=s(OUTPUT),
                gen_ai__system_instructions=s('[{"type": "text", "content": "sys"}]'),
                gen_ai__usage__input_tokens={"intValue": "3"},
                gen_ai__response__model=s("m"),
            ),
        ),
        span(
            "eee19b7ec3c1b102",
            attrs(
                gen_ai__operation__name=s("chat"),
                gen_ai__input__messages=structured,
                gen_ai__output__messages=structured,
            ),
        ),
        span(
            "eee19b7ec3c1b103",
            attrs(
                openinference__span__kind=s("LLM"),
                llm__input_messages__0__message__role=s("user"),
                llm__input_messages__0__message__content=s("q"),
                llm__output_messages__0__message__content=s("a"),
                llm__token_count__prompt={"intValue": 4},
            ),
        ),
        span(
            "eee19b7ec3c1b104",
            attrs(
                llm__request__type=s("chat"),
                gen_ai__prompt__0__role=s("user"),
                gen_ai__prompt__0__content=s("q"),
                gen_ai__completion__0__content=s("a"),
            ),
        ),
        span(
            "eee19b7ec3c1b105",
            attrs(gen_ai__system=s("openai")),
            [
                {"name": "gen_ai.user.message", "timeUnixNano": "1", "attributes": attrs(content=s("hi"))},
                {
                    "name": "gen_ai.choice",
                    "timeUnixNano": "2",
                    "attributes": attrs(index={"intValue": "0"}, message=s('{"content": "a"}')),
                },
            ],
        ),
        span(
            "eee19b7ec3c1b106",
            attrs(
                openinference__span__kind=s("RETRIEVER"),
                retrieval__documents__0__document__content=s("doc"),
                gen_ai__retrieval__documents=s('[{"id": "d", "content": "doc2"}]'),
            ),
        ),
    ]
    resource = {"attributes": attrs(service__name=s("svc"), tenant__id=s("acme"))}
    return {"resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": {"name": "fuzz"}, "spans": spans}]}]}


def consume(spans: list[Span]) -> None:
    """Everything the trace step does with spans: role, then to_sample / documents, and span_json for dead letters."""
    for one in spans:
        kind = role(one)
        span_json(one)
        if kind == "retriever":
            assert all(isinstance(d, str) for d in documents(one))
        elif kind == "llm":
            try:
                assert isinstance(to_sample(one, ORIGIN, SETTINGS), Sample)
            except Invalid as exc:
                assert str(exc) and "\n" not in str(exc)


def only_invalid(call: Any, *args: Any) -> Any:
    """``call(*args)``, letting only Invalid (with a one-line reason) through."""
    try:
        return call(*args)
    except Invalid as exc:
        assert str(exc) and "\n" not in str(exc)
        return None


def test_valid_export_is_valid() -> None:
    """The fuzzers' seed: every span is read, five are LLM records, the retriever gives both its documents."""
    spans = spans_from_json(valid_export())
    assert [role(one) for one in spans] == ["llm"] * 5 + ["retriever"]
    samples = [to_sample(one, ORIGIN, SETTINGS) for one in spans[:5]]
    assert [(x.prompt, x.response) for x in samples] == [
        ("hi", "hello"),
        ("structured", "structured"),
        ("q", "a"),
        ("q", "a"),
        ("hi", "a"),
    ]
    assert documents(spans[5]) == ("doc",)


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["", "0" * 32, "\x00", "\ud800", "chat", "LLM", "[", "{}", "[{}]", "NaN", "-1", "1e30"])
)
JSON_ANY = st.recursive(
    JSON_SCALARS,
    lambda c: (
        st.lists(c, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "stringValue",
                    "intValue",
                    "values",
                    "key",
                    "value",
                    "arrayValue",
                    "kvlistValue",
                    "role",
                    "parts",
                    "content",
                    "type",
                    "x",
                ]
            )
            | st.text(max_size=6),
            c,
            max_size=4,
        )
    ),
    max_leaves=8,
)


def nodes(tree: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (keys and indices) into a JSON tree."""
    found = [path]
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += nodes(value, (*path, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            found += nodes(value, (*path, index))
    return found


SEED = valid_export()
PATHS = nodes(SEED)[1:]


def ids_to_base64(tree: Any) -> Any:
    """An OTLP/JSON tree with its hex ids in base64, as protobuf's own JSON reader wants them."""
    if isinstance(tree, dict):
        ids = ("traceId", "spanId", "parentSpanId")
        return {
            k: base64.b64encode(bytes.fromhex(v)).decode() if k in ids else ids_to_base64(v) for k, v in tree.items()
        }
    if isinstance(tree, list):
        return [ids_to_base64(v) for v in tree]
    return tree


def to_proto(tree: Any) -> bytes:
    """The protobuf export of an OTLP/JSON one."""
    raw: bytes = ParseDict(ids_to_base64(tree), ExportTraceServiceRequest()).SerializeToString()
    return raw


SEED_PROTO = to_proto(SEED)


def replaced(tree: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of ``tree`` with the node at ``path`` replaced by ``value``."""
    tree = copy.deepcopy(tree)
    parent = tree
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return tree


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_proto(raw: bytes) -> None:
    """Random bytes as a protobuf export: spans or Invalid, nothing else."""
    spans = only_invalid(spans_from_proto, raw)
    if spans is not None:
        consume(spans)
    only_invalid(parse, raw, "proto", 256)
    only_invalid(parse, raw, "json", 256)


@FUZZ
@given(st.data())
def test_mutated_proto(data: st.DataObject) -> None:
    """Byte flips, cuts and insertions in a valid protobuf export: spans or Invalid, nothing else."""
    raw = bytearray(SEED_PROTO)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            raw[at] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del raw[at:]
            if not raw:
                break
        else:
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=4))
    spans = only_invalid(spans_from_proto, bytes(raw))
    if spans is not None:
        consume(spans)


@FUZZ
@given(st.sampled_from(PATHS), JSON_ANY)
def test_mutated_json(path: tuple[Any, ...], value: Any) -> None:
    """Any node of a valid OTLP/JSON export replaced by any JSON value: spans (and samples) or Invalid only."""
    spans = only_invalid(spans_from_json, replaced(SEED, path, value))
    if spans is not None:
        consume(spans)


ATTRIBUTE_VALUES = [p for p in PATHS if p[-1] == "stringValue"]
ODD_JSON_TEXT = st.one_of(
    JSON_ANY.map(lambda v: json.dumps(v)),
    st.sampled_from(
        [
            '[{"role": "user", "parts": [{"type": "text", "content": null}]}]',
            '[{"parts": [{"type": "text"}]}]',
            '{"content": [1]}',
            "[" * 3000,
            '[{"type": "text", "text": 5}]',
            "__REDACTED__",
        ]
    ),
    st.text(max_size=30),
)


@FUZZ
@given(st.sampled_from(ATTRIBUTE_VALUES), ODD_JSON_TEXT)
def test_odd_attribute_strings(path: tuple[Any, ...], text: str) -> None:
    """Any string attribute replaced by odd JSON text (the conventions parse JSON inside strings): Invalid only."""
    spans = only_invalid(spans_from_json, replaced(SEED, path, text))
    if spans is not None:
        consume(spans)
