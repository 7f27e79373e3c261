"""Calibration: per detector (and per tenant where labels suffice) the threshold that meets a target precision.

The labels are the evidence. For detector *d*, each labeled record is one point: its stored score, whether
*d* should flag it, and a weight for how it was sampled —

- a record *d* flagged with a verdict for *d*: positive when confirmed; weight = records *d* flagged / its
  labeled flags (flags are labeled at some share);
- a labeled control record (nothing flagged it): positive when the verdict says *d* missed it; weight =
  unflagged records / labeled control records (the control sample is small, so each stands for many).

Records are ordered from worst score to best in *d*'s direction (``flag_rule``: toxicity flags high scores,
relevance low ones). Every cut is a candidate threshold; its precision is the weighted share of positives above
it, and it **meets P** when the 95 % Wilson lower bound of that share (on the weights' effective n) is at least
P, so a threshold that meets P on these labels keeps meeting it on new ones. The loosest cut that meets P wins
(most recall). A cut looser than today's threshold rests on control records only: records that another detector
flagged are not in the control sample, so use such a proposal with that in mind.

Detectors (or tenants) with fewer than ``min_n`` labeled flags keep their current threshold, and so does one
whose labels reach P at no cut.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from agent.thresholds import LabelSet, ThresholdsFile
from detectors.registry import flag_rule
from evaluators.detector_quality import wilson
from evaluators.labeled import ANY, LabeledRecord, Traffic, label_set_hash


@dataclass(frozen=True, slots=True)
class Point:
    """One labeled record as evidence about one detector."""

    score: float
    """The detector's stored score."""
    positive: bool
    """The detector should flag it."""
    weight: float
    """Records it stands for."""
    flagged: bool
    """The detector flagged it when it was scored."""


@dataclass(frozen=True, slots=True)
class Cut:
    """The records at or beyond one candidate threshold."""

    threshold: float
    """Flag from here (in the detector's direction)."""
    precision: float
    """Weighted share of positives."""
    interval: tuple[float, float]
    """95 % Wilson interval, on the effective n."""
    recall: float
    """Weighted share of all positives kept."""
    kept_confirmed: int
    """Labeled confirmed flags still flagged."""


@dataclass(frozen=True, slots=True)
class Proposal:
    """The outcome for one detector in one scope (a tenant, or ``*`` for all)."""

    detector: str
    """Detector name."""
    tenant: str
    """Tenant, or ``*``."""
    n: int
    """Labeled flags of the detector in the scope."""
    current: float
    """The threshold in force now."""
    proposed: float | None
    """The new threshold; None: keep ``current``."""
    status: str
    """``calibrated``, ``unchanged`` (meets P as it is), ``too few labels`` or ``target not reached``."""
    precision_now: float | None = None
    """Confirmed share of the labeled flags at the current threshold."""
    precision: float | None = None
    """Weighted precision on the labels at the proposed threshold."""
    precision_ci: tuple[float, float] | None = None
    """Its 95 % Wilson interval."""
    recall_now: float | None = None
    """Weighted share of the labels' positives flagged now."""
    recall: float | None = None
    """... at the proposed threshold."""
    recall_cost: float | None = None
    """Share of today's confirmed (labeled) flags that the proposed threshold no longer flags."""

    def as_json(self) -> dict[str, Any]:
        """A JSON object."""
        return asdict(self)


def badness(score: float, higher_is_worse: bool) -> float:
    """Larger is worse, whichever way the detector points."""
    return score if higher_is_worse else -score


def points(detector: str, records: Sequence[LabeledRecord], traffic: Traffic) -> list[Point]:
    """The evidence about ``detector`` in ``records``, weighted by ``traffic`` (the same scope's counts)."""
    flagged_labeled = [r for r in records if detector in r.flags and detector in r.verdicts]
    control = [r for r in records if r.control and detector not in r.flags]
    flagged_total = sum(n for (d, _), n in traffic.flagged.items() if d == detector)
    unflagged_total = sum(traffic.unflagged.values())
    w_flag = max(flagged_total, len(flagged_labeled)) / len(flagged_labeled) if flagged_labeled else 0.0
    w_control = max(unflagged_total, len(control)) / len(control) if control else 0.0
    out = []
    for r in flagged_labeled:
        score = r.scores.get(detector)
        if score is not None:
            out.append(Point(score, r.verdicts[detector] == "confirm", w_flag, True))
    for r in control:
        score = r.scores.get(detector)
        if score is not None:
            out.append(Point(score, r.missed(detector), w_control, False))
    return out


def _between(inside: float, outside: float) -> float:
    """A round threshold strictly between two scores (the midpoint, rounded when that keeps it between)."""
    mid = (inside + outside) / 2
    for digits in (2, 3, 4, 6):
        rounded = round(mid, digits)
        if min(inside, outside) < rounded < max(inside, outside):
            return rounded
    return mid


def cuts(evidence: Sequence[Point], higher_is_worse: bool) -> list[Cut]:
    """Every candidate threshold, strictest first, with the labels' precision and recall at it."""
    ordered = sorted(evidence, key=lambda p: badness(p.score, higher_is_worse), reverse=True)
    total_positive = sum(p.weight for p in ordered if p.positive)
    out: list[Cut] = []
    w = wp = w2 = 0.0
    kept_confirmed = 0
    for i, p in enumerate(ordered):
        w, wp, w2 = w + p.weight, wp + p.weight * p.positive, w2 + p.weight * p.weight
        kept_confirmed += p.flagged and p.positive
        following = ordered[i + 1].score if i + 1 < len(ordered) else None
        if following is not None and following == p.score:
            continue  # equal scores are flagged together
        if following is None:  # the loosest cut flags every labeled record: the last one's own score
            threshold = p.score if higher_is_worse else math.nextafter(p.score, math.inf)
        else:
            threshold = _between(p.score, following)
        n_eff = w * w / w2
        share = wp / w
        out.append(Cut(threshold, share, wilson(share * n_eff, n_eff),
                       wp / total_positive if total_positive else 0.0, kept_confirmed))  # fmt: skip
    return out


def propose(detector: str, tenant: str, records: Sequence[LabeledRecord], traffic: Traffic, current: float,
            target: float, min_n: int) -> Proposal:  # fmt: skip
    """The threshold for ``detector`` in one scope (its records and traffic) that meets ``target`` precision."""
    rule = flag_rule(detector)
    evidence = points(detector, records, traffic)
    flagged = [p for p in evidence if p.flagged]
    confirmed = sum(p.positive for p in flagged)
    base = Proposal(detector, tenant, len(flagged), current, None, "too few labels")
    if len(flagged) < min_n:
        return base
    total_positive = sum(p.weight for p in evidence if p.positive)
    now = replace(
        base,
        precision_now=confirmed / len(flagged),
        recall_now=sum(p.weight for p in flagged if p.positive) / total_positive if total_positive else None,
    )
    meeting = [c for c in cuts(evidence, rule.higher_is_worse) if c.interval[0] >= target]
    if not meeting:
        return replace(now, status="target not reached")
    best = meeting[-1]  # the loosest
    result = replace(
        now, precision=best.precision, precision_ci=best.interval, recall=best.recall,
        recall_cost=1 - best.kept_confirmed / confirmed if confirmed else 0.0,
    )  # fmt: skip
    same = best.kept_confirmed == confirmed and all(
        (p.score >= best.threshold if rule.higher_is_worse else p.score < best.threshold) == p.flagged for p in evidence
    )  # the labels cannot tell the proposal from today's threshold
    if same:
        return replace(result, status="unchanged")
    return replace(result, proposed=best.threshold, status="calibrated")


@dataclass(frozen=True, slots=True)
class Current:
    """The thresholds in force: settings and the thresholds file, if any."""

    thresholds: Mapping[str, float]
    """Detector → global threshold (file over settings over default)."""
    tenants: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """Tenant → detector → threshold, from the thresholds file."""

    def of(self, detector: str, tenant: str) -> float:
        """The threshold ``detector`` flags ``tenant``'s records at (``*``: every tenant's default)."""
        over = self.tenants.get(tenant, {})
        if detector in over:
            return over[detector]
        return self.thresholds.get(detector, flag_rule(detector).default_threshold)


def _scope(records: Sequence[LabeledRecord], traffic: Traffic, tenant: str) -> tuple[list[LabeledRecord], Traffic]:
    if tenant == ANY:
        return list(records), traffic
    return [r for r in records if r.stream[0] == tenant], Traffic(
        {k: n for k, n in traffic.flagged.items() if k[1][0] == tenant},
        {s: n for s, n in traffic.unflagged.items() if s[0] == tenant},
    )


def calibrate(detectors: Sequence[str], records: Sequence[LabeledRecord], traffic: Traffic, current: Current,
              target: float, min_n: int, tenants: Sequence[str] = ()) -> list[Proposal]:  # fmt: skip
    """Proposals for every detector: over all tenants (unless ``tenants`` picks some), then per tenant."""
    scopes = list(tenants) or [ANY, *sorted({r.stream[0] for r in records})]
    out = []
    for tenant in scopes:
        scoped, scoped_traffic = _scope(records, traffic, tenant)
        for detector in detectors:
            proposal = propose(detector, tenant, scoped, scoped_traffic, current.of(detector, tenant), target, min_n)
            if tenant != ANY and not tenants and proposal.n < min_n:
                continue  # a tenant without enough labels follows the global threshold: no row of its own
            out.append(proposal)
    return out


def label_set(records: Sequence[LabeledRecord]) -> LabelSet:
    """What labels a calibration used: how many, their ids' hash, the records' time range."""
    count = sum(len(r.label_ids) for r in records)
    if not records:
        return LabelSet(count=0)
    times = sorted(r.ts if r.ts.tzinfo else r.ts.replace(tzinfo=UTC) for r in records)
    return LabelSet(count=count, label_ids_sha256=label_set_hash(records), since=_iso(times[0]), until=_iso(times[-1]))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def thresholds_file(proposals: Sequence[Proposal], base: ThresholdsFile | None, labels: LabelSet, target: float,
                    now: datetime) -> ThresholdsFile:  # fmt: skip
    """The new file: ``base``'s thresholds with the calibrated ones replaced, versioned by content."""
    thresholds = dict(base.thresholds) if base else {}
    tenants = {t: dict(v) for t, v in base.tenants.items()} if base else {}
    for p in proposals:
        if p.proposed is None:
            continue
        if p.tenant == ANY:
            thresholds[p.detector] = p.proposed
        else:
            tenants.setdefault(p.tenant, {})[p.detector] = p.proposed
    for tenant, over in tenants.items():  # a tenant entry equal to the global one says nothing
        tenants[tenant] = {d: v for d, v in over.items() if thresholds.get(d) != v}
    tenants = {t: v for t, v in sorted(tenants.items()) if v}
    content = {"thresholds": dict(sorted(thresholds.items())), "tenants": tenants, "target_precision": target,
               "labels": labels.model_dump()}  # fmt: skip
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:8]
    return ThresholdsFile(
        version=f"cal-{now:%Y%m%d}-{digest}", created_at=_iso(now), target_precision=target, labels=labels,
        thresholds=content["thresholds"], tenants=tenants,
    )  # fmt: skip
