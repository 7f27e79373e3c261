"""The bench's cascade measurement: cascade scoring against today's full path, on the same records, in one run.

Both scorers are built from the same settings (``scoring.mode`` full and cascade, the cascade with its audit sample
on), warmed up, and timed over the same batches with their embedding caches cleared, alternating ``rounds`` times
(best of each counts). Flag agreement compares each cascaded detector's raw flag (before one flag takes over
another) between the two runs; the full fraction is the share of records the cascade sent to the full or
expensive tier for at least one detector.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from agent.config import Settings
from agent.score import Scorer
from agent.types import Sample, ScoredSample
from detectors.encoder import CachingEncoder
from detectors.types import Detector, is_flagged


@dataclass(frozen=True)
class CascadeNumbers:
    """What the cascade did against the full path on the bench's records."""

    cascade_samples_per_s: float
    full_samples_per_s: float
    cascade_full_fraction: float
    """Share of records the cascade escalated for at least one detector."""
    cascade_flag_agreement: float
    """The lowest, over cascaded detectors, share of records flagged alike by both modes."""
    agreement_by_detector: dict[str, float]
    escalated_by_detector: dict[str, float]
    """Detector → share of records whose score that detector's escalation tier decided."""


def _clear(scorer: Scorer) -> None:
    for enc in (scorer.encoder, scorer.cascade.full_encoder if scorer.cascade is not None else None):
        if isinstance(enc, CachingEncoder):
            enc.clear()


def _timed(scorer: Scorer, samples: Sequence[Sample], batch: int) -> tuple[float, list[ScoredSample]]:
    _clear(scorer)
    out: list[ScoredSample] = []
    start = time.perf_counter()
    for i in range(0, len(samples), batch):
        out.extend(scorer.score_batch(samples[i : i + batch])[0])
    return len(samples) / (time.perf_counter() - start), out


def agreement(
    detectors: Sequence[Detector],
    thresholds: Callable[[str], Mapping[str, float]],
    full: Sequence[ScoredSample],
    cascade: Sequence[ScoredSample],
    names: Sequence[str],
) -> dict[str, float]:
    """Per detector in ``names``: the share of records both runs flag alike (raw flags, before suppression)."""
    by_name = {d.name: d for d in detectors}
    out = {}
    for name in names:
        det = by_name[name]
        same = 0
        for a, b in zip(full, cascade, strict=True):
            limit = thresholds(a.sample.tenant)[name]
            same += is_flagged(det, a.scores[name], limit) == is_flagged(det, b.scores[name], limit)
        out[name] = same / max(len(full), 1)
    return out


def measure_cascade(
    settings: Settings, samples: Sequence[Sample], batch: int, rounds: int, progress: Callable[[str], None] = print
) -> CascadeNumbers:
    """Cascade and full scoring over ``samples``, best of ``rounds`` alternations."""
    full = Scorer.from_settings(settings.with_overrides(scoring={"mode": "full"}))
    cascade = Scorer.from_settings(settings.with_overrides(scoring={"mode": "cascade"}))
    if cascade.cascade is None:
        raise RuntimeError("bench: the cascade scorer has no cascade")
    full.warm_up()
    cascade.warm_up()
    best_full = best_cascade = 0.0
    full_out: list[ScoredSample] = []
    cascade_out: list[ScoredSample] = []
    for n in range(1, rounds + 1):
        rate, full_out = _timed(full, samples, batch)
        best_full = max(best_full, rate)
        rate, cascade_out = _timed(cascade, samples, batch)
        best_cascade = max(best_cascade, rate)
        progress(f"cascade round {n}: best cascade {best_cascade:.1f} samples/s, best full {best_full:.1f} samples/s")
    names = sorted(cascade.cascade.fast)
    agree = agreement(full.detectors, full.thresholds_for, full_out, cascade_out, names)
    escalated = sum(1 for s in cascade_out if {"full", "expensive"} & set(s.tiers.values()))
    per_detector = {
        name: sum(1 for s in cascade_out if s.tiers.get(name) in ("full", "expensive")) / max(len(cascade_out), 1)
        for name in names
    }
    return CascadeNumbers(
        cascade_samples_per_s=best_cascade,
        full_samples_per_s=best_full,
        cascade_full_fraction=escalated / max(len(cascade_out), 1),
        cascade_flag_agreement=min(agree.values()) if agree else 1.0,
        agreement_by_detector=agree,
        escalated_by_detector=per_detector,
    )
