"""Settings section for how records are scored: the full tier alone, or the cascade (:mod:`agent.cascade`).

Part of the one settings model (:class:`agent.config.Settings` holds it; only ``agent.config`` reads the
environment: ``LOOKOUT_SCORING__MODE=cascade``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from agent.config_integrations import Section


class ScoringSettings(Section):
    """Full-tier scoring, or a cascade that sends only uncertain records to the full tier (docs/cascade.md)."""

    mode: Literal["full", "cascade"] = "full"
    """``full``: every record through the MiniLM tier. ``cascade``: every record through the static-embedding fast
    tier; a record whose fast score is close to a threshold (inside the detector's band) also through the full
    tier, which then decides. Drift and stored embeddings use the fast tier's vectors in cascade mode."""
    audit_rate: float = Field(default=0.01, ge=0, le=1)
    """Share of records (chosen by a hash of the record id) that always run every tier; their agreement is stored
    (``records.audit_disagree``), on /metrics and alerted on (``lookout-cascade-agreement``)."""
    fast_dir: Path | None = None
    """Folder of fast heads and ``bands.json``; default: the shipped ones (``detectors/heads/fast``)."""
    static_dir: Path | None = None
    """Folder of the static encoder's table (``lookout distill-static``); default: the shipped one."""
    relevance_model_dir: Path | None = None
    """Expensive tier: a local cross-encoder directory (e.g. a site's ms-marco model) that scores relevance for
    records inside the band and on the audit sample, instead of the full tier. Never downloaded."""
    faithfulness_model_dir: Path | None = None
    """Expensive tier: a local NLI or hallucination-classifier directory (e.g. an HHEM-style model) that scores
    hallucination for records inside the band and on the audit sample. Never downloaded."""
