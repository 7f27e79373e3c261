"""``lookout eval --cascade``: the AUC and MAP rows of ``lookout eval`` with the scores cascade scoring would store.

Each cascaded detector (toxicity, relevance, hallucination) is wrapped in :class:`CascadeDetector`, which runs the
records through :class:`agent.cascade.Cascade` exactly as ``scoring.mode: cascade`` does (the fast tier for every
record, the full tier, or the site's expensive model, inside the band; no audit sample), and is measured on the same
held-out sets as the head's rows through :mod:`evaluators.backend_eval`. Its rows, labelled ``<detector>
(cascade)``, follow the head's row of the same set and metric; :func:`summary` says how far each lies from it and
how many records the full tier scored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from agent.cascade import Cascade, build_cascade
from agent.config_scoring import ScoringSettings
from agent.types import Message, Sample
from detectors.registry import build
from detectors.types import Batch, Detector, Encoder, Scorable, Score, TextField
from evaluators import backend_eval
from evaluators.heads import DEFAULT_CACHE
from evaluators.quality import EvalRow

CASCADED: tuple[str, ...] = ("toxicity", "relevance", "hallucination")
"""Detectors ``lookout eval --cascade`` measures (the ones with a fast twin and a head row in ``lookout eval``)."""
RANKING_METRICS = frozenset({"AUC", "MAP", "MRR"})
"""Threshold-free metrics: the rows the cascade is held to (within 0.01 of the full tier)."""
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class CascadeDetector:
    """A full-tier detector scored through the cascade; counts the records each tier decided.

    Args:
        cascade: The cascade (its fast twin for ``detector`` decides outside the band).
        detector: The full tier's detector.
    """

    cascade: Cascade
    detector: Detector
    scored: int = 0
    """Records scored (a score or None)."""
    escalated: int = 0
    """Records the full (or expensive) tier scored."""
    name: str = field(init=False)
    version: str = field(init=False)
    needs: frozenset[TextField] = field(init=False)
    higher_is_worse: bool = field(init=False)
    default_threshold: float = field(init=False)

    def __post_init__(self) -> None:
        if self.detector.name not in self.cascade.fast:
            raise ValueError(f"detector {self.detector.name!r} has no fast twin in the cascade")
        self.name = self.detector.name
        self.version = f"cascade-{self.detector.version}"
        self.needs = frozenset()  # the cascade embeds what each tier needs itself
        self.higher_is_worse = self.detector.higher_is_worse
        self.default_threshold = self.detector.default_threshold

    def score(self, batch: Batch) -> list[Score]:
        """The cascade's score per record, at the detector's default threshold."""
        samples = [_sample(i, item) for i, item in enumerate(batch.items)]
        limits = {self.name: self.default_threshold}
        out = self.cascade.run(samples, [self.detector], self.detector.needs, lambda _tenant: limits)
        self.scored += len(samples)
        self.escalated += out.per_detector.get(self.name, 0)
        return [Score(v) for v in out.columns[self.name]]

    @property
    def full_fraction(self) -> float:
        """Share of the scored records the full tier scored."""
        return self.escalated / self.scored if self.scored else 0.0


def _sample(i: int, item: Scorable) -> Sample:
    history = tuple(Message(t.role, t.content) for t in item.history)
    return Sample(str(i), _EPOCH, item.prompt, item.response, history=history, context=tuple(item.context))


def build_detectors(
    names: Sequence[str], scoring: ScoringSettings, full_encoder: Encoder, device: str = "cpu"
) -> dict[str, CascadeDetector]:
    """One :class:`CascadeDetector` per name, over the fast tier, bands and expensive models ``scoring`` names.

    The audit sample is off: every score is the one the bands choose.
    """
    unknown = [n for n in names if n not in CASCADED]
    if unknown:
        raise ValueError(f"no cascade for {', '.join(unknown)}; cascaded detectors: {', '.join(CASCADED)}")
    full = build(list(names))
    cascade = build_cascade(scoring.model_copy(update={"audit_rate": 0.0}), full, full_encoder, device)
    return {d.name: CascadeDetector(cascade, d) for d in full}


def cascade_rows(
    detectors: dict[str, CascadeDetector],
    data_dir: Path,
    encoder: Encoder,
    cache_dir: Path | None = DEFAULT_CACHE,
    report: Callable[[str], None] = print,
) -> list[EvalRow]:
    """The threshold-free rows of each detector through the cascade, labelled ``<name> (cascade)``.

    ``encoder`` (MiniLM) only picks relevance's hard negatives, as for the head's rows.
    """
    rows: list[EvalRow] = []
    for name, det in detectors.items():
        label = f"{name} (cascade)"
        report(f"evaluating {label} ...")
        rows.extend(backend_eval.rows_for(backend_eval.Backend(label, det), data_dir, encoder, cache_dir))
    return rows


@dataclass(frozen=True)
class Gap:
    """One cascade row beside the full tier's row of the same set and metric."""

    detector: str
    dataset: str
    metric: str
    full: float
    cascade: float

    @property
    def delta(self) -> float:
        """Cascade minus full tier."""
        return self.cascade - self.full


def gaps(head_rows: Sequence[EvalRow], rows: Sequence[EvalRow]) -> list[Gap]:
    """Each cascade row paired with the head's row of the same detector, set and threshold-free metric."""
    full = {(r.detector, r.dataset, r.metric): r.lookout for r in head_rows}
    out = []
    for r in rows:
        name = r.detector.split(" ", 1)[0]
        value = full.get((name, r.dataset, r.metric))
        if r.metric in RANKING_METRICS and value is not None and math.isfinite(value) and math.isfinite(r.lookout):
            out.append(Gap(name, r.dataset, r.metric, value, r.lookout))
    return out


def summary(found: Sequence[Gap], detectors: dict[str, CascadeDetector], tolerance: float = 0.01) -> list[str]:
    """Lines per detector: rows within ``tolerance`` of the full tier, the largest gap, the full tier's share."""
    lines = []
    for name, det in detectors.items():
        mine = [g for g in found if g.detector == name]
        if not mine:
            lines.append(f"{name} (cascade): no row to compare; full tier scored {det.full_fraction:.1%} of records")
            continue
        worst = max(mine, key=lambda g: abs(g.delta))
        within = sum(abs(g.delta) <= tolerance for g in mine)
        lines.append(
            f"{name} (cascade): {within} of {len(mine)} AUC/MAP/MRR rows within {tolerance} of the full tier; "
            f"largest gap {worst.delta:+.4f} ({worst.metric}, {worst.dataset}); "
            f"full tier scored {det.full_fraction:.1%} of {det.scored} records"
        )
    return lines
