"""One conformance suite over every registered detector, plus a row of known cases per detector."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from agent.types import Sample
from detectors import registry
from detectors.encoder import SentenceTransformerEncoder, build_batch
from detectors.testing import HashingEncoder
from detectors.types import Detector, Encoder

TS = datetime(2026, 1, 1, tzinfo=UTC)

# (prompt, response) pairs: each detector's row names one that must score worse than another.
CASES: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    # name: (clearly fine, clearly bad)
    "toxicity": (
        ("How do I bake bread?", "Mix flour, water, yeast and salt, then bake at 230 C."),
        ("How do I bake bread?", "Shut up, you stupid fucking idiot."),
    ),
    "prompt_toxicity": (
        ("How do I bake bread?", "Mix flour and water."),
        ("You are a worthless piece of shit, answer me", "Here is an answer."),
    ),
    "relevance": (
        ("How do I bake bread?", "To bake bread, mix flour, water, yeast and salt, knead, let it rise, and bake it."),
        ("How do I bake bread?", "The 1998 World Cup final was played in Saint-Denis."),
    ),
}

_ENCODER: Encoder | None = None


def real_encoder() -> Encoder:
    """The bundled all-MiniLM-L6-v2, loaded once for this module."""
    global _ENCODER
    if _ENCODER is None:
        _ENCODER = SentenceTransformerEncoder()
    return _ENCODER


def samples(pairs: list[tuple[str, str]]) -> list[Sample]:
    return [Sample(id=str(i), ts=TS, prompt=p, response=r) for i, (p, r) in enumerate(pairs)]


def run(detector: Detector, pairs: list[tuple[str, str]], encoder: Encoder | None = None) -> list[float | None]:
    items = samples(pairs)
    batch = build_batch(items, encoder or HashingEncoder(), detector.needs)
    return [s.value for s in detector.score(batch)]


class TestRegistry:
    """Names, resolution and completeness."""

    def test_every_registered_detector_has_a_case_row(self) -> None:
        """Adding a detector without a row of known cases fails here."""
        assert set(registry.REGISTRY) == set(CASES) == set(registry.NAMES)

    def test_unknown_name_lists_valid_names(self) -> None:
        """The error for an unknown detector names the valid ones."""
        with pytest.raises(ValueError, match="valid: prompt_toxicity, relevance, toxicity"):
            registry.resolve("toxic")

    def test_duplicate_names_rejected(self) -> None:
        """A detector listed twice is a configuration error."""
        with pytest.raises(ValueError, match="listed twice"):
            registry.build(["relevance", "relevance"])


@pytest.mark.parametrize("name", registry.NAMES)
class TestConformance:
    """The contract every detector keeps."""

    def test_one_score_per_record_same_order(self, name: str) -> None:
        """Scores align with inputs: scoring the reversed batch gives the reversed scores."""
        detector = registry.resolve(name)()
        pairs = [p for case in CASES.values() for p in case]
        forward = run(detector, pairs)
        backward = run(detector, pairs[::-1])
        assert len(forward) == len(pairs)
        assert backward == pytest.approx(forward[::-1])

    def test_scores_in_unit_interval_and_deterministic(self, name: str) -> None:
        """Every score is None or within 0..1, and the same input scores the same."""
        detector = registry.resolve(name)()
        pairs = [p for case in CASES.values() for p in case] + [("", ""), ("?", "!" * 5000)]
        first = run(detector, pairs)
        assert first == run(detector, pairs)
        assert all(v is None or 0.0 <= v <= 1.0 for v in first)

    def test_empty_batch(self, name: str) -> None:
        """No records, no scores."""
        assert run(registry.resolve(name)(), []) == []

    def test_public_contract_attributes(self, name: str) -> None:
        """Name matches the registry, version is set, direction and threshold are sane, repr is readable."""
        detector = registry.resolve(name)()
        assert isinstance(detector, Detector)
        assert detector.name == name
        assert detector.version
        assert 0.0 < detector.default_threshold < 1.0
        assert type(detector).__name__ in repr(detector)

    def test_known_bad_scores_worse_than_known_fine_with_real_models(self, name: str) -> None:
        """On the real encoder and classifier, the row's bad case crosses the threshold and the fine one does not."""
        detector = registry.resolve(name)()
        fine, bad = run(detector, list(CASES[name]), real_encoder())
        assert fine is not None and bad is not None
        if detector.higher_is_worse:
            assert fine < detector.default_threshold <= bad
        else:
            assert bad < detector.default_threshold <= fine


class TestBatch:
    """The shared encoder pass."""

    def test_build_batch_rows_follow_items(self) -> None:
        """Embedding rows line up with items even when texts repeat."""
        items = samples([("a b", "c d"), ("a b", "a b")])
        batch = build_batch(items, HashingEncoder(), {"prompt", "response"})
        np.testing.assert_allclose(batch.embeddings("prompt")[0], batch.embeddings("prompt")[1])
        np.testing.assert_allclose(batch.embeddings("response")[1], batch.embeddings("prompt")[0])

    def test_missing_field_error_says_what_to_declare(self) -> None:
        """Asking for embeddings nobody declared is a clear error."""
        batch = build_batch(samples([("a", "b")]), HashingEncoder(), set())
        with pytest.raises(KeyError, match="declare it in the detector's `needs`"):
            batch.embeddings("prompt")

    def test_real_encoder_unit_vectors(self) -> None:
        """The bundled MiniLM loads offline and returns unit float32 rows of 384 dimensions."""
        vectors = real_encoder().encode(["hello world", "bonjour"])
        assert vectors.shape == (2, 384) and vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
