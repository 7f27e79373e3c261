"""Named registry of detectors: a ``Literal`` of names, a dict of factories, and ``resolve``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from detectors.hallucination import HeadHallucination
from detectors.head import LogisticHead
from detectors.promoted import load_active
from detectors.refusal import RefusalDetector
from detectors.relevance import EmbeddingRelevance
from detectors.repetition import RepetitionDetector
from detectors.tone import FormalityDetector, ToneDetector
from detectors.toxicity import HeadToxicity, LexicalToxicity, ProfanityCheckModel, Target
from detectors.types import Detector

DetectorName = Literal[
    "toxicity", "prompt_toxicity", "relevance", "hallucination", "refusal", "repetition", "tone", "formality"
]
"""Every registered detector name; each is also a ClickHouse column."""

ToxicityBackend = Literal["head", "lexical", "detoxify"]


@dataclass(frozen=True)
class DetectorOptions:
    """How the registry builds detectors that have more than one backend."""

    toxicity_backend: ToxicityBackend = "head"
    """``head`` (trained MiniLM head + lexical model), ``lexical`` or ``detoxify``."""
    detoxify_checkpoint: Path | None = None
    """detoxify ``.ckpt`` file, needed by the ``detoxify`` backend."""
    detoxify_config_dir: Path | None = None
    """Local transformers config/tokenizer directory for the checkpoint."""
    detoxify_model_type: str = "original"
    """detoxify model family the checkpoint was trained as."""
    device: str = "cpu"
    """torch device for detectors that run their own model."""
    heads_dir: Path | None = None
    """Folder of promoted heads (``detectors.promoted``); its active versions replace the shipped heads."""


@dataclass
class _Build:
    """Models shared by the detectors of one ``build`` call (loaded once, used by two fields)."""

    options: DetectorOptions
    shared: dict[str, object] = field(default_factory=dict)

    def profanity(self) -> ProfanityCheckModel:
        model = self.shared.get("profanity")
        if not isinstance(model, ProfanityCheckModel):
            model = self.shared["profanity"] = ProfanityCheckModel()
        return model

    def head(self, name: str) -> LogisticHead | None:
        """The active promoted head ``name`` (loaded once per build); None: the shipped one."""
        key = f"head:{name}"
        if key not in self.shared and self.options.heads_dir is not None:
            self.shared[key] = load_active(self.options.heads_dir, name)
        head = self.shared.get(key)
        return head if isinstance(head, LogisticHead) else None

    def toxicity(self, target: Target) -> Detector:
        opts = self.options
        if opts.toxicity_backend == "lexical":
            return LexicalToxicity(self.profanity(), target=target)
        if opts.toxicity_backend == "detoxify":
            from detectors.detoxify_backend import DetoxifyToxicity  # torch/transformers: lazily

            if opts.detoxify_checkpoint is None or opts.detoxify_config_dir is None:
                raise ValueError("toxicity backend detoxify needs detoxify_checkpoint and detoxify_config_dir")
            base = self.shared.get("detoxify")
            if not isinstance(base, DetoxifyToxicity):
                base = DetoxifyToxicity(
                    opts.detoxify_checkpoint, opts.detoxify_config_dir, opts.detoxify_model_type, device=opts.device
                )
                self.shared["detoxify"] = base
            return base.for_target(target)
        return HeadToxicity(target=target, head=self.head("toxicity"), lexical=self.profanity())


Factory = Callable[[_Build], Detector]

REGISTRY: dict[str, Factory] = {
    "toxicity": lambda b: b.toxicity("response"),
    "prompt_toxicity": lambda b: b.toxicity("prompt"),
    "relevance": lambda b: EmbeddingRelevance(head=b.head("relevance")),
    "hallucination": lambda b: HeadHallucination(head=b.head("hallucination")),
    "refusal": lambda b: RefusalDetector(),
    "repetition": lambda b: RepetitionDetector(),
    "tone": lambda b: ToneDetector(),
    "formality": lambda b: FormalityDetector(),
}

NAMES: tuple[str, ...] = get_args(DetectorName)


@dataclass(frozen=True)
class FlagRule:
    """How a detector's score becomes a flag, known without building the detector (no model is loaded)."""

    higher_is_worse: bool
    """True: flagged at or above the threshold (toxicity); False: flagged below it (relevance, formality)."""
    default_threshold: float
    """The threshold when the deployment sets none."""


_CLASSES: dict[str, type[Detector]] = {
    "toxicity": HeadToxicity,
    "prompt_toxicity": HeadToxicity,
    "relevance": EmbeddingRelevance,
    "hallucination": HeadHallucination,
    "refusal": RefusalDetector,
    "repetition": RepetitionDetector,
    "tone": ToneDetector,
    "formality": FormalityDetector,
}
"""The class each name builds by default; every backend of a name shares its direction and default threshold."""


def flag_rule(name: str) -> FlagRule:
    """The direction and default threshold of detector ``name``; the error lists the valid names."""
    resolve(name)
    cls = _CLASSES[name]
    return FlagRule(bool(cls.higher_is_worse), float(cls.default_threshold))


def resolve(name: str) -> Factory:
    """The factory registered as ``name``; the error lists the valid names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown detector {name!r}; valid: {', '.join(sorted(REGISTRY))}") from None


def create(name: str, options: DetectorOptions | None = None) -> Detector:
    """One detector by name, built with ``options`` (defaults: bundled heads on CPU)."""
    return resolve(name)(_Build(options or DetectorOptions()))


def build(names: Sequence[str], options: DetectorOptions | None = None) -> list[Detector]:
    """Instantiate the named detectors, in order, rejecting unknown and repeated names."""
    seen = set()
    ctx = _Build(options or DetectorOptions())
    out = []
    for name in names:
        if name in seen:
            raise ValueError(f"detector {name!r} listed twice")
        seen.add(name)
        out.append(resolve(name)(ctx))
    return out
