"""One schema migration step (the steps are in :mod:`agent.storage.migrations`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step; statements use ``{db}`` for the database."""

    version: int
    """Order of application."""
    name: str
    """What it does."""
    statements: tuple[str, ...]
    """DDL, each idempotent."""
