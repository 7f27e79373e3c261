"""The cascade's Prometheus counters, read back from prometheus-client's registry after ``observe_cascade``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from prometheus_client import REGISTRY

from agent import metrics
from agent.types import Sample, ScoredSample

DETECTORS = ("toxicity", "refusal", "hallucination")


def item(record_id: str, tiers: Mapping[str, str], audited: bool = False, disagree: Sequence[str] = ()) -> ScoredSample:
    """A scored record with the given cascade outcome (scores and flags do not matter here)."""
    sample = Sample(id=record_id, ts=datetime(2026, 11, 25, 11, 0, tzinfo=UTC), prompt="p", response="r")
    scores = dict.fromkeys(DETECTORS, 0.1)
    return ScoredSample(sample, scores, {}, (), None, tiers=tiers, audited=audited, audit_disagree=tuple(disagree))


def counts() -> dict[tuple[str, ...], float]:
    """Every cascade counter sample now: (metric, detector[, tier]) → value (absent labels read 0)."""
    out: dict[tuple[str, ...], float | None] = {}
    for detector in (*DETECTORS, "tone"):
        for tier in ("fast", "full", "expensive"):
            labels = {"detector": detector, "tier": tier}
            out[(metrics.CASCADE_SCORES, detector, tier)] = REGISTRY.get_sample_value(metrics.CASCADE_SCORES, labels)
        for name in (metrics.CASCADE_AUDIT, metrics.CASCADE_AUDIT_DISAGREE):
            out[(name, detector)] = REGISTRY.get_sample_value(name, {"detector": detector})
    return {k: v or 0.0 for k, v in out.items()}


def delta(before: dict[tuple[str, ...], float]) -> dict[tuple[str, ...], float]:
    """What changed since ``before`` (zero changes left out)."""
    return {k: v - before[k] for k, v in counts().items() if v != before[k]}


class TestObserveCascade:
    """observe_cascade counts each batch's tiers, audited records and disagreements per detector."""

    def test_tiers_audits_and_disagreements_are_counted(self) -> None:
        """Scores per (detector, tier); audits per detector with a fast tier (refusal has none); disagreements."""
        batch = [
            item("a", {"toxicity": "fast", "hallucination": "fast", "refusal": "full"}),
            item("b", {"toxicity": "full", "hallucination": "expensive", "refusal": "full"}),
            item("c", {"toxicity": "full", "hallucination": "expensive", "refusal": "full"}, audited=True,
                 disagree=["toxicity"]),
            item("d", {"toxicity": "full", "hallucination": "expensive", "refusal": "full"}, audited=True,
                 disagree=["hallucination"]),
        ]  # fmt: skip
        before = counts()
        metrics.observe_cascade(batch, fast={"toxicity", "hallucination"})
        assert delta(before) == {
            (metrics.CASCADE_SCORES, "toxicity", "fast"): 1,
            (metrics.CASCADE_SCORES, "toxicity", "full"): 3,
            (metrics.CASCADE_SCORES, "hallucination", "fast"): 1,
            (metrics.CASCADE_SCORES, "hallucination", "expensive"): 3,
            (metrics.CASCADE_SCORES, "refusal", "full"): 4,
            (metrics.CASCADE_AUDIT, "toxicity"): 2,
            (metrics.CASCADE_AUDIT, "hallucination"): 2,
            (metrics.CASCADE_AUDIT_DISAGREE, "toxicity"): 1,
            (metrics.CASCADE_AUDIT_DISAGREE, "hallucination"): 1,
        }

    def test_without_fast_every_tiered_detector_counts_audits(self) -> None:
        """Without ``fast`` an audited record counts an audit for every detector in its tiers."""
        before = counts()
        metrics.observe_cascade([item("a", {"toxicity": "full", "refusal": "full"}, audited=True)])
        assert delta(before) == {
            (metrics.CASCADE_SCORES, "toxicity", "full"): 1,
            (metrics.CASCADE_SCORES, "refusal", "full"): 1,
            (metrics.CASCADE_AUDIT, "toxicity"): 1,
            (metrics.CASCADE_AUDIT, "refusal"): 1,
        }

    def test_full_mode_records_count_nothing(self) -> None:
        """Records without tiers (scoring.mode: full) change no counter, even if marked audited."""
        before = counts()
        metrics.observe_cascade([item("a", {}), item("b", {}, audited=True, disagree=["toxicity"])])
        metrics.observe_cascade([])
        assert delta(before) == {}

    def test_counters_are_exposed_on_metrics(self) -> None:
        """The three counters are in the registry /metrics serves, as counters with their label names."""
        metrics.observe_cascade([item("x", {"tone": "fast"}, audited=True, disagree=["tone"])])
        families = {f.name: f for f in REGISTRY.collect()}
        for name, labels in (
            (metrics.CASCADE_SCORES, {"detector", "tier"}),
            (metrics.CASCADE_AUDIT, {"detector"}),
            (metrics.CASCADE_AUDIT_DISAGREE, {"detector"}),
        ):
            family = families[name.removesuffix("_total")]
            assert family.type == "counter"
            assert any(s.name == name and set(s.labels) == labels for s in family.samples), family.samples
