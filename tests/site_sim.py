"""A simulated site (seeded): records whose truth is known, scored and flagged, part of them labeled by reviewers.

For each record and detector the truth (should it be flagged?) is drawn at the stream's prevalence, then a score
from the truth (worse scores for true cases, in the detector's direction), then the flag at the stream's
threshold. Reviewers label a share of the flagged records (a verdict per flagged detector: confirm when true) and
a control sample of the unflagged ones (``reject`` for each detector that should have flagged it). The known
precision, miss rate and recall are computed on the whole simulated population.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from detectors.registry import flag_rule
from evaluators.labeled import LabeledRecord, Stream, Traffic

T0 = datetime(2026, 11, 20, tzinfo=UTC)


@dataclass(frozen=True)
class StreamSpec:
    """How one stream's traffic behaves."""

    n: int = 4000
    """Records."""
    prevalence: Mapping[str, float] = field(default_factory=lambda: {"toxicity": 0.1, "relevance": 0.1})
    """Detector → share of records it should flag."""
    separation: float = 1.6
    """How far true cases' scores sit from the others (larger: an easier detector)."""
    thresholds: Mapping[str, float] = field(default_factory=lambda: {"toxicity": 0.5, "relevance": 0.5})
    """Detector → threshold the records were flagged at."""


@dataclass(frozen=True)
class SimRecord:
    """One simulated record."""

    record_id: str
    ts: datetime
    stream: Stream
    scores: Mapping[str, float]
    truth: Mapping[str, bool]
    flags: frozenset[str]


@dataclass
class Site:
    """The population and what reviewers labeled."""

    records: list[SimRecord]
    labeled: list[LabeledRecord]
    detectors: tuple[str, ...]

    def traffic(self) -> Traffic:
        """Flag and unflagged counts, as ``read_traffic`` gives them."""
        flagged: dict[tuple[str, Stream], int] = {}
        unflagged: dict[Stream, int] = {}
        for r in self.records:
            for d in r.flags:
                flagged[(d, r.stream)] = flagged.get((d, r.stream), 0) + 1
            if not r.flags:
                unflagged[r.stream] = unflagged.get(r.stream, 0) + 1
        return Traffic(flagged, unflagged)

    def truth(self, detector: str, stream: Stream | None = None) -> tuple[float, float, float]:
        """Known (precision, miss rate on unflagged records, recall over flagged-by-it and unflagged records)."""
        rows = [r for r in self.records if stream is None or r.stream == stream]
        flagged = [r for r in rows if detector in r.flags]
        unflagged = [r for r in rows if not r.flags]
        tp = sum(r.truth[detector] for r in flagged)
        missed = sum(r.truth[detector] for r in unflagged)
        return tp / len(flagged), missed / len(unflagged), tp / (tp + missed)


def _score(rng: random.Random, truth: bool, separation: float, higher_is_worse: bool) -> float:
    """A score in [0, 1]: a logistic of a normal, shifted up for true cases (then mirrored for low-is-worse)."""
    import math

    z = rng.gauss(separation / 2 if truth else -separation / 2, 1.0)
    value = 1 / (1 + math.exp(-z))
    return value if higher_is_worse else 1 - value


def simulate(
    seed: int,
    streams: Mapping[Stream, StreamSpec],
    label_share: float = 0.5,
    control_rate: float = 0.05,
    detectors: Sequence[str] = ("toxicity", "relevance"),
    start: datetime = T0,
) -> Site:
    """A seeded site: its records, and the labels reviewers gave."""
    rng = random.Random(seed)  # noqa: S311  # a seeded simulation, not a secret
    records: list[SimRecord] = []
    labeled: list[LabeledRecord] = []
    for (tenant, model, route), spec in streams.items():
        for i in range(spec.n):
            truth = {d: rng.random() < spec.prevalence.get(d, 0.0) for d in detectors}
            scores = {d: _score(rng, truth[d], spec.separation, flag_rule(d).higher_is_worse) for d in detectors}
            flags = frozenset(
                d
                for d in detectors
                if (scores[d] >= spec.thresholds[d] if flag_rule(d).higher_is_worse else scores[d] < spec.thresholds[d])
            )
            rec = SimRecord(f"{tenant}-{model}-{i:06d}", start + timedelta(seconds=i), (tenant, model, route), scores,
                            truth, flags)  # fmt: skip
            records.append(rec)
            if flags and rng.random() < label_share:
                verdicts = {d: "confirm" if truth[d] else "reject" for d in flags}
                labeled.append(_labeled(rec, verdicts, control=False))
            elif not flags and rng.random() < control_rate:
                verdicts = {d: "reject" for d in detectors if truth[d]}
                labeled.append(_labeled(rec, verdicts, control=True))
    return Site(records, labeled, tuple(detectors))


def _labeled(rec: SimRecord, verdicts: Mapping[str, str], control: bool) -> LabeledRecord:
    return LabeledRecord(
        record_id=rec.record_id, ts=rec.ts, stream=rec.stream, flags=rec.flags, control=control,
        verdicts=dict(verdicts), scores=dict(rec.scores), label_ids=(f"l-{rec.record_id}",),
    )  # fmt: skip


def store(client: Any, database: str, site: Site, labeled_at: datetime | None = None) -> None:
    """Write the site as the agent and the review UI would: records, review items, one label per labeled record."""
    from agent.sinks.clickhouse import RecordSink
    from agent.types import Sample, ScoredSample

    sink = RecordSink(client, database, site.detectors)
    sink.write([
        ScoredSample(
            Sample(id=r.record_id, ts=r.ts, prompt="p", response="r", tenant=r.stream[0], model=r.stream[1],
                   route=r.stream[2]),
            dict(r.scores), dict.fromkeys(site.detectors, "sim"), tuple(sorted(r.flags)), None,
        )
        for r in site.records
    ])  # fmt: skip
    at = labeled_at or T0 + timedelta(days=1)
    items, labels = [], []
    for r in site.labeled:
        queue = "control" if r.control else "safety"
        items.append([queue, r.record_id, at, r.ts, *r.stream, 0, sorted(r.flags) or ["control"],
                      "control-sample" if r.control else "flagged", int(r.control)])  # fmt: skip
        labels.append([r.label_ids[0], queue, r.record_id, "ann", at, dict(r.verdicts), 0, "", None, "none", "api",
                       "c"])  # fmt: skip
    client.insert(
        f"{database}.review_items", items,
        column_names=["queue", "record_id", "enqueued_at", "record_ts", "tenant", "model", "route", "priority",
                      "reasons", "rule", "control"],
    )  # fmt: skip
    client.insert(
        f"{database}.review_labels", labels,
        column_names=["label_id", "queue", "record_id", "annotator", "labeled_at", "verdicts", "severity", "note",
                      "corrected_response", "preference", "source", "claim_id"],
    )  # fmt: skip
