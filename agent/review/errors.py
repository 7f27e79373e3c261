"""What a review operation raises when it cannot be done as asked; the web layer maps each to a status."""

from __future__ import annotations

from agent.errors import LookoutError


class ReviewError(LookoutError):
    """A review operation that cannot be done as asked (the message says why)."""


class NotFound(ReviewError):
    """No such queue item, claim or annotator."""


class Conflict(ReviewError):
    """The item is claimed by someone else or already labeled, or the annotator already exists."""


class Forbidden(ReviewError):
    """The caller may not do this (a label without their own claim, an override by a non-admin)."""


def shown(value: str, limit: int = 80) -> str:
    """``value`` as it may appear in an error message: quoted, and cut to ``limit`` characters."""
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}… ({len(value)} characters)"
