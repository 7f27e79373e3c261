"""Value types that flow through the agent: raw message → Sample | DecodeFailure → ScoredSample."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a message came from."""

    topic: str
    """Source topic (or ``file:NAME`` for ``lookout score``)."""
    partition: int
    """Source partition (0 for files)."""
    offset: int
    """Offset within the partition (line number for files)."""

    def derived_id(self) -> str:
        """A stable record id for records that carry none."""
        return f"{self.topic}/{self.partition}/{self.offset}"


@dataclass(frozen=True, slots=True)
class RawMessage:
    """A message as consumed, before any decoding."""

    origin: Origin
    """Topic, partition, offset."""
    value: bytes | None
    """Message value; None for a tombstone."""
    key: bytes | None = None
    """Message key."""
    timestamp_ms: int | None = None
    """Broker or producer timestamp (epoch ms)."""


@dataclass(frozen=True, slots=True)
class Message:
    """One chat turn."""

    role: str
    """``system``, ``user``, ``assistant``, ``tool``..."""
    content: str
    """Text of the turn."""


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts reported by the LLM call."""

    prompt_tokens: int | None = None
    """Input tokens."""
    completion_tokens: int | None = None
    """Output tokens."""


@dataclass(frozen=True, slots=True)
class Sample:
    """A decoded, valid v1 record."""

    id: str
    """Identity used for idempotent writes: the record's ``id`` or one derived from its origin."""
    ts: datetime
    """When the LLM call happened (UTC)."""
    prompt: str
    """The prompt: ``prompt`` or the last user message of ``messages``."""
    response: str
    """The model's response."""
    history: tuple[Message, ...] = ()
    """The other turns of ``messages`` (system prompt, earlier turns), in order."""
    model: str = ""
    """Model name as logged; keys the price table."""
    tenant: str = ""
    """Customer/tenant."""
    user_id: str = ""
    """End user."""
    route: str = ""
    """Application feature or route."""
    context: tuple[str, ...] = ()
    """Retrieved passages (RAG)."""
    usage: Usage | None = None
    """Token counts, when logged."""
    latency_ms: float | None = None
    """Call latency."""
    trace_id: str = ""
    """Trace id for joining with tracing systems."""
    metadata: Mapping[str, str | float] = field(default_factory=dict)
    """Flat extra attributes."""
    origin: Origin | None = None
    """Where it was read from."""


@dataclass(frozen=True, slots=True)
class DecodeFailure:
    """A message that is not a valid v1 record: a value routed to the dead-letter topic, never raised."""

    raw: bytes
    """The original bytes, unchanged."""
    reason: str
    """Why it was rejected, one line."""
    origin: Origin
    """Where it was read from."""
    key: bytes | None = None
    """The original key, kept on the DLQ copy."""
    timestamp_ms: int | None = None
    """The original message timestamp."""


@dataclass(frozen=True, slots=True)
class ScoredSample:
    """A sample with every detector's score, its flags and its cost."""

    sample: Sample
    """The record."""
    scores: Mapping[str, float | None]
    """Detector name → score (None where the detector does not apply)."""
    versions: Mapping[str, str]
    """Detector name → detector version that produced the score."""
    flags: tuple[str, ...]
    """Names of the detectors whose threshold the record crossed."""
    cost_usd: float | None
    """Cost of the call; None when the model has no price or usage is missing."""
    shed_weight: float = 1.0
    """Weight of the record's expensive signals under load shedding: 1 (none shed), ``1/rate`` (kept while
    shedding) or 0 (skipped); sum it instead of counting rows for unbiased rates of shed signals."""
    judge_weight: float | None = None
    """Weight of the LLM judge's verdict (``agent/judge.py``): 1 judged because flagged, ``1/sample_rate`` judged as
    a sample, None not judged."""
