"""Drift detectors (detectors/drift.py), the agent's drift step (agent/drift.py) and drift on real text."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from agent.config import DriftSettings
from agent.drift import DRIFT_FLAG, DriftMonitor, load_pinned
from agent.errors import ConfigError
from agent.types import Sample, ScoredSample
from detectors.drift import EmbeddingDrift, ScoreDrift, WindowSpec, p_score
from detectors.encoder import SentenceTransformerEncoder
from detectors.testing import HashingEncoder
from evaluators.drift import run_protocol

DRIFT_SAMPLE = Path(__file__).resolve().parents[1] / "data" / "drift_sample.jsonl"
DIM = 16


def gaussian(rng: np.random.Generator, n: int, shift: float = 0.0) -> npt.NDArray[np.float32]:
    """``n`` vectors around a fixed mean direction; ``shift`` moves part of the mass elsewhere."""
    base = np.zeros(DIM, dtype=np.float32)
    base[0] = 3.0
    x = rng.normal(size=(n, DIM)).astype(np.float32) + base
    if shift:
        x[:, 1] += shift
    return x


class TestWindowSpec:
    """Window settings are validated."""

    def test_rejects_min_size_above_size(self) -> None:
        """min_size may not exceed size."""
        with pytest.raises(ValueError, match="min_size"):
            WindowSpec(size=10, min_size=20)

    def test_rejects_non_positive_seconds(self) -> None:
        """A time window must be positive."""
        with pytest.raises(ValueError, match="seconds"):
            WindowSpec(seconds=0)


class TestEmbeddingDrift:
    """Reference, tumbling windows and the knn-ks test on synthetic vectors."""

    def test_same_distribution_windows_do_not_drift_and_shifted_ones_do(self) -> None:
        """Windows from the reference distribution pass; windows with shifted vectors drift."""
        rng = np.random.default_rng(0)
        d = EmbeddingDrift(reference_size=400, window=WindowSpec(size=100, seconds=None))
        assert d.update(gaussian(rng, 400), list(range(400))) == []
        assert d.reference_ready
        same = d.update(gaussian(rng, 300), list(range(400, 700)))
        shifted = d.update(gaussian(rng, 100, shift=5.0), list(range(700, 800)))
        assert [r.drifted for r in same] == [False, False, False]
        assert [r.drifted for r in shifted] == [True]
        r = shifted[0]
        assert (r.n, r.window_start_ms, r.window_end_ms, r.reference_n, r.method) == (100, 700, 799, 400, "knn-ks")
        assert r.p_value is not None and r.score == pytest.approx(p_score(r.p_value))
        assert r.threshold == pytest.approx(2.0)

    def test_time_closes_a_window_and_small_ones_are_dropped(self) -> None:
        """A window closes when a record arrives `seconds` after it opened; below min_size it is not tested."""
        rng = np.random.default_rng(1)
        d = EmbeddingDrift(reference_size=100, window=WindowSpec(size=1000, seconds=60, min_size=20))
        d.update(gaussian(rng, 100), [0] * 100)
        assert d.update(gaussian(rng, 30), [1_000 + i for i in range(30)]) == []
        closed = d.update(gaussian(rng, 5), [61_000 + i for i in range(5)])  # 60 s after the window opened
        assert [r.n for r in closed] == [30]
        assert d.update(gaussian(rng, 1), [200_000]) == []  # the 5-record window is dropped
        assert d.dropped_windows == 1

    def test_reference_is_bounded_reservoir(self) -> None:
        """With reference_records > reference_size, the reference keeps only reference_size vectors."""
        rng = np.random.default_rng(2)
        d = EmbeddingDrift(reference_size=50, reference_records=500, window=WindowSpec(size=50, seconds=None))
        assert d.update(gaussian(rng, 499), list(range(499))) == []
        assert not d.reference_ready
        d.update(gaussian(rng, 1), [499])
        assert d.reference_ready
        closed = d.update(gaussian(rng, 50), list(range(500, 550)))
        assert [r.reference_n for r in closed] == [50]

    def test_pin_uses_given_reference_and_reset_forgets(self) -> None:
        """A pinned reference tests from the first window; reset empties reference and window."""
        rng = np.random.default_rng(3)
        d = EmbeddingDrift(reference_size=100, window=WindowSpec(size=50, seconds=None))
        d.pin(list(gaussian(rng, 200)))
        assert d.reference_ready
        assert [r.reference_n for r in d.update(gaussian(rng, 50), list(range(50)))] == [200]
        d.reset()
        assert not d.reference_ready

    def test_kept_reference_and_replayed_window_test_like_the_original(self) -> None:
        """restore_reference takes a kept reference back, replay refills the window: the next windows match."""
        rng = np.random.default_rng(7)
        spec = WindowSpec(size=50, seconds=None)
        original = EmbeddingDrift(reference_size=100, window=spec)
        seen = gaussian(rng, 130)
        original.update(seen, list(range(130)))  # the reference (0..99) and 30 records in the open window
        copy = EmbeddingDrift(reference_size=100, window=spec)
        copy.restore_reference(np.stack(original.reference), original.reference_end_ms)
        copy.replay(seen[100:], list(range(100, 130)))
        assert copy.reference_ready and copy.reference_end_ms == 99
        later = gaussian(rng, 70, shift=2.0)
        assert copy.update(later, list(range(130, 200))) == original.update(later, list(range(130, 200)))
        probe = gaussian(rng, 5)
        ranks, expected = copy.novelty(probe), original.novelty(probe)
        assert ranks is not None and expected is not None and np.array_equal(ranks, expected)

    def test_replay_fills_the_reference_and_tests_no_window(self) -> None:
        """Replayed vectors go to the reference first, then to windows that close untested."""
        rng = np.random.default_rng(8)
        d = EmbeddingDrift(reference_size=40, k=3, window=WindowSpec(size=20, seconds=None, min_size=10))
        d.replay(gaussian(rng, 70), list(range(70)))  # the reference, one closed window, 10 open
        assert d.reference_ready and d.reference_end_ms == 39
        (closed,) = d.update(gaussian(rng, 10), list(range(70, 80)))
        assert (closed.window_start_ms, closed.window_end_ms, closed.n) == (60, 79, 20)

    def test_evidently_method_runs_directly(self) -> None:
        """An evidently embedding method is called without a Report and named in the result."""
        rng = np.random.default_rng(4)
        d = EmbeddingDrift(reference_size=100, window=WindowSpec(size=50, seconds=None), method="distance")
        d.update(gaussian(rng, 100), list(range(100)))
        (far,) = d.update(gaussian(rng, 50, shift=8.0), list(range(100, 150)))
        assert far.method == "evidently-distance" and far.p_value is None and far.drifted

    def test_rejects_bad_parameters(self) -> None:
        """Unknown method, k too large and rows without timestamps are one-line errors."""
        with pytest.raises(ValueError, match="valid: knn-ks"):
            EmbeddingDrift(method="tsne")  # type: ignore[arg-type]  # the error path under test
        with pytest.raises(ValueError, match="k must"):
            EmbeddingDrift(reference_size=10, k=6)
        with pytest.raises(ValueError, match="one row per timestamp"):
            EmbeddingDrift().update(np.zeros((3, DIM)), [1, 2])


class TestScoreDrift:
    """KS drift of score streams."""

    def test_detects_a_shift_of_scores_and_skips_missing_values(self) -> None:
        """Same-distribution scores pass, a shifted window drifts, None and NaN are skipped."""
        rng = np.random.default_rng(5)
        d = ScoreDrift(reference_size=300, window=WindowSpec(size=100, seconds=None))
        d.update(list(rng.beta(2, 8, 300)), list(range(300)))
        values: list[float | None] = [*rng.beta(2, 8, 100), None, float("nan")]
        (same,) = d.update(values, list(range(300, 402)))
        (shifted,) = d.update(list(rng.beta(5, 5, 100)), list(range(402, 502)))
        assert (same.drifted, same.n, shifted.drifted, shifted.method) == (False, 100, True, "ks")

    def test_kept_reference_is_restored(self) -> None:
        """A score reference taken back tests the next window as the original does."""
        rng = np.random.default_rng(9)
        original = ScoreDrift(reference_size=50, window=WindowSpec(size=25, seconds=None, min_size=10))
        original.update(list(rng.beta(2, 8, 50)), list(range(50)))
        copy = ScoreDrift(reference_size=50, window=WindowSpec(size=25, seconds=None, min_size=10))
        copy.restore_reference(original.reference, original.reference_end_ms)
        later: list[float | None] = list(rng.beta(5, 5, 25))
        assert copy.update(later, list(range(50, 75))) == original.update(later, list(range(50, 75)))


def scored(i: int, tenant: str, prompt: str, toxicity: float = 0.1) -> ScoredSample:
    """A scored record of one stream."""
    ts = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i)
    sample = Sample(id=f"r{i}", ts=ts, prompt=prompt, response="x" * (10 + i % 7), tenant=tenant, model="m")
    return ScoredSample(sample=sample, scores={"toxicity": toxicity}, versions={}, flags=(), cost_usd=None)


class TestDriftMonitor:
    """Streams are keyed by tenant, model and route; windows become rows; drifted streams flag records."""

    SETTINGS = DriftSettings(reference_size=40, window_size=20, window_seconds=None, min_window=10, k=3)

    def test_streams_are_separate_and_drift_flags_later_records(self) -> None:
        """Each tenant fills its own reference; after a drifted window the stream's records carry `drift`."""
        monitor = DriftMonitor(self.SETTINGS, available=["toxicity"])
        rng = np.random.default_rng(6)
        batch = [scored(i, "a", "p") for i in range(40)] + [scored(i, "b", "p") for i in range(40)]
        out, rows = monitor.observe(batch, {"prompt": gaussian(rng, 80)})
        assert rows == [] and all(DRIFT_FLAG not in o.flags for o in out)
        far = [scored(100 + i, "a", "p") for i in range(20)]
        out, rows = monitor.observe(far, {"prompt": gaussian(rng, 20, shift=6.0)})
        streams = sorted((r.stream, r.kind, r.key, r.result.drifted) for r in rows)
        assert streams == [
            ("prompt_embedding", "embedding", ("a", "m", ""), True),
            ("response_length", "score", ("a", "m", ""), False),
            ("score:toxicity", "score", ("a", "m", ""), False),
        ]
        out, _ = monitor.observe([scored(200, "a", "p"), scored(201, "b", "p")], {"prompt": gaussian(rng, 2)})
        assert [DRIFT_FLAG in o.flags for o in out] == [True, False]

    def test_unknown_score_names_are_skipped(self) -> None:
        """drift.scores naming a detector that is not enabled produce no stream."""
        monitor = DriftMonitor(self.SETTINGS, available=[])
        assert monitor.score_names == ("response_length",)

    def test_least_recent_stream_is_forgotten_beyond_max_streams(self) -> None:
        """Tracking is bounded by max_streams."""
        settings = DriftSettings(reference_size=40, window_size=20, min_window=10, k=3, max_streams=2)
        monitor = DriftMonitor(settings)
        for tenant in ("a", "b", "c"):
            monitor.observe([scored(0, tenant, "p")], {"prompt": np.ones((1, DIM), dtype=np.float32)})
        assert monitor.evicted == 1

    def test_pinned_reference_file(self, tmp_path: Path) -> None:
        """A JSONL reference file is embedded per field; too few texts or bad JSON are one-line errors."""
        good = tmp_path / "ref.jsonl"
        good.write_text("".join(json.dumps({"prompt": f"question {i}"}) + "\n" for i in range(5)))
        vectors = load_pinned(good, ["prompt"], HashingEncoder())
        assert vectors["prompt"].shape[0] == 5
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"prompt": "a"}\nnot json\n')
        with pytest.raises(ConfigError, match=r"bad.jsonl:2 is not JSON"):
            load_pinned(bad, ["prompt"], HashingEncoder())
        with pytest.raises(ConfigError, match="need at least 4"):
            load_pinned(good, ["response"], HashingEncoder())


class TestDriftOnRealText:
    """The acceptance protocol on real prompts (tests/data/drift_sample.jsonl: HH-RLHF and HaluEval, MIT)."""

    def test_thirty_percent_other_corpus_detected_and_few_false_alarms(self) -> None:
        """All 20 windows with 30 % HaluEval questions drift; at most 5 % of 40 HH-only windows do."""
        rows = [json.loads(line) for line in DRIFT_SAMPLE.read_text(encoding="utf-8").splitlines()]
        encoder = SentenceTransformerEncoder()
        hh = np.asarray(encoder.encode([r["text"] for r in rows if r["corpus"] == "hh"]), dtype=np.float32)
        qa = np.asarray(encoder.encode([r["text"] for r in rows if r["corpus"] == "qa"]), dtype=np.float32)
        result = run_protocol(hh, qa, reference_size=1000, window=200, contamination=0.3, seed=0)
        assert result.detected == result.drift_windows == 20
        assert result.same_windows == 40
        assert result.false_alarms <= 2
