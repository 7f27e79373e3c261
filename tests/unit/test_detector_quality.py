"""Detector quality from review labels: Wilson intervals, the estimates, and a simulated site's known truth."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

import pytest
from site_sim import StreamSpec, simulate

from agent.review.rules import parse_rules
from evaluators.detector_quality import Counts, count, estimate, report, wilson
from evaluators.labeled import ANY, LabeledRecord, Stream, Traffic, merge_labels

ACME = ("acme", "gpt-4o-mini", "chat")
GLOBEX = ("globex", "claude-3-haiku", "docs-qa")


class TestWilson:
    """The Wilson score interval."""

    def test_known_values(self) -> None:
        """Textbook values: 0 of 10, 5 of 10, 10 of 10."""
        assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
        assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
        assert wilson(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)

    def test_narrows_with_n(self) -> None:
        """The same share over more trials gives a narrower interval around it."""
        small, large = wilson(8, 10), wilson(800, 1000)
        assert small[0] < large[0] < 0.8 < large[1] < small[1]

    def test_needs_trials(self) -> None:
        """No trials: no interval."""
        with pytest.raises(ValueError, match="n > 0"):
            wilson(0, 0)


class TestEstimate:
    """Hand-computed estimates from counts."""

    def test_precision_miss_rate_recall(self) -> None:
        """100 flagged, 40 of 50 labeled flags confirmed; 2 misses in 50 control of 1000 unflagged."""
        e = estimate("toxicity", ACME, Counts(flagged=100, unflagged=1000, confirmed=40, rejected=10, control=50,
                                              missed=2))  # fmt: skip
        assert e.precision == 0.8 and e.miss_rate == 0.04 and e.control_rate == 0.05
        assert e.missed_estimate == pytest.approx(40.0)  # 2 misses / 5 % sampled
        assert e.recall == pytest.approx(80 / (80 + 40))  # TP = 0.8 x 100 flagged, not the 40 labeled
        assert e.precision_ci == wilson(40, 50) and e.miss_rate_ci == wilson(2, 50)
        assert e.recall is not None and e.recall_ci is not None and e.recall_ci[0] < e.recall < e.recall_ci[1]
        assert (e.counts.labeled_flags, e.counts.control, e.n) == (50, 50, 100)

    def test_unknown_parts_stay_none(self) -> None:
        """No labeled flag: no precision and no recall; no control label: no miss rate."""
        e = estimate("toxicity", ACME, Counts(flagged=10, unflagged=100, control=5))
        assert (e.precision, e.recall, e.miss_rate) == (None, None, 0.0)
        e = estimate("toxicity", ACME, Counts(flagged=10, unflagged=100, confirmed=3))
        assert (e.precision, e.miss_rate, e.recall, e.recall_ci) == (1.0, None, None, None)

    def test_never_flagging_detector_has_zero_recall(self) -> None:
        """A detector that flagged nothing but missed some: recall 0."""
        e = estimate("tone", ACME, Counts(flagged=0, unflagged=100, control=20, missed=4))
        assert e.recall == 0.0 and e.missed_estimate == pytest.approx(20.0)


def _labeled(rid: str, flags: set[str], verdicts: dict[str, str], control: bool = False) -> LabeledRecord:
    return LabeledRecord(rid, datetime(2026, 11, 25, tzinfo=UTC), ACME, frozenset(flags), control, verdicts)


class TestCount:
    """Which labels count for which detector."""

    def test_verdicts_count_only_where_they_mean_something(self) -> None:
        """A verdict on a detector that did not flag a non-control record counts nowhere; control silence is right."""
        traffic = Traffic({("toxicity", ACME): 3}, {ACME: 10})
        labeled = [
            _labeled("a", {"toxicity"}, {"toxicity": "confirm", "relevance": "reject"}),  # relevance: not sampled
            _labeled("b", {"toxicity"}, {"toxicity": "reject"}),
            _labeled("c", set(), {"relevance": "reject"}, control=True),  # relevance missed; toxicity silent, right
            _labeled("d", set(), {}, control=True),
        ]
        counts = count(("toxicity", "relevance"), traffic, labeled)
        assert counts[("toxicity", ACME)] == Counts(flagged=3, unflagged=10, confirmed=1, rejected=1, control=2)
        assert counts[("relevance", ACME)] == Counts(flagged=0, unflagged=10, control=2, missed=1)

    def test_latest_verdict_per_detector_wins(self) -> None:
        """A record labeled twice keeps, per detector, the latest label's verdict; control if any item was."""
        t1, t2 = datetime(2026, 11, 25, 10, tzinfo=UTC), datetime(2026, 11, 25, 11, tzinfo=UTC)
        rows = [  # id, ts, tenant, model, route, flags, control, label_id, labeled_at, verdicts, score
            ("r1", t1, "acme", "m", "chat", ["toxicity"], 0, "l2", t2, {"toxicity": "reject"}, 0.7),
            ("r1", t1, "acme", "m", "chat", ["toxicity"], 0, "l1", t1, {"toxicity": "confirm", "tone": "reject"}, 0.7),
        ]
        (record,) = merge_labels(rows, ["toxicity"])
        assert record.verdicts == {"toxicity": "reject", "tone": "reject"}
        assert record.label_ids == ("l1", "l2") and record.scores == {"toxicity": pytest.approx(0.7)}


class TestReport:
    """The report over every stream and per stream."""

    def test_nothing_labeled_is_nothing_to_report(self) -> None:
        """Traffic but no label: no estimate, 0 labels."""
        result = report(("toxicity",), Traffic({("toxicity", ACME): 5}, {ACME: 50}), [])
        assert (result.overall, result.streams, result.labels) == ((), (), 0)

    def test_control_rule_rate_from_the_rules(self) -> None:
        """Two control rules at 2 % and 1 %: an unflagged record is sampled with 1 - 0.98 x 0.99."""
        rules = parse_rules({"rules": [
            {"name": "c1", "queue": "control", "control": True, "sample_rate": 0.02},
            {"name": "c2", "queue": "control2", "control": True, "sample_rate": 0.01},
            {"name": "tox", "queue": "safety", "when": {"flagged": "toxicity"}},
        ]})  # fmt: skip
        assert report((), Traffic({}, {}), [], rules).control_rule_rate == pytest.approx(1 - 0.98 * 0.99)


class TestSimulatedSite:
    """On a simulated site with known truth, the intervals contain the known precision, miss rate and recall."""

    SPECS: ClassVar[dict[Stream, StreamSpec]] = {
        ACME: StreamSpec(n=6000, prevalence={"toxicity": 0.08, "relevance": 0.12}, separation=2.0),
        GLOBEX: StreamSpec(n=6000, prevalence={"toxicity": 0.2, "relevance": 0.05}, separation=1.2,
                           thresholds={"toxicity": 0.6, "relevance": 0.4}),
    }  # fmt: skip

    def test_intervals_contain_the_truth(self) -> None:
        """Per detector overall and per stream: precision, miss rate and recall each inside its interval."""
        site = simulate(7, self.SPECS, label_share=0.3, control_rate=0.05)
        result = report(site.detectors, site.traffic(), site.labeled)
        estimates = [*result.overall, *result.streams]
        assert len(estimates) == 6
        for e in estimates:
            stream = None if e.tenant == ANY else (e.tenant, e.model, e.route)
            precision, miss_rate, recall = site.truth(e.detector, stream)
            assert e.precision_ci and e.miss_rate_ci and e.recall_ci, e
            assert e.precision_ci[0] <= precision <= e.precision_ci[1], (e.detector, stream, precision, e)
            assert e.miss_rate_ci[0] <= miss_rate <= e.miss_rate_ci[1], (e.detector, stream, miss_rate, e)
            assert e.recall_ci[0] <= recall <= e.recall_ci[1], (e.detector, stream, recall, e)

    def test_precision_intervals_cover_about_95_percent(self) -> None:
        """Over 60 seeded sites the 95 % precision and miss-rate intervals miss the truth rarely (< 12 %)."""
        spec = {ACME: StreamSpec(n=1500, prevalence={"toxicity": 0.15, "relevance": 0.1})}
        missed_precision = missed_rate = 0
        for seed in range(60):
            site = simulate(seed, spec, label_share=0.4, control_rate=0.1, detectors=("toxicity",))
            (e,) = report(site.detectors, site.traffic(), site.labeled).overall
            precision, miss_rate, _ = site.truth("toxicity")
            assert e.precision_ci and e.miss_rate_ci
            missed_precision += not e.precision_ci[0] <= precision <= e.precision_ci[1]
            missed_rate += not e.miss_rate_ci[0] <= miss_rate <= e.miss_rate_ci[1]
        assert missed_precision <= 7 and missed_rate <= 7, (missed_precision, missed_rate)

    def test_recall_scales_labeled_flags_to_all_flags(self) -> None:
        """Recall computed from the labeled flags alone (not scaled up) would fall outside the interval."""
        site = simulate(3, {ACME: StreamSpec(n=8000)}, label_share=0.2, control_rate=0.05)
        (e, _) = report(site.detectors, site.traffic(), site.labeled).overall
        assert e.recall is not None and e.recall_ci is not None and e.missed_estimate is not None
        naive = e.counts.confirmed / (e.counts.confirmed + e.missed_estimate)
        assert naive < e.recall_ci[0] <= site.truth(e.detector)[2] <= e.recall_ci[1]
