"""Real OpenAI apps instrumented by OpenLLMetry or OpenInference, and a stand-in for the OpenAI API.

The apps are what a team ships: the real ``openai`` client (``chat.completions.create`` with a system and a user
message) under the app's request span (the trace root), a retriever span before the LLM call in the RAG case, and
the session and user ids set the way each library expects. The LLM spans come from the real instrumentors:

- ``openllmetry``: ``opentelemetry-instrumentation-openai`` (Traceloop's OpenLLMetry). Content is recorded by
  default (``TRACELOOP_TRACE_CONTENT`` unset means ``true``). Without the Traceloop SDK there is no association
  property API, so the app puts ``session.id`` and ``user.id`` into OpenTelemetry baggage and a span processor
  copies baggage onto every span (what ``opentelemetry-processor-baggage``'s ``BaggageSpanProcessor`` does). Its
  retriever span carries OpenInference retriever attributes, set by hand.
- ``openinference``: ``openinference-instrumentation-openai`` (Arize). The app's own spans go through
  ``OITracer`` (a CHAIN root and a RETRIEVER span with ``get_retriever_attributes``); ``using_session`` and
  ``using_user`` put ``session.id`` and ``user.id`` on every span.

Each app gets its own ``TracerProvider`` (never the global one), instruments with ``tracer_provider=...`` and
uninstruments after; run one after the other in one process, the two do not clash. Both patch ``openai`` and
OpenLLMetry keeps its settings in class attributes, so tests still run an app in a subprocess
(``python tests/otel_apps.py LIBRARY ...``), which keeps pytest's process unpatched: it exports to an OTLP/HTTP
endpoint (``--endpoint``) or writes the one ``ExportTraceServiceRequest`` it would have sent (``--out``), and
prints a JSON line with the ids it made.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

from opentelemetry import baggage, context
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id

Library = Literal["openllmetry", "openinference"]
LIBRARIES: tuple[Library, ...] = ("openllmetry", "openinference")

MODEL_SUFFIX = "-2024-08-06"
"""What the stand-in appends to the requested model, as the OpenAI API answers with a dated snapshot."""


class StandInOpenAI:
    """A stand-in for the OpenAI API, which cannot be reached here: ``POST /v1/chat/completions`` on 127.0.0.1.

    It answers a proper ``chat.completion`` (id, the requested model plus :data:`MODEL_SUFFIX`, one choice with
    the next of ``answers``, usage) after ``delay_s``; with ``fail`` set it answers that HTTP status with OpenAI's
    JSON error body instead (500 ``server_error``, 429 ``rate_limit_exceeded``). Streaming is not served.

    Args:
        answers: The assistant message content of each answer in turn (the last one repeats).
        prompt_tokens: ``usage.prompt_tokens`` of every answer.
        completion_tokens: ``usage.completion_tokens`` of every answer.
        delay_s: Seconds before each answer.
        fail: HTTP status of an error answer (500 or 429); ``None`` answers normally.
    """

    def __init__(
        self,
        answers: Sequence[str] = ("Paris is the capital of France.",),
        prompt_tokens: int = 42,
        completion_tokens: int = 7,
        delay_s: float = 0.0,
        fail: int | None = None,
    ) -> None:
        self.answers = tuple(answers) or ("",)
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.delay_s = delay_s
        self.fail = fail
        self.requests: list[dict[str, Any]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        """The ``base_url`` for ``openai.OpenAI``."""
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self) -> StandInOpenAI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reply(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Status and JSON body answering one chat completion request."""
        self.requests.append(body)
        time.sleep(self.delay_s)
        if self.fail == 429:
            return 429, _error("Rate limit reached for requests", "requests", "rate_limit_exceeded")
        if self.fail is not None:
            return self.fail, _error("The server had an error while processing your request.", "server_error", None)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        return 200, {
            "id": f"chatcmpl-standin-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": f"{body.get('model', '')}{MODEL_SUFFIX}",
            "system_fingerprint": "fp_standin",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens,
            },
        }

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


def _error(message: str, kind: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _handler(stand_in: StandInOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            if self.path.rstrip("/") == "/v1/chat/completions":
                status, answer = stand_in.reply(body)
            else:
                status, answer = 404, _error(f"Unknown request URL: POST {self.path}", "invalid_request_error", None)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@dataclass(frozen=True)
class AppCall:
    """What one app request does: the question, the documents it retrieves, who asks."""

    question: str = "What is the capital of France?"
    """The user message."""
    followup: str = ""
    """A second user message in the same request, after the first answer (a second LLM span, with history)."""
    system: str = "You answer from the documents, in one sentence."
    """The system message (the retrieved documents are appended to it)."""
    documents: tuple[str, ...] = (
        "Paris is the capital and largest city of France.",
        "France is a country in Western Europe.",
    )
    """What the retriever span returns; empty: no retriever span."""
    model: str = "gpt-4o"
    """The requested model."""
    session_id: str = "sess-0001"
    """The conversation."""
    user_id: str = "user-0001"
    """The end user."""
    service: str = ""
    """``service.name`` of the app's resource; default ``support-bot`` (OpenLLMetry), ``docs-rag`` (OpenInference)."""
    tenant: str = "acme"
    """``tenant.id`` of the app's resource."""


@dataclass
class AppRun:
    """The ids an app run made (hex, as OTLP JSON writes them), and the error its LLM call raised."""

    library: str
    trace_id: str = ""
    root_span_id: str = ""
    retriever_span_id: str = ""
    llm_span_ids: list[str] = field(default_factory=list)
    """The LLM spans, in the order they ended."""
    error: str = ""
    spans: list[str] = field(default_factory=list)
    """Names of the spans the run exported, in the order they ended."""


class SeededIds(IdGenerator):
    """Trace and span ids from a seeded generator, so a rebuilt fixture keeps its ids."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)  # noqa: S311  # ids of test fixtures, not secrets

    def generate_span_id(self) -> int:
        """A non-zero 64-bit id."""
        return self._random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        """A non-zero 128-bit id."""
        return self._random.getrandbits(128) or 1


class BaggageToAttributes(SpanProcessor):
    """Copies every baggage entry onto each span as it starts (as ``opentelemetry-processor-baggage`` does)."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Set the baggage of the span's context as its attributes."""
        for key, value in baggage.get_all(parent_context).items():
            span.set_attribute(key, str(value))


def run_app(
    library: Library,
    call: AppCall,
    base_url: str,
    exporter: SpanExporter,
    *,
    batch: bool = True,
    ids: IdGenerator | None = None,
) -> AppRun:
    """Run one request of the ``library``-instrumented app against ``base_url``; its spans go to ``exporter``.

    ``batch`` exports through a ``BatchSpanProcessor`` (one export at the end, as apps usually do); otherwise a
    ``SimpleSpanProcessor`` exports each span as it ends (the retriever, the LLM and the root span in three
    exports). The provider is shut down (flushed) before this returns.
    """
    service = call.service or ("support-bot" if library == "openllmetry" else "docs-rag")
    resource = Resource.create({"service.name": service, "tenant.id": call.tenant})
    provider = TracerProvider(resource=resource, id_generator=ids) if ids else TracerProvider(resource=resource)
    if library == "openllmetry":
        provider.add_span_processor(BaggageToAttributes())
    seen = _Seen(exporter)
    provider.add_span_processor(BatchSpanProcessor(seen) if batch else SimpleSpanProcessor(seen))
    instrumentor = _instrumentor(library)
    instrumentor.instrument(tracer_provider=provider)
    run = AppRun(library=library)
    try:
        if library == "openllmetry":
            _openllmetry_app(provider, call, base_url, run)
        else:
            _openinference_app(provider, call, base_url, run)
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
    run.spans = [s.name for s in seen.spans]
    known = {run.root_span_id, run.retriever_span_id}
    ended = [format_span_id(s.context.span_id) for s in seen.spans if s.context is not None]
    run.llm_span_ids = [i for i in ended if i not in known]
    return run


class _Seen(SpanExporter):
    """Forwards to an exporter, keeping the spans (to report the LLM spans' ids)."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return self.exporter.export(spans)

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.exporter.force_flush(timeout_millis)


def _instrumentor(library: Library) -> Any:
    if library == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        return OpenAIInstrumentor()
    from openinference.instrumentation.openai import OpenAIInstrumentor as OpenInferenceInstrumentor

    return OpenInferenceInstrumentor()


def _messages(call: AppCall) -> list[dict[str, str]]:
    system = call.system
    if call.documents:
        system += "\n\nDocuments:\n" + "\n".join(f"- {d}" for d in call.documents)
    return [{"role": "system", "content": system}, {"role": "user", "content": call.question}]


def _chat(call: AppCall, base_url: str, run: AppRun) -> str:
    """The LLM call(s) through the real client, no retries (one LLM span each); an error lands in ``run``.

    With ``call.followup`` the conversation goes on: the first answer and the follow-up question are sent back
    with the first messages. Returns the last answer.
    """
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="test", max_retries=0)
    messages: list[Any] = _messages(call)
    answer = ""
    try:
        for question in (call.question, call.followup) if call.followup else (call.question,):
            if question != call.question:
                messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": question}]
            completion = client.chat.completions.create(model=call.model, messages=messages)
            answer = completion.choices[0].message.content or ""
    except openai.APIError as exc:
        run.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        client.close()
    return answer


def _retriever_attributes(call: AppCall) -> dict[str, str | float]:
    """OpenInference retriever attributes, by hand (the OpenLLMetry app has no OpenInference helpers)."""
    from openinference.semconv.trace import DocumentAttributes, OpenInferenceSpanKindValues, SpanAttributes

    attributes: dict[str, str | float] = {
        SpanAttributes.OPENINFERENCE_SPAN_KIND: OpenInferenceSpanKindValues.RETRIEVER.value,
        SpanAttributes.INPUT_VALUE: call.question,
    }
    for i, text in enumerate(call.documents):
        prefix = f"{SpanAttributes.RETRIEVAL_DOCUMENTS}.{i}."
        attributes[prefix + DocumentAttributes.DOCUMENT_ID] = f"doc-{i}"
        attributes[prefix + DocumentAttributes.DOCUMENT_CONTENT] = text
        attributes[prefix + DocumentAttributes.DOCUMENT_SCORE] = round(0.9 - 0.1 * i, 2)
    return attributes


@contextmanager
def _baggage(**entries: str) -> Iterator[None]:
    ctx = context.get_current()
    for key, value in entries.items():
        ctx = baggage.set_baggage(key.replace("_", "."), value, ctx)
    token = context.attach(ctx)
    try:
        yield
    finally:
        context.detach(token)


def _openllmetry_app(provider: TracerProvider, call: AppCall, base_url: str, run: AppRun) -> None:
    """A request handler: root span, a retriever span, then the (instrumented) chat completion."""
    tracer = provider.get_tracer("support-bot.app")
    try:
        with (
            _baggage(session_id=call.session_id, user_id=call.user_id),
            tracer.start_as_current_span("POST /ask", kind=SpanKind.SERVER) as root,
        ):
            root.set_attribute("http.request.method", "POST")
            root.set_attribute("http.route", "/ask")
            run.trace_id = format_trace_id(root.get_span_context().trace_id)
            run.root_span_id = format_span_id(root.get_span_context().span_id)
            if call.documents:
                with tracer.start_as_current_span("retrieve", attributes=_retriever_attributes(call)) as span:
                    run.retriever_span_id = format_span_id(span.get_span_context().span_id)
            _chat(call, base_url, run)
            root.set_attribute("http.response.status_code", 200)
    except Exception:  # noqa: S110  # the LLM error is in run.error and on the spans
        pass


def _openinference_app(provider: TracerProvider, call: AppCall, base_url: str, run: AppRun) -> None:
    """The same request through OpenInference's tracer: a CHAIN root, a RETRIEVER span, the chat completion."""
    from openinference.instrumentation import (
        OITracer,
        TraceConfig,
        get_retriever_attributes,
        using_session,
        using_user,
    )

    tracer = OITracer(provider.get_tracer("docs-rag.app"), config=TraceConfig())
    try:
        with (
            using_session(call.session_id),
            using_user(call.user_id),
            tracer.start_as_current_span("ask", openinference_span_kind="chain") as root,
        ):
            root.set_input(call.question)
            run.trace_id = format_trace_id(root.get_span_context().trace_id)
            run.root_span_id = format_span_id(root.get_span_context().span_id)
            if call.documents:
                with tracer.start_as_current_span("retrieve", openinference_span_kind="retriever") as span:
                    span.set_input(call.question)
                    documents = [
                        {"id": f"doc-{i}", "content": text, "score": round(0.9 - 0.1 * i, 2)}
                        for i, text in enumerate(call.documents)
                    ]
                    span.set_attributes(get_retriever_attributes(documents=documents))  # type: ignore[arg-type]
                    run.retriever_span_id = format_span_id(span.get_span_context().span_id)
            root.set_output(_chat(call, base_url, run))
    except Exception:  # noqa: S110  # the LLM error is in run.error and on the spans
        pass


def export_request(spans: Sequence[ReadableSpan]) -> bytes:
    """The serialized ``ExportTraceServiceRequest`` the OTLP exporter sends for ``spans``."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    data: bytes = encode_spans(spans).SerializeToString()
    return data


def main(argv: Sequence[str] | None = None) -> int:
    """``python tests/otel_apps.py LIBRARY [options]``: run one app request; print its ids as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("library", choices=LIBRARIES)
    parser.add_argument("--base-url", help="OpenAI-compatible API; default: a stand-in started here")
    parser.add_argument("--fail", type=int, help="the stand-in answers this HTTP status (500, 429)")
    parser.add_argument("--delay-ms", type=int, default=0, help="the stand-in's delay before answering")
    parser.add_argument("--answer", action="append", help="the stand-in's answers in turn (repeat the option)")
    parser.add_argument("--endpoint", help="OTLP/HTTP traces URL to export to (.../v1/traces)")
    parser.add_argument("--token", help="bearer token for the OTLP endpoint")
    parser.add_argument("--gzip", action="store_true", help="gzip the OTLP export")
    parser.add_argument("--simple", action="store_true", help="export each span as it ends")
    parser.add_argument("--out", type=Path, help="write the ExportTraceServiceRequest here instead of exporting")
    parser.add_argument("--seed", type=int, help="seeded trace and span ids")
    parser.add_argument("--call", default="{}", help="AppCall fields as JSON")
    args = parser.parse_args(argv)
    fields: dict[str, Any] = json.loads(args.call)
    if "documents" in fields:
        fields["documents"] = tuple(fields["documents"])
    call = AppCall(**fields)
    with StandInOpenAI(
        args.answer or ("Paris is the capital of France.",), delay_s=args.delay_ms / 1000, fail=args.fail
    ) as stand_in:
        base_url = args.base_url or stand_in.url
        ids = SeededIds(args.seed) if args.seed is not None else None
        if args.out is not None:
            memory = InMemorySpanExporter()
            run = run_app(args.library, call, base_url, memory, batch=not args.simple, ids=ids)
            args.out.write_bytes(export_request(memory.get_finished_spans()))
        else:
            run = run_app(args.library, call, base_url, _otlp_exporter(args), batch=not args.simple, ids=ids)
    sys.stdout.write(json.dumps(asdict(run)) + "\n")
    return 0


def _otlp_exporter(args: argparse.Namespace) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    headers = {"Authorization": f"Bearer {args.token}"} if args.token else None
    compression = Compression.Gzip if args.gzip else Compression.NoCompression
    return OTLPSpanExporter(endpoint=args.endpoint, headers=headers, compression=compression, timeout=10)


if __name__ == "__main__":
    sys.exit(main())
