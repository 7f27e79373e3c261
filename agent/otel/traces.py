"""The trace join: LLM spans wait, bounded, for the rest of their trace, so retrieved documents become their context.

A RAG app's trace holds a retriever span next to (or above) the LLM span; the two may arrive in different OTLP
exports. :class:`TraceJoin` keeps, per trace id, the documents seen so far and the LLM records waiting. A record
goes on when its trace's root span has been seen (the root ends last, so the trace is complete), or after
``otel.trace_wait_s``; ``otel.max_held_records`` and ``otel.max_traces`` bound the memory, and everything given
up on is counted (``lookout_otel_trace_gave_up_total``). The caller holds the offsets of held records back.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from agent import metrics
from agent.config_otel import OtelSettings
from agent.types import Origin, Sample


@dataclass(frozen=True, slots=True)
class Document:
    """One retrieved document of a trace."""

    text: str
    """The document's content."""
    end_ns: int
    """When its retriever span ended."""


@dataclass
class _Held:
    sample: Sample
    start_ns: int
    since: float


@dataclass
class _Trace:
    touched: float
    documents: list[Document] = field(default_factory=list)
    chars: int = 0
    root_seen: bool = False
    held: dict[str, _Held] = field(default_factory=dict)
    released: bool = False


class TraceJoin:
    """Per trace: the documents seen and the LLM records waiting for them.

    Args:
        settings: ``otel.*``: the wait and the memory bounds.
    """

    def __init__(self, settings: OtelSettings) -> None:
        self.settings = settings
        self._traces: OrderedDict[str, _Trace] = OrderedDict()
        self._held = 0

    def __repr__(self) -> str:
        return f"TraceJoin(traces={len(self._traces)}, held={self._held})"

    def _trace(self, trace_id: str, now: float) -> _Trace:
        trace = self._traces.get(trace_id)
        if trace is None:
            trace = self._traces[trace_id] = _Trace(touched=now)
            if len(self._traces) > self.settings.max_traces:
                self._forget_oldest()
        else:
            self._traces.move_to_end(trace_id)
            trace.touched = now
        return trace

    def _forget_oldest(self) -> None:
        for trace_id, trace in self._traces.items():
            if not trace.held:  # a trace with waiting records is released by the record cap, not forgotten
                del self._traces[trace_id]
                metrics.otel_gave_up.labels(reason="traces_forgotten").inc()
                return

    def add_documents(self, trace_id: str, documents: tuple[str, ...], end_ns: int, now: float) -> None:
        """A retriever span's documents, for the LLM spans of the same trace."""
        if not documents:
            return
        trace = self._trace(trace_id, now)
        if trace.released and not trace.held:
            metrics.otel_gave_up.labels(reason="late_documents").inc()
        room = self.settings.max_documents_chars - trace.chars
        for text in documents:
            if len(text) > room:
                metrics.otel_gave_up.labels(reason="documents_cut").inc()
                break
            trace.documents.append(Document(text, end_ns))
            trace.chars += len(text)
            room -= len(text)

    def add_record(self, trace_id: str, sample: Sample, start_ns: int, now: float) -> None:
        """An LLM span's record, held until its trace completes or its wait is over."""
        trace = self._trace(trace_id, now)
        if sample.id not in trace.held:
            self._held += 1
        trace.held[sample.id] = _Held(sample, start_ns, now)
        metrics.otel_held.set(self._held)

    def root_seen(self, trace_id: str, now: float) -> None:
        """The trace's root span arrived: the trace is complete."""
        self._trace(trace_id, now).root_seen = True

    def release(self, now: float) -> list[Sample]:
        """Records whose trace is complete or whose wait is over, with their trace's documents as context."""
        wait = self.settings.trace_wait_s
        out: list[Sample] = []
        for trace_id, trace in list(self._traces.items()):
            if trace.held and (trace.root_seen or wait == 0 or any(now - h.since >= wait for h in trace.held.values())):
                if not trace.root_seen and wait > 0:
                    metrics.otel_gave_up.labels(reason="timeout").inc(len(trace.held))
                out.extend(self._take(trace))
            if not trace.held and now - trace.touched >= wait:
                del self._traces[trace_id]
        while self._held > self.settings.max_held_records:
            oldest = next(t for t in self._traces.values() if t.held)
            metrics.otel_gave_up.labels(reason="memory").inc(len(oldest.held))
            out.extend(self._take(oldest))
        metrics.otel_held.set(self._held)
        return out

    def _take(self, trace: _Trace) -> list[Sample]:
        held, trace.held = trace.held, {}
        self._held -= len(held)
        trace.released = True
        return [with_context(h.sample, trace.documents, h.start_ns) for h in held.values()]

    def due(self, now: float) -> bool:
        """Whether :meth:`release` would let a record go now."""
        wait = self.settings.trace_wait_s
        return any(
            trace.held and (trace.root_seen or any(now - h.since >= wait for h in trace.held.values()))
            for trace in self._traces.values()
        )

    def holding(self) -> bool:
        """Whether any record waits."""
        return self._held > 0

    def held_origins(self) -> Iterator[Origin]:
        """Where each held record was read from."""
        for trace in self._traces.values():
            for h in trace.held.values():
                if h.sample.origin is not None:
                    yield h.sample.origin


def with_context(sample: Sample, documents: list[Document], start_ns: int) -> Sample:
    """``sample`` with its trace's documents as context: those retrieved before the call started, else all of them.

    A record that carries context of its own keeps it, and the trace's documents follow (duplicates once).
    """
    if not documents:
        return sample
    before = [d.text for d in documents if d.end_ns <= start_ns]
    texts = before or [d.text for d in documents]
    merged = tuple(dict.fromkeys((*sample.context, *texts)))
    return replace(sample, context=merged)
