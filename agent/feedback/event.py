"""The feedback event value type and its kinds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from agent.types import Origin

FeedbackKind = Literal["thumbs_up", "thumbs_down", "report", "rating"]
"""What the user did: a thumb either way, a report (abuse, wrong answer...), or a 1-5 rating."""

KINDS: tuple[str, ...] = get_args(FeedbackKind)

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
