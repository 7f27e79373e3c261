"""The expensive tier: a site's own cross-encoder (relevance) and NLI model (faithfulness), loaded offline.

Both read a local Hugging Face directory (``save_pretrained`` output: ``config.json``, the weights and the
tokenizer files) through transformers' ``AutoTokenizer`` and ``AutoModelForSequenceClassification`` with
``local_files_only=True``: weights are never downloaded, a missing file fails. torch and transformers are
imported on first use; the directory and its labels are checked when the detector is built.

:class:`CrossEncoderRelevance` scores the pair (prompt, response) with a relevance cross-encoder (an
ms-marco-MiniLM-style directory): the sigmoid of its single logit, or the softmax of class 1 when it has two
labels.

:class:`NliHallucination` checks each response sentence (:func:`detectors.hallucination.split_sentences`)
against the record's context (premise: the non-blank passages joined by newlines; the tokenizer cuts the
premise to the token budget, so a long context is read from its start; only a sentence taking more than half the
budget is cut too). A sentence's
*support* is read from the model's labels by :func:`support_rule`:

1. a label whose name contains ``entail`` (any case), not negated by ``not``/``non``/``no``/``in`` just
   before it (``entailment``, ``ENTAILMENT``; not ``not_entailment``): the softmax probability of that label;
2. otherwise a label whose name contains ``consistent``, not so negated (``consistent``; not
   ``inconsistent``): the softmax probability of that label;
3. otherwise a single-logit model (HHEM-1.0 style, high = consistent): the sigmoid of the logit.

Any other model (e.g. two or three labels named ``LABEL_0``...) cannot be read and is refused: name its
labels in ``config.json`` (``"id2label": {"0": "hallucinated", "1": "consistent"}``). The score is
``1 - min`` over the response's sentences of their support: the least supported sentence decides.
Models that need ``trust_remote_code`` (HHEM-2.1) are not loaded.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from detectors.hallucination import MAX_SPLIT_CHARS, HeadHallucination, split_sentences
from detectors.relevance import EmbeddingRelevance
from detectors.types import Batch, Detector, Score, TextField

Rule = tuple[Literal["softmax", "sigmoid"], int]
"""How a model's logits become one probability: softmax of label ``index``, or sigmoid of logit ``index``."""

_NEGATIONS = frozenset({"not", "non", "no", "in"})
"""Words that, just before ``entail``/``consistent`` in a label name, negate it."""


def read_labels(model_dir: Path) -> dict[int, str]:
    """``config.json``'s ``id2label`` (or ``LABEL_i`` names for its ``num_labels``, default 2), by index.

    Raises FileNotFoundError (one line, naming the directory) when the directory or its config is missing.
    """
    config = model_dir / "config.json"
    if not config.is_file():
        what = "not found" if not model_dir.is_dir() else "has no config.json"
        raise FileNotFoundError(
            f"model directory {model_dir} {what}; point it at a local save_pretrained folder "
            "(weights are never downloaded)"
        )
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
        labels = data.get("id2label")
        if labels:
            return {int(k): str(v) for k, v in labels.items()}
        return {i: f"LABEL_{i}" for i in range(int(data.get("num_labels", 2)))}
    except (ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"{config} is not a readable model config ({exc})") from None


def _named(labels: dict[int, str], word: str) -> list[int]:
    """Indices of labels whose name contains ``word``, unless negated (``not_``, ``non-``, ``no``, ``in`` before it)."""
    out = []
    for index, name in sorted(labels.items()):
        low = name.lower()
        if word not in low:
            continue
        before = re.findall(r"[a-z]+", low[: low.index(word)])
        if not before or before[-1] not in _NEGATIONS:
            out.append(index)
    return out


def support_rule(labels: dict[int, str], model_dir: Path) -> Rule:
    """Which output of an NLI / consistency model is the probability that the premise supports the sentence.

    See the module docstring for the order of the rules; raises a one-line ValueError naming ``model_dir``
    when no rule applies or a rule matches more than one label.
    """
    for word in ("entail", "consistent"):
        found = _named(labels, word)
        if len(found) == 1:
            return "softmax", found[0]
        if len(found) > 1:
            names = ", ".join(labels[i] for i in found)
            raise ValueError(f"{model_dir}: more than one {word} label ({names}); fix id2label in its config.json")
    if len(labels) == 1:
        return "sigmoid", next(iter(labels))
    names = ", ".join(f"{i}={labels[i]}" for i in sorted(labels))
    raise ValueError(
        f"{model_dir}: cannot tell which output means 'supported' (labels {names}); name an 'entailment' or "
        "'consistent' label in id2label of its config.json"
    )


def relevance_rule(labels: dict[int, str], model_dir: Path) -> Rule:
    """Sigmoid of a single logit, or softmax of class 1 of a two-label cross-encoder; others are refused."""
    if len(labels) == 1:
        return "sigmoid", next(iter(labels))
    if len(labels) == 2:
        return "softmax", 1
    raise ValueError(f"{model_dir}: a relevance cross-encoder has 1 or 2 outputs, this one has {len(labels)}")


@dataclass
class _Loaded:
    """A model and tokenizer loaded once, on first use."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    model: Any = None
    tokenizer: Any = None
    limit: int = 512


class _PairClassifier:
    """A local sequence-pair classifier: text pairs in, one probability per pair out (by ``rule``)."""

    def __init__(self, model_dir: Path, rule: Rule, device: str, batch_size: int, max_length: int) -> None:
        if batch_size < 1 or max_length < 8:
            raise ValueError("batch_size must be >= 1 and max_length >= 8")
        self.model_dir = model_dir
        self.rule = rule
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length
        self._state = _Loaded(limit=max_length)

    def _load(self) -> _Loaded:
        state = self._state
        with state.lock:
            if state.model is None:
                from transformers import AutoModelForSequenceClassification, AutoTokenizer

                from detectors.hf import quiet_transformers

                quiet_transformers()
                try:
                    tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
                    model = AutoModelForSequenceClassification.from_pretrained(
                        str(self.model_dir), local_files_only=True
                    )
                except (OSError, ValueError, KeyError) as exc:
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    raise ValueError(f"cannot load the model in {self.model_dir} ({first})") from None
                model.to(self.device)
                model.eval()
                positions = getattr(model.config, "max_position_embeddings", None) or self.max_length
                state.limit = min(self.max_length, int(tokenizer.model_max_length), int(positions))
                state.model, state.tokenizer = model, tokenizer
            return state

    def predict(self, firsts: Sequence[str], seconds: Sequence[str], keep_second: bool) -> list[float]:
        """Probability per pair ``(firsts[i], seconds[i])``, same order.

        ``keep_second``: cut only the first text to the token budget (NLI: the premise), unless a second text
        alone would take more than half of it; otherwise the longer text of each pair is cut.
        """
        if not firsts:
            return []
        import torch

        state = self._load()
        kind, index = self.rule
        out: list[float] = []
        with torch.inference_mode():
            for start in range(0, len(firsts), self.batch_size):
                a = list(firsts[start : start + self.batch_size])
                b = list(seconds[start : start + self.batch_size])
                truncation = "longest_first"
                if keep_second:
                    lengths = state.tokenizer(b, add_special_tokens=False)["input_ids"]
                    if max(len(ids) for ids in lengths) <= state.limit // 2:
                        truncation = "only_first"
                inputs = state.tokenizer(
                    a, b, return_tensors="pt", truncation=truncation, padding=True, max_length=state.limit
                ).to(self.device)
                logits = state.model(**inputs).logits.float()
                if kind == "sigmoid":
                    probs = torch.sigmoid(logits[:, index])
                else:
                    probs = torch.softmax(logits, dim=-1)[:, index]
                out.extend(probs.cpu().tolist())
        return out


def _clip(value: float) -> float | None:
    return float(np.clip(value, 0.0, 1.0)) if math.isfinite(value) else None


class CrossEncoderRelevance:
    """Relevance of response to prompt from a local cross-encoder reading the pair (prompt, response).

    Args:
        model_dir: Local directory of the cross-encoder (``config.json``, weights, tokenizer files).
        device: Torch device.
        batch_size: Pairs per forward pass.
        max_length: Token budget per pair; the longer text of a pair is cut first.
    """

    name = "relevance"
    needs: frozenset[TextField] = frozenset()
    higher_is_worse = False
    default_threshold = EmbeddingRelevance.default_threshold

    def __init__(self, model_dir: Path, device: str = "cpu", batch_size: int = 16, max_length: int = 512) -> None:
        self.model_dir = model_dir
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length
        self.version = f"cross-encoder-{model_dir.name}"
        rule = relevance_rule(read_labels(model_dir), model_dir)
        self._model = _PairClassifier(model_dir, rule, device, batch_size, max_length)

    def __repr__(self) -> str:
        return f"CrossEncoderRelevance(model_dir={self.model_dir!r}, device={self.device!r})"

    def score(self, batch: Batch) -> list[Score]:
        """One relevance probability per record; None when prompt or response is blank."""
        rows = [i for i, item in enumerate(batch.items) if item.prompt.strip() and item.response.strip()]
        probs = self._model.predict(
            [batch.items[i].prompt for i in rows], [batch.items[i].response for i in rows], keep_second=False
        )
        out = [Score(None)] * len(batch)
        for i, p in zip(rows, probs, strict=True):
            out[i] = Score(_clip(p))
        return out


class NliHallucination:
    """Hallucination against the record's context: 1 - the least entailed response sentence, by a local NLI model.

    Args:
        model_dir: Local directory of the NLI / consistency model (``config.json``, weights, tokenizer files).
        device: Torch device.
        batch_size: (context, sentence) pairs per forward pass.
        max_length: Token budget per pair; the context is cut, not the sentence.
        max_sentences: Most response sentences checked per record (the first ones).
    """

    name = "hallucination"
    needs: frozenset[TextField] = frozenset()
    higher_is_worse = True
    default_threshold = HeadHallucination.default_threshold

    def __init__(
        self,
        model_dir: Path,
        device: str = "cpu",
        batch_size: int = 16,
        max_length: int = 512,
        max_sentences: int = 24,
    ) -> None:
        if max_sentences < 1:
            raise ValueError("max_sentences must be at least 1")
        self.model_dir = model_dir
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length
        self.max_sentences = max_sentences
        self.version = f"nli-{model_dir.name}"
        self.rule = support_rule(read_labels(model_dir), model_dir)
        self._model = _PairClassifier(model_dir, self.rule, device, batch_size, max_length)

    def __repr__(self) -> str:
        return (
            f"NliHallucination(model_dir={self.model_dir!r}, device={self.device!r}, "
            f"max_sentences={self.max_sentences})"
        )

    def score(self, batch: Batch) -> list[Score]:
        """One probability of unsupported content per record; None without context or response."""
        premises: list[str] = []
        sentences: list[str] = []
        owner: list[int] = []
        for i, item in enumerate(batch.items):
            passages = [p for p in item.context if p.strip()]
            if not passages or not item.response.strip():
                continue
            premise = "\n".join(passages)[:MAX_SPLIT_CHARS]
            for sentence in split_sentences(item.response, self.max_sentences):
                premises.append(premise)
                sentences.append(sentence)
                owner.append(i)
        support = self._model.predict(premises, sentences, keep_second=True)
        least: dict[int, float] = {}
        for i, p in zip(owner, support, strict=True):
            least[i] = min(least.get(i, 1.0), p)
        return [Score(_clip(1.0 - least[i]) if i in least else None) for i in range(len(batch))]


def build_expensive(relevance_dir: Path | None, faithfulness_dir: Path | None, device: str) -> dict[str, Detector]:
    """The expensive-tier detectors for the directories given, by detector name (none for a None directory)."""
    out: dict[str, Detector] = {}
    if relevance_dir is not None:
        out["relevance"] = CrossEncoderRelevance(relevance_dir, device=device)
    if faithfulness_dir is not None:
        out["hallucination"] = NliHallucination(faithfulness_dir, device=device)
    return out
