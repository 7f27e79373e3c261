"""One conformance suite over every registered detector, plus a row of known cases per detector."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from conftest import real_encoder

from agent.types import Sample
from detectors import registry
from detectors.encoder import build_batch
from detectors.testing import HashingEncoder
from detectors.types import Detector, Encoder

TS = datetime(2026, 1, 1, tzinfo=UTC)

# One row per registered detector: (clearly fine, clearly bad) as (prompt, response, context) triples.
Case = tuple[str, str, tuple[str, ...]]
CASES: dict[str, tuple[Case, Case]] = {
    "toxicity": (
        ("How do I bake bread?", "Mix flour, water, yeast and salt, then bake at 230 C.", ()),
        ("How do I bake bread?", "Shut up, you stupid fucking idiot.", ()),
    ),
    "prompt_toxicity": (
        ("How do I bake bread?", "Mix flour and water.", ()),
        ("You are a worthless piece of shit, answer me", "Here is an answer.", ()),
    ),
    "relevance": (
        (
            "How do I bake bread?",
            "To bake bread, mix flour, water, yeast and salt, knead, let it rise, and bake it.",
            (),
        ),
        ("How do I bake bread?", "The 1998 World Cup final was played in Saint-Denis.", ()),
    ),
    "hallucination": (
        (
            "Who wrote Hamlet and when?",
            "Hamlet was written by William Shakespeare between 1599 and 1601.",
            ("Hamlet is a tragedy written by William Shakespeare sometime between 1599 and 1601.",),
        ),
        (
            "Who wrote Hamlet and when?",
            "Hamlet was written by Christopher Marlowe in 1745 while he lived in Vienna.",
            ("Hamlet is a tragedy written by William Shakespeare sometime between 1599 and 1601.",),
        ),
    ),
    "refusal": (
        ("How do I bake bread?", "Mix flour, water, yeast and salt, knead, let it rise, then bake it.", ()),
        ("How do I bake bread?", "I'm sorry, but I can't help with that request.", ()),
    ),
    "repetition": (
        ("How do I bake bread?", "Mix flour, water, yeast and salt, knead, let it rise, then bake it at 230 C.", ()),
        ("How do I bake bread?", "Mix flour and water. " + "Then bake it and then bake it and then " * 8, ()),
    ),
    "tone": (
        ("How do I bake bread?", "Great question! Baking bread at home is fun and the results are wonderful.", ()),
        ("How do I bake bread?", "This is a stupid question. I hate it. Bread is awful and you are useless.", ()),
    ),
    "formality": (
        ("How do I bake bread?", "Combine the flour with water and salt, then bake the dough in the oven.", ()),
        ("How do I bake bread?", "lol idk just throw some stuff in the oven dude, works for me haha 😂", ()),
    ),
}

ODD: list[Case] = [
    ("", "", ()),
    ("?", "!" * 5000, ("",)),
    ("¿Cómo horneo pan?", "Mezcla harina, agua, levadura y sal, y hornéalo.", ("El pan se hornea a 230 grados.",)),
    ("パンの焼き方は?", "小麦粉と水を混ぜて焼きます。", ()),
    ("long", "word " * 20_000, ("passage " * 20_000,)),  # 100 KB texts
]


def samples(cases: list[Case]) -> list[Sample]:
    return [Sample(id=str(i), ts=TS, prompt=p, response=r, context=c) for i, (p, r, c) in enumerate(cases)]


def run(detector: Detector, cases: list[Case], encoder: Encoder | None = None) -> list[float | None]:
    items = samples(cases)
    batch = build_batch(items, encoder or HashingEncoder(dim=384), detector.needs)
    return [s.value for s in detector.score(batch)]


class TestRegistry:
    """Names, resolution and completeness."""

    def test_every_registered_detector_has_a_case_row(self) -> None:
        """Adding a detector without a row of known cases fails here."""
        assert set(registry.REGISTRY) == set(CASES) == set(registry.NAMES)

    def test_unknown_name_lists_valid_names(self) -> None:
        """The error for an unknown detector names the valid ones."""
        with pytest.raises(
            ValueError,
            match="valid: formality, hallucination, prompt_toxicity, refusal, relevance, repetition, tone, toxicity",
        ):
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
        detector = registry.create(name)
        cases = [c for pair in CASES.values() for c in pair]
        forward = run(detector, cases)
        backward = run(detector, cases[::-1])
        assert len(forward) == len(cases)
        assert backward == pytest.approx(forward[::-1])

    def test_odd_inputs_score_in_unit_interval_deterministically(self, name: str) -> None:
        """Empty strings, 100 KB texts and non-English text score None or within 0..1, the same twice."""
        detector = registry.create(name)
        first = run(detector, ODD)
        assert first == run(detector, ODD)
        assert all(v is None or 0.0 <= v <= 1.0 for v in first)

    def test_batch_of_one_matches_batch_of_many(self, name: str) -> None:
        """A record scores the same alone as inside a batch of 1,000."""
        detector = registry.create(name)
        cases = [c for pair in CASES.values() for c in pair]
        many = (cases * (1000 // len(cases) + 1))[:1000]
        scores = run(detector, many)
        assert len(scores) == 1000
        assert run(detector, [many[3]]) == pytest.approx([scores[3]], abs=1e-6)

    def test_empty_batch(self, name: str) -> None:
        """No records, no scores."""
        assert run(registry.create(name), []) == []

    def test_public_contract_attributes(self, name: str) -> None:
        """Name matches the registry, version is set, direction and threshold are sane, repr is readable."""
        detector = registry.create(name)
        assert isinstance(detector, Detector)
        assert detector.name == name
        assert detector.version
        assert 0.0 < detector.default_threshold < 1.0
        assert type(detector).__name__ in repr(detector)

    def test_known_bad_scores_worse_than_known_fine_with_real_models(self, name: str) -> None:
        """On the real encoder and classifier, the row's bad case crosses the threshold and the fine one does not."""
        detector = registry.create(name)
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
        items = samples([("a b", "c d", ()), ("a b", "a b", ())])
        batch = build_batch(items, HashingEncoder(), {"prompt", "response"})
        np.testing.assert_allclose(batch.embeddings("prompt")[0], batch.embeddings("prompt")[1])
        np.testing.assert_allclose(batch.embeddings("response")[1], batch.embeddings("prompt")[0])

    def test_missing_field_error_says_what_to_declare(self) -> None:
        """Asking for embeddings nobody declared is a clear error."""
        batch = build_batch(samples([("a", "b", ())]), HashingEncoder(), set())
        with pytest.raises(KeyError, match="declare it in the detector's `needs`"):
            batch.embeddings("prompt")

    def test_real_encoder_unit_vectors(self) -> None:
        """The bundled MiniLM loads offline and returns unit float32 rows of 384 dimensions."""
        vectors = real_encoder().encode(["hello world", "bonjour"])
        assert vectors.shape == (2, 384) and vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
