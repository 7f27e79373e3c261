"""The feedback decoder: bytes → FeedbackEvent or DecodeFailure, in step with feedback schema v1."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from agent.feedback.decode import decode_feedback
from agent.types import DecodeFailure, FeedbackEvent, Origin, RawMessage

ORIGIN = Origin("logs.feedback", 2, 17)


def raw(value: bytes | None) -> RawMessage:
    return RawMessage(origin=ORIGIN, value=value, key=b"k", timestamp_ms=5)


def event(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"record_id": "r-1", "ts": "2026-11-25T08:00:00Z", "kind": "thumbs_down"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


def decoded(obj: Any) -> FeedbackEvent | DecodeFailure:
    return decode_feedback(raw(json.dumps(obj).encode()))


def load_schema() -> dict[str, Any]:
    text = resources.files("agent").joinpath("schema/feedback-v1.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


class TestValid:
    """Valid events become FeedbackEvents with every field filled."""

    def test_thumbs_down_by_record(self) -> None:
        """A thumbs_down without value gets -1; the id is derived from the origin when absent."""
        out = decoded(event(user_id="u1", comment="wrong answer"))
        assert out == FeedbackEvent(
            id="logs.feedback/2/17", ts=datetime(2026, 11, 25, 8, tzinfo=UTC), kind="thumbs_down", record_id="r-1",
            value=-1.0, user_id="u1", comment="wrong answer", origin=ORIGIN,
        )  # fmt: skip

    def test_thumbs_up_by_trace_with_own_id(self) -> None:
        """trace_id instead of record_id; the event's own id is kept; value 1 is accepted."""
        out = decoded(event(record_id=..., trace_id="t-9", kind="thumbs_up", value=1, id="fb-1", ts=1_764_000_000_000))
        assert isinstance(out, FeedbackEvent)
        assert (out.id, out.trace_id, out.record_id, out.value) == ("fb-1", "t-9", "", 1.0)
        assert out.ts == datetime.fromtimestamp(1_764_000_000, tz=UTC)

    def test_rating_and_report(self) -> None:
        """A rating keeps its value; a report has none; unknown fields are ignored."""
        rating = decoded(event(kind="rating", value=4.5, extra={"x": 1}))
        report = decoded(event(kind="report", value=None))
        assert isinstance(rating, FeedbackEvent) and rating.value == 4.5
        assert isinstance(report, FeedbackEvent) and report.value is None

    @pytest.mark.parametrize(
        ("kind", "value", "negative"),
        [("thumbs_down", None, True), ("report", None, True), ("rating", 2, True), ("rating", 3, False),
         ("thumbs_up", None, False)],
    )  # fmt: skip
    def test_negative(self, kind: str, value: float | None, negative: bool) -> None:
        """thumbs_down, report and a rating at or below the limit are negative."""
        out = decoded(event(kind=kind, value=value))
        assert isinstance(out, FeedbackEvent) and out.is_negative(2.0) is negative


INVALID: list[tuple[bytes, str]] = [
    (b"\xff\xfe", "invalid UTF-8 at byte 0"),
    (b"{nope", "not JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
    (b"[1]", "event must be a JSON object, got array"),
    (b'{"ts": 1, "kind": "rating", "value": NaN, "record_id": "r"}', "JSON constant NaN is not allowed"),
]
INVALID_OBJECTS: list[tuple[dict[str, Any], str]] = [
    (event(record_id=...), "missing required field: 'record_id' or 'trace_id'"),
    (event(trace_id="t"), "give only one of 'record_id' and 'trace_id'"),
    (event(record_id=" "), "field 'record_id' must not be blank"),
    (event(record_id="x" * 513), "field 'record_id' is longer than 512 characters"),
    (event(record_id=7), "field 'record_id' must be a string, got number"),
    (event(ts=...), "missing required field 'ts'"),
    (event(ts="yesterday"), "field 'ts' is not an RFC 3339 timestamp: 'yesterday'"),
    (event(kind=...), "missing required field 'kind'"),
    (event(kind="love"), "field 'kind' must be one of thumbs_up, thumbs_down, report, rating, got 'love'"),
    (event(kind=3), "field 'kind' must be one of thumbs_up, thumbs_down, report, rating, got number"),
    (event(kind="rating", value="5"), "field 'value' must be a number, got string"),
    (event(kind="rating", value=True), "field 'value' must be a number, got boolean"),
    (event(kind="rating"), "kind 'rating' needs a 'value' from 1 to 5"),
    (event(kind="rating", value=6), "kind 'rating' needs a 'value' from 1 to 5, got 6"),
    (event(kind="report", value=1), "kind 'report' takes no 'value'"),
    (event(kind="thumbs_up", value=-1), "kind 'thumbs_up' takes 'value' +1 or none, got -1"),
    (event(kind="thumbs_down", value=1), "kind 'thumbs_down' takes 'value' -1 or none, got 1"),
    (event(comment=["x"]), "field 'comment' must be a string, got array"),
    (event(comment="x" * 10_001), "field 'comment' is longer than 10000 characters"),
    (event(user_id={}), "field 'user_id' must be a string, got object"),
    (event(id=""), "field 'id' must not be blank"),
    (event(comment="a\x00b"), "field 'comment' contains a NUL character"),
]


class TestInvalid:
    """Each broken rule is a DecodeFailure carrying the original bytes and one reason, never an exception."""

    @pytest.mark.parametrize(("value", "reason"), INVALID)
    def test_bytes(self, value: bytes, reason: str) -> None:
        """Undecodable bytes name what is wrong."""
        out = decode_feedback(raw(value))
        assert out == DecodeFailure(raw=value, reason=reason, origin=ORIGIN, key=b"k", timestamp_ms=5)

    @pytest.mark.parametrize(("obj", "reason"), INVALID_OBJECTS)
    def test_fields(self, obj: dict[str, Any], reason: str) -> None:
        """Field rules name the field and what it must be."""
        out = decoded(obj)
        assert isinstance(out, DecodeFailure) and out.reason == reason

    def test_tombstone_and_size(self) -> None:
        """A tombstone and an oversized value are failures too."""
        assert decode_feedback(raw(None)) == DecodeFailure(b"", "empty message value (tombstone)", ORIGIN, b"k", 5)
        big = decode_feedback(raw(json.dumps(event(comment="x" * 2000)).encode()), max_bytes=1024)
        assert isinstance(big, DecodeFailure) and big.reason.endswith("over the 1024-byte limit")


class TestSchema:
    """The bundled JSON schema and the decoder agree on schema-expressible events."""

    def test_schema_is_valid(self) -> None:
        """A valid Draft 2020-12 schema."""
        Draft202012Validator.check_schema(load_schema())

    @pytest.mark.parametrize(
        "obj",
        [event(), event(record_id=..., trace_id="t"), event(kind="rating", value=1), event(kind="report"),
         event(kind="thumbs_up", value=1), event(record_id=None, trace_id="t"), event(comment=None, user_id=None)]
        + [o for o, _ in INVALID_OBJECTS if "NUL" not in _ and "RFC 3339" not in _],
    )  # fmt: skip
    def test_schema_and_decoder_agree(self, obj: dict[str, Any]) -> None:
        """Both accept or both reject."""
        schema_valid = Draft202012Validator(load_schema()).is_valid(obj)
        decoder_valid = isinstance(decoded(obj), FeedbackEvent)
        assert schema_valid == decoder_valid
