"""Stream signals: prompt novelty against the stream's reference, and near-duplicate responses across a stream."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from agent.config import DriftSettings
from agent.drift import NEAR_DUPLICATE, NOVEL_FLAG, NOVELTY, DriftMonitor, required_fields, stream_signals
from agent.types import Sample, ScoredSample
from detectors.drift import EmbeddingDrift
from detectors.duplicates import NearDuplicates
from detectors.encoder import SentenceTransformerEncoder
from detectors.testing import HashingEncoder
from detectors.types import TextField, Vectors

DRIFT_SAMPLE = Path(__file__).resolve().parents[1] / "data" / "drift_sample.jsonl"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def unit(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    return np.asarray(x / np.linalg.norm(x, axis=1, keepdims=True), dtype=np.float32)


class TestNovelty:
    """EmbeddingDrift.novelty: the percentile rank of a vector's kNN distance among the held-out reference's."""

    def test_none_until_the_reference_is_ready(self) -> None:
        """Before the reference is full there is nothing to compare with: None."""
        drift = EmbeddingDrift(reference_size=20, k=2)
        rng = np.random.default_rng(0)
        drift.update(unit(rng.normal(size=(10, 8))), list(range(10)))
        assert drift.novelty(unit(rng.normal(size=(3, 8)))) is None
        drift.update(unit(rng.normal(size=(10, 8))), list(range(10)))
        ranks = drift.novelty(unit(rng.normal(size=(3, 8))))
        assert ranks is not None and ranks.shape == (3,) and ((ranks >= 0) & (ranks <= 1)).all()

    def test_same_distribution_is_uniform_and_far_vectors_score_one(self) -> None:
        """Held-out vectors from the reference's distribution rank uniformly; a far cluster ranks 1.0."""
        rng = np.random.default_rng(1)
        centre = np.zeros(16)
        centre[0] = 10.0
        drift = EmbeddingDrift(reference_size=400, k=5)
        drift.update(unit(rng.normal(size=(400, 16)) + centre), list(range(400)))
        same = drift.novelty(unit(rng.normal(size=(2000, 16)) + centre))
        far_centre = np.zeros(16)
        far_centre[1] = 10.0
        far = drift.novelty(unit(rng.normal(size=(50, 16)) + far_centre))
        assert same is not None and far is not None
        assert abs(float(same.mean()) - 0.5) < 0.05
        assert float((same >= 0.99).mean()) < 0.03
        assert float(far.min()) == 1.0

    def test_off_topic_prompts_are_novel_and_on_topic_ones_rarely(self) -> None:
        """Real prompts, real encoder: trivia questions against a reference of assistant chat requests.

        Reference: 400 hh-rlhf prompts; held out: 300 more; off-topic: 150 HotpotQA-style questions. At the
        99th percentile the held-out false-alarm rate stays near 1% and many off-topic prompts are flagged.
        """
        rows = [json.loads(line) for line in DRIFT_SAMPLE.read_text(encoding="utf-8").splitlines()]
        hh = [r["text"] for r in rows if r["corpus"] == "hh"][:700]
        qa = [r["text"] for r in rows if r["corpus"] == "qa"][:150]
        encoder = SentenceTransformerEncoder()
        drift = EmbeddingDrift(reference_size=400, k=5)
        drift.update(encoder.encode(hh[:400]), list(range(400)))
        held = drift.novelty(encoder.encode(hh[400:]))
        off = drift.novelty(encoder.encode(qa))
        assert held is not None and off is not None
        held_rate, off_rate = float((held >= 0.99).mean()), float((off >= 0.99).mean())
        assert held_rate <= 0.03, held_rate
        assert off_rate >= 0.10 and off_rate >= 5 * held_rate, (held_rate, off_rate)
        assert float(off.mean()) > float(held.mean()) + 0.3


class TestNearDuplicates:
    """Max cosine of a response to recent responses of different prompts, in a bounded window."""

    def test_same_answer_to_different_prompts_scores_high(self) -> None:
        """A canned answer repeated for unrelated questions scores ~1; different answers score lower."""
        enc = HashingEncoder(dim=256)
        prompts = ["How do I reset my password?", "What is the refund policy for shoes?", "Where is my parcel now?"]
        canned = "Thank you for contacting support. An agent will get back to you within two business days."
        responses = [canned, "Shoes can be returned within 30 days for a full refund if unworn.", canned]
        scores = NearDuplicates(window=10).update(enc.encode(prompts), enc.encode(responses), [100, 100, 100])
        assert scores[0] is None  # nothing remembered yet
        assert scores[1] is not None and scores[1] < 0.6
        assert scores[2] == pytest.approx(1.0, abs=1e-6)

    def test_same_prompt_same_answer_is_not_a_duplicate(self) -> None:
        """The same question asked again may get the same answer: it is skipped."""
        enc = HashingEncoder(dim=256)
        p = enc.encode(["What is the capital of France?"] * 2)
        r = enc.encode(["The capital of France is Paris, on the Seine."] * 2)
        assert NearDuplicates().update(p, r, [100, 100]) == [None, None]

    def test_short_responses_are_skipped_and_window_is_bounded(self) -> None:
        """Short replies are neither scored nor remembered; only the last ``window`` pairs are kept."""
        enc = HashingEncoder(dim=64)
        dup = NearDuplicates(window=3, min_chars=10)
        texts = [f"prompt number {i}" for i in range(6)]
        scores = dup.update(enc.encode(texts), enc.encode(texts), [5, 50, 50, 50, 50, 50])
        assert scores[0] is None and len(dup) == 3

    def test_remember_refills_and_score_leaves_the_window_alone(self) -> None:
        """remember() refills the window unscored (short replies skipped); score() remembers nothing."""
        enc = HashingEncoder(dim=128)
        canned = "Thank you for contacting support. An agent will get back to you within two business days."
        dup = NearDuplicates(window=10, min_chars=10)
        dup.remember(enc.encode(["Where is my parcel?", "Hi"]), enc.encode([canned, "Ok."]), [len(canned), 3])
        assert len(dup) == 1
        again = dup.score(enc.encode(["How do I reset my password?"]), enc.encode([canned]), [len(canned)])
        assert again == [pytest.approx(1.0, abs=1e-6)] and len(dup) == 1

    def test_rejects_bad_arguments(self) -> None:
        """Window at least 1; shapes must match."""
        with pytest.raises(ValueError, match="window"):
            NearDuplicates(window=0)
        with pytest.raises(ValueError, match="same shape"):
            NearDuplicates().update(np.zeros((2, 4)), np.zeros((3, 4)), [1, 1])


def scored(i: int, prompt: str, response: str, flags: tuple[str, ...] = ()) -> ScoredSample:
    sample = Sample(id=f"r{i}", ts=T0 + timedelta(seconds=i), prompt=prompt, response=response, tenant="acme")
    return ScoredSample(sample=sample, scores={"toxicity": 0.1}, versions={"toxicity": "t"}, flags=flags, cost_usd=None)


class TestMonitorSignals:
    """The drift step writes novelty and near_duplicate scores, versions and flags onto records."""

    SETTINGS = DriftSettings(reference_size=40, window_size=20, window_seconds=None, min_window=10, k=3)

    def test_novelty_null_until_reference_then_scored_and_flagged(self) -> None:
        """The first reference_size records get NULL novelty; later on-topic ones low, far-off ones flagged."""
        enc = HashingEncoder(dim=64)
        monitor = DriftMonitor(self.SETTINGS, available=["toxicity"])
        topics = ["bread flour yeast oven", "bread dough knead rise", "oven bake crust flour"]
        ref = [scored(i, f"{topics[i % 3]} {i % 5}", "ok") for i in range(40)]
        out, _ = monitor.observe(ref, {"prompt": enc.encode([s.sample.prompt for s in ref])})
        assert all(s.scores[NOVELTY] is None for s in out)
        new = [scored(100, "bread flour yeast oven 2", "ok"), scored(101, "quantum chromodynamics gluon", "ok")]
        out, _ = monitor.observe(new, {"prompt": enc.encode([s.sample.prompt for s in new])})
        near, far = out
        assert near.scores[NOVELTY] is not None and far.scores[NOVELTY] == 1.0
        assert NOVEL_FLAG in far.flags and NOVEL_FLAG not in near.flags
        assert far.versions[NOVELTY].startswith("knn3") and far.scores["toxicity"] == 0.1

    def test_near_duplicate_flag_across_batches(self) -> None:
        """The same long answer to a different prompt, one batch later, is flagged near_duplicate."""
        enc = HashingEncoder(dim=128)
        monitor = DriftMonitor(self.SETTINGS)
        canned = "Thank you for your message. Our team will review your request and reply within two business days."
        first = [scored(1, "How do I cancel my order?", canned)]
        second = [scored(2, "Can I change the delivery address?", canned)]
        for batch in (first, second):
            vectors: dict[TextField, Vectors] = {
                "prompt": enc.encode([s.sample.prompt for s in batch]),
                "response": enc.encode([s.sample.response for s in batch]),
            }
            out, _ = monitor.observe(batch, vectors)
        assert out[0].scores[NEAR_DUPLICATE] == pytest.approx(1.0, abs=1e-6)
        assert NEAR_DUPLICATE in out[0].flags

    def test_signals_and_fields_follow_settings(self) -> None:
        """Columns and embedded fields depend on the settings; drift off means neither."""
        assert stream_signals(self.SETTINGS) == (NOVELTY, NEAR_DUPLICATE)
        assert required_fields(self.SETTINGS) == {"prompt", "response"}
        off = DriftSettings(novelty=False, near_duplicate=False, fields=("response",))
        assert stream_signals(off) == () and required_fields(off) == {"response"}
        assert (
            stream_signals(DriftSettings(enabled=False)) == ()
            and required_fields(DriftSettings(enabled=False)) == set()
        )
        assert stream_signals(DriftSettings(fields=("response",))) == (NEAR_DUPLICATE,)  # novelty needs prompts
