"""Which spans are LLM calls or retrievals, and an LLM span → :class:`Sample`, under every convention in use.

Detected per span, in this order:

1. the OpenTelemetry GenAI semantic conventions: ``gen_ai.operation.name``, ``gen_ai.input.messages``,
   ``gen_ai.output.messages``, ``gen_ai.system_instructions`` (structured or JSON strings), usage, models;
2. OpenInference: ``openinference.span.kind``, ``llm.input_messages.N.message.*``, ``llm.output_messages.N.*``,
   ``llm.prompts.N.prompt.text``, ``llm.choices.N.completion.text``, ``retrieval.documents.N.document.content``;
3. OpenLLMetry's indexed attributes: ``gen_ai.prompt.N.role/content``, ``gen_ai.completion.N.role/content``;
4. the earlier GenAI event form: span events ``gen_ai.{system,user,assistant,tool}.message`` and ``gen_ai.choice``
   (and Traceloop's ``gen_ai.content.prompt`` / ``gen_ai.content.completion``).

The input comes from the first convention that carries one, the output likewise. Every problem is an
:class:`agent.decode.Invalid` whose message is the dead letter's reason.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from agent.config_otel import OtelSettings
from agent.decode import Invalid, kind_of
from agent.otel.payload import AttrValue, Span
from agent.types import Message, Origin, Sample, Usage

SpanRole = Literal["llm", "retriever", "other"]
"""What a span is to lookout: an LLM call (a record), a retrieval (context for its trace's LLM calls), or neither."""

LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "completion"})
"""``gen_ai.operation.name`` values of LLM calls."""
RETRIEVAL_OPERATIONS = frozenset({"retrieval", "retrieve"})
"""``gen_ai.operation.name`` values of retrievals."""
MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
"""The earlier GenAI event form: event name → the role of its message."""

_PROMPT_TOKENS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt")
_COMPLETION_TOKENS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion")
_MODELS = (
    "gen_ai.response.model",
    "llm.response.model_name",
    "llm.model_name",
    "gen_ai.request.model",
    "llm.request.model_name",
)
_PROVIDERS = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
_REDACTED = "__REDACTED__"  # OpenInference's stand-in for hidden text (OPENINFERENCE_HIDE_INPUT_TEXT...)
_HINT = (
    "the instrumentation does not record message content on spans; enable it, e.g. "
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true or TRACELOOP_TRACE_CONTENT=true"
)
_OI_HINT = (
    "the OpenInference instrumentation hides message content; unset OPENINFERENCE_HIDE_INPUTS, "
    "OPENINFERENCE_HIDE_INPUT_MESSAGES, OPENINFERENCE_HIDE_INPUT_TEXT and their OUTPUT twins"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_Attrs = Mapping[str, AttrValue]
_MAX_TS = datetime(2200, 1, 1, tzinfo=UTC)


def role(span: Span) -> SpanRole:
    """Whether ``span`` is an LLM call, a retrieval, or neither (``gen_ai.operation.name`` decides first)."""
    attrs = span.attributes
    operation = _lower(attrs.get("gen_ai.operation.name"))
    if operation:
        return "llm" if operation in LLM_OPERATIONS else "retriever" if operation in RETRIEVAL_OPERATIONS else "other"
    kind = _lower(attrs.get("openinference.span.kind"))
    if kind:
        return "llm" if kind == "llm" else "retriever" if kind == "retriever" else "other"
    request_type = _lower(attrs.get("llm.request.type"))  # OpenLLMetry before gen_ai.operation.name
    if request_type:
        return "llm" if request_type in LLM_OPERATIONS else "other"
    if "gen_ai.input.messages" in attrs or _indexed(attrs, "gen_ai.prompt."):
        return "llm"
    llm_events = (*MESSAGE_EVENTS, "gen_ai.choice", "gen_ai.content.prompt")
    return "llm" if any(event.name in llm_events for event in span.events) else "other"


def documents(span: Span) -> tuple[str, ...]:
    """The retrieved documents' text of a retriever span, in order.

    OpenInference's ``retrieval.documents.N.document.content``, else a structured or JSON list under
    ``retrieval.documents`` or ``gen_ai.retrieval.documents`` (each document's ``content``). A retrieval is
    context, never a record: documents without usable text are skipped, nothing raises.
    """
    attrs = span.attributes
    texts = [fields.get("document.content") for _, fields in _indexed(attrs, "retrieval.documents.")]
    found = [t for t in texts if isinstance(t, str) and _usable(t)]
    for name in ("retrieval.documents", "gen_ai.retrieval.documents"):
        if not found and name in attrs:
            found = _document_list(attrs[name], name)
    return tuple(found)


def _document_list(value: AttrValue, name: str) -> list[str]:
    try:
        items = _structured(value, name)
    except Invalid:
        return []
    if not isinstance(items, list | tuple):
        return []
    found: list[str] = []
    for item in items:
        content = item.get("content", item.get("document.content")) if isinstance(item, Mapping) else None
        if isinstance(content, str) and _usable(content):
            found.append(content)
    return found


def to_sample(span: Span, origin: Origin, settings: OtelSettings) -> Sample:
    """The record of an LLM span; raises :class:`Invalid` with the dead letter's reason when it cannot be one."""
    name = repr(span.name[:120])
    failed = span.status_code == 2
    inputs = _first(span, _INPUTS)
    if not inputs or not any(m.content.strip() for m in inputs):
        raise Invalid(f"LLM span {name} carries no prompt content ({_hint(span)})")
    output = _first(span, _OUTPUTS)
    if output is None and not failed:
        raise Invalid(f"LLM span {name} carries no response content ({_hint(span)})")
    prompt, history = _split(inputs)
    attrs = span.attributes
    provider = _string(attrs, _PROVIDERS)
    operation = _string(attrs, ("gen_ai.operation.name",))
    metadata = {"otel.span_name": span.name, "gen_ai.provider": provider, "gen_ai.operation": operation}
    sample = Sample(
        id=record_id(span.trace_id, span.span_id),
        ts=_start(span, name),
        prompt=prompt,
        response=output or "",
        history=history,
        model=_string(attrs, _MODELS) or _invocation_model(attrs),
        tenant=_lookup(span, settings.tenant_attributes),
        user_id=_lookup(span, settings.user_attributes),
        route=_lookup(span, settings.route_attributes),
        usage=_usage(attrs),
        latency_ms=_latency(span),
        trace_id=span.trace_id,
        span_id=span.span_id,
        parent_span_id=span.parent_span_id,
        session_id=_lookup(span, settings.session_attributes),
        error=_error(span) if failed else "",
        metadata={key: value for key, value in metadata.items() if value},
        origin=origin,
    )
    _check_sample(sample, name)
    return sample


def span_json(span: Span) -> bytes:
    """The span as compact JSON, attributes included (a dead letter's bytes)."""
    doc = {
        "traceId": span.trace_id,
        "spanId": span.span_id,
        "parentSpanId": span.parent_span_id,
        "name": span.name,
        "kind": span.kind,
        "startTimeUnixNano": str(span.start_ns),
        "endTimeUnixNano": str(span.end_ns),
        "status": {"code": span.status_code, "message": span.status_message},
        "attributes": _plain(span.attributes),
        "events": [
            {"name": e.name, "timeUnixNano": str(e.time_ns), "attributes": _plain(e.attributes)} for e in span.events
        ],
        "resource": _plain(span.resource),
        "scope": span.scope_name,
    }
    return json.dumps(doc, separators=(",", ":")).encode("ascii")


def record_id(trace_id: str, span_id: str) -> str:
    """``otel-`` + 32 hex of sha256(trace id + span id): stable across redelivery, and it hides the trace id."""
    return "otel-" + hashlib.sha256((trace_id + span_id).encode()).hexdigest()[:32]


# --- inputs and outputs, per convention ------------------------------------------------------------------------


def _genai_inputs(span: Span) -> list[Message] | None:
    attrs = span.attributes
    if "gen_ai.input.messages" not in attrs and "gen_ai.system_instructions" not in attrs:
        return None
    out: list[Message] = []
    if "gen_ai.system_instructions" in attrs:
        raw = attrs["gen_ai.system_instructions"]
        if isinstance(raw, str) and raw[:1] not in ("[", "{"):  # a plain-text system prompt
            out.append(Message("system", raw))
        else:
            parts = _structured(raw, "gen_ai.system_instructions")
            out.append(Message("system", _parts_text(parts, "gen_ai.system_instructions")))
    if "gen_ai.input.messages" in attrs:
        items = _list(_structured(attrs["gen_ai.input.messages"], "gen_ai.input.messages"), "gen_ai.input.messages")
        out += [_message(item, f"gen_ai.input.messages[{i}]", "user") for i, item in enumerate(items)]
    return out


def _genai_output(span: Span) -> str | None:
    if "gen_ai.output.messages" not in span.attributes:
        return None
    items = _list(
        _structured(span.attributes["gen_ai.output.messages"], "gen_ai.output.messages"), "gen_ai.output.messages"
    )
    return _message(items[0], "gen_ai.output.messages[0]", "assistant").content if items else None


def _openinference_inputs(span: Span) -> list[Message] | None:
    attrs = span.attributes
    messages = _indexed(attrs, "llm.input_messages.")
    if messages:
        return [_oi_message(fields, f"llm.input_messages.{n}", "user") for n, fields in messages]
    prompts = _indexed(attrs, "llm.prompts.")
    if prompts:
        return [Message("user", _str(f.get("prompt.text"), f"llm.prompts.{n}.prompt.text")) for n, f in prompts]
    legacy = attrs.get("llm.prompts")  # older OpenInference: an array of prompt strings
    if isinstance(legacy, tuple) and legacy:
        return [Message("user", _str(text, f"llm.prompts[{i}]")) for i, text in enumerate(legacy)]
    return None


def _openinference_output(span: Span) -> str | None:
    messages = _indexed(span.attributes, "llm.output_messages.")
    if messages:
        n, fields = messages[0]
        return _oi_message(fields, f"llm.output_messages.{n}", "assistant").content
    choices = _indexed(span.attributes, "llm.choices.")
    if choices:
        n, fields = choices[0]
        return _str(fields.get("completion.text"), f"llm.choices.{n}.completion.text")
    return None


def _oi_message(fields: _Attrs, where: str, default_role: str) -> Message:
    role_ = _str(fields.get("message.role"), f"{where}.message.role") or default_role
    if "message.content" in fields:
        return Message(role_, _str(fields["message.content"], f"{where}.message.content"))
    texts = [
        _str(part.get("message_content.text"), f"{where}.message.contents.{m}.message_content.text")
        for m, part in _indexed(fields, "message.contents.")
        if part.get("message_content.type", "text") == "text"
    ]
    return Message(role_, "\n".join(texts))


def _openllmetry_inputs(span: Span) -> list[Message] | None:
    prompts = _indexed(span.attributes, "gen_ai.prompt.")
    if not prompts:
        return None
    return [
        Message(
            _str(fields.get("role"), f"gen_ai.prompt.{n}.role") or "user",
            _maybe_json_text(_str(fields.get("content"), f"gen_ai.prompt.{n}.content")),
        )
        for n, fields in prompts
    ]


def _openllmetry_output(span: Span) -> str | None:
    completions = _indexed(span.attributes, "gen_ai.completion.")
    if not completions:
        return None
    n, fields = completions[0]
    return _maybe_json_text(_str(fields.get("content"), f"gen_ai.completion.{n}.content"))


def _event_inputs(span: Span) -> list[Message] | None:
    out: list[Message] = []
    for e, event in enumerate(span.events):
        where = f"event {event.name}[{e}]"
        if event.name in MESSAGE_EVENTS:
            out.append(_event_message(event.attributes, MESSAGE_EVENTS[event.name], where))
        elif event.name == "gen_ai.content.prompt" and "gen_ai.prompt" in event.attributes:
            out += _legacy_messages(event.attributes["gen_ai.prompt"], f"{where} gen_ai.prompt", "user")
    return out or None


def _event_output(span: Span) -> str | None:
    choices = [(e, event) for e, event in enumerate(span.events) if event.name == "gen_ai.choice"]
    if choices:
        e, event = next(((e, ev) for e, ev in choices if ev.attributes.get("index", 0) == 0), choices[0])
        message = event.attributes.get("message")
        if message is None:
            return ""
        return _event_message({"content": message}, "assistant", f"event gen_ai.choice[{e}] message").content
    for e, event in enumerate(span.events):
        if event.name == "gen_ai.content.completion" and "gen_ai.completion" in event.attributes:
            where = f"event {event.name}[{e}] gen_ai.completion"
            messages = _legacy_messages(event.attributes["gen_ai.completion"], where, "assistant")
            return messages[0].content if messages else None
    return None


def _event_message(attrs: _Attrs, default_role: str, where: str) -> Message:
    role_ = attrs.get("role")
    role_ = role_ if isinstance(role_, str) and role_ else default_role
    content: Any = attrs.get("content")
    if content is None and isinstance(attrs.get("gen_ai.event.content"), str):  # Azure SDKs: {"content": ...}
        content = _structured(attrs["gen_ai.event.content"], f"{where} gen_ai.event.content")
    if isinstance(content, str):
        return Message(role_, _maybe_json_text(content))
    if isinstance(content, Mapping):  # gen_ai.choice's message, or gen_ai.event.content
        inner = content.get("content")
        return Message(role_, _maybe_json_text(inner) if isinstance(inner, str) else _content_text(inner, where))
    return Message(role_, _content_text(content, f"{where} content"))


def _legacy_messages(value: AttrValue, where: str, default_role: str) -> list[Message]:
    if isinstance(value, str) and value[:1] not in ("[", "{"):
        return [Message(default_role, value)]
    parsed = _structured(value, where)
    items = parsed if isinstance(parsed, list | tuple) else [parsed]
    return [_message(item, f"{where}[{i}]", default_role) for i, item in enumerate(items)]


_INPUTS: tuple[Callable[[Span], list[Message] | None], ...] = (
    _genai_inputs,
    _openinference_inputs,
    _openllmetry_inputs,
    _event_inputs,
)
_OUTPUTS: tuple[Callable[[Span], str | None], ...] = (
    _genai_output,
    _openinference_output,
    _openllmetry_output,
    _event_output,
)


def _first(span: Span, readers: Sequence[Callable[[Span], Any]]) -> Any:
    for read in readers:
        found = read(span)
        if found is not None:
            return found
    return None


# --- message shapes ---------------------------------------------------------------------------------------------


def _message(item: Any, where: str, default_role: str) -> Message:
    """A GenAI message (``role`` + ``parts``), or the older ``role`` + ``content`` shape."""
    if not isinstance(item, Mapping):
        raise Invalid(f"attribute {where} must be an object, got {_kind(item)}")
    role_ = item.get("role")
    if role_ is not None and not isinstance(role_, str):
        raise Invalid(f"attribute {where}.role must be a string, got {_kind(role_)}")
    if item.get("parts") is not None:
        text = _parts_text(item["parts"], f"{where}.parts")
    else:
        text = _content_text(item.get("content"), f"{where}.content")
    return Message(role_ or default_role, text)


def _parts_text(parts: Any, where: str) -> str:
    """The text parts of a message (GenAI ``{"type": "text", "content"}``, OpenAI ``{"type": "text", "text"}``)."""
    parts = _list(parts, where)
    texts: list[str] = []
    for p, part in enumerate(parts):
        if not isinstance(part, Mapping):
            raise Invalid(f"attribute {where}[{p}] must be an object, got {_kind(part)}")
        if part.get("type") == "text":
            text = part.get("content", part.get("text"))
            texts.append(_str(text, f"{where}[{p}].content"))
    return "\n".join(t for t in texts if t)


def _content_text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list | tuple):
        return _parts_text(content, where)
    raise Invalid(f"attribute {where} must be a string or a list of parts, got {_kind(content)}")


def _maybe_json_text(text: str) -> str:
    """``text``, or the text inside it when it is a JSON list of content parts or a ``{"content": ...}`` object."""
    if text[:1] not in ("[", "{"):
        return text
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return text
    if isinstance(parsed, dict) and isinstance(parsed.get("content"), str):
        return str(parsed["content"])
    if isinstance(parsed, list) and parsed and all(isinstance(p, dict) and "type" in p for p in parsed):
        try:
            return _parts_text(parsed, "content")
        except Invalid:
            return text
    return text


def _split(inputs: list[Message]) -> tuple[str, tuple[Message, ...]]:
    """The last user message's text, and the other messages in order (the last message when no user spoke)."""
    last = next((i for i in range(len(inputs) - 1, -1, -1) if inputs[i].role == "user"), len(inputs) - 1)
    return inputs[last].content, tuple(inputs[:last] + inputs[last + 1 :])


# --- attribute values -------------------------------------------------------------------------------------------


def _indexed(attrs: _Attrs, prefix: str) -> list[tuple[int, dict[str, AttrValue]]]:
    """``prefix.N.rest`` attributes grouped by ``N`` (ascending): ``[(N, {rest: value})]``."""
    groups: dict[int, dict[str, AttrValue]] = {}
    size = len(prefix)
    for key, value in attrs.items():
        if key.startswith(prefix):
            index, _, rest = key[size:].partition(".")
            if rest and index.isascii() and index.isdigit() and len(index) <= 6:
                groups.setdefault(int(index), {})[rest] = value
    return sorted(groups.items())


def _structured(value: AttrValue, name: str) -> Any:
    """A structured attribute value, or the JSON a string attribute holds."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError as exc:
        raise Invalid(f"attribute {name} is not valid JSON ({str(exc).split(':')[0]})") from None
    except RecursionError:
        raise Invalid(f"attribute {name} is nested too deeply") from None


def _list(value: Any, name: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise Invalid(f"attribute {name} must be a list, got {_kind(value)}")
    return value


def _str(value: Any, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Invalid(f"attribute {name} must be a string, got {_kind(value)}")
    return "" if value == _REDACTED else value


def _string(attrs: _Attrs, names: Sequence[str]) -> str:
    for name in names:
        value = attrs.get(name)
        if value is not None and value != "":
            return _str(value, name)
    return ""


def _invocation_model(attrs: _Attrs) -> str:
    """OpenInference's ``llm.invocation_parameters`` JSON names the requested model (all a failed call has)."""
    raw = attrs.get("llm.invocation_parameters")
    try:
        model = json.loads(raw).get("model") if isinstance(raw, str) else None
    except (ValueError, AttributeError, RecursionError):
        return ""
    return model if isinstance(model, str) and "\x00" not in model else ""


def _lookup(span: Span, names: Sequence[str]) -> str:
    """The first present value of ``names``, each looked up in the span's attributes, then its resource's."""
    for name in names:
        for attrs in (span.attributes, span.resource):
            value = attrs.get(name)
            if value is not None and value != "":
                return _as_text(value)
    return ""


def _as_text(value: AttrValue) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(_plain(value), separators=(",", ":"))


def _count(attrs: _Attrs, names: Sequence[str]) -> int | None:
    for name in names:
        value = attrs.get(name)
        if value is None:
            continue
        if isinstance(value, str | float) and _whole(value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
            raise Invalid(f"attribute {name} must be a non-negative integer")
        return value
    return None


def _whole(value: str | float) -> bool:
    if isinstance(value, float):
        return value.is_integer()
    return value.isascii() and value.isdigit() and len(value) < 11


def _usage(attrs: _Attrs) -> Usage | None:
    prompt, completion = _count(attrs, _PROMPT_TOKENS), _count(attrs, _COMPLETION_TOKENS)
    return None if prompt is None and completion is None else Usage(prompt, completion)


def _start(span: Span, name: str) -> datetime:
    if span.start_ns <= 0:
        raise Invalid(f"LLM span {name} has no start time")
    ts = _EPOCH + timedelta(microseconds=span.start_ns // 1000)
    if ts >= _MAX_TS:
        raise Invalid(f"LLM span {name} start time out of range (1970..2200): {ts.isoformat()}")
    return ts


def _latency(span: Span) -> float | None:
    if span.end_ns <= 0 or span.end_ns < span.start_ns:
        return None
    latency = (span.end_ns - span.start_ns) / 1e6
    return latency if latency < 1e9 else None


def _error(span: Span) -> str:
    error_type = span.attributes.get("error.type")
    return span.status_message or (error_type if isinstance(error_type, str) and error_type else "error")


def _hint(span: Span) -> str:
    return _OI_HINT if "openinference.span.kind" in span.attributes else _HINT


def _check_sample(sample: Sample, name: str) -> None:
    """No NUL and no lone surrogate in any text (JSON inside attributes can carry them)."""
    texts = [
        ("prompt", sample.prompt),
        ("response", sample.response),
        ("model", sample.model),
        ("tenant", sample.tenant),
        ("user_id", sample.user_id),
        ("route", sample.route),
        ("session_id", sample.session_id),
        ("error", sample.error),
    ]
    texts += [(f"history[{i}]", m.role + m.content) for i, m in enumerate(sample.history)]
    for field, text in texts:
        if not _usable(text):
            raise Invalid(f"LLM span {name}: {field} contains a NUL character or a lone UTF-16 surrogate")


def _usable(text: str) -> bool:
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _lower(value: Any) -> str:
    return value.strip().lower() if isinstance(value, str) else ""


def _kind(value: Any) -> str:
    if isinstance(value, tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, bytes):
        return "bytes"
    return kind_of(value)


def _plain(value: Any) -> Any:
    """An attribute value as plain JSON: bytes as base64, arrays as lists, non-finite floats as strings."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
