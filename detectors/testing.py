"""Test helpers shipped with the package: a minimal record and a deterministic encoder that needs no model.

``HashingEncoder`` is NOT a language model: it hashes word unigrams into a vector, so texts sharing words
are close. Use it in unit tests of plumbing; use the real encoder wherever score quality matters.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from detectors.types import Vectors

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Turn:
    """A minimal :class:`~detectors.types.Turn`."""

    role: str
    content: str


@dataclass(frozen=True)
class Record:
    """A minimal :class:`~detectors.types.Scorable`: prompt, response, optional context and earlier turns."""

    prompt: str
    response: str
    context: tuple[str, ...] = ()
    history: tuple[Turn, ...] = ()


class HashingEncoder:
    """Bag-of-words feature hashing into ``dim`` dimensions, L2-normalised. Counts its calls."""

    name = "hashing-test-encoder"

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.calls: list[list[str]] = []

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Deterministic unit vectors; an empty text maps to a fixed unit vector."""
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
                out[row, int.from_bytes(digest, "little") % self.dim] += 1.0
            if not out[row].any():
                out[row, 0] = 1.0
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out
