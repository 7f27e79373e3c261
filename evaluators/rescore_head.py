"""``lookout rescore --head FILE``: a candidate head against the current one, on the held-out site labels.

The labeled records are read from storage (:mod:`evaluators.site_labels`); only the held-out part (the split
rule the candidate was trained with) is scored, so no record it learned from is measured. Both heads score
the same records through their detector (the agent's code path), at the deployment's flag threshold for the
record's tenant. The truth is the verdict's: should the detector have flagged the record. Per detector:
AUC (of the score in the flag direction), accuracy, precision and recall of the flag, and n.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.errors import ConfigError
from detectors.encoder import build_batch
from detectors.head import HEADS_DIR, LogisticHead
from detectors.promoted import PromotedHeadError, active_entry, check_head, detector_with_head, read_manifest
from detectors.promoted import load_version as load_promoted
from detectors.registry import flag_rule
from detectors.types import Encoder
from evaluators.site_labels import HELD_OUT_BUCKETS, LabelRow, held_out

Thresholds = Callable[[str, str], float]
"""(detector, tenant) → the flag threshold in force."""


@dataclass(frozen=True, slots=True)
class Metrics:
    """One head's quality on the held-out labels of one detector."""

    auc: float | None
    """ROC AUC of the score in the flag direction (None: one class only)."""
    accuracy: float
    """Share of records whose flag decision matches the label."""
    precision: float | None
    """Share of flagged records that should be flagged (None: nothing flagged)."""
    recall: float | None
    """Share of should-flag records that are flagged (None: none should be)."""
    flagged: int
    """Records flagged."""


@dataclass(frozen=True, slots=True)
class DetectorComparison:
    """Current and candidate head on one detector's held-out labels."""

    detector: str
    """Detector."""
    n: int
    """Held-out label rows."""
    should_flag: int
    """Of them, records the verdict says should be flagged."""
    thresholds: tuple[float, ...]
    """Distinct flag thresholds applied (per tenant)."""
    current: Metrics
    """The head the agent scores with now."""
    candidate: Metrics
    """The candidate head."""


@dataclass(frozen=True, slots=True)
class HeadComparison:
    """What ``rescore --head`` prints."""

    head: str
    """Head name."""
    candidate_file: str
    """The candidate head file."""
    candidate_version: str
    """Its version."""
    current_version: str
    """The current head's version."""
    current_source: str
    """``shipped`` or the promoted version name (``relevance-v2``)."""
    split: str
    """The held-out rule applied."""
    labels: int
    """Label rows of this head read from storage (all parts)."""
    detectors: tuple[DetectorComparison, ...]
    """Per detector scoring with the head."""

    @property
    def n(self) -> int:
        """Held-out label rows compared."""
        return sum(d.n for d in self.detectors)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document."""
        return {"n": self.n, **{k: v for k, v in asdict(self).items() if k != "detectors"},
                "detectors": [asdict(d) for d in self.detectors]}  # fmt: skip


def current_head(name: str, heads_dir: Path | None) -> tuple[LogisticHead, str]:
    """The head the agent scores with: the active promoted version in ``heads_dir``, else the shipped one."""
    if heads_dir is not None:
        try:
            entry = active_entry(read_manifest(heads_dir), name)
            if entry is not None:
                return load_promoted(heads_dir, entry), str(entry["name"])
        except PromotedHeadError as exc:
            raise ConfigError(f"detectors.heads_dir: {exc}") from None
    return LogisticHead.load(HEADS_DIR / f"{name}.json"), "shipped"


def load_candidate(file: Path) -> LogisticHead:
    """The candidate head file, checked to be a head its detector accepts."""
    try:
        head = LogisticHead.load(file)
        check_head(head)
    except FileNotFoundError:
        raise ConfigError(f"no head file {file}") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{file} is not a usable head file ({exc})") from None
    return head


def metrics(should: Sequence[bool], badness: Sequence[float], flagged: Sequence[bool]) -> Metrics:
    """Metrics of flag decisions ``flagged`` and flag-direction scores ``badness`` against the truth ``should``."""
    from sklearn.metrics import roc_auc_score

    y, f = np.asarray(should, dtype=bool), np.asarray(flagged, dtype=bool)
    both = bool(y.any() and (~y).any())
    hits = int((y & f).sum())
    return Metrics(
        auc=round(float(roc_auc_score(y, np.asarray(badness))), 6) if both else None,
        accuracy=round(float(np.mean(y == f)), 6) if len(y) else 0.0,
        precision=round(hits / int(f.sum()), 6) if f.any() else None,
        recall=round(hits / int(y.sum()), 6) if y.any() else None,
        flagged=int(f.sum()),
    )


def _score(
    rows: Sequence[LabelRow], detector: str, head: LogisticHead, encoder: Encoder, thresholds: Thresholds
) -> tuple[list[float], list[bool]]:
    """Flag-direction scores and flag decisions of ``head``'s detector on ``rows``."""
    det = detector_with_head(detector, head)
    values = [s.value for s in det.score(build_batch(rows, encoder, det.needs))]
    worse = flag_rule(detector).higher_is_worse
    badness = [0.0 if v is None else (v if worse else 1.0 - v) for v in values]
    flags = [
        v is not None and (v >= t if worse else v < t)
        for v, t in zip(values, (thresholds(detector, r.tenant) for r in rows), strict=True)
    ]
    return badness, flags


def compare_heads(
    rows: Sequence[LabelRow],
    candidate: LogisticHead,
    current: LogisticHead,
    encoder: Encoder,
    thresholds: Thresholds,
) -> list[DetectorComparison]:
    """Per detector of the head: both heads on the held-out ``rows`` (the split rule in the candidate's meta)."""
    buckets = int((candidate.meta.get("site_labels") or {}).get("held_out_buckets", HELD_OUT_BUCKETS))
    held = [r for r in rows if r.head == candidate.name and held_out(r.record_id, buckets)]
    out = []
    for detector in sorted({r.detector for r in held}):
        mine = [r for r in held if r.detector == detector]
        should = [r.should_flag for r in mine]
        results = [metrics(should, *_score(mine, detector, h, encoder, thresholds)) for h in (current, candidate)]
        limits = tuple(sorted({thresholds(detector, r.tenant) for r in mine}))
        out.append(DetectorComparison(detector, len(mine), sum(should), limits, results[0], results[1]))
    return out


def threshold_lookup(
    defaults: Mapping[str, float], tenants: Mapping[str, Mapping[str, float]] | None = None
) -> Thresholds:
    """(detector, tenant) → the tenant's threshold, else ``defaults``', else the detector's default."""
    per = tenants or {}

    def lookup(detector: str, tenant: str) -> float:
        if detector in per.get(tenant, {}):
            return float(per[tenant][detector])
        return float(defaults.get(detector, flag_rule(detector).default_threshold))

    return lookup


def table_rows(cmp: DetectorComparison) -> list[tuple[str, str, str]]:
    """(metric, current, candidate) rows of one detector's comparison, for the text output."""

    def fmt(v: float | None) -> str:
        return "" if v is None else f"{v:.3f}"

    a, b = cmp.current, cmp.candidate
    return [
        ("AUC", fmt(a.auc), fmt(b.auc)),
        ("accuracy", fmt(a.accuracy), fmt(b.accuracy)),
        ("precision", fmt(a.precision), fmt(b.precision)),
        ("recall", fmt(a.recall), fmt(b.recall)),
        ("flagged", str(a.flagged), str(b.flagged)),
    ]
