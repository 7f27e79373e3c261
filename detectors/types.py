"""The detector contract: records in, one score per record out, same order.

Detectors are pure: they see :class:`Scorable` records and precomputed embeddings in a :class:`Batch`,
never Kafka, ClickHouse or the agent. Models are injected through constructors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

TextField = Literal["prompt", "response"]
"""A per-record text a detector may ask the shared encoder to embed."""

Vectors = NDArray[np.float32]
"""Rows of L2-normalised embeddings."""


class Turn(Protocol):
    """One earlier chat turn (the agent's ``Message`` satisfies it)."""

    @property
    def role(self) -> str:
        """``system``, ``user``, ``assistant``, ``tool``..."""
        ...

    @property
    def content(self) -> str:
        """Text of the turn."""
        ...


class Scorable(Protocol):
    """The view of a record a detector gets (the agent's ``Sample`` satisfies it)."""

    @property
    def prompt(self) -> str:
        """The user's prompt (the last user message)."""
        ...

    @property
    def response(self) -> str:
        """The model's response."""
        ...

    @property
    def context(self) -> tuple[str, ...]:
        """Retrieved passages given to the model (RAG); empty when none."""
        ...

    @property
    def history(self) -> Sequence[Turn]:
        """The conversation's other turns (system prompt, earlier turns), in order; empty for one-shot prompts."""
        ...


@dataclass(frozen=True, slots=True)
class Score:
    """One detector's verdict on one record."""

    value: float | None
    """Score in 0..1 in the detector's own direction; None when it does not apply (e.g. no context)."""


class Encoder(Protocol):
    """A sentence encoder: texts in, L2-normalised vectors out, one row per text, same order."""

    @property
    def name(self) -> str:
        """Model identity, recorded with scores that depend on it."""
        ...

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts``; shape ``(len(texts), dim)``, float32, unit rows."""
        ...


class Batch:
    """Records plus the embeddings the batch's detectors asked for, computed once per distinct text.

    ``vectors`` holds one row per item for each declared text field. Detectors that need other texts
    (sentences of a response, context passages) call :meth:`encode`: texts already embedded in this batch
    are reused, the rest are encoded in one call and remembered for the batch's other detectors.
    """

    def __init__(
        self,
        items: Sequence[Scorable],
        vectors: dict[TextField, Vectors] | None = None,
        encoder: Encoder | None = None,
        cache: dict[str, Vectors] | None = None,
    ) -> None:
        self.items = items
        self.vectors: dict[TextField, Vectors] = vectors or {}
        self.encoder = encoder
        self._cache: dict[str, Vectors] = cache if cache is not None else {}

    def __len__(self) -> int:
        return len(self.items)

    def subset(self, indices: Sequence[int]) -> Batch:
        """The items at ``indices`` with their embeddings, sharing this batch's encoder and text cache."""
        return Batch(
            items=[self.items[i] for i in indices],
            vectors={field: rows[np.asarray(indices, dtype=np.intp)] for field, rows in self.vectors.items()},
            encoder=self.encoder,
            cache=self._cache,
        )

    def embeddings(self, field: TextField) -> Vectors:
        """The embeddings of ``field`` for every item; raises if no detector declared the field."""
        try:
            return self.vectors[field]
        except KeyError:
            raise KeyError(f"no embeddings for {field!r}: declare it in the detector's `needs`") from None

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Embeddings of arbitrary texts, one row each, encoding only texts this batch has not seen."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            if self.encoder is None:
                raise ValueError("this batch has no encoder; give the scorer one")
            for text, row in zip(missing, self.encoder.encode(missing), strict=True):
                self._cache[text] = row
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts]).astype(np.float32, copy=False)


@runtime_checkable
class Detector(Protocol):
    """A per-record scorer. Constructor parameters are public attributes; state is private."""

    name: str
    """Column and flag name (``toxicity``, ``relevance``...)."""
    version: str
    """Changes whenever scores change for the same input (model, calibration, code)."""
    needs: frozenset[TextField]
    """Text fields whose embeddings this detector reads from the batch."""
    higher_is_worse: bool
    """True when a high score is bad (toxicity); False when a low one is (relevance)."""
    default_threshold: float
    """Flag threshold used when the deployment sets none."""

    def score(self, batch: Batch) -> list[Score]:
        """One score per item of ``batch``, same order."""
        ...


def is_flagged(detector: Detector, value: float | None, threshold: float) -> bool:
    """Whether ``value`` crosses ``threshold`` in the detector's bad direction; None never flags."""
    if value is None:
        return False
    return value >= threshold if detector.higher_is_worse else value < threshold
