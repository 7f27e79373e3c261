"""Fast lexical toxicity: alt-profanity-check's shipped linear model (TF-IDF + linear SVM, calibrated).

It runs in microseconds per text and needs no download. It is a lexical model: it catches profanity and
insults but also fires on identity terms ("I am a gay man" scores high). The trained head of the
detectors issue replaces it as the default; this one stays as the fast backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from detectors.types import Batch, Score, TextField


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
        """Probability that each text is offensive."""
        if not texts:
            return np.zeros(0)
        from profanity_check import predict_prob  # loads two joblib files (~100 ms)

        return np.asarray(predict_prob(list(texts)), dtype=np.float64)


class LexicalToxicity:
    """Toxicity of one text field from a lexical classifier.

    Args:
        model: The classifier (defaults to alt-profanity-check).
        target: Which text to score: ``response`` (column ``toxicity``) or ``prompt`` (``prompt_toxicity``).
    """

    needs: frozenset[TextField] = frozenset()
    higher_is_worse = True
    default_threshold = 0.5

    def __init__(self, model: TextClassifier | None = None, target: Literal["response", "prompt"] = "response") -> None:
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
