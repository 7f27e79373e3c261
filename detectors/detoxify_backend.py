"""Transformer toxicity from a detoxify checkpoint, loaded fully offline.

A detoxify checkpoint (``toxic_original-c1212f89.ckpt`` and friends, or one trained with detoxify's
``train.py``) is a torch file holding ``{"config": ..., "state_dict": ...}``: ``config["arch"]["args"]``
names the transformers model class, tokenizer class, number of classes and the *hub id* of the base model
(``model_type``, e.g. ``bert-base-uncased``); ``config["dataset"]["args"]["classes"]`` names the outputs.

detoxify's own ``load_checkpoint`` always calls ``config_class.from_pretrained(<hub id>)``, even when given
``huggingface_config_path``, so it needs the hub. Here the checkpoint is read with ``torch.load(...,
weights_only=True)`` (tensors and plain containers only, no arbitrary unpickling) and detoxify's
``get_model_and_tokenizer`` is called with the hub id replaced by ``config_dir``: a local directory holding
the base model's ``config.json`` and tokenizer files (``save_pretrained`` output of e.g. bert-base-uncased).
Nothing is fetched; with ``HF_HUB_OFFLINE=1`` a missing file fails instead of downloading.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detectors.toxicity import Target
from detectors.types import Batch, Score, TextField

CLASS_NAMES = {"toxic": "toxicity", "identity_hate": "identity_attack", "severe_toxic": "severe_toxicity"}
"""detoxify's standardisation of class names across its models."""


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_checkpoint(checkpoint: Path, device: str = "cpu") -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """The checkpoint's arch args, state dict and standardised class names; errors say what is wrong."""
    import torch

    if not checkpoint.is_file():
        raise FileNotFoundError(f"detoxify checkpoint {checkpoint} not found; set the detoxify checkpoint path")
    loaded = torch.load(checkpoint, map_location=device, weights_only=True)
    if not isinstance(loaded, Mapping) or "config" not in loaded or "state_dict" not in loaded:
        raise ValueError(f"{checkpoint} is not a detoxify checkpoint (needs 'config' and 'state_dict' keys)")
    config = loaded["config"]
    try:
        arch = dict(config["arch"]["args"])
        classes = [CLASS_NAMES.get(c, c) for c in config["dataset"]["args"]["classes"]]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{checkpoint}: config lacks arch.args or dataset.args.classes ({exc})") from None
    missing = {"model_name", "tokenizer_name", "num_classes"} - set(arch)
    if missing:
        raise ValueError(f"{checkpoint}: arch.args lacks {', '.join(sorted(missing))}")
    return arch, dict(loaded["state_dict"]), classes


@dataclass
class _Loaded:
    """The model a detector (and its :meth:`DetoxifyToxicity.for_target` twins) loads once, on first use."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    model: Any = None
    tokenizer: Any = None
    index: int = -1
    limit: int = 512


class DetoxifyToxicity:
    """Toxicity of one text field from a detoxify checkpoint (the ``toxicity`` output, sigmoid).

    Args:
        checkpoint: The detoxify ``.ckpt`` file.
        config_dir: Local directory with the base model's ``config.json`` and tokenizer files.
        model_type: detoxify model family (``original``, ``unbiased``, ``multilingual``...); recorded in
            the version only, the architecture comes from the checkpoint.
        target: Which text to score: ``response`` (column ``toxicity``) or ``prompt`` (``prompt_toxicity``).
        device: Torch device.
        batch_size: Texts per forward pass.
        max_length: Token budget per text; longer texts are truncated.
    """

    needs: frozenset[TextField] = frozenset()
    higher_is_worse = True
    default_threshold = 0.5

    def __init__(
        self,
        checkpoint: Path,
        config_dir: Path,
        model_type: str = "original",
        target: Target = "response",
        device: str = "cpu",
        batch_size: int = 32,
        max_length: int = 512,
    ) -> None:
        if batch_size < 1 or max_length < 8:
            raise ValueError("batch_size must be >= 1 and max_length >= 8")
        if not config_dir.is_dir():
            raise FileNotFoundError(f"detoxify config directory {config_dir} not found; set the config dir path")
        self.checkpoint = checkpoint
        self.config_dir = config_dir
        self.model_type = model_type
        self.target: Target = target
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length
        self.name = "toxicity" if target == "response" else "prompt_toxicity"
        if not checkpoint.is_file():
            raise FileNotFoundError(f"detoxify checkpoint {checkpoint} not found; set the checkpoint path")
        self.version = f"detoxify-{model_type}-{file_sha256(checkpoint)[:12]}"
        self._state = _Loaded(limit=max_length)

    def __repr__(self) -> str:
        return (
            f"DetoxifyToxicity(checkpoint={self.checkpoint!r}, config_dir={self.config_dir!r}, "
            f"model_type={self.model_type!r}, target={self.target!r}, device={self.device!r})"
        )

    def for_target(self, target: Target) -> DetoxifyToxicity:
        """The same checkpoint scoring another field; the twin shares this detector's loaded model."""
        twin = copy.copy(self)
        twin.target = target
        twin.name = "toxicity" if target == "response" else "prompt_toxicity"
        return twin

    def _load(self) -> _Loaded:
        state = self._state
        with state.lock:
            if state.model is None:
                from detoxify.detoxify import get_model_and_tokenizer  # type: ignore[import-untyped]  # no py.typed

                from detectors.hf import quiet_transformers

                quiet_transformers()
                arch, state_dict, classes = read_checkpoint(self.checkpoint, self.device)
                if "toxicity" not in classes:
                    raise ValueError(f"{self.checkpoint} has no toxicity output (classes: {', '.join(classes)})")
                arch["model_type"] = str(self.config_dir)  # the hub id, replaced by the local directory
                model, tokenizer = get_model_and_tokenizer(**arch, state_dict=state_dict)
                absent = sorted(set(model.state_dict()) - set(state_dict))
                if absent:
                    raise ValueError(
                        f"{self.checkpoint} does not fit {arch['model_name']} built from {self.config_dir}: "
                        f"{len(absent)} weights missing (e.g. {absent[0]}); check config_dir matches the checkpoint"
                    )
                model.to(self.device)
                model.eval()
                positions = getattr(model.config, "max_position_embeddings", None) or self.max_length
                state.limit = min(self.max_length, int(tokenizer.model_max_length), int(positions))
                state.model, state.tokenizer, state.index = model, tokenizer, classes.index("toxicity")
            return state

    def predict_proba(self, texts: list[str]) -> list[float]:
        """Probability of the ``toxicity`` class per text, same order."""
        if not texts:
            return []
        import torch

        state = self._load()
        out: list[float] = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                chunk = texts[start : start + self.batch_size]
                inputs = state.tokenizer(
                    chunk, return_tensors="pt", truncation=True, padding=True, max_length=state.limit
                ).to(self.device)
                logits = state.model(**inputs)[0]
                out.extend(torch.sigmoid(logits[:, state.index]).float().cpu().tolist())
        return out

    def score(self, batch: Batch) -> list[Score]:
        """One probability of toxicity per record."""
        texts = [item.response if self.target == "response" else item.prompt for item in batch.items]
        return [Score(float(np.clip(p, 0.0, 1.0))) for p in self.predict_proba(texts)]
