"""The bench's measuring encoders: one records what the model was asked, the other replays its answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from detectors.types import Encoder, Vectors


class RecordingEncoder:
    """Passes calls through and remembers each call's texts (to replay them on the bare encoder)."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.calls: list[list[str]] = []
        self.vectors: dict[str, Vectors] = {}
        """Each text's latest vector (for :class:`LookupEncoder`)."""

    @property
    def name(self) -> str:
        """The inner encoder's name."""
        return self.inner.name

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Encode with the inner encoder, recording the texts and their vectors."""
        self.calls.append(list(texts))
        out = self.inner.encode(texts)
        self.vectors.update(zip(texts, out, strict=True))
        return out


class LookupEncoder:
    """Returns vectors an earlier real encoder run produced: a measuring device that takes the encoder's time out.

    Scoring over it times everything lookout does besides the model: the ceiling a faster device cannot raise.
    A text the real run never encoded (the agent redacts before encoding) goes to ``fallback`` and is counted in
    :attr:`misses`; without a fallback it is a KeyError.
    """

    def __init__(
        self, name: str, vectors: Mapping[str, Vectors], dim: int | None = None, fallback: Encoder | None = None
    ) -> None:
        self.name = name
        self.vectors = dict(vectors)
        self.dim = dim if dim is not None else next(iter(self.vectors.values())).shape[0]
        """Vector width (read off the vectors unless given; needed for an empty mapping)."""
        self.fallback = fallback
        self.misses = 0

    def over(self, model: Encoder) -> LookupEncoder:
        """This lookup, with ``model`` as its fallback (to put in the model's place)."""
        self.fallback = model
        return self

    def encode(self, texts: Sequence[str]) -> Vectors:
        """The recorded vectors of ``texts``."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        missing = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        if missing:
            if self.fallback is None:
                raise KeyError(missing[0])
            self.misses += len(missing)
            self.vectors.update(zip(missing, self.fallback.encode(missing), strict=True))
        return np.stack([self.vectors[t] for t in texts])
