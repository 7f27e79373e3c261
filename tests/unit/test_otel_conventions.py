"""LLM-span conventions: which spans are LLM calls or retrievals, and an LLM span → Sample (or a dead-letter reason).

Several span attribute dicts below are copied from what the real instrumentors emitted against a stand-in OpenAI
server (opentelemetry-instrumentation-openai 0.62.4, openinference-instrumentation-openai 0.1.66, openai 2.54,
exported with the SDK's InMemorySpanExporter). The stand-in server's port is fixed to 8000 here, and OpenInference's
raw ``input.value``/``output.value`` JSON is left out of some dicts (lookout does not read them).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from agent.config_otel import OtelSettings
from agent.decode import Invalid
from agent.otel.conventions import documents, record_id, role, span_json, to_sample
from agent.otel.payload import AttrValue, Span, SpanEvent
from agent.types import Message, Origin, Sample, Usage

TRACE = "5b8efff798038103d269b633813fc60c"
SPAN_ID = "eee19b7ec3c1b174"
PARENT = "eee19b7ec3c1b173"
START = 1_700_000_000_123_456_789
END = START + 1_250_000_000
ORIGIN = Origin("otlp-spans", 2, 7)
SETTINGS = OtelSettings()


def make_span(
    attributes: Mapping[str, AttrValue],
    events: Sequence[SpanEvent] = (),
    status_code: int = 0,
    status_message: str = "",
    resource: Mapping[str, AttrValue] | None = None,
    name: str = "chat gpt-4o-mini",
    start_ns: int = START,
    end_ns: int = END,
) -> Span:
    """A span of a fixed trace with these attributes and events."""
    return Span(
        trace_id=TRACE,
        span_id=SPAN_ID,
        parent_span_id=PARENT,
        name=name,
        kind=3,
        start_ns=start_ns,
        end_ns=end_ns,
        status_code=status_code,
        status_message=status_message,
        attributes=dict(attributes),
        events=tuple(events),
        resource={"service.name": "chatbot"} if resource is None else dict(resource),
        scope_name="test",
    )


def event(name: str, **attributes: AttrValue) -> SpanEvent:
    """A span event."""
    return SpanEvent(name=name, time_ns=START + 1, attributes=attributes)


def sample(span: Span, settings: OtelSettings = SETTINGS) -> Sample:
    """``to_sample`` of an LLM span (and checks that it is one)."""
    assert role(span) == "llm"
    return to_sample(span, ORIGIN, settings)


def reason(span: Span) -> str:
    """The dead-letter reason ``to_sample`` raises for ``span``."""
    with pytest.raises(Invalid) as info:
        to_sample(span, ORIGIN, SETTINGS)
    text = str(info.value)
    assert "\n" not in text
    return text


def genai(**extra: AttrValue) -> dict[str, AttrValue]:
    """A GenAI-convention chat span's attributes (JSON strings), with ``extra`` added."""
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "hello"}]}]),
        **extra,
    }


# What opentelemetry-instrumentation-openai 0.62.4 (OpenLLMetry) emitted for a chat call (system + user message,
# temperature 0.2, user="u-42"): the current GenAI conventions, messages as JSON strings; no events.
OPENLLMETRY_CHAT: dict[str, AttrValue] = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.request.temperature": 0.2,
    "gen_ai.user": "u-42",
    "gen_ai.is_streaming": False,
    "gen_ai.openai.api_base": "http://127.0.0.1:8000/v1/",
    "gen_ai.input.messages": '[{"role": "system", "parts": [{"content": "Be brief.", "type": "text"}]}, {"role": '
    '"user", "parts": [{"content": "Capital of France?", "type": "text"}]}]',
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.response.id": "chatcmpl-1",
    "gen_ai.response.finish_reasons": ("stop",),
    "gen_ai.openai.response.system_fingerprint": "fp_1",
    "gen_ai.usage.total_tokens": 17,
    "gen_ai.usage.output_tokens": 5,
    "gen_ai.usage.input_tokens": 12,
    "gen_ai.output.messages": '[{"role": "assistant", "parts": [{"content": "Paris is the capital.", "type": "text"}], '
    '"finish_reason": "stop"}]',
}
# ... for a completions call (legacy /v1/completions).
OPENLLMETRY_COMPLETION: dict[str, AttrValue] = {
    "gen_ai.operation.name": "text_completion",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-3.5-turbo-instruct",
    "gen_ai.is_streaming": False,
    "gen_ai.input.messages": '[{"role": "user", "parts": [{"content": "Capital of France?", "type": "text"}]}]',
    "gen_ai.openai.api_base": "http://127.0.0.1:8000/v1/",
    "gen_ai.response.model": "gpt-3.5-turbo-instruct",
    "gen_ai.response.id": "cmpl-1",
    "gen_ai.response.finish_reasons": ("stop",),
    "gen_ai.usage.total_tokens": 6,
    "gen_ai.usage.output_tokens": 2,
    "gen_ai.usage.input_tokens": 4,
    "gen_ai.output.messages": '[{"role": "assistant", "parts": [{"content": " Paris.", "type": "text"}], '
    '"finish_reason": "stop"}]',
}
# ... for an embeddings call (it records the input as a message too).
OPENLLMETRY_EMBEDDINGS: dict[str, AttrValue] = {
    "gen_ai.operation.name": "embeddings",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "text-embedding-3-small",
    "gen_ai.is_streaming": False,
    "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", "content": "hello"}]}]',
    "gen_ai.openai.api_base": "http://127.0.0.1:8000/v1/",
    "gen_ai.response.model": "text-embedding-3-small",
    "gen_ai.usage.total_tokens": 2,
    "gen_ai.usage.input_tokens": 2,
    "gen_ai.usage.cache_read.input_tokens": 0,
}
# ... for a chat call the server answered 500 (status ERROR, plus an ``exception`` event).
OPENLLMETRY_ERROR: dict[str, AttrValue] = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.is_streaming": False,
    "gen_ai.openai.api_base": "http://127.0.0.1:8000/v1/err/",
    "gen_ai.input.messages": '[{"role": "user", "parts": [{"content": "fail please", "type": "text"}]}]',
    "error.type": "InternalServerError",
}
OPENLLMETRY_ERROR_STATUS = "Error code: 500 - {'error': {'message': 'boom', 'type': 'server_error'}}"
# ... for the chat call with TRACELOOP_TRACE_CONTENT=false: no messages at all.
OPENLLMETRY_NO_CONTENT: dict[str, AttrValue] = {
    k: v for k, v in OPENLLMETRY_CHAT.items() if k not in ("gen_ai.input.messages", "gen_ai.output.messages")
}

# What openinference-instrumentation-openai 0.1.66 emitted for the same chat call (status OK).
OPENINFERENCE_CHAT: dict[str, AttrValue] = {
    "llm.system": "openai",
    "input.value": '{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of '
    'France?"}], "model": "gpt-4o-mini", "temperature": 0.2, "user": "u-42"}',
    "input.mime_type": "application/json",
    "output.value": '{"id":"chatcmpl-1","choices":[{"finish_reason":"stop","index":0,"logprobs":null,"message":'
    '{"content":"Paris is the capital.","role":"assistant"}}],"created":1700000000,"model":"gpt-4o-mini-2024-07-18",'
    '"object":"chat.completion","system_fingerprint":"fp_1","usage":{"completion_tokens":5,"prompt_tokens":12,'
    '"total_tokens":17}}',
    "output.mime_type": "application/json",
    "llm.invocation_parameters": '{"model": "gpt-4o-mini", "temperature": 0.2, "user": "u-42"}',
    "llm.input_messages.0.message.role": "system",
    "llm.input_messages.0.message.content": "Be brief.",
    "llm.input_messages.1.message.role": "user",
    "llm.input_messages.1.message.content": "Capital of France?",
    "llm.model_name": "gpt-4o-mini-2024-07-18",
    "llm.token_count.total": 17,
    "llm.token_count.prompt": 12,
    "llm.token_count.completion": 5,
    "llm.output_messages.0.message.role": "assistant",
    "llm.output_messages.0.message.content": "Paris is the capital.",
    "llm.finish_reason": "stop",
    "openinference.span.kind": "LLM",
}
# ... for a user message made of two text content parts.
OPENINFERENCE_PARTS: dict[str, AttrValue] = {
    "llm.system": "openai",
    "llm.invocation_parameters": '{"model": "gpt-4o-mini"}',
    "llm.input_messages.0.message.role": "user",
    "llm.input_messages.0.message.contents.0.message_content.type": "text",
    "llm.input_messages.0.message.contents.0.message_content.text": "part one",
    "llm.input_messages.0.message.contents.1.message_content.type": "text",
    "llm.input_messages.0.message.contents.1.message_content.text": "part two",
    "llm.model_name": "gpt-4o-mini-2024-07-18",
    "llm.token_count.total": 17,
    "llm.token_count.prompt": 12,
    "llm.token_count.completion": 5,
    "llm.output_messages.0.message.role": "assistant",
    "llm.output_messages.0.message.content": "Paris is the capital.",
    "llm.finish_reason": "stop",
    "openinference.span.kind": "LLM",
}
# ... for a completions call.
OPENINFERENCE_COMPLETION: dict[str, AttrValue] = {
    "llm.system": "openai",
    "input.value": '{"model": "gpt-3.5-turbo-instruct", "prompt": "Capital of France?"}',
    "input.mime_type": "application/json",
    "llm.invocation_parameters": '{"model": "gpt-3.5-turbo-instruct"}',
    "llm.prompts.0.prompt.text": "Capital of France?",
    "llm.model_name": "gpt-3.5-turbo-instruct",
    "llm.token_count.total": 6,
    "llm.token_count.prompt": 4,
    "llm.token_count.completion": 2,
    "llm.choices.0.completion.text": " Paris.",
    "llm.finish_reason": "stop",
    "openinference.span.kind": "LLM",
}
# ... for an embeddings call.
OPENINFERENCE_EMBEDDING: dict[str, AttrValue] = {
    "llm.system": "openai",
    "embedding.invocation_parameters": '{"model": "text-embedding-3-small", "encoding_format": "base64"}',
    "embedding.embeddings.0.embedding.text": "hello",
    "llm.token_count.total": 2,
    "llm.token_count.prompt": 2,
    "embedding.model_name": "text-embedding-3-small",
    "embedding.embeddings.0.embedding.vector": (0.1, 0.2),
    "openinference.span.kind": "EMBEDDING",
}
# ... for the 500 (status ERROR with this description, and an ``exception`` event).
OPENINFERENCE_ERROR: dict[str, AttrValue] = {
    "llm.system": "openai",
    "input.value": '{"messages": [{"role": "user", "content": "fail please"}], "model": "gpt-4o-mini"}',
    "input.mime_type": "application/json",
    "llm.invocation_parameters": '{"model": "gpt-4o-mini"}',
    "llm.input_messages.0.message.role": "user",
    "llm.input_messages.0.message.content": "fail please",
    "openinference.span.kind": "LLM",
}
OPENINFERENCE_ERROR_STATUS = (
    "InternalServerError: Error code: 500 - {'error': {'message': 'boom', 'type': 'server_error'}}"
)
# ... with OPENINFERENCE_HIDE_INPUT_TEXT=true and OPENINFERENCE_HIDE_OUTPUT_MESSAGES=true.
OPENINFERENCE_HIDDEN: dict[str, AttrValue] = {
    "llm.system": "openai",
    "llm.input_messages.0.message.role": "system",
    "llm.input_messages.0.message.content": "__REDACTED__",
    "llm.input_messages.1.message.role": "user",
    "llm.input_messages.1.message.content": "__REDACTED__",
    "llm.model_name": "gpt-4o-mini-2024-07-18",
    "llm.token_count.prompt": 12,
    "llm.token_count.completion": 5,
    "openinference.span.kind": "LLM",
}
# A RETRIEVER span made with openinference-instrumentation 0.1.72's OITracer and get_retriever_attributes, inside
# using_session("sess-9") and using_user("user-7") (the LLM spans inside those carry the same two attributes).
OPENINFERENCE_RETRIEVER: dict[str, AttrValue] = {
    "session.id": "sess-9",
    "user.id": "user-7",
    "input.value": "capital of France",
    "input.mime_type": "text/plain",
    "retrieval.documents.0.document.content": "Paris is the capital of France.",
    "retrieval.documents.0.document.id": "d1",
    "retrieval.documents.0.document.metadata": '{"src": "wiki"}',
    "retrieval.documents.0.document.score": 0.9,
    "retrieval.documents.1.document.content": "France is in Europe.",
    "retrieval.documents.1.document.id": "d2",
    "openinference.span.kind": "RETRIEVER",
}


class TestRole:
    """Which spans are LLM calls, retrievals, or neither."""

    @pytest.mark.parametrize(
        ("attributes", "events", "expected"),
        [
            (OPENLLMETRY_CHAT, (), "llm"),
            (OPENLLMETRY_COMPLETION, (), "llm"),
            (OPENLLMETRY_EMBEDDINGS, (), "other"),
            ({"gen_ai.operation.name": "generate_content"}, (), "llm"),
            ({"gen_ai.operation.name": "execute_tool", "gen_ai.input.messages": "[]"}, (), "other"),
            ({"gen_ai.operation.name": "invoke_agent"}, (), "other"),
            ({"gen_ai.operation.name": "retrieval"}, (), "retriever"),
            (OPENINFERENCE_CHAT, (), "llm"),
            (OPENINFERENCE_EMBEDDING, (), "other"),
            (OPENINFERENCE_RETRIEVER, (), "retriever"),
            ({"openinference.span.kind": "CHAIN"}, (), "other"),
            ({"llm.request.type": "chat", "gen_ai.prompt.0.content": "x"}, (), "llm"),
            ({"llm.request.type": "completion"}, (), "llm"),
            ({"llm.request.type": "embedding"}, (), "other"),
            ({"gen_ai.system": "openai", "gen_ai.prompt.0.content": "x"}, (), "llm"),
            ({"gen_ai.system": "openai"}, (event("gen_ai.user.message", content="x"),), "llm"),
            ({"gen_ai.prompt.name": "template"}, (), "other"),
            ({"http.method": "GET"}, (), "other"),
            ({"gen_ai.operation.name": 5}, (), "other"),
        ],
    )
    def test_role(self, attributes: dict[str, AttrValue], events: tuple[SpanEvent, ...], expected: str) -> None:
        """``gen_ai.operation.name`` decides, then OpenInference's span kind, OpenLLMetry's request type, content."""
        assert role(make_span(attributes, events)) == expected


class TestGenAI:
    """The current GenAI semantic conventions: messages as structured values or JSON strings."""

    def test_structured_messages(self) -> None:
        """Structured messages: system instructions first in history, the last user message is the prompt."""
        span = make_span(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.system_instructions": ({"type": "text", "content": "Be brief."},),
                "gen_ai.input.messages": (
                    {"role": "user", "parts": ({"type": "text", "content": "Hi"},)},
                    {"role": "assistant", "parts": ({"type": "text", "content": "Hello!"},)},
                    {
                        "role": "user",
                        "parts": ({"type": "text", "content": "Capital"}, {"type": "text", "content": "of France?"}),
                    },
                ),
                "gen_ai.output.messages": (
                    {
                        "role": "assistant",
                        "parts": ({"type": "text", "content": "Paris."}, {"type": "text", "content": "Surely."}),
                        "finish_reason": "stop",
                    },
                    {"role": "assistant", "parts": ({"type": "text", "content": "second choice"},)},
                ),
            }
        )
        got = sample(span)
        assert got.prompt == "Capital\nof France?"
        assert got.response == "Paris.\nSurely."
        assert got.history == (Message("system", "Be brief."), Message("user", "Hi"), Message("assistant", "Hello!"))

    def test_json_strings(self) -> None:
        """The same messages as JSON strings (system instructions included) map the same way."""
        span = make_span(
            genai(**{"gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be brief."}])})
        )
        got = sample(span)
        assert (got.prompt, got.response, got.history) == ("hi", "hello", (Message("system", "Be brief."),))

    def test_real_openllmetry_chat(self) -> None:
        """What OpenLLMetry 0.62.4 really emits becomes a full record."""
        got = sample(make_span(OPENLLMETRY_CHAT))
        assert got.prompt == "Capital of France?"
        assert got.response == "Paris is the capital."
        assert got.history == (Message("system", "Be brief."),)
        assert got.model == "gpt-4o-mini-2024-07-18"
        assert got.usage == Usage(prompt_tokens=12, completion_tokens=5)
        assert got.metadata == {
            "otel.span_name": "chat gpt-4o-mini",
            "gen_ai.provider": "openai",
            "gen_ai.operation": "chat",
        }
        assert got.error == ""

    def test_real_openllmetry_completion(self) -> None:
        """A legacy completion's prompt and text."""
        got = sample(make_span(OPENLLMETRY_COMPLETION))
        assert (got.prompt, got.response, got.usage) == ("Capital of France?", " Paris.", Usage(4, 2))

    def test_real_openllmetry_error(self) -> None:
        """A failed call (status error, no output) is a record with an empty response and the status message."""
        got = sample(make_span(OPENLLMETRY_ERROR, status_code=2, status_message=OPENLLMETRY_ERROR_STATUS))
        assert (got.prompt, got.response, got.error, got.model) == (
            "fail please",
            "",
            OPENLLMETRY_ERROR_STATUS,
            "gpt-4o-mini",
        )

    def test_plain_text_system_instructions(self) -> None:
        """System instructions that are plain text, not JSON, are taken as they are."""
        got = sample(make_span(genai(**{"gen_ai.system_instructions": "You are terse."})))
        assert got.history == (Message("system", "You are terse."),)

    def test_tool_call_only_output(self) -> None:
        """An output message with no text parts (a tool call) is an output: the response is empty."""
        output = [{"role": "assistant", "parts": [{"type": "tool_call", "name": "get_weather", "arguments": {}}]}]
        got = sample(make_span(genai(**{"gen_ai.output.messages": json.dumps(output)})))
        assert got.response == ""

    def test_older_role_content_shape(self) -> None:
        """Messages in the older ``{"role", "content"}`` shape (string or OpenAI parts) are read too."""
        messages = [
            {"role": "system", "content": "sys"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "image_url"}, {"type": "text", "text": "b"}],
            },
        ]
        got = sample(make_span(genai(**{"gen_ai.input.messages": json.dumps(messages)})))
        assert (got.prompt, got.history) == ("a\nb", (Message("system", "sys"),))

    def test_no_user_message(self) -> None:
        """Without a user message the last input message is the prompt."""
        messages = [
            {"role": "system", "parts": [{"type": "text", "content": "sys"}]},
            {"role": "tool", "parts": [{"type": "text", "content": "42 degrees"}]},
        ]
        got = sample(make_span(genai(**{"gen_ai.input.messages": json.dumps(messages)})))
        assert (got.prompt, got.history) == ("42 degrees", (Message("system", "sys"),))


class TestEventForm:
    """The earlier GenAI event form: message events and ``gen_ai.choice``, and Traceloop's content events."""

    def test_message_and_choice_events(self) -> None:
        """Message events in order make the input; the choice of index 0 is the response."""
        events = [
            event("gen_ai.system.message", content="Be brief."),
            event("gen_ai.user.message", content="Hi"),
            event("gen_ai.assistant.message", content="Hello!"),
            event("gen_ai.user.message", content='[{"type": "text", "text": "Capital of France?"}]'),
            event("gen_ai.choice", index=1, message={"content": "other"}, finish_reason="stop"),
            event("gen_ai.choice", index=0, message='{"role": "assistant", "content": "Paris."}', finish_reason="stop"),
        ]
        got = sample(make_span({"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o"}, events))
        assert got.prompt == "Capital of France?"
        assert got.response == "Paris."
        assert got.history == (Message("system", "Be brief."), Message("user", "Hi"), Message("assistant", "Hello!"))
        assert got.metadata["gen_ai.provider"] == "openai"

    def test_structured_content_and_role_attribute(self) -> None:
        """Content as structured parts, and a ``role`` attribute that overrides the event's role."""
        events = [
            event("gen_ai.user.message", content=({"type": "text", "text": "part"},)),
            event("gen_ai.tool.message", content="tool says", role="tool", id="call_1"),
            event("gen_ai.user.message", content="last", role="user"),
            event("gen_ai.choice", index=0, message={"content": ({"type": "text", "text": "ok"},)}),
        ]
        got = sample(make_span({"gen_ai.operation.name": "chat"}, events))
        assert (got.prompt, got.response) == ("last", "ok")
        assert got.history == (Message("user", "part"), Message("tool", "tool says"))

    def test_azure_event_content(self) -> None:
        """Azure SDKs' ``gen_ai.event.content`` JSON attribute."""
        events = [
            event("gen_ai.user.message", **{"gen_ai.event.content": '{"role": "user", "content": "hi"}'}),
            event("gen_ai.choice", **{"message": '{"content": "yo"}'}),
        ]
        got = sample(make_span({"gen_ai.operation.name": "chat"}, events))
        assert (got.prompt, got.response) == ("hi", "yo")

    def test_choice_without_message_is_empty_response(self) -> None:
        """A choice event that records no message (content capture off for output) gives an empty response."""
        events = [event("gen_ai.user.message", content="hi"), event("gen_ai.choice", index=0, finish_reason="stop")]
        assert sample(make_span({"gen_ai.operation.name": "chat"}, events)).response == ""

    def test_traceloop_content_events(self) -> None:
        """Traceloop's ``gen_ai.content.prompt`` / ``gen_ai.content.completion`` events (JSON or plain strings)."""
        events = [
            event(
                "gen_ai.content.prompt",
                **{"gen_ai.prompt": '[{"role": "system", "content": "sys"}, {"role": "user", "content": "q"}]'},
            ),
            event("gen_ai.content.completion", **{"gen_ai.completion": "the answer"}),
        ]
        got = sample(make_span({"gen_ai.system": "openai"}, events))
        assert (got.prompt, got.response, got.history) == ("q", "the answer", (Message("system", "sys"),))


class TestOpenLLMetryIndexed:
    """OpenLLMetry's indexed attributes (before it moved to the GenAI messages attributes)."""

    def test_indexed_prompts_and_completion(self) -> None:
        """``gen_ai.prompt.N.*`` in index order (10 after 2), the first completion, the older token names."""
        attributes: dict[str, AttrValue] = {
            "llm.request.type": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.prompt_tokens": 30,
            "gen_ai.usage.completion_tokens": 4,
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": "Paris.",
            "gen_ai.completion.0.finish_reason": "stop",
        }
        turns = ["system", "user", "assistant"] * 3 + ["user"]
        for i, turn in enumerate(turns):
            attributes[f"gen_ai.prompt.{i}.role"] = turn
            attributes[f"gen_ai.prompt.{i}.content"] = f"turn {i}"
        got = sample(make_span(attributes))
        assert got.prompt == "turn 9"
        assert [m.content for m in got.history] == [f"turn {i}" for i in range(9)]
        assert (got.response, got.model, got.usage) == ("Paris.", "gpt-4o-2024-08-06", Usage(30, 4))
        assert got.metadata["gen_ai.provider"] == "openai"

    def test_content_parts_as_json(self) -> None:
        """A prompt whose content OpenLLMetry wrote as a JSON list of parts gives the parts' text."""
        attributes: dict[str, AttrValue] = {
            "llm.request.type": "chat",
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": '[{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {}}]',
            "gen_ai.completion.0.content": "[not json",
        }
        got = sample(make_span(attributes))
        assert (got.prompt, got.response) == ("look", "[not json")


class TestOpenInference:
    """OpenInference LLM and RETRIEVER spans."""

    def test_real_chat(self) -> None:
        """What openinference-instrumentation-openai really emits becomes a full record."""
        got = sample(make_span(OPENINFERENCE_CHAT, status_code=1))
        assert (got.prompt, got.response) == ("Capital of France?", "Paris is the capital.")
        assert got.history == (Message("system", "Be brief."),)
        assert (got.model, got.usage) == ("gpt-4o-mini-2024-07-18", Usage(12, 5))
        assert got.metadata == {"otel.span_name": "chat gpt-4o-mini", "gen_ai.provider": "openai"}

    def test_real_content_parts(self) -> None:
        """``message.contents.M.message_content.text`` parts are joined."""
        assert sample(make_span(OPENINFERENCE_PARTS, status_code=1)).prompt == "part one\npart two"

    def test_real_completion(self) -> None:
        """``llm.prompts.N.prompt.text`` and ``llm.choices.N.completion.text``."""
        got = sample(make_span(OPENINFERENCE_COMPLETION, status_code=1))
        assert (got.prompt, got.response, got.usage) == ("Capital of France?", " Paris.", Usage(4, 2))

    def test_real_error(self) -> None:
        """The failed call is a record with the status message as its error."""
        got = sample(make_span(OPENINFERENCE_ERROR, status_code=2, status_message=OPENINFERENCE_ERROR_STATUS))
        assert (got.prompt, got.response, got.error) == ("fail please", "", OPENINFERENCE_ERROR_STATUS)
        assert got.model == "gpt-4o-mini"  # a failed call has no llm.model_name: the requested one

    def test_real_hidden_content(self) -> None:
        """Text OpenInference hid (``__REDACTED__``) is no content; the reason says how to show it."""
        text = reason(make_span(OPENINFERENCE_HIDDEN, status_code=1))
        assert "carries no prompt content" in text and "OPENINFERENCE_HIDE_INPUTS" in text

    def test_legacy_prompt_list(self) -> None:
        """Older OpenInference wrote ``llm.prompts`` as an array of strings."""
        attributes: dict[str, AttrValue] = {
            "openinference.span.kind": "LLM",
            "llm.prompts": ("Capital of France?",),
            "llm.choices.0.completion.text": "Paris.",
        }
        assert sample(make_span(attributes)).prompt == "Capital of France?"

    def test_real_retriever_and_session(self) -> None:
        """A RETRIEVER span's documents in order; ``session.id``/``user.id`` reach the LLM record by the defaults."""
        retriever = make_span(OPENINFERENCE_RETRIEVER)
        assert role(retriever) == "retriever"
        assert documents(retriever) == ("Paris is the capital of France.", "France is in Europe.")
        llm = make_span({**OPENINFERENCE_CHAT, "session.id": "sess-9", "user.id": "user-7"})
        got = sample(llm)
        assert (got.session_id, got.user_id) == ("sess-9", "user-7")


class TestDocuments:
    """Retrieved documents' text, from every form; never raises."""

    def test_index_order(self) -> None:
        """Documents come in numeric index order (10 after 9), and ones without text are skipped."""
        attributes: dict[str, AttrValue] = {"openinference.span.kind": "RETRIEVER"}
        for i in range(11):
            attributes[f"retrieval.documents.{i}.document.content"] = f"doc {i}"
        attributes["retrieval.documents.11.document.id"] = "no-text"
        assert documents(make_span(attributes)) == tuple(f"doc {i}" for i in range(11))

    @pytest.mark.parametrize(
        "value",
        [
            ({"id": "a", "score": 0.9, "content": "first"}, {"id": "b"}, {"id": "c", "content": "second"}),
            json.dumps([{"id": "a", "content": "first"}, {"id": "b"}, {"id": "c", "content": "second"}]),
        ],
        ids=["structured", "json"],
    )
    def test_genai_retrieval_documents(self, value: AttrValue) -> None:
        """``gen_ai.retrieval.documents`` (structured or JSON): each document's ``content``."""
        span = make_span({"gen_ai.operation.name": "retrieval", "gen_ai.retrieval.documents": value})
        assert role(span) == "retriever"
        assert documents(span) == ("first", "second")

    @pytest.mark.parametrize(
        "value",
        ["not json", '{"content": "x"}', 5, ("text",), json.dumps([{"content": "a\u0000b"}, {"content": 3}])],
    )
    def test_malformed_gives_nothing(self, value: AttrValue) -> None:
        """A malformed documents attribute gives no documents, and no exception."""
        assert documents(make_span({"gen_ai.retrieval.documents": value})) == ()


class TestMapping:
    """The mapping rules: model, usage, time, ids, attributes from settings, error, metadata."""

    def test_ids_time_and_latency(self) -> None:
        """Ids are copied, the record id derives from them, ts is the start, latency the duration."""
        got = sample(make_span(genai()))
        assert (got.trace_id, got.span_id, got.parent_span_id) == (TRACE, SPAN_ID, PARENT)
        assert got.id == record_id(TRACE, SPAN_ID)
        assert got.ts == datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC)
        assert got.latency_ms == 1250.0
        assert got.origin == ORIGIN
        assert got.context == ()

    def test_record_id(self) -> None:
        """``otel-`` + 32 hex, stable, different per span, and not containing the trace id."""
        rid = record_id(TRACE, SPAN_ID)
        assert rid == record_id(TRACE, SPAN_ID) == "otel-ea840fc7d8a3a0f3b44299aff21f44e4"  # sha256(trace + span)
        assert rid != record_id(TRACE, PARENT) and TRACE not in rid

    def test_no_end_time(self) -> None:
        """A span without an end (or ending before it starts) has no latency."""
        assert sample(make_span(genai(), end_ns=0)).latency_ms is None
        assert sample(make_span(genai(), end_ns=START - 1)).latency_ms is None

    @pytest.mark.parametrize(
        ("attributes", "model"),
        [
            ({"gen_ai.request.model": "req", "gen_ai.response.model": "resp"}, "resp"),
            ({"gen_ai.request.model": "req"}, "req"),
            ({"llm.model_name": "oi"}, "oi"),
            ({}, ""),
        ],
    )
    def test_model(self, attributes: dict[str, AttrValue], model: str) -> None:
        """The response model, else the request model."""
        assert sample(make_span(genai(**attributes))).model == model

    @pytest.mark.parametrize(
        ("attributes", "usage"),
        [
            ({"gen_ai.usage.input_tokens": 3, "gen_ai.usage.output_tokens": 4}, Usage(3, 4)),
            ({"gen_ai.usage.prompt_tokens": 3}, Usage(3, None)),
            ({"llm.token_count.completion": 4.0}, Usage(None, 4)),
            ({"gen_ai.usage.input_tokens": "7"}, Usage(7, None)),
            ({}, None),
        ],
    )
    def test_usage(self, attributes: dict[str, AttrValue], usage: Usage | None) -> None:
        """Token counts from whichever convention has them."""
        assert sample(make_span(genai(**attributes))).usage == usage

    def test_default_attribute_settings(self) -> None:
        """Defaults: route from ``service.name`` (resource), user/session/tenant from their usual attributes."""
        span = make_span(
            genai(**{"enduser.id": "u-1", "gen_ai.conversation.id": "conv-1"}),
            resource={"service.name": "chatbot", "tenant.id": "acme"},
        )
        got = sample(span)
        assert (got.route, got.tenant, got.user_id, got.session_id) == ("chatbot", "acme", "u-1", "conv-1")

    def test_openai_user_argument_is_the_user(self) -> None:
        """OpenLLMetry writes OpenAI's ``user=`` argument as ``gen_ai.user``: the default user attributes read it."""
        assert sample(make_span(OPENLLMETRY_CHAT)).user_id == "u-42"

    def test_attribute_settings_honoured(self) -> None:
        """Names are tried in order, each in the span's attributes then the resource's; non-strings become text."""
        settings = OtelSettings(
            route_attributes=("app.route", "service.name"),
            tenant_attributes=("org.id",),
            user_attributes=("missing", "app.user"),
            session_attributes=("app.flag",),
        )
        extra: dict[str, AttrValue] = {"service.name": "span-level", "org.id": 42, "app.flag": True}
        span = make_span(
            genai(**extra),
            resource={"service.name": "svc", "app.route": "/chat", "app.user": ("a", "b")},
        )
        got = sample(span, settings)
        assert (got.route, got.tenant, got.user_id, got.session_id) == ("/chat", "42", '["a","b"]', "true")

    def test_error_reasons(self) -> None:
        """The error: the status message, else ``error.type``, else ``error``; none unless the status is error."""
        assert sample(make_span(genai(), status_code=2, status_message="timeout")).error == "timeout"
        assert sample(make_span(genai(**{"error.type": "RateLimitError"}), status_code=2)).error == "RateLimitError"
        assert sample(make_span(genai(), status_code=2)).error == "error"
        assert sample(make_span(genai(**{"error.type": "X"}), status_code=1)).error == ""

    def test_error_with_output(self) -> None:
        """A failed span that still carries output keeps both."""
        got = sample(make_span(genai(), status_code=2, status_message="partial"))
        assert (got.response, got.error) == ("hello", "partial")

    def test_input_and_output_from_different_conventions(self) -> None:
        """The input and output are each taken from the first convention that has one."""
        span = make_span(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", "content": "q"}]}]',
            },
            [event("gen_ai.choice", index=0, message={"content": "a"})],
        )
        got = sample(span)
        assert (got.prompt, got.response) == ("q", "a")


class TestInvalid:
    """What cannot be a record raises Invalid with the dead-letter reason."""

    def test_no_prompt_content(self) -> None:
        """Content capture off: the reason names the span and says how to turn it on."""
        text = reason(make_span(OPENLLMETRY_NO_CONTENT, name="openai.chat"))
        assert text.startswith("LLM span 'openai.chat' carries no prompt content (")
        assert (
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true" in text and "TRACELOOP_TRACE_CONTENT=true" in text
        )

    def test_no_prompt_even_when_failed(self) -> None:
        """A failed span without input content is still not a record."""
        assert "carries no prompt content" in reason(make_span(OPENLLMETRY_NO_CONTENT, status_code=2))

    def test_empty_messages(self) -> None:
        """Messages without any text are no content."""
        assert "no prompt content" in reason(make_span(genai(**{"gen_ai.input.messages": "[]"})))
        empty = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "  "}]}])
        assert "no prompt content" in reason(make_span(genai(**{"gen_ai.input.messages": empty})))

    def test_no_response_content(self) -> None:
        """Input but no output, and not failed: no response content."""
        attributes = {k: v for k, v in genai().items() if k != "gen_ai.output.messages"}
        assert "carries no response content" in reason(make_span(attributes))

    @pytest.mark.parametrize(
        ("attributes", "expected"),
        [
            ({"gen_ai.input.messages": "{not json"}, "attribute gen_ai.input.messages is not valid JSON"),
            (
                {"gen_ai.input.messages": '{"role": "user"}'},
                "attribute gen_ai.input.messages must be a list, got object",
            ),
            ({"gen_ai.input.messages": 5}, "attribute gen_ai.input.messages must be a list, got number"),
            ({"gen_ai.input.messages": "[3]"}, "attribute gen_ai.input.messages[0] must be an object, got number"),
            ({"gen_ai.input.messages": '[{"role": 1}]'}, "gen_ai.input.messages[0].role must be a string"),
            ({"gen_ai.input.messages": '[{"parts": "x"}]'}, "gen_ai.input.messages[0].parts must be a list"),
            ({"gen_ai.input.messages": '[{"parts": [1]}]'}, "gen_ai.input.messages[0].parts[0] must be an object"),
            (
                {"gen_ai.input.messages": '[{"parts": [{"type": "text", "content": 1}]}]'},
                "gen_ai.input.messages[0].parts[0].content must be a string, got number",
            ),
            (
                {"gen_ai.input.messages": '[{"content": 1}]'},
                "gen_ai.input.messages[0].content must be a string or a list",
            ),
            ({"gen_ai.input.messages": "[" * 50_000 + "]" * 50_000}, "gen_ai.input.messages is nested too deeply"),
            ({"gen_ai.output.messages": "nope"}, "attribute gen_ai.output.messages is not valid JSON"),
            ({"gen_ai.system_instructions": "[1]"}, "gen_ai.system_instructions[0] must be an object"),
            ({"gen_ai.usage.input_tokens": -1}, "attribute gen_ai.usage.input_tokens must be a non-negative integer"),
            ({"gen_ai.usage.output_tokens": "many"}, "gen_ai.usage.output_tokens must be a non-negative integer"),
            ({"gen_ai.usage.output_tokens": True}, "gen_ai.usage.output_tokens must be a non-negative integer"),
            ({"gen_ai.response.model": 3}, "attribute gen_ai.response.model must be a string, got number"),
            (
                {"gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", "content": "a\\u0000"}]}]'},
                "prompt contains a NUL character",
            ),
            ({"gen_ai.output.messages": '[{"parts": [{"type": "text", "content": "\\ud800"}]}]'}, "response contains"),
        ],
    )
    def test_malformed_values(self, attributes: dict[str, AttrValue], expected: str) -> None:
        """Malformed convention values are rejected with a reason naming the attribute."""
        assert expected in reason(make_span(genai(**attributes)))

    @pytest.mark.parametrize(
        ("attributes", "expected"),
        [
            ({"llm.input_messages.0.message.content": 5}, "llm.input_messages.0.message.content must be a string"),
            (
                {"llm.output_messages.0.message.role": ("a",)},
                "llm.output_messages.0.message.role must be a string, got array",
            ),
            ({"llm.input_messages.0.message.contents.0.message_content.text": b"x"}, "must be a string, got bytes"),
        ],
    )
    def test_malformed_openinference(self, attributes: dict[str, AttrValue], expected: str) -> None:
        """Malformed OpenInference values name the attribute."""
        base = {k: v for k, v in OPENINFERENCE_CHAT.items() if not k.startswith("llm.input_messages")}
        assert expected in reason(make_span({**base, "llm.input_messages.1.message.content": "q", **attributes}))

    def test_bad_start_time(self) -> None:
        """A span without a start time, or starting after 2200, is not a record."""
        assert "has no start time" in reason(make_span(genai(), start_ns=0))
        assert "start time out of range" in reason(make_span(genai(), start_ns=2**64 - 1, end_ns=2**64 - 1))


class TestSpanJson:
    """A dead letter's bytes: the span as compact JSON."""

    def test_span_json(self) -> None:
        """Ids, name, times, status, attributes (bytes as base64, arrays, maps, non-finite floats) and events."""
        span = make_span(
            {"a": "x", "b": b"\x00\xff", "c": (1, 2.5), "d": {"k": True}, "e": math.nan},
            [event("gen_ai.user.message", content="hi")],
            status_code=2,
            status_message="bad",
        )
        raw = span_json(span)
        assert b"\n" not in raw and b", " not in raw
        doc: dict[str, Any] = json.loads(raw)
        assert (doc["traceId"], doc["spanId"], doc["parentSpanId"], doc["name"]) == (TRACE, SPAN_ID, PARENT, span.name)
        assert (doc["startTimeUnixNano"], doc["endTimeUnixNano"]) == (str(START), str(END))
        assert doc["status"] == {"code": 2, "message": "bad"}
        assert doc["attributes"] == {
            "a": "x",
            "b": base64.b64encode(b"\x00\xff").decode(),
            "c": [1, 2.5],
            "d": {"k": True},
            "e": "nan",
        }
        assert doc["events"] == [
            {"name": "gen_ai.user.message", "timeUnixNano": str(START + 1), "attributes": {"content": "hi"}}
        ]
        assert doc["resource"] == {"service.name": "chatbot"}
