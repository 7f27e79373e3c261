"""The fast tier's encoder: a static token-embedding table distilled from the shipped all-MiniLM-L6-v2.

A text's embedding is the mean of its WordPiece tokens' rows, normalised: no transformer pass, so it costs a
tokenization and a table lookup (thousands of texts per second per core). The table is one MiniLM pass per
vocabulary token, reduced by PCA, fitted to MiniLM's sentence vectors of training texts and stored as int8 with a
scale per dimension (:mod:`evaluators.distill` builds it: ``lookout distill-static --fit-data DIR``); the method is
model2vec's (Tulkens & van Dongen, 2024). Its card is
``detectors/static/README.md``.

The table ships inside the package and loads offline; its tokenizer (``tokenizer.json``) is MiniLM's own.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors.types import Vectors

STATIC_DIR = Path(str(resources.files("detectors").joinpath("static")))
"""Where the shipped table lives (inside the installed package)."""

TABLE_FILE = "table.npz"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "meta.json"

MAX_TOKENS = 512
"""Tokens of each text that are read (the rest is dropped, as the transformer truncates)."""


class StaticTable:
    """An int8 token table with a per-dimension scale; rows of ``table * scale`` are the token vectors."""

    def __init__(self, table: NDArray[np.int8], scale: NDArray[np.float32], meta: dict[str, Any]) -> None:
        if table.ndim != 2 or scale.shape != (table.shape[1],):
            raise ValueError(f"static table {table.shape} does not match scale {scale.shape}")
        self.table = table
        self.scale = scale.astype(np.float32)
        self.meta = meta

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.table.shape[1])

    def save(self, folder: Path) -> None:
        """Write ``table.npz`` and ``meta.json`` into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(folder / TABLE_FILE, table=self.table, scale=self.scale)
        (folder / META_FILE).write_text(json.dumps(self.meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> StaticTable:
        """Read a table written by :meth:`save`; one-line error when the folder lacks it."""
        path = folder / TABLE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"static encoder table {path} not found; build it with `lookout distill-static`")
        with np.load(path) as data:
            table, scale = data["table"], data["scale"]
        meta_path = folder / META_FILE
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
        return cls(np.ascontiguousarray(table, dtype=np.int8), np.asarray(scale, dtype=np.float32), meta)

    @classmethod
    def quantize(cls, vectors: NDArray[np.floating[Any]], meta: dict[str, Any]) -> StaticTable:
        """int8 rows with a symmetric scale per dimension (max |value| maps to 127)."""
        v = np.asarray(vectors, dtype=np.float32)
        scale = np.abs(v).max(axis=0) / 127.0
        scale[scale == 0] = 1.0
        table = np.clip(np.rint(v / scale), -127, 127).astype(np.int8)
        return cls(table, scale.astype(np.float32), meta)


class StaticEncoder:
    """Texts → unit vectors as the mean of their tokens' static rows (the fast tier's :class:`Encoder`).

    Args:
        folder: Table folder (``table.npz``, ``tokenizer.json``, ``meta.json``); None: the shipped one.
        max_tokens: Tokens read per text.
    """

    def __init__(self, folder: Path | None = None, max_tokens: int = MAX_TOKENS) -> None:
        self.folder = folder or STATIC_DIR
        self.max_tokens = max_tokens
        self._loaded: tuple[StaticTable, Any] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"StaticEncoder(folder={str(self.folder)!r}, max_tokens={self.max_tokens})"

    @property
    def name(self) -> str:
        """``static-`` and the table's version (recorded with the scores that depend on it)."""
        return f"static-{self._load()[0].meta.get('version', 'unversioned')}"

    def _load(self) -> tuple[StaticTable, Any]:
        with self._lock:
            if self._loaded is None:
                from tokenizers import Tokenizer  # Rust tokenizer: a dependency of transformers

                table = StaticTable.load(self.folder)
                path = self.folder / TOKENIZER_FILE
                if not path.is_file():
                    raise FileNotFoundError(f"static encoder tokenizer {path} not found")
                tokenizer = Tokenizer.from_file(str(path))
                tokenizer.no_padding()
                tokenizer.no_truncation()
                self._loaded = (table, tokenizer)
            return self._loaded

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return self._load()[0].dim

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Unit float32 rows, one per text; a text with no token gets a zero row."""
        table, tokenizer = self._load()
        if not texts:
            return np.zeros((0, table.dim), dtype=np.float32)
        encodings = tokenizer.encode_batch(list(texts), add_special_tokens=False)
        ids = [np.asarray(e.ids[: self.max_tokens], dtype=np.int64) for e in encodings]
        lengths = np.fromiter((len(i) for i in ids), dtype=np.int64, count=len(ids))
        out = np.zeros((len(texts), table.dim), dtype=np.float32)
        nonempty = lengths > 0
        if nonempty.any():
            flat = np.concatenate([i for i in ids if len(i)])
            starts = np.concatenate([[0], np.cumsum(lengths[nonempty])[:-1]])
            sums = np.add.reduceat(table.table[flat].astype(np.float32), starts, axis=0)
            out[nonempty] = sums * table.scale
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        rows: Vectors = (out / norms).astype(np.float32, copy=False)
        return rows
