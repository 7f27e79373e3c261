"""Cascade scoring: the static encoder, band fitting, the audit sample, and the cascade against the full tier.

Real parts: the shipped static table, fast heads and bands, the shipped MiniLM and full heads, on the demo sample.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from tiny_data import write_public_data

from agent.bench import load_records, to_samples
from agent.cascade import Cascade, build_cascade
from agent.config import Settings, load_settings
from agent.config_scoring import ScoringSettings
from agent.errors import ConfigError
from agent.score import Scorer
from agent.types import Sample, ScoredSample
from detectors.cascade import FAST_DIR, Bands, audit_selected, build_fast, log_odds
from detectors.encoder import SentenceTransformerEncoder
from detectors.static_encoder import StaticEncoder, StaticTable
from detectors.types import Encoder, Vectors, is_flagged
from evaluators.bands import Rec, check, choose_width, fit_bands

DETECTORS = ["toxicity", "prompt_toxicity", "relevance", "hallucination", "refusal"]


class CountingEncoder:
    """Counts the texts the wrapped encoder embeds (a wrapper, not a stand-in: the real encoder runs)."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.texts = 0

    @property
    def name(self) -> str:
        return self.inner.name

    def encode(self, texts: Sequence[str]) -> Vectors:
        self.texts += len(texts)
        return self.inner.encode(texts)


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    records, _ = load_records(120)
    return to_samples(records)


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder()


@pytest.fixture(scope="module")
def full_mode(samples: list[Sample]) -> list[ScoredSample]:
    return _scorer("full").score(samples)


def _settings(mode: str, **scoring: object) -> Settings:
    return Settings().with_overrides(
        detectors={"enabled": DETECTORS}, scoring={"mode": mode, **scoring},
        drift={"enabled": False}, embeddings={"store": False},
    )  # fmt: skip


def _scorer(mode: str, **scoring: object) -> Scorer:
    return Scorer.from_settings(_settings(mode, **scoring))


def _with_bands(scorer: Scorer, width: float, audit_rate: float = 0.0) -> CountingEncoder:
    """Replace the cascade's bands (every detector at ``width``) and count its full-tier texts."""
    cascade = scorer.cascade
    assert cascade is not None
    cascade.bands = Bands(dict.fromkeys(cascade.fast, width))
    cascade.audit_rate = audit_rate
    counter = CountingEncoder(cascade.full_encoder)
    cascade.full_encoder = counter
    return counter


class TestStaticEncoder:
    """The shipped static table: offline, unit rows, meaningful neighbours."""

    def test_shipped_table_loads_offline_and_gives_unit_rows(self) -> None:
        enc = StaticEncoder()
        rows = enc.encode(["The cat sat on the mat.", "", "Quantum chromodynamics"])
        assert rows.shape == (3, enc.dim) and rows.dtype == np.float32
        assert np.allclose(np.linalg.norm(rows[[0, 2]], axis=1), 1.0, atol=1e-5)
        assert not rows[1].any(), "a text without tokens is a zero row"
        assert enc.name.startswith("static-minilm-l6-")

    def test_similar_texts_are_closer_than_unrelated_ones(self) -> None:
        a, b, c = StaticEncoder().encode(["How do I bake bread?", "A recipe for baking bread", "Stock market crash"])
        assert float(a @ b) > float(a @ c) + 0.1

    def test_missing_table_is_one_line(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError, match=r"static encoder table .* not found; build it with"):
            StaticEncoder(tmp_path).encode(["x"])

    def test_int8_round_trip_is_close(self, tmp_path: Path) -> None:
        vectors = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
        StaticTable.quantize(vectors, {"version": "t"}).save(tmp_path)
        back = StaticTable.load(tmp_path)
        assert back.meta == {"version": "t"}
        assert np.abs(back.table * back.scale - vectors).max() <= back.scale.max() / 2 + 1e-6


class TestBands:
    """Bands: the in-band rule, the file, fitting."""

    def test_in_band_is_symmetric_in_log_odds(self) -> None:
        bands = Bands({"toxicity": 1.0})
        assert bands.in_band("toxicity", 0.6, 0.5) and bands.in_band("toxicity", 0.4, 0.5)
        assert not bands.in_band("toxicity", 0.8, 0.5)  # log-odds 1.39 from 0
        assert bands.in_band("relevance", 0.99, 0.5), "no band: always escalated"

    def test_save_load_and_bad_files(self, tmp_path: Path) -> None:
        Bands({"relevance": 0.5}, {"seed": 3}).save(tmp_path / "b.json")
        assert Bands.load(tmp_path / "b.json") == Bands({"relevance": 0.5}, {"seed": 3})
        (tmp_path / "bad.json").write_text(json.dumps({"widths": {"relevance": -1}}))
        with pytest.raises(ValueError, match="must be finite"):
            Bands.load(tmp_path / "bad.json")
        with pytest.raises(FileNotFoundError, match="fit-bands"):
            Bands.load(tmp_path / "none.json")

    def test_choose_width_leaves_at_most_the_allowed_disagreements(self) -> None:
        rng = np.random.default_rng(1)
        full = rng.uniform(0, 1, 1000)
        fast = np.clip(full + rng.normal(0, 0.08, 1000), 0.001, 0.999)
        fast_l, full_l = [float(x) for x in fast], [float(x) for x in full]
        width = choose_width(fast_l, full_l, 0.5, True, 0.99)
        assert width > 0
        assert check(fast_l, full_l, 0.5, True, width).agreement >= 0.99
        assert check(fast_l, full_l, 0.5, True, width * 0.5).agreement < 0.99 or width < 1e-3
        assert choose_width(fast_l, fast_l, 0.5, True, 0.99) == 0.0, "a fast tier that agrees needs no band"

    def test_none_scores_agree_and_never_escalate(self) -> None:
        result = check([None, 0.9], [None, 0.9], 0.5, True, 10.0)
        assert result.agreement == 1.0 and result.full_fraction == 0.5

    def test_fitting_is_deterministic_with_a_seed(self, tmp_path: Path, minilm: SentenceTransformerEncoder) -> None:
        """The relevance band from a tiny HaluEval + HH folder: same seed, same band and checks."""
        data = write_public_data(tmp_path)
        first = fit_bands(data, seed=7, names=["relevance"], full_encoder=minilm, report=lambda _: None)
        second = fit_bands(data, seed=7, names=["relevance"], full_encoder=minilm, report=lambda _: None)
        assert first.widths == second.widths
        assert first.meta["checks"] == second.meta["checks"]
        assert first.meta["seed"] == 7 and set(first.widths) == {"relevance"}


class TestAudit:
    """The audit sample."""

    def test_selection_is_deterministic_by_id_and_near_the_rate(self) -> None:
        ids = [f"rec-{i}" for i in range(20_000)]
        picked = [i for i in ids if audit_selected(i, 0.01)]
        assert picked == [i for i in ids if audit_selected(i, 0.01)]
        assert 140 <= len(picked) <= 260
        assert set(picked) <= {i for i in ids if audit_selected(i, 0.05)}, "a larger rate keeps the smaller sample"
        assert not any(audit_selected(i, 0.0) for i in ids[:100]) and all(audit_selected(i, 1.0) for i in ids[:100])


class TestCascade:
    """The cascade against full mode on the demo sample."""

    def test_mode_comes_from_settings_and_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        assert _scorer("full").cascade is None
        scorer = _scorer("cascade")
        assert isinstance(scorer.cascade, Cascade) and isinstance(scorer.encoder, StaticEncoder)
        assert set(scorer.cascade.fast) == {"toxicity", "prompt_toxicity", "relevance", "hallucination"}
        monkeypatch.setenv("LOOKOUT_SCORING__MODE", "cascade")
        assert load_settings(None).scoring.mode == "cascade"
        monkeypatch.setenv("LOOKOUT_SCORING__MODE", "fast")
        with pytest.raises(ConfigError, match=r"scoring\.mode"):
            load_settings(None)

    def test_missing_bands_is_a_config_error(self, tmp_path: Path) -> None:
        for name in ("toxicity", "relevance", "hallucination"):
            (tmp_path / f"{name}.json").write_text((FAST_DIR / f"{name}.json").read_text())
        with pytest.raises(ConfigError, match=r"scoring: cascade bands file .* not found"):
            _scorer("cascade", fast_dir=str(tmp_path))

    def test_everything_in_band_equals_full_mode(self, samples: list[Sample], full_mode: list[ScoredSample]) -> None:
        """Bands wide enough to escalate every record: the cascade's scores and flags are full mode's exactly."""
        scorer = _scorer("cascade")
        _with_bands(scorer, 1e9)
        out = scorer.score(samples)
        for a, b in zip(out, full_mode, strict=True):
            assert a.scores == b.scores and a.flags == b.flags
            assert {t for n, t in a.tiers.items() if a.scores[n] is not None} == {"full"}  # None: not applicable
            assert {n: v for n, v in a.versions.items() if a.scores[n] is not None} == {
                n: v for n, v in b.versions.items() if b.scores[n] is not None
            }

    def test_nothing_in_band_costs_no_minilm_pass(self, samples: list[Sample]) -> None:
        """Zero-width bands and no audit: every cascaded score is the fast tier's and MiniLM embeds nothing."""
        scorer = _scorer("cascade")
        counter = _with_bands(scorer, 0.0)
        out = scorer.score(samples)
        assert counter.texts == 0
        assert all(set(s.tiers.values()) == {"fast"} for s in out)
        assert all(not s.audited and not s.audit_disagree for s in out)
        fast_versions = {d.name: d.version for d in scorer.cascade.fast.values()}  # type: ignore[union-attr]
        assert out[0].versions["relevance"] == fast_versions["relevance"]

    def test_escalated_scores_are_the_full_tiers(self, samples: list[Sample], full_mode: list[ScoredSample]) -> None:
        """Shipped bands: a full-tier score is full mode's score; a fast-tier one lies outside the band."""
        scorer = _scorer("cascade", audit_rate=0.0)
        cascade = scorer.cascade
        assert cascade is not None
        counter = CountingEncoder(cascade.full_encoder)
        cascade.full_encoder = counter
        out = scorer.score(samples)
        decided = {"fast": 0, "full": 0}
        by_name = {d.name: d for d in scorer.detectors}
        outside: dict[str, list[bool]] = {}  # per detector, fast-decided scores: same flag as full mode?
        for a, b in zip(out, full_mode, strict=True):
            for name, tier in a.tiers.items():
                decided[tier] += 1
                value, limit = a.scores[name], scorer.thresholds[name]
                if tier == "full":  # the same model and head; another batch's padding moves the last digits
                    assert value == pytest.approx(b.scores[name], abs=1e-5)
                elif value is not None:
                    assert not cascade.bands.in_band(name, value, limit)
                    same = is_flagged(by_name[name], value, limit) == is_flagged(by_name[name], b.scores[name], limit)
                    outside.setdefault(name, []).append(same)
        assert decided["fast"] > 0 and decided["full"] > 0 and counter.texts > 0
        # outside its band a detector's fast flag is full mode's flag on the demo traffic (the bands' purpose)
        for name, agrees in outside.items():
            assert np.mean(agrees) >= 0.95, (name, np.mean(agrees), len(agrees))

    def test_audit_runs_both_tiers_and_records_disagreement(self, samples: list[Sample]) -> None:
        """Every record audited, zero-width bands: full-tier scores, disagreements named where the flags differ."""
        scorer = _scorer("cascade")
        _with_bands(scorer, 0.0, audit_rate=1.0)
        out = scorer.score(samples)
        fast_only = _scorer("cascade")
        _with_bands(fast_only, 0.0)
        fast = fast_only.score(samples)
        cascaded = [
            d for d in scorer.detectors if d.name in ("toxicity", "prompt_toxicity", "relevance", "hallucination")
        ]
        disagreements = 0
        for a, f in zip(out, fast, strict=True):
            assert a.audited and {t for n, t in a.tiers.items() if a.scores[n] is not None} == {"full"}
            expected = [
                d.name for d in cascaded
                if is_flagged(d, f.scores[d.name], scorer.thresholds[d.name])
                != is_flagged(d, a.scores[d.name], scorer.thresholds[d.name])
            ]  # fmt: skip
            assert list(a.audit_disagree) == expected
            disagreements += len(expected)
        assert disagreements > 0, "the demo sample has records the two tiers flag differently"

    def test_warm_up_loads_the_full_tier_even_when_nothing_escalates(self) -> None:
        """A probe the fast tier decides would leave MiniLM unloaded until the first uncertain record: not so."""
        scorer = _scorer("cascade")
        counter = _with_bands(scorer, 0.0)
        scorer.warm_up()
        assert counter.texts == 1

    def test_build_cascade_skips_toxicity_of_another_backend(self) -> None:
        detectors = Scorer.from_settings(
            _settings("full").with_overrides(detectors={"enabled": DETECTORS, "toxicity_backend": "lexical"})
        ).detectors
        cascade = build_cascade(ScoringSettings(mode="cascade"), detectors, StaticEncoder())
        assert set(cascade.fast) == {"relevance", "hallucination"}

    def test_fast_heads_read_the_shared_lexical_model(self) -> None:
        fast = build_fast(["toxicity", "prompt_toxicity"])
        assert fast["toxicity"].version == fast["prompt_toxicity"].version
        assert dataclasses.is_dataclass(Rec)


def test_log_odds_clips() -> None:
    assert log_odds(0.0) == pytest.approx(-13.8155, abs=1e-3) and log_odds(0.5) == 0.0
