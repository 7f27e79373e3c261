"""Cascade scoring's pure parts: the fast tier's detectors, the uncertainty bands, and the audit sample.

Every record gets the fast tier (the static encoder of :mod:`detectors.static_encoder` and heads trained on its
embeddings, ``detectors/heads/fast/``). A fast score whose log-odds lie within a detector's band of the threshold's
log-odds is uncertain: the record goes to the full tier for that detector. Bands are fitted on training data
(:mod:`evaluators.bands`) so that the cascade's flags agree with the full tier's on held-out records; a
deterministic audit sample (by record id) runs both tiers whatever the fast score says.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detectors.hallucination import HeadHallucination
from detectors.head import HEADS_DIR, LogisticHead
from detectors.relevance import EmbeddingRelevance
from detectors.toxicity import HeadToxicity, TextClassifier
from detectors.types import Detector

FAST_DIR = HEADS_DIR / "fast"
"""The shipped fast heads (``<name>.json``) and their bands (``bands.json``)."""
BANDS_FILE = "bands.json"

FAST_HEADS: Mapping[str, str] = {
    "toxicity": "toxicity",
    "prompt_toxicity": "toxicity",
    "relevance": "relevance",
    "hallucination": "hallucination",
}
"""Detector name → the fast head it reads (both toxicity columns share one head, as in the full tier)."""

_EPS = 1e-6


def log_odds(p: float) -> float:
    """log(p / (1 - p)), p clipped to [1e-6, 1 - 1e-6]."""
    q = min(max(p, _EPS), 1.0 - _EPS)
    return math.log(q / (1.0 - q))


@dataclass(frozen=True)
class Bands:
    """Per detector, the half-width of its uncertainty band in log-odds around the threshold."""

    widths: Mapping[str, float]
    """Detector name → half-width (log-odds); a detector without one always goes to the full tier."""
    meta: Mapping[str, Any] = field(default_factory=dict)
    """How they were fitted: seed, target, data, held-out agreement per detector, thresholds."""

    def in_band(self, detector: str, value: float, threshold: float) -> bool:
        """Whether a fast score is too close to ``threshold`` to decide (True also for a detector without a band)."""
        width = self.widths.get(detector)
        if width is None:
            return True
        return abs(log_odds(value) - log_odds(threshold)) < width

    def save(self, path: Path) -> None:
        """Write as JSON."""
        data = {"widths": dict(sorted(self.widths.items())), "meta": dict(self.meta)}
        path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Bands:
        """Read :meth:`save`'s file; one-line error when missing or malformed."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            widths = {str(k): float(v) for k, v in data["widths"].items()}
        except FileNotFoundError:
            raise FileNotFoundError(f"cascade bands file {path} not found; fit it with `lookout fit-bands`") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"cascade bands file {path} is malformed ({exc})") from None
        if any(not math.isfinite(w) or w < 0 for w in widths.values()):
            raise ValueError(f"cascade bands file {path}: widths must be finite and >= 0")
        return cls(widths, dict(data.get("meta", {})))


def audit_selected(record_id: str, rate: float) -> bool:
    """Whether record ``record_id`` is in the audit sample: a hash of the id below ``rate`` (same id, same answer)."""
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    digest = hashlib.blake2b(record_id.encode("utf-8", "surrogatepass"), digest_size=8, person=b"lk-audit").digest()
    return int.from_bytes(digest, "big") < rate * 2**64


def fast_head(name: str, folder: Path = FAST_DIR) -> LogisticHead:
    """The fast head detector ``name`` reads, from ``folder``."""
    stem = FAST_HEADS[name]
    path = folder / f"{stem}.json"
    if not path.is_file():
        raise FileNotFoundError(f"fast head {path} not found; train it with `lookout train-heads --tier fast`")
    return LogisticHead.load(path)


def build_fast(names: list[str], folder: Path = FAST_DIR, lexical: TextClassifier | None = None) -> dict[str, Detector]:
    """The fast-tier twin of each of ``names`` that has one (others are left to the full tier)."""
    out: dict[str, Detector] = {}
    heads: dict[str, LogisticHead] = {}
    for name in names:
        if name not in FAST_HEADS:
            continue
        stem = FAST_HEADS[name]
        head = heads.get(stem) or heads.setdefault(stem, fast_head(name, folder))
        if stem == "toxicity":
            out[name] = HeadToxicity("response" if name == "toxicity" else "prompt", head=head, lexical=lexical)
        elif stem == "relevance":
            out[name] = EmbeddingRelevance(head=head)
        else:
            out[name] = HeadHallucination(head=head)
    return out
