"""Value types that flow through the agent: raw message → Sample | DecodeFailure → ScoredSample | ScoringFailure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Literal, get_args


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
    span_id: str = ""
    """The LLM call's span id (OpenTelemetry), when it came as a span or the record names it."""
    parent_span_id: str = ""
    """The span it ran under ("" for a trace's root)."""
    session_id: str = ""
    """Conversation or session the call belongs to."""
    error: str = ""
    """Why the call failed ("" when it did not): an error span's status message or error type."""
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

    step: ClassVar[str] = "decode"
    """The step that rejected it (the dead-letter header ``lookout.step``)."""


@dataclass(frozen=True, slots=True)
class ScoringFailure:
    """A valid record that the score step failed on: dead-lettered like a decode failure, kept apart by its type."""

    raw: bytes
    """The original bytes, unchanged."""
    reason: str
    """Why scoring failed, one line (``scoring failed: <exception type>: <message>``)."""
    origin: Origin
    """Where it was read from."""
    key: bytes | None = None
    """The original key, kept on the DLQ copy."""
    timestamp_ms: int | None = None
    """The original message timestamp."""
    record_id: str = ""
    """The decoded record's id."""

    step: ClassVar[str] = "score"
    """The step that rejected it (the dead-letter header ``lookout.step``)."""


DeadLetter = DecodeFailure | ScoringFailure
"""What the dead-letter sinks take: a message that could not be decoded or a record that could not be scored."""


@dataclass(frozen=True, slots=True)
class ShedPlan:
    """What to skip in one batch while shedding."""

    keep: tuple[bool, ...]
    """Per record (batch order): True when its expensive signals are computed."""
    weight: float
    """``1 / rate``: the ``shed_weight`` of kept records (skipped ones get 0)."""
    detectors: frozenset[str]
    """Detectors that score only the kept records."""
    drift: bool
    """Whether the drift step sees only the kept records."""

    def weight_of(self, i: int) -> float:
        """``shed_weight`` of record ``i``."""
        return self.weight if self.keep[i] else 0.0

    def kept(self) -> list[int]:
        """Indices of the kept records."""
        return [i for i, k in enumerate(self.keep) if k]


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
    tiers: Mapping[str, str] = field(default_factory=dict)
    """Detector name → the tier that decided its score under cascade scoring (``fast``, ``full`` or ``expensive``,
    :mod:`agent.cascade`); empty under ``scoring.mode: full`` (every score is the full tier's)."""
    audited: bool = False
    """The record is in the cascade's audit sample (``scoring.audit_rate``, by record id): every tier scored it."""
    audit_disagree: tuple[str, ...] = ()
    """Audited records only: the detectors whose fast score lay outside the band (the cascade would have kept it)
    and whose fast flag differed from the escalation tier's (full, or the site's expensive model)."""


FeedbackKind = Literal["thumbs_up", "thumbs_down", "report", "rating"]
"""What the user did: a thumb either way, a report (abuse, wrong answer...), or a 1-5 rating."""

FEEDBACK_KINDS: tuple[str, ...] = get_args(FeedbackKind)
"""Every feedback kind."""

RATING_MIN = 1.0
RATING_MAX = 5.0


@dataclass(frozen=True, slots=True)
class FeedbackEvent:
    """A decoded, valid feedback-v1 event about one record (``record_id``) or one trace (``trace_id``)."""

    id: str
    """Identity for idempotent writes: the event's ``id`` or one derived from its topic/partition/offset."""
    ts: datetime
    """When the user gave the feedback (UTC)."""
    kind: FeedbackKind
    """``thumbs_up``, ``thumbs_down``, ``report`` or ``rating``."""
    record_id: str = ""
    """The record it is about (its ``id``); empty when ``trace_id`` is given instead."""
    trace_id: str = ""
    """The trace it is about (every record with that ``trace_id``); empty when ``record_id`` is given."""
    value: float | None = None
    """``+1`` for thumbs_up, ``-1`` for thumbs_down, 1-5 for rating, None for report."""
    user_id: str = ""
    """Who gave it."""
    comment: str = ""
    """Free text (PII-redacted before storage)."""
    origin: Origin | None = None
    """Where it was read from."""

    def is_negative(self, rating_max: float) -> bool:
        """thumbs_down, report, or a rating at or below ``rating_max``."""
        if self.kind in ("thumbs_down", "report"):
            return True
        return self.kind == "rating" and self.value is not None and self.value <= rating_max
