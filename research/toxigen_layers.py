"""Implicit hate (issue 26): does MiniLM carry more in its earlier layers than in the sentence vector it returns?

Not product code: a measurement over ToxiGen's seed statements (the shared datasets root given on the command
line). Each statement goes through the shipped all-MiniLM-L6-v2 once; each layer's token states are mean-pooled and
normalised. Heads (logistic regression, a small MLP) are scored by 5-fold cross-validation grouped by target group
(a group's statements never in both train and test), reporting AUC and the share of hateful statements flagged at
the threshold that flags 5 % of benign ones (the issue's goal: 0.70). The result is in the toxicity model card's
ToxiGen table.

    .venv/bin/python research/toxigen_layers.py ../shared/datasets
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from detectors.encoder import SentenceTransformerEncoder
from evaluators.training.toxicity import load_toxigen


def layer_vectors(texts: list[str], pool: str = "mean") -> list[NDArray[np.float32]]:
    """Per layer (0 = embeddings, 6 = the last), the normalised mean- (or max-) pooled token states of each text."""
    encoder = SentenceTransformerEncoder()
    encoder.encode(["load"])
    model: Any = encoder._model
    tokenizer, bert = model.tokenizer, model[0].auto_model
    layers: list[list[NDArray[np.float32]]] = [[] for _ in range(7)]
    with torch.no_grad():
        for i in range(0, len(texts), 32):
            batch = tokenizer(texts[i : i + 32], padding=True, truncation=True, max_length=128, return_tensors="pt")
            states = bert(**batch, output_hidden_states=True).hidden_states
            mask = batch["attention_mask"].unsqueeze(-1).float()
            for k, h in enumerate(states):
                raw = (h * mask).sum(1) / mask.sum(1) if pool == "mean" else (h - 1e4 * (1 - mask)).max(1).values
                pooled = torch.nn.functional.normalize(raw, dim=1)
                layers[k].append(pooled.numpy())
    return [np.vstack(parts) for parts in layers]


def hateful_at(y: NDArray[np.int_], p: NDArray[np.float64], benign_rate: float = 0.05) -> float:
    """Share of hateful statements above the threshold that flags ``benign_rate`` of the benign ones."""
    threshold = np.quantile(p[y == 0], 1.0 - benign_rate)
    return float(np.mean(p[y == 1] > threshold))


def main() -> None:
    """Print one line per input and head."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the shared datasets root")
    args = parser.parse_args()
    seeds = load_toxigen(args.data)
    y = np.asarray([s.label for s in seeds])
    groups = np.asarray([s.group for s in seeds])
    layers = layer_vectors([s.text for s in seeds])
    inputs = {f"layer {k}": layers[k] for k in range(1, 7)}
    inputs |= {"layers 6 + 3": np.hstack([layers[6], layers[3]]), "layers 6 + 4": np.hstack([layers[6], layers[4]])}
    maxed = layer_vectors([s.text for s in seeds], pool="max")
    inputs |= {"layers 1..6": np.hstack(layers[1:]), "max 1..6": np.hstack(maxed[1:])}
    inputs |= {"mean+max 1..6": np.hstack(layers[1:] + maxed[1:])}
    heads: dict[str, Callable[[], Any]] = {
        "logistic C=0.1": lambda: LogisticRegression(C=0.1, max_iter=3000),
        "logistic C=1": lambda: LogisticRegression(C=1.0, max_iter=3000),
        "scaled C=0.01": lambda: make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=5000)),
        "MLP 64": lambda: MLPClassifier((64,), alpha=1e-2, max_iter=500, random_state=0),
    }
    for name, x in inputs.items():
        for label, make in heads.items():
            p = np.zeros(len(y))
            for train, test in GroupKFold(5).split(x, y, groups):
                p[test] = make().fit(x[train], y[train]).predict_proba(x[test])[:, 1]
            print(f"{name:14s} {label:15s} AUC {roc_auc_score(y, p):.3f}  hateful at 5 % benign {hateful_at(y, p):.3f}")


if __name__ == "__main__":
    main()
