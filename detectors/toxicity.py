"""Toxicity of a prompt or response: a trained head (default) and a fast lexical backend.

* :class:`HeadToxicity` is a logistic head over the shared MiniLM embedding of the text plus
  alt-profanity-check's probability, stacked with alt-profanity-check's probability of the text with identity
  terms masked, trained on Davidson et al.'s tweets with self-written identity
  templates and identity-swapped copies against identity-term bias (``detectors/heads/toxicity.md``).
* :class:`LexicalToxicity` is alt-profanity-check alone (TF-IDF + linear SVM, calibrated): microseconds per
  text, no embeddings, but lexical: it catches profanity and insults and also fires on identity terms
  ("I am a gay man" scores high).

A transformer backend (detoxify checkpoints) lives in :mod:`detectors.detoxify_backend`.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from detectors.head import LogisticHead
from detectors.identity import mask_identity
from detectors.types import Batch, Score, TextField, Vectors

Target = Literal["response", "prompt"]


class TextClassifier(Protocol):
    """Anything that maps texts to a probability of the positive class."""

    def predict_proba(self, texts: Sequence[str]) -> NDArray[np.float64]:
        """One probability per text, same order."""
        ...


class ProfanityCheckModel:
    """alt-profanity-check's bundled vectorizer and model, loaded lazily on first use."""

    def __init__(self) -> None:
        self._predict: object = None

    @property
    def version(self) -> str:
        """The installed alt-profanity-check version."""
        return metadata.version("alt-profanity-check")

    def predict_proba(self, texts: Sequence[str]) -> NDArray[np.float64]:
        """Probability that each text is offensive; each distinct text is classified once.

        The same numbers as ``profanity_check.predict_prob`` (the package's own vectorizer and model), without
        its per-row ``apply_along_axis`` and without classifying a repeated text (prompts repeat) again.
        """
        if not texts:
            return np.zeros(0)
        from profanity_check.profanity_check import model, vectorizer  # loads two joblib files

        unique = dict.fromkeys(texts)
        probs = model.predict_proba(vectorizer.transform(list(unique)))[:, 1]
        row = {text: i for i, text in enumerate(unique)}
        return np.asarray(probs, dtype=np.float64)[[row[t] for t in texts]]


class LexicalToxicity:
    """Toxicity of one text field from a lexical classifier.

    Args:
        model: The classifier (defaults to alt-profanity-check).
        target: Which text to score: ``response`` (column ``toxicity``) or ``prompt`` (``prompt_toxicity``).
    """

    needs: frozenset[TextField] = frozenset()
    higher_is_worse = True
    default_threshold = 0.5

    def __init__(self, model: TextClassifier | None = None, target: Target = "response") -> None:
        self.model: TextClassifier = model if model is not None else ProfanityCheckModel()
        self.target = target
        self.name = "toxicity" if target == "response" else "prompt_toxicity"
        backend = self.model.version if isinstance(self.model, ProfanityCheckModel) else "custom"
        self.version = f"lexical-profanity-check-{backend}"

    def __repr__(self) -> str:
        return f"LexicalToxicity(model={self.model!r}, target={self.target!r})"

    def score(self, batch: Batch) -> list[Score]:
        """One probability of offensiveness per record."""
        texts = [item.response if self.target == "response" else item.prompt for item in batch.items]
        probs = self.model.predict_proba(texts)
        return [Score(float(np.clip(p, 0.0, 1.0))) for p in probs]


HEAD_NAME = "toxicity"
"""The bundled head's file stem (``detectors/heads/toxicity.json``)."""

LEXICAL_FEATURE = "profanity_check"


def feature_names(dim: int) -> tuple[str, ...]:
    """The head's feature columns for a ``dim``-dimensional embedding."""
    return (*(f"emb_{i:03d}" for i in range(dim)), LEXICAL_FEATURE)


def head_features(embeddings: Vectors, lexical: NDArray[np.float64]) -> NDArray[np.float64]:
    """One feature row per text: its embedding, then the lexical classifier's probability."""
    emb = np.asarray(embeddings, dtype=np.float64)
    lex = np.asarray(lexical, dtype=np.float64).reshape(-1, 1)
    if emb.shape[0] != lex.shape[0]:
        raise ValueError(f"{emb.shape[0]} embeddings but {lex.shape[0]} lexical scores")
    return np.hstack([emb.reshape(lex.shape[0], -1), np.clip(lex, 0.0, 1.0)])


STACK_KEY = "stack"
"""Key of ``head.meta`` holding the stacker: weights of the head's logit and the masked lexical logit."""


def logit(p: NDArray[np.float64]) -> NDArray[np.float64]:
    """log(p / (1 - p)) with p clipped to [1e-4, 1 - 1e-4]: the stacker's input scale."""
    q = np.clip(p, 1e-4, 1.0 - 1e-4)
    return np.asarray(np.log(q / (1.0 - q)), dtype=np.float64)


def head_proba(
    head: LogisticHead, embeddings: Vectors, texts: Sequence[str], lexical: TextClassifier
) -> NDArray[np.float64]:
    """Toxicity probabilities: the head, stacked with the lexical probability of the identity-masked text.

    The head sees (embedding, lexical probability); the masked text is the text with identity terms removed
    (:func:`~detectors.identity.mask_identity`).

    The stacker is ``sigmoid(a * logit(head) + b * logit(lexical(masked)) + c)`` with ``a, b, c`` in
    ``head.meta["stack"]`` (fitted on the wiki tuning half, see ``evaluators/training/toxicity.py``); a head
    without one returns the head's probability.
    """
    stack = head.meta.get(STACK_KEY)
    masked = [mask_identity(t) for t in texts] if stack else []
    # one call for both: most texts mention no identity term, so their masked copy is the same text
    p_lexical = lexical.predict_proba([*texts, *masked]) if len(texts) else np.zeros(0)
    p_head = head.predict_proba(head_features(embeddings, p_lexical[: len(texts)]))
    if not stack or not len(texts):
        return p_head
    p_masked = p_lexical[len(texts) :]
    z = (
        float(stack["head"]) * logit(p_head)
        + float(stack["lexical_masked"]) * logit(p_masked)
        + float(stack["intercept"])
    )
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


class HeadToxicity:
    """Toxicity of one text field: a logistic head stacked with a masked lexical probability (:func:`head_proba`).

    Args:
        target: Which text to score: ``response`` (column ``toxicity``) or ``prompt`` (``prompt_toxicity``).
        head: The trained head; None loads the bundled ``detectors/heads/toxicity.json``.
        lexical: The lexical classifier whose probability is a feature (defaults to alt-profanity-check);
            it must be the one the head was trained with.
    """

    higher_is_worse = True
    default_threshold = 0.5

    def __init__(
        self,
        target: Target = "response",
        head: LogisticHead | None = None,
        lexical: TextClassifier | None = None,
    ) -> None:
        self.target: Target = target
        self.head = head if head is not None else LogisticHead.bundled(HEAD_NAME)
        self.lexical: TextClassifier = lexical if lexical is not None else ProfanityCheckModel()
        if not self.head.feature_names or self.head.feature_names[-1] != LEXICAL_FEATURE:
            raise ValueError(f"head {self.head.name!r} is not a toxicity head (last feature is not {LEXICAL_FEATURE})")
        self.name = "toxicity" if target == "response" else "prompt_toxicity"
        self.needs: frozenset[TextField] = frozenset({target})
        self.version = f"head-{self.head.version}"

    def __repr__(self) -> str:
        head = f"{self.head.name!r}@{self.head.version}"
        return f"HeadToxicity(target={self.target!r}, head={head}, lexical={self.lexical!r})"

    def score(self, batch: Batch) -> list[Score]:
        """One probability of toxicity per record; 0.0 for a blank text (nothing to be toxic)."""
        if not len(batch):
            return []
        texts = [item.response if self.target == "response" else item.prompt for item in batch.items]
        probs = head_proba(self.head, batch.embeddings(self.target), texts, self.lexical)
        return [
            Score(0.0 if not text.strip() else float(np.clip(p, 0.0, 1.0)))
            for text, p in zip(texts, probs, strict=True)
        ]
