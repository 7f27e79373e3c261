"""Small trained heads: standardised features → logistic regression, stored as JSON (no pickle).

A head file ``detectors/heads/<name>.json`` holds the feature names, the standardisation, the weights and
metadata (data, license, metrics, date); ``<name>.md`` beside it is the model card. Inference is numpy only;
fitting (``fit_logistic``) imports scikit-learn and is used by ``lookout train-heads``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

HEADS_DIR = Path(str(resources.files("detectors").joinpath("heads")))
"""Where the shipped heads live (inside the installed package)."""

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class LogisticHead:
    """``sigmoid(((x - mean) / scale) · coef + intercept)`` over named features."""

    name: str
    """Head name (file stem)."""
    version: str
    """Changes whenever weights change; recorded with every score."""
    feature_names: tuple[str, ...]
    """Order of the feature columns."""
    mean: FloatArray
    """Per-feature mean used for standardisation."""
    scale: FloatArray
    """Per-feature scale used for standardisation (never 0)."""
    coef: FloatArray
    """Weights on the standardised features."""
    intercept: float
    """Bias."""
    meta: Mapping[str, Any] = field(default_factory=dict)
    """Training data, licenses, metrics, seed, date: what the model card says."""

    def __post_init__(self) -> None:
        n = len(self.feature_names)
        if not (self.mean.shape == self.scale.shape == self.coef.shape == (n,)):
            raise ValueError(f"head {self.name}: weights do not match {n} features")

    def decision(self, features: FloatArray) -> FloatArray:
        """Log-odds per row."""
        x = np.atleast_2d(np.asarray(features, dtype=np.float64))
        if x.shape[1] != len(self.feature_names):
            raise ValueError(f"head {self.name} expects {len(self.feature_names)} features, got {x.shape[1]}")
        return np.asarray(((x - self.mean) / self.scale) @ self.coef + self.intercept, dtype=np.float64)

    def predict_proba(self, features: FloatArray) -> FloatArray:
        """Probability of the positive class per row."""
        z = np.clip(self.decision(features), -500, 500)
        return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "version": self.version,
            "feature_names": list(self.feature_names),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "meta": dict(self.meta),
        }

    def save(self, path: Path) -> None:
        """Write the head as JSON."""
        path.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogisticHead:
        """Rebuild from :meth:`to_dict`'s output."""
        return cls(
            name=str(data["name"]),
            version=str(data["version"]),
            feature_names=tuple(data["feature_names"]),
            mean=np.asarray(data["mean"], dtype=np.float64),
            scale=np.asarray(data["scale"], dtype=np.float64),
            coef=np.asarray(data["coef"], dtype=np.float64),
            intercept=float(data["intercept"]),
            meta=dict(data.get("meta", {})),
        )

    @classmethod
    def load(cls, path: Path) -> LogisticHead:
        """Read a head file."""
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))

    @classmethod
    def bundled(cls, name: str) -> LogisticHead:
        """A head shipped in ``detectors/heads``."""
        path = HEADS_DIR / f"{name}.json"
        if not path.is_file():
            raise FileNotFoundError(f"head {name!r} not found in {HEADS_DIR}; run `lookout train-heads`")
        return cls.load(path)


def fit_logistic(
    features: FloatArray,
    labels: Sequence[int] | NDArray[np.int_],
    feature_names: Sequence[str],
    name: str,
    version: str,
    c: float = 1.0,
    seed: int = 0,
    sample_weight: FloatArray | None = None,
    meta: Mapping[str, Any] | None = None,
) -> LogisticHead:
    """Standardise and fit an L2 logistic regression (scikit-learn, lbfgs), deterministically."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-12] = 1.0
    model = LogisticRegression(C=c, max_iter=5000, random_state=seed)
    model.fit((x - mean) / scale, y, sample_weight=sample_weight)
    return LogisticHead(
        name=name,
        version=version,
        feature_names=tuple(feature_names),
        mean=mean,
        scale=scale,
        coef=np.asarray(model.coef_[0], dtype=np.float64),
        intercept=float(model.intercept_[0]),
        meta=dict(meta or {}),
    )
