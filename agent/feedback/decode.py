"""Bytes → :class:`FeedbackEvent` or :class:`DecodeFailure`. Never raises on data.

The rules are feedback schema v1 (``agent/schema/feedback-v1.schema.json``); a test keeps the two in step.
Exactly one of ``record_id`` and ``trace_id`` names what the feedback is about. ``value`` depends on ``kind``:
thumbs_up is ``1`` (or absent), thumbs_down ``-1`` (or absent), report has none, rating is a number 1-5.
Unknown top-level fields are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, cast

from agent.decode import (  # the decoders share JSON type names and string checks
    MAX_ID_CHARS,
    Invalid,
    decode_with,
    kind_of,
    optional_str,
    parse_object,
    timestamp,
)
from agent.types import (
    FEEDBACK_KINDS,
    RATING_MAX,
    RATING_MIN,
    DecodeFailure,
    FeedbackEvent,
    FeedbackKind,
    Origin,
    RawMessage,
)

MAX_COMMENT_CHARS = 10_000
_THUMBS = {"thumbs_up": 1.0, "thumbs_down": -1.0}


def decode_feedback(message: RawMessage, max_bytes: int = 1_048_576) -> FeedbackEvent | DecodeFailure:
    """Decode one message value into a feedback-v1 event, or say why it is not one."""
    return decode_with(message, lambda raw: _event(parse_object(raw, max_bytes, "event"), message.origin))


def _identifier(obj: Mapping[str, Any], name: str) -> str | None:
    value = optional_str(obj, name)
    if value is not None:
        if not value.strip():
            raise Invalid(f"field '{name}' must not be blank")
        if len(value) > MAX_ID_CHARS:
            raise Invalid(f"field '{name}' is longer than {MAX_ID_CHARS} characters")
    return value


def _event(obj: Mapping[str, Any], origin: Origin) -> FeedbackEvent:
    record_id = _identifier(obj, "record_id")
    trace_id = _identifier(obj, "trace_id")
    if record_id is None and trace_id is None:
        raise Invalid("missing required field: 'record_id' or 'trace_id'")
    if record_id is not None and trace_id is not None:
        raise Invalid("give only one of 'record_id' and 'trace_id'")
    ts = timestamp(obj.get("ts"))
    kind = _kind(obj.get("kind"))
    event_id = _identifier(obj, "id")
    comment = optional_str(obj, "comment") or ""
    if len(comment) > MAX_COMMENT_CHARS:
        raise Invalid(f"field 'comment' is longer than {MAX_COMMENT_CHARS} characters")
    return FeedbackEvent(
        id=event_id if event_id is not None else origin.derived_id(),
        ts=ts,
        kind=kind,
        record_id=record_id or "",
        trace_id=trace_id or "",
        value=_value(kind, obj.get("value")),
        user_id=optional_str(obj, "user_id") or "",
        comment=comment,
        origin=origin,
    )


def _kind(value: Any) -> FeedbackKind:
    if value is None:
        raise Invalid("missing required field 'kind'")
    if value not in FEEDBACK_KINDS:
        shown = repr(value[:40]) if isinstance(value, str) else kind_of(value)
        raise Invalid(f"field 'kind' must be one of {', '.join(FEEDBACK_KINDS)}, got {shown}")
    return cast(FeedbackKind, value)


def _value(kind: FeedbackKind, value: Any) -> float | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise Invalid(f"field 'value' must be a number, got {kind_of(value)}")
    if value is not None and not math.isfinite(value):
        raise Invalid("field 'value' must be finite")
    if kind == "report":
        if value is not None:
            raise Invalid("kind 'report' takes no 'value'")
        return None
    if kind == "rating":
        if value is None:
            raise Invalid(f"kind 'rating' needs a 'value' from {RATING_MIN:g} to {RATING_MAX:g}")
        if not RATING_MIN <= value <= RATING_MAX:
            raise Invalid(f"kind 'rating' needs a 'value' from {RATING_MIN:g} to {RATING_MAX:g}, got {value:g}")
        return float(value)
    expected = _THUMBS[kind]
    if value is not None and value != expected:
        raise Invalid(f"kind '{kind}' takes 'value' {expected:+g} or none, got {value:g}")
    return expected
