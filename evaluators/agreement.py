"""Annotator agreement and gold accuracy from stored review labels (``lookout review agreement``).

Per queue and detector, over each annotator's latest label of an item:

- **Cohen's kappa** over the items with exactly two annotators' verdicts on the detector (pairs; the earlier
  label is rater A, the later rater B): ``(p_o - p_e) / (1 - p_e)``;
- **Krippendorff's alpha** (nominal) over every item with two or more verdicts on the detector (any number of
  annotators, missing verdicts allowed): ``1 - (n - 1) * D_o / D_e`` from the coincidence matrix;

both None when undefined (no pairable values, or every verdict the same). Per annotator, **gold accuracy**: their
verdicts on gold items (``gold_items``, migration 16) compared with the known ones, and their severities with the
known severity where the gold file gives one. Overlap items (``review.overlap_rate``) and gold items are what
give items two or more labels.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from agent.storage.client import Client


@dataclass(frozen=True, slots=True)
class StoredLabel:
    """One annotator's latest label of one item."""

    queue: str
    """Queue."""
    record_id: str
    """The item's record."""
    annotator: str
    """Who labeled."""
    labeled_at: datetime
    """When."""
    verdicts: Mapping[str, str]
    """Detector → confirm/reject."""
    severity: int
    """0-3."""


@dataclass(frozen=True, slots=True)
class GoldAnswer:
    """The known answers of one gold item."""

    expected: Mapping[str, str]
    """Detector → the correct verdict."""
    severity: int | None
    """The correct severity, if known."""


@dataclass(frozen=True, slots=True)
class Agreement:
    """Agreement on one detector in one queue."""

    queue: str
    """Queue."""
    detector: str
    """Detector the verdicts are about."""
    items: int
    """Items with two or more annotators' verdicts (alpha's units)."""
    verdicts: int
    """Verdicts on those items."""
    pairs: int
    """Items with exactly two annotators' verdicts (kappa's pairs)."""
    kappa: float | None
    """Cohen's kappa over the pairs; None when undefined."""
    alpha: float | None
    """Krippendorff's alpha (nominal) over the items; None when undefined."""


@dataclass(frozen=True, slots=True)
class GoldAccuracy:
    """One annotator against the gold items."""

    annotator: str
    """Who."""
    items: int
    """Gold items they labeled."""
    verdicts: int
    """Their verdicts on detectors with a known verdict."""
    correct: int
    """Of those, the ones equal to the known verdict."""
    accuracy: float | None
    """``correct / verdicts``; None without verdicts."""
    unanswered: int
    """Known verdicts they gave no verdict on."""
    severities: int
    """Their labels of gold items with a known severity."""
    severity_correct: int
    """Of those, the ones with exactly that severity."""


def cohen_kappa(pairs: Sequence[tuple[Hashable, Hashable]]) -> float | None:
    """Cohen's kappa of two raters over ``(a, b)`` pairs; None without pairs or when chance agreement is 1."""
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(a == b for a, b in pairs) / n
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    expected = sum(first[c] * second[c] for c in first) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def krippendorff_alpha_nominal(units: Iterable[Sequence[Hashable]]) -> float | None:
    """Krippendorff's alpha for nominal values; each unit is the values its raters gave (missing ones left out).

    Units with fewer than two values are not pairable and drop out. None when nothing is pairable or every
    pairable value is the same (no expected disagreement).
    """
    disagreement = 0.0
    totals: Counter[Hashable] = Counter()
    for unit in units:
        m = len(unit)
        if m < 2:
            continue
        counts = Counter(unit)
        disagreement += (m * m - sum(k * k for k in counts.values())) / (m - 1)
        totals.update(counts)
    n = sum(totals.values())
    expected = n * n - sum(k * k for k in totals.values())
    if n < 2 or expected == 0:
        return None
    return 1.0 - (n - 1) * disagreement / expected


def agreement(labels: Iterable[StoredLabel]) -> list[Agreement]:
    """Kappa and alpha per (queue, detector), over each annotator's latest label per item."""
    latest: dict[tuple[str, str, str], StoredLabel] = {}
    for lab in labels:
        key = (lab.queue, lab.record_id, lab.annotator)
        if key not in latest or lab.labeled_at > latest[key].labeled_at:
            latest[key] = lab
    units: defaultdict[tuple[str, str], defaultdict[str, list[tuple[datetime, str]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for lab in latest.values():
        for detector, verdict in lab.verdicts.items():
            units[(lab.queue, detector)][lab.record_id].append((lab.labeled_at, str(verdict)))
    out = []
    for (queue, detector), by_item in sorted(units.items()):
        rated = [[v for _, v in sorted(values)] for values in by_item.values() if len(values) >= 2]
        if not rated:
            continue
        pairs = [(v[0], v[1]) for v in rated if len(v) == 2]
        out.append(
            Agreement(queue, detector, len(rated), sum(len(v) for v in rated), len(pairs), cohen_kappa(pairs),
                      krippendorff_alpha_nominal(rated))
        )  # fmt: skip
    return out


def gold_accuracy(labels: Iterable[StoredLabel], answers: Mapping[tuple[str, str], GoldAnswer]) -> list[GoldAccuracy]:
    """Per annotator, their latest label of each gold item scored against its known answers."""
    latest: dict[tuple[str, str, str], StoredLabel] = {}
    for lab in labels:
        key = (lab.queue, lab.record_id, lab.annotator)
        if (lab.queue, lab.record_id) in answers and (key not in latest or lab.labeled_at > latest[key].labeled_at):
            latest[key] = lab
    tally: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for (queue, record_id, annotator), lab in latest.items():
        answer = answers[(queue, record_id)]
        t = tally[annotator]
        t["items"] += 1
        for detector, verdict in answer.expected.items():
            given = lab.verdicts.get(detector)
            if given is None:
                t["unanswered"] += 1
            else:
                t["verdicts"] += 1
                t["correct"] += str(given) == verdict
        if answer.severity is not None:
            t["severities"] += 1
            t["severity_correct"] += lab.severity == answer.severity
    return [_scored(annotator, t) for annotator, t in sorted(tally.items())]


def _scored(annotator: str, t: Counter[str]) -> GoldAccuracy:
    accuracy = t["correct"] / t["verdicts"] if t["verdicts"] else None
    return GoldAccuracy(
        annotator, t["items"], t["verdicts"], t["correct"], accuracy, t["unanswered"], t["severities"],
        t["severity_correct"],
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class AgreementReport:
    """What ``lookout review agreement`` prints."""

    agreement: list[Agreement]
    """Per queue and detector."""
    gold: list[GoldAccuracy]
    """Per annotator."""

    @property
    def empty(self) -> bool:
        """Nothing to report: no item with two verdicts and no gold label."""
        return not self.agreement and not self.gold

    def to_json(self) -> dict[str, Any]:
        """One JSON document."""
        return {"agreement": [asdict(a) for a in self.agreement], "gold": [asdict(g) for g in self.gold]}


def read_labels(client: Client, database: str, queue: str | None = None) -> list[StoredLabel]:
    """Each annotator's latest label of each item (optionally of one queue)."""
    rows = client.query(
        f"SELECT queue, record_id, annotator, labeled_at, verdicts, severity FROM {database}.v_review_labels "
        "WHERE {q:String} = '' OR queue = {q:String} "
        "ORDER BY queue, record_id, annotator, labeled_at DESC, label_id DESC LIMIT 1 BY queue, record_id, annotator",
        parameters={"q": queue or ""},
    ).result_rows
    return [
        StoredLabel(str(q), str(r), str(a), t, {str(k): str(v) for k, v in dict(v).items()}, int(s))
        for q, r, a, t, v, s in rows
    ]


def read_gold_answers(client: Client, database: str, queue: str | None = None) -> dict[tuple[str, str], GoldAnswer]:
    """The known answers of live (not retired) gold items (optionally of one queue)."""
    rows = client.query(
        f"SELECT queue, record_id, expected, severity FROM {database}.v_gold_items "
        "WHERE retired = 0 AND ({q:String} = '' OR queue = {q:String})",
        parameters={"q": queue or ""},
    ).result_rows
    return {
        (str(q), str(r)): GoldAnswer({str(k): str(v) for k, v in dict(e).items()}, None if s is None else int(s))
        for q, r, e, s in rows
    }


def known_queues(client: Client, database: str) -> set[str]:
    """Queues holding items, gold items or labels."""
    rows = client.query(
        f"SELECT DISTINCT queue FROM {database}.v_review_items UNION DISTINCT "
        f"SELECT DISTINCT queue FROM {database}.v_gold_items UNION DISTINCT "
        f"SELECT DISTINCT queue FROM {database}.v_review_labels"
    ).result_rows
    return {str(q) for (q,) in rows}


def report(client: Client, database: str, queue: str | None = None) -> AgreementReport:
    """Agreement per queue and detector, and gold accuracy per annotator, from what is stored."""
    labels = read_labels(client, database, queue)
    return AgreementReport(agreement(labels), gold_accuracy(labels, read_gold_answers(client, database, queue)))
