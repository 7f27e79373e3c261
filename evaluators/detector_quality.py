"""Measured quality per detector from the review labels: precision of its flags, miss rate, recall, with intervals.

For one detector on one stream (tenant, model, route), or on all of them pooled:

- **precision** = confirmed / (confirmed + rejected) among labeled records the detector flagged;
- **miss rate** = the share of unflagged traffic the detector should have flagged, from the *control sample*
  (records no detector flagged, routed at random): a labeled control record whose verdict for the detector is
  ``reject`` is a miss; one labeled without a ``reject`` for it counts as its silence being right;
- **control rate** = labeled control records / unflagged records: the rate at which unflagged traffic was
  actually sampled *and* labeled (the rules' ``sample_rate``, cut by hourly budgets and by items still waiting),
  so the estimated missed records are ``misses / control rate`` = ``miss rate x unflagged records``;
- **recall** = TP / (TP + estimated misses), TP = precision x flagged records (the labeled flags scaled up to
  every flag).

Precision and miss rate get 95 % Wilson intervals; recall's interval combines their ends (the lowest precision
with the highest miss rate, and the reverse), so it is at least as wide as the truth needs. Each comes with its n.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import structlog

from agent.review.rules import RulesFile
from agent.storage.client import Client
from evaluators.labeled import ANY, LabeledRecord, Stream, Traffic, Window, read_labeled, read_traffic

log = structlog.get_logger(__name__)

Z95 = 1.959963984540054
"""The normal quantile of a two-sided 95 % interval."""


def wilson(k: float, n: float, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of ``k`` successes in ``n`` trials (n > 0)."""
    if n <= 0:
        raise ValueError("wilson needs n > 0")
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True, slots=True)
class Counts:
    """What one detector's estimates on one stream are made of."""

    flagged: int = 0
    """Stored records the detector flagged."""
    unflagged: int = 0
    """Stored records no detector flagged."""
    confirmed: int = 0
    """Labeled flags of the detector that reviewers confirmed."""
    rejected: int = 0
    """Labeled flags of the detector that reviewers rejected."""
    control: int = 0
    """Labeled control records."""
    missed: int = 0
    """Labeled control records the detector should have flagged (verdict ``reject``)."""

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    @property
    def labeled_flags(self) -> int:
        """Labeled flags: the n of the precision."""
        return self.confirmed + self.rejected


def astuple(counts: Counts) -> tuple[int, ...]:
    """The counts in field order."""
    return (counts.flagged, counts.unflagged, counts.confirmed, counts.rejected, counts.control, counts.missed)


@dataclass(frozen=True, slots=True)
class Estimate:
    """One detector's measured quality on one stream (``*`` for every tenant, model or route)."""

    detector: str
    """Detector name."""
    tenant: str
    """Tenant, or ``*``."""
    model: str
    """Model, or ``*``."""
    route: str
    """Route, or ``*``."""
    counts: Counts
    """What it is estimated from."""
    precision: float | None
    """Confirmed share of the labeled flags; None with no labeled flag."""
    precision_ci: tuple[float, float] | None
    """95 % Wilson interval of the precision."""
    miss_rate: float | None
    """Share of unflagged traffic the detector should have flagged; None with no labeled control record."""
    miss_rate_ci: tuple[float, float] | None
    """95 % Wilson interval of the miss rate."""
    control_rate: float | None
    """Labeled control records / unflagged records (None when nothing is unflagged)."""
    missed_estimate: float | None
    """Estimated missed records in the unflagged traffic: misses / control rate."""
    recall: float | None
    """TP / (TP + estimated misses); None unless both precision (or no flag at all) and miss rate are known."""
    recall_ci: tuple[float, float] | None
    """Recall at the intervals' ends."""

    @property
    def n(self) -> int:
        """Labels behind the estimate: labeled flags plus labeled control records."""
        return self.counts.labeled_flags + self.counts.control

    def as_json(self) -> dict[str, Any]:
        """A JSON object (intervals as ``[low, high]``)."""
        out = asdict(self)
        out["n_precision"] = self.counts.labeled_flags
        out["n_control"] = self.counts.control
        return out


def _recall(flagged: int, unflagged: int, precision: float | None, miss_rate: float | None) -> float | None:
    if miss_rate is None or (precision is None and flagged > 0):
        return None
    tp = (precision or 0.0) * flagged
    missed = miss_rate * unflagged
    return tp / (tp + missed) if tp + missed > 0 else None


def estimate(detector: str, stream: Stream, counts: Counts) -> Estimate:
    """The estimates from ``counts`` (pure)."""
    c = counts
    precision = c.confirmed / c.labeled_flags if c.labeled_flags else None
    precision_ci = wilson(c.confirmed, c.labeled_flags) if c.labeled_flags else None
    miss_rate = c.missed / c.control if c.control else None
    miss_ci = wilson(c.missed, c.control) if c.control else None
    control_rate = c.control / c.unflagged if c.unflagged else None
    missed_estimate = miss_rate * c.unflagged if miss_rate is not None and control_rate else None
    recall = _recall(c.flagged, c.unflagged, precision, miss_rate)
    recall_ci = None
    if recall is not None and miss_ci is not None:
        p_low, p_high = precision_ci or (0.0, 0.0)
        low = _recall(c.flagged, c.unflagged, p_low, miss_ci[1])
        high = _recall(c.flagged, c.unflagged, p_high, miss_ci[0])
        recall_ci = (low if low is not None else 0.0, high if high is not None else 1.0)
    return Estimate(detector, *stream, counts, precision, precision_ci, miss_rate, miss_ci, control_rate,
                    missed_estimate, recall, recall_ci)  # fmt: skip


def count(
    detectors: Sequence[str], traffic: Traffic, labeled: Iterable[LabeledRecord]
) -> dict[tuple[str, Stream], Counts]:
    """Counts per (detector, stream) with any stored record or label (pure)."""
    tallies: dict[tuple[str, Stream], list[int]] = {}

    def tally(detector: str, stream: Stream) -> list[int]:
        return tallies.setdefault((detector, stream), [0, 0, 0, 0, 0, 0])

    for detector in detectors:
        for stream in traffic.streams():
            t = tally(detector, stream)
            t[0] = traffic.flagged.get((detector, stream), 0)
            t[1] = traffic.unflagged.get(stream, 0)
    for record in labeled:
        for detector in detectors:
            t = tally(detector, record.stream)
            verdict = record.verdicts.get(detector)
            if detector in record.flags and verdict is not None:
                t[2 if verdict == "confirm" else 3] += 1
            if record.control and detector not in record.flags:
                t[4] += 1
                t[5] += record.missed(detector)
    return {key: Counts(*t) for key, t in tallies.items()}


@dataclass(frozen=True, slots=True)
class QualityReport:
    """Every detector's estimates: pooled over all streams, then per stream."""

    overall: tuple[Estimate, ...]
    """One per detector with any label, over every stream."""
    streams: tuple[Estimate, ...]
    """One per (detector, stream) with any label."""
    control_rule_rate: float | None
    """The rules' nominal control sample rate (all control rules, any stream); None without such a rule."""

    @property
    def labels(self) -> int:
        """Labels behind the report (0: nothing to report)."""
        return sum(e.n for e in self.overall)


def report(detectors: Sequence[str], traffic: Traffic, labeled: Sequence[LabeledRecord],
           rules: RulesFile | None = None) -> QualityReport:  # fmt: skip
    """Estimates per detector and stream, and pooled per detector (pure); detectors with no label are left out."""
    counts = count(detectors, traffic, labeled)
    per_stream = sorted(
        (estimate(d, s, c) for (d, s), c in counts.items() if c.labeled_flags or c.control),
        key=lambda e: (e.detector, e.tenant, e.model, e.route),
    )
    pooled: dict[str, Counts] = {}
    for (detector, _), c in counts.items():
        pooled[detector] = pooled.get(detector, Counts()) + c
    overall = [estimate(d, (ANY, ANY, ANY), c) for d, c in pooled.items() if c.labeled_flags or c.control]
    return QualityReport(tuple(sorted(overall, key=lambda e: e.detector)), tuple(per_stream), control_rule_rate(rules))


def control_rule_rate(rules: RulesFile | None) -> float | None:
    """The chance that an unflagged record is sampled by some control rule (ignoring their stream filters)."""
    rates = [r.sample_rate for r in (rules.rules if rules else ()) if r.control]
    return 1 - math.prod(1 - r for r in rates) if rates else None


def read_report(client: Client, db: str, detectors: Sequence[str], window: Window,
                rules: RulesFile | None = None) -> QualityReport:  # fmt: skip
    """:func:`report` over what is stored in ``window``."""
    return report(detectors, read_traffic(client, db, window), read_labeled(client, db, window), rules)


def set_gauges(overall: Iterable[Estimate]) -> None:
    """Replace the ``lookout_detector_precision`` / ``lookout_detector_miss_rate`` gauges with ``overall``."""
    from agent import metrics

    metrics.detector_precision.clear()
    metrics.detector_miss_rate.clear()
    for e in overall:
        if e.precision is not None:
            metrics.detector_precision.labels(detector=e.detector).set(e.precision)
        if e.miss_rate is not None:
            metrics.detector_miss_rate.labels(detector=e.detector).set(e.miss_rate)


class QualityGauges:
    """Refreshes the quality gauges from storage in a background thread: at start, then every ``interval_s``.

    Args:
        client: The agent's storage client.
        db: Database.
        detectors: Detectors to measure.
        window_s: Records of the last this many seconds count (at each refresh).
    """

    def __init__(self, client: Client, db: str, detectors: Sequence[str], interval_s: float,
                 window_s: float = 30 * 86400) -> None:  # fmt: skip
        self.client, self.db, self.detectors = client, db, tuple(detectors)
        self.interval_s, self.window_s = interval_s, window_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lookout-quality-gauges", daemon=True)

    def start(self) -> QualityGauges:
        """Begin refreshing."""
        self._thread.start()
        return self

    def refresh(self) -> None:
        """Read the labels once and set the gauges (a failure is logged; the gauges keep their values)."""
        from datetime import UTC, datetime, timedelta

        window = Window(since=datetime.now(UTC) - timedelta(seconds=self.window_s))
        try:
            set_gauges(read_report(self.client, self.db, self.detectors, window).overall)
        except Exception as exc:  # storage down or busy: the next refresh tries again
            log.warning("detector quality gauges not refreshed", error=" ".join(str(exc).split())[:200])

    def _run(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        """Stop refreshing (waits for a refresh in progress)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
