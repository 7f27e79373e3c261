"""Named registry of detectors: a ``Literal`` of names, a dict of factories, and ``resolve``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, get_args

from detectors.relevance import EmbeddingRelevance
from detectors.toxicity import LexicalToxicity, ProfanityCheckModel
from detectors.types import Detector

DetectorName = Literal["toxicity", "prompt_toxicity", "relevance"]
"""Every registered detector name; each is also a ClickHouse column."""

Factory = Callable[[], Detector]

_shared_profanity = ProfanityCheckModel()

REGISTRY: dict[str, Factory] = {
    "toxicity": lambda: LexicalToxicity(_shared_profanity, target="response"),
    "prompt_toxicity": lambda: LexicalToxicity(_shared_profanity, target="prompt"),
    "relevance": EmbeddingRelevance,
}

NAMES: tuple[str, ...] = get_args(DetectorName)


def resolve(name: str) -> Factory:
    """The factory registered as ``name``; the error lists the valid names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown detector {name!r}; valid: {', '.join(sorted(REGISTRY))}") from None


def build(names: Sequence[str]) -> list[Detector]:
    """Instantiate the named detectors, in order, rejecting unknown and repeated names."""
    seen = set()
    out = []
    for name in names:
        if name in seen:
            raise ValueError(f"detector {name!r} listed twice")
        seen.add(name)
        out.append(resolve(name)())
    return out
