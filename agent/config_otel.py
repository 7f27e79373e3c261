"""Settings sections for OpenTelemetry: how spans become records, and the OTLP/HTTP receiver.

Part of the one settings model (:class:`agent.config.Settings` holds these sections; only ``agent.config`` reads
the environment).
"""

from __future__ import annotations

from pydantic import Field, SecretStr

from agent.config_integrations import Section


class OtelSettings(Section):
    """How OpenTelemetry LLM spans (OTLP from the Collector's Kafka exporter or from ``otlp.listen``) become records."""

    trace_wait_s: float = Field(default=5.0, ge=0, le=600)
    """Longest wait for the rest of an LLM span's trace (its retriever spans, its root span) before it is scored
    with the context seen so far; 0 scores at once. Offsets of held spans are not committed meanwhile."""
    max_held_records: int = Field(default=10_000, ge=1, le=1_000_000)
    """LLM spans held at most while their traces complete; past it the oldest is scored at once (counted as
    given up, ``lookout_otel_trace_gave_up_total``)."""
    max_traces: int = Field(default=100_000, ge=1, le=10_000_000)
    """Traces remembered at most (retrieved documents waiting for their LLM span); past it the oldest is forgotten."""
    max_documents_chars: int = Field(default=200_000, ge=1_000)
    """Characters of retrieved documents kept per trace; the rest is cut (and counted as given up)."""
    route_attributes: tuple[str, ...] = ("lookout.route", "service.name")
    """Span, then resource, attributes whose first present value becomes the record's ``route``."""
    tenant_attributes: tuple[str, ...] = ("lookout.tenant", "tenant.id")
    """Span, then resource, attributes whose first present value becomes the record's ``tenant``."""
    user_attributes: tuple[str, ...] = ("user.id", "enduser.id", "gen_ai.user")
    """Span, then resource, attributes whose first present value becomes the record's ``user_id``."""
    session_attributes: tuple[str, ...] = ("session.id", "gen_ai.conversation.id")
    """Span, then resource, attributes whose first present value becomes the record's ``session_id``."""


class OtlpSettings(Section):
    """The OTLP/HTTP receiver: apps export spans to it, it writes them to the consumed Kafka topic."""

    listen: str | None = Field(default=None, pattern=r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):[0-9]{1,5}$")
    """``host:port`` of ``POST /v1/traces`` (e.g. ``127.0.0.1:4318``); off when unset. With the ``metrics`` port
    it shares that server instead of opening its own."""
    token: SecretStr | None = None
    """Bearer token every export must carry (``Authorization: Bearer ...``); none asked when unset."""
    max_body_bytes: int = Field(default=4_194_304, ge=1_024, le=268_435_456)
    """Largest request body, compressed or not (413 past it); keep it at most the topic's message size limit."""
    topic: str | None = None
    """Topic the receiver writes to; default ``kafka.topic`` (what ``lookout run`` consumes)."""
    ack_timeout_s: float = Field(default=10.0, gt=0, le=300)
    """How long a request waits for the broker's acknowledgement before it is answered 503."""
