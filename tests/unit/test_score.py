"""The score step: one encoder pass per distinct text, flags in each detector's direction, cost."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pytest
from numpy.typing import NDArray

from agent.cost import Price, PriceTable
from agent.score import Scorer
from agent.types import Sample, Usage
from detectors.relevance import EmbeddingRelevance
from detectors.testing import HashingEncoder
from detectors.toxicity import LexicalToxicity
from detectors.types import Batch, Score, TextField

TS = datetime(2026, 1, 1, tzinfo=UTC)


class KeywordClassifier:
    """A stand-in classifier: 0.9 for texts containing 'bad', else 0.1."""

    def predict_proba(self, texts: Sequence[str]) -> NDArray[np.float64]:
        return np.array([0.9 if "bad" in t else 0.1 for t in texts])


def sample(
    i: int, prompt: str = "tell me about cats", response: str = "cats are small felines", **kw: object
) -> Sample:
    return Sample(id=f"s{i}", ts=TS, prompt=prompt, response=response, **kw)  # type: ignore[arg-type]


class TestScorer:
    """Scorer wiring."""

    def test_each_distinct_text_is_encoded_once_per_batch(self) -> None:
        """A prompt repeated across records and shared by two fields is encoded in one call, once."""
        encoder = HashingEncoder()
        scorer = Scorer([EmbeddingRelevance()], encoder)
        scorer.score([sample(0), sample(1), sample(2, response="tell me about cats")])
        assert len(encoder.calls) == 1
        assert sorted(encoder.calls[0]) == ["cats are small felines", "tell me about cats"]

    def test_no_encoder_call_when_no_detector_needs_embeddings(self) -> None:
        """Lexical detectors alone never touch the encoder."""
        encoder = HashingEncoder()
        Scorer([LexicalToxicity(KeywordClassifier())], encoder).score([sample(0)])
        assert encoder.calls == []

    def test_flags_follow_each_detector_direction(self) -> None:
        """High toxicity flags; low relevance flags; the reverse does not."""
        scorer = Scorer([LexicalToxicity(KeywordClassifier()), EmbeddingRelevance()], HashingEncoder())
        good, bad = scorer.score(
            [sample(0, response="about cats: they are bad felines"), sample(1, response="zebra quantum")]
        )
        assert good.flags == ("toxicity",)
        assert bad.flags == ("relevance",)
        assert good.scores["toxicity"] == pytest.approx(0.9)
        assert bad.scores["relevance"] is not None and bad.scores["relevance"] < 0.5

    def test_threshold_override(self) -> None:
        """A deployment threshold replaces the detector default."""
        scorer = Scorer([LexicalToxicity(KeywordClassifier())], None, thresholds={"toxicity": 0.05})
        assert scorer.score([sample(0)])[0].flags == ("toxicity",)

    def test_threshold_for_disabled_detector_rejected(self) -> None:
        """A threshold naming a detector that is not enabled is a configuration error."""
        with pytest.raises(ValueError, match="not enabled"):
            Scorer([LexicalToxicity(KeywordClassifier())], None, thresholds={"relevance": 0.5})

    def test_cost_and_versions_attached(self) -> None:
        """Each scored sample carries its cost and every detector's version."""
        prices = PriceTable({"m": Price(1.0, 2.0)})
        scorer = Scorer([LexicalToxicity(KeywordClassifier())], None, prices=prices)
        out = scorer.score([sample(0, model="m", usage=Usage(1_000_000, 1_000_000)), sample(1, model="x")])
        assert out[0].cost_usd == pytest.approx(3.0)
        assert out[1].cost_usd is None
        assert out[0].versions == {"toxicity": "lexical-profanity-check-custom"}
        assert scorer.is_unpriced(sample(2, model="x", usage=Usage(1, 1)))
        assert not scorer.is_unpriced(sample(3, model="x"))

    def test_detector_returning_wrong_count_is_an_error(self) -> None:
        """A detector breaking the one-score-per-record contract is caught, not stored misaligned."""

        class Broken:
            name = "toxicity"
            version = "broken"
            needs: frozenset[TextField] = frozenset()
            higher_is_worse = True
            default_threshold = 0.5

            def score(self, batch: Batch) -> list[Score]:
                return [Score(0.1)]

        with pytest.raises(RuntimeError, match="returned 1 scores for 2"):
            Scorer([Broken()], None).score([sample(0), sample(1)])

    def test_empty_batch(self) -> None:
        """No samples, no work."""
        encoder = HashingEncoder()
        assert Scorer([EmbeddingRelevance()], encoder).score([]) == []
        assert encoder.calls == []


class Fixed:
    """A stand-in detector scoring every record ``value`` (flags above or below ``threshold`` by direction)."""

    needs: frozenset[TextField] = frozenset()
    default_threshold = 0.5

    def __init__(self, name: str, value: float, higher_is_worse: bool = True) -> None:
        self.name, self.version, self.value, self.higher_is_worse = name, "fixed", value, higher_is_worse

    def score(self, batch: Batch) -> list[Score]:
        return [Score(self.value) for _ in batch.items]


class TestSuppression:
    """A refusal or deflection is the refusals queue's: it is not also flagged irrelevant."""

    def test_refusal_takes_over_the_relevance_flag_and_keeps_its_score(self) -> None:
        scorer = Scorer([Fixed("refusal", 0.9), Fixed("relevance", 0.1, higher_is_worse=False)], None)
        [out] = scorer.score([sample(0)])
        assert out.flags == ("refusal",) and out.scores["relevance"] == 0.1

    def test_relevance_flags_when_there_is_no_refusal(self) -> None:
        scorer = Scorer([Fixed("refusal", 0.1), Fixed("relevance", 0.1, higher_is_worse=False)], None)
        assert scorer.score([sample(0)])[0].flags == ("relevance",)
