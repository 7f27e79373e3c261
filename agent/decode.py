"""Bytes → :class:`Sample` or :class:`DecodeFailure`. Never raises on data.

The rules are record schema v1 (``agent/schema/record-v1.schema.json``); a test keeps the two in step.
Unknown top-level fields are ignored, so producers can add fields before lookout knows them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal, TypeVar

from agent.sinks.base import BatchingSink
from agent.step import BatchState, OtlpMessage
from agent.types import DecodeFailure, Message, Origin, RawMessage, Sample, Usage

MAX_ID_CHARS = 512
_MIN_TS = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_TS = datetime(2200, 1, 1, tzinfo=UTC)
MessageFormat = Literal["auto", "record", "otlp_json", "otlp_proto"]
"""``kafka.format``: what the consumed topic's messages are."""
_OPTIONAL_STRINGS = (
    "model", "tenant", "user_id", "route", "trace_id", "span_id", "parent_span_id", "session_id", "error",
)  # fmt: skip


class Invalid(Exception):
    """A rule was broken; the message is the DLQ reason (decoders catch it, it never leaves them)."""


_Invalid = Invalid
_T = TypeVar("_T")


def _reject_constant(name: str) -> float:
    raise _Invalid(f"JSON constant {name} is not allowed")


def decode(message: RawMessage, max_bytes: int = 1_048_576) -> Sample | DecodeFailure:
    """Decode one message value into a v1 record, or say why it is not one."""
    return decode_with(message, lambda raw: _decode(raw, message.origin, max_bytes))


class DecodeStep:
    """The decode step: each pending message becomes a :class:`Sample`, a dead letter, or an OTLP export.

    A v1 record becomes a :class:`Sample`, a bad message a :class:`DecodeFailure` (a dead letter), and an OTLP trace
    export an :class:`OtlpMessage` for the trace step.

    Args:
        max_bytes: Size limit of one message value.
        format: ``kafka.format``: ``auto`` tells v1 records and OTLP exports apart per message; the others force one.
            Anything but ``record`` needs the trace step after this one (``agent.app`` wires it).
        otlp_max_bytes: Size limit of one OTLP export (at least ``max_bytes``): an export holds many spans.
    """

    name = "decode"

    def __init__(self, max_bytes: int = 1_048_576, format: MessageFormat = "record", otlp_max_bytes: int = 0) -> None:
        self.max_bytes = max_bytes
        self.format = format
        self.otlp_max_bytes = max(max_bytes, otlp_max_bytes)

    def __repr__(self) -> str:
        return f"DecodeStep(max_bytes={self.max_bytes}, format={self.format!r})"

    def apply(self, batch: BatchState) -> None:
        """Decode ``batch.pending`` into ``batch.samples``, ``batch.otlp`` and ``batch.dead_letters``."""
        for message in batch.pending:
            result = decode_with(message, partial(self._one, message=message))
            if isinstance(result, Sample):
                batch.samples.append(result)
            elif isinstance(result, OtlpMessage):
                batch.otlp.append(result)
            else:
                batch.dead_letters.append(result)
        batch.pending = []

    def _one(self, raw: bytes, *, message: RawMessage) -> Sample | OtlpMessage:
        fmt = self.format
        if fmt == "otlp_proto":
            return OtlpMessage(message, "proto")
        if fmt == "auto" and raw[:1] == b"\n" and raw.lstrip()[:1] != b"{":
            return OtlpMessage(message, "proto")  # field 1 (resource_spans) of an ExportTraceServiceRequest
        limit = self.max_bytes if fmt == "record" else self.otlp_max_bytes
        try:
            obj = parse_object(raw, limit, "record" if fmt != "otlp_json" else "OTLP/JSON export")
        except Invalid:
            if fmt == "auto" and raw[:1] == b"\n":  # a protobuf export whose first length byte reads as '{'
                return OtlpMessage(message, "proto")
            raise
        if fmt == "otlp_json" or (fmt == "auto" and is_otlp_json(obj)):
            return OtlpMessage(message, "json", obj)
        if len(raw) > self.max_bytes:
            raise Invalid(f"record is {len(raw)} bytes, over the {self.max_bytes}-byte limit")
        return _record(obj, message.origin)

    def sinks(self) -> Sequence[BatchingSink[Any]]:
        """None: decoded records and failures are written by the store step."""
        return ()


def is_otlp_json(obj: Mapping[str, Any]) -> bool:
    """Whether a parsed JSON object is an OTLP/JSON trace export rather than a v1 record."""
    return ("resourceSpans" in obj or "resource_spans" in obj) and "response" not in obj


def decode_with(message: RawMessage, parse: Callable[[bytes], _T]) -> _T | DecodeFailure:
    """``parse(message.value)``, or the :class:`DecodeFailure` saying why it failed: the loop never dies on data.

    ``parse`` raises :class:`Invalid` with the DLQ reason; anything else it raises becomes a failure too.
    """
    raw = message.value
    try:
        if raw is None:
            raise _Invalid("empty message value (tombstone)")
        return parse(raw)
    except _Invalid as exc:
        reason = str(exc)
    except RecursionError:
        reason = "JSON nested too deeply"
    except Exception as exc:  # the loop never dies on data: anything unforeseen is a failure too
        reason = f"undecodable: {type(exc).__name__}"
    return DecodeFailure(
        raw=raw or b"",
        reason=reason,
        origin=message.origin,
        key=message.key,
        timestamp_ms=message.timestamp_ms,
    )


def _decode(raw: bytes, origin: Origin, max_bytes: int) -> Sample:
    return _record(parse_object(raw, max_bytes, "record"), origin)


def parse_object(raw: bytes, max_bytes: int, what: str) -> dict[str, Any]:
    """The message value as a JSON object, or :class:`Invalid` saying why not (``what``: ``record``, ``event``)."""
    if len(raw) > max_bytes:
        raise _Invalid(f"{what} is {len(raw)} bytes, over the {max_bytes}-byte limit")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Invalid(f"invalid UTF-8 at byte {exc.start}") from None
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise _Invalid(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(obj, dict):
        raise _Invalid(f"{what} must be a JSON object, got {kind_of(obj)}")
    return obj


def _record(obj: Mapping[str, Any], origin: Origin) -> Sample:
    response = _required_str(obj, "response")
    ts = timestamp(obj.get("ts"))
    prompt, history = _prompt_and_history(obj)
    record_id = optional_str(obj, "id")
    if record_id is not None:
        if not record_id.strip():
            raise _Invalid("field 'id' must not be blank")
        if len(record_id) > MAX_ID_CHARS:
            raise _Invalid(f"field 'id' is longer than {MAX_ID_CHARS} characters")
    strings = {name: optional_str(obj, name) or "" for name in _OPTIONAL_STRINGS}
    return Sample(
        id=record_id if record_id is not None else origin.derived_id(),
        ts=ts,
        prompt=prompt,
        response=response,
        history=history,
        context=_context(obj.get("context")),
        usage=_usage(obj.get("usage")),
        latency_ms=_latency(obj.get("latency_ms")),
        metadata=_metadata(obj.get("metadata")),
        origin=origin,
        **strings,
    )


def kind_of(value: Any) -> str:
    """The JSON type name of a parsed value, for error reasons (``null``, ``boolean``, ``string``, ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _check_str(value: str, where: str) -> str:
    if "\x00" in value:
        raise _Invalid(f"{where} contains a NUL character")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate escape (\ud800): no sink could write it
            raise _Invalid(f"{where} contains a lone UTF-16 surrogate") from None
    return value


def _required_str(obj: Mapping[str, Any], name: str) -> str:
    if name not in obj:
        raise _Invalid(f"missing required field '{name}'")
    value = obj[name]
    if not isinstance(value, str):
        raise _Invalid(f"field '{name}' must be a string, got {kind_of(value)}")
    return _check_str(value, f"field '{name}'")


def optional_str(obj: Mapping[str, Any], name: str) -> str | None:
    """Field ``name`` of ``obj`` as a string, None when absent or null; raises :class:`Invalid` otherwise."""
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid(f"field '{name}' must be a string, got {kind_of(value)}")
    return _check_str(value, f"field '{name}'")


def timestamp(value: Any) -> datetime:
    """A UTC time from an RFC 3339 string or epoch milliseconds; raises :class:`Invalid` otherwise."""
    if value is None:
        raise _Invalid("missing required field 'ts'")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Invalid(f"field 'ts' must be an RFC 3339 string or epoch milliseconds, got {kind_of(value)}")
    if isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value.strip())
        except ValueError:
            raise _Invalid(f"field 'ts' is not an RFC 3339 timestamp: {value[:40]!r}") from None
        try:
            ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
        except OverflowError:  # an offset that pushes year 1 or 9999 out of datetime's range
            raise _Invalid(f"field 'ts' out of range (1970..2200): {value[:40]!r}") from None
    else:
        if not math.isfinite(value):
            raise _Invalid("field 'ts' must be finite")
        try:
            ts = datetime.fromtimestamp(value / 1000.0, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise _Invalid(f"field 'ts' epoch milliseconds out of range: {value}") from None
    if not _MIN_TS <= ts < _MAX_TS:
        raise _Invalid(f"field 'ts' out of range (1970..2200): {ts.isoformat()}")
    return ts


def _message(item: Any, index: int) -> Message:
    if not isinstance(item, dict):
        raise _Invalid(f"messages[{index}] must be an object, got {kind_of(item)}")
    role = item.get("role")
    if not isinstance(role, str) or not role.strip():
        raise _Invalid(f"messages[{index}].role must be a non-empty string")
    content = item.get("content")
    if isinstance(content, list):  # OpenAI content parts: keep the text parts
        if not all(isinstance(p, dict) for p in content):
            raise _Invalid(f"messages[{index}].content parts must be objects")
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if not all(isinstance(t, str) for t in texts):
            raise _Invalid(f"messages[{index}].content text parts must be strings")
        content = "\n".join(t for t in texts if isinstance(t, str))
    if not isinstance(content, str):
        raise _Invalid(f"messages[{index}].content must be a string, got {kind_of(content)}")
    return Message(role=_check_str(role, f"messages[{index}].role"), content=_check_str(content, "messages"))


def _prompt_and_history(obj: Mapping[str, Any]) -> tuple[str, tuple[Message, ...]]:
    prompt = _required_str(obj, "prompt") if "prompt" in obj else None
    raw_messages = obj.get("messages")
    if "messages" not in obj:
        if prompt is None:
            raise _Invalid("missing required field: 'prompt' or 'messages'")
        return prompt, ()
    if not isinstance(raw_messages, list):
        raise _Invalid(f"field 'messages' must be an array, got {kind_of(raw_messages)}")
    messages = [_message(item, i) for i, item in enumerate(raw_messages)]
    if prompt is not None:
        return prompt, tuple(messages)
    last_user = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].role == "user"), None)
    if last_user is None:
        raise _Invalid("field 'messages' has no user message and there is no 'prompt'")
    history = tuple(messages[:last_user] + messages[last_user + 1 :])
    return messages[last_user].content, history


def _context(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _Invalid(f"field 'context' must be an array of strings, got {kind_of(value)}")
    for i, passage in enumerate(value):
        if not isinstance(passage, str):
            raise _Invalid(f"context[{i}] must be a string, got {kind_of(passage)}")
        _check_str(passage, f"context[{i}]")
    return tuple(value)


def _count(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise _Invalid(f"usage.{name} must be a non-negative integer")
    return value


def _usage(value: Any) -> Usage | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Invalid(f"field 'usage' must be an object, got {kind_of(value)}")
    return Usage(
        prompt_tokens=_count(value.get("prompt_tokens"), "prompt_tokens"),
        completion_tokens=_count(value.get("completion_tokens"), "completion_tokens"),
    )


def _latency(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e9:
        raise _Invalid("field 'latency_ms' must be a non-negative number")
    return float(value)


def _metadata(value: Any) -> dict[str, str | float]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Invalid(f"field 'metadata' must be an object, got {kind_of(value)}")
    out: dict[str, str | float] = {}
    for key, item in value.items():
        _check_str(key, "metadata key")
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise _Invalid(f"metadata.{key[:40]} must be a string or number, got {kind_of(item)}")
        out[key] = _check_str(item, f"metadata.{key[:40]}") if isinstance(item, str) else float(item)
    return out
