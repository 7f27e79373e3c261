"""Load shedding: the hysteresis controller, the deterministic sampler, plans, and sampled scoring."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from agent.config import SheddingSettings
from agent.score import Scorer
from agent.shedding import ShedController, Shedder, keeps
from agent.types import Sample, ShedPlan
from detectors.refusal import RefusalDetector
from detectors.testing import HashingEncoder
from detectors.toxicity import HeadToxicity
from detectors.types import Batch

TS = datetime(2026, 1, 1, tzinfo=UTC)


def sample(i: int, response: str = "The capital is Paris.") -> Sample:
    return Sample(id=f"r-{i:05d}", ts=TS, prompt=f"What is the capital of country {i}?", response=response)


class TestShedController:
    """On above the high threshold, off only at or below the low one."""

    def test_lag_hysteresis(self) -> None:
        """Lag over lag_high turns shedding on; it stays on between the thresholds and turns off at lag_low."""
        c = ShedController(lag_high=1000, lag_low=100)
        assert [c.update(lag, None) for lag in (0, 1000, 1001, 500, 101, 100, 500, 999)] == [
            False, False, True, True, True, False, False, False,
        ]  # fmt: skip

    def test_inference_time_hysteresis(self) -> None:
        """Slow batches turn it on; it turns off once a batch scores within half the threshold (the default)."""
        c = ShedController(lag_high=10**9, lag_low=0, inference_high_s=2.0)
        assert c.inference_low_s == 1.0
        assert [c.update(0, s) for s in (None, 1.5, 2.5, 1.5, 1.0, 1.5)] == [False, False, True, True, False, False]

    def test_off_needs_both_low(self) -> None:
        """With lag still high, a fast batch does not turn shedding off."""
        c = ShedController(lag_high=100, lag_low=10, inference_high_s=1.0, inference_low_s=0.5)
        assert c.update(0, 2.0) is True
        assert c.update(50, 0.1) is True
        assert c.update(10, 0.1) is False

    def test_unknown_lag_never_starts_it(self) -> None:
        """No lag reading and no timing threshold: never sheds."""
        c = ShedController(lag_high=0, lag_low=0)
        assert [c.update(None, 100.0) for _ in range(3)] == [False] * 3

    def test_rejects_inverted_thresholds(self) -> None:
        """lag_low above lag_high is an error, in the controller and in the settings."""
        with pytest.raises(ValueError, match="lag_low"):
            ShedController(lag_high=10, lag_low=20)
        with pytest.raises(ValueError, match="lag_low"):
            SheddingSettings(lag_high=10, lag_low=20)


class TestSampler:
    """A record is kept by a hash of its id: same answer every time, the configured share overall."""

    def test_deterministic_and_near_rate(self) -> None:
        """The same ids give the same decisions; about 25 % of 20,000 ids are kept at rate 0.25."""
        ids = [f"id-{i}" for i in range(20_000)]
        first = [keeps(i, 0.25) for i in ids]
        assert first == [keeps(i, 0.25) for i in ids]
        assert abs(sum(first) / len(ids) - 0.25) < 0.015

    def test_rate_one_keeps_all(self) -> None:
        """Rate 1 keeps every record."""
        assert all(keeps(f"x{i}", 1.0) for i in range(100))


class TestShedder:
    """Plans per batch from lag and scoring time."""

    def settings(self, **kw: object) -> SheddingSettings:
        return SheddingSettings.model_validate({"lag_high": 100, "lag_low": 10, "rate": 0.5, **kw})

    def test_no_plan_under_threshold(self) -> None:
        """Below the lag threshold every record runs every signal (no plan)."""
        s = Shedder(self.settings(), ["hallucination"], drift_enabled=True, lag=lambda: 5)
        assert s.plan(["a", "b"]) is None

    def test_plan_over_threshold(self) -> None:
        """Over it, the plan keeps the hashed sample with weight 1/rate and names the enabled shed detectors."""
        s = Shedder(self.settings(detectors=["hallucination", "judge"]), ["hallucination"], True, lag=lambda: 500)
        ids = [f"r-{i}" for i in range(50)]
        plan = s.plan(ids)
        assert plan is not None
        assert plan.keep == tuple(keeps(i, 0.5) for i in ids)
        assert plan.weight == 2.0 and plan.detectors == frozenset({"hallucination"}) and plan.drift
        assert [plan.weight_of(i) for i in range(50)] == [2.0 if k else 0.0 for k in plan.keep]

    def test_slow_scoring_starts_it(self) -> None:
        """A batch slower than inference_high_s makes the next batch shed."""
        s = Shedder(self.settings(inference_high_s=1.0, detectors=["refusal"]), ["refusal"], False, lag=lambda: 0)
        assert s.plan(["a"]) is None
        s.observe_inference(3.0)
        assert s.plan(["a"]) is not None

    def test_metrics(self) -> None:
        """lookout_shedding follows the state; lookout_records_shed_total counts skipped records per signal."""
        from agent import metrics

        lag = [500]
        s = Shedder(self.settings(), ["hallucination"], drift_enabled=True, lag=lambda: lag[0])
        shed = metrics.records_shed.labels(signal="hallucination")
        drift = metrics.records_shed.labels(signal="drift")
        before = (shed._value.get(), drift._value.get())
        ids = [f"m-{i}" for i in range(40)]
        plan = s.plan(ids)
        assert plan is not None and metrics.shedding._value.get() == 1
        skipped = 40 - sum(plan.keep)
        assert skipped > 0
        assert (shed._value.get() - before[0], drift._value.get() - before[1]) == (skipped, skipped)
        lag[0] = 0
        assert s.plan(ids) is None and metrics.shedding._value.get() == 0

    def test_nothing_to_shed(self) -> None:
        """No enabled shed detector and no drift: never a plan, whatever the lag."""
        s = Shedder(self.settings(), ["toxicity"], drift_enabled=False, lag=lambda: 10**6)
        assert s.plan(["a"]) is None


class TestSampledScoring:
    """A plan makes its detectors score only the kept records; cheap ones score all; weights are stored."""

    def test_shed_detector_scores_kept_only(self) -> None:
        """Refusal (shed) is None exactly where the plan skips; toxicity (cheap) scores every record."""
        samples = [sample(i, "I'm sorry, but I can't help with that." if i % 2 else "Paris.") for i in range(12)]
        scorer = Scorer([HeadToxicity(), RefusalDetector()], HashingEncoder(384))
        keep = tuple(i % 3 != 0 for i in range(12))
        plan = ShedPlan(keep, 1.5, frozenset({"refusal"}), drift=False)
        scored, _ = scorer.score_batch(samples, plan)
        full, _ = scorer.score_batch(samples)
        for i, (item, ref) in enumerate(zip(scored, full, strict=True)):
            assert item.scores["toxicity"] == ref.scores["toxicity"]
            assert item.scores["refusal"] == (ref.scores["refusal"] if keep[i] else None)
            assert item.shed_weight == (1.5 if keep[i] else 0.0)
            assert ("refusal" in item.flags) == (keep[i] and i % 2 == 1)
        assert {item.shed_weight for item in full} == {1.0}

    def test_batch_subset(self) -> None:
        """A subset batch carries the chosen rows and shares the text cache."""
        enc = HashingEncoder(8)
        items = [sample(i) for i in range(4)]
        vectors = enc.encode([s.prompt for s in items])
        batch = Batch(items, {"prompt": vectors}, enc, {})
        batch.encode(["shared text"])
        sub = batch.subset([1, 3])
        assert [s.prompt for s in sub.items] == [items[1].prompt, items[3].prompt]
        np.testing.assert_array_equal(sub.embeddings("prompt"), vectors[[1, 3]])
        sub.encode(["shared text"])
        assert len(enc.calls) == 2  # the initial encode and "shared text" once
