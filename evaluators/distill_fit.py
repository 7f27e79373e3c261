"""``lookout distill-static --fit-data DIR``: fit the static table to MiniLM's sentence vectors.

The per-token pass of :mod:`evaluators.distill` gives each token the vector MiniLM gives it alone; a text's
static embedding (the mean of its tokens' rows) then points in a direction of its own, and the cosine of two
texts tracks MiniLM's cosine of them poorly (Pearson 0.33 on held-out question/answer and HH-RLHF turn pairs).
This step fixes that on the training parts of the heads' datasets (HaluEval QA questions, answers and
knowledge sentences; HH-RLHF turns; Davidson tweets: the rows the heads train on, never their held-out parts):

1. MiniLM embeds every text; the targets are those vectors projected on their top ``dims`` directions
   (uncentred SVD: cosines are kept up to the dropped energy, ~5 % at 256);
2. the table's rows are mapped into that space by least squares (pooled rows → targets);
3. then fitted with Adam on the cosine loss between each text's summed rows and its target, with a pull
   toward the mapped rows so that tokens seen in few texts stay near their start.

The method is model2vec's "tokenlearn" idea (fit the static vectors to the sentence model's output), written out
here. Seeded (torch and the text order); the texts are MIT-licensed (HaluEval, HH-RLHF, Davidson), so the table
stays Apache-2.0 (MiniLM's).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

FIT_TEXTS = 20_000
"""Texts fitted on by default (a random sample of the training parts)."""
EPOCHS = 12
LEARNING_RATE = 1e-2
PULL = 1e-4
"""Weight of the squared distance of a batch's rows to their mapped start."""
FIT_TOKENS = 256
"""Tokens of each text used in the fit (the encoder reads up to 512)."""
SOURCES = "HaluEval QA train part (MIT), HH-RLHF harmless-base train part (MIT), Davidson train part (MIT)"


def fit_corpus(data_dir: Path, limit: int = FIT_TEXTS, seed: int = 0) -> list[str]:
    """Distinct texts of the heads' training parts under ``data_dir``, shuffled with ``seed``, first ``limit``."""
    from evaluators.training import relevance, toxicity

    questions, _ = relevance.split_questions(relevance.load_halueval(data_dir / "hallucination" / "halueval_qa"))
    if not questions:
        raise FileNotFoundError(f"no HaluEval QA questions under {data_dir / 'hallucination' / 'halueval_qa'}")
    exchanges, _ = relevance.load_hh_split(data_dir)
    texts: list[str] = []
    for q in questions:
        texts += [q.question, *q.answers, *q.sentences, *q.others[:2]]
    for e in exchanges:
        texts += [e.prompt, e.reply]
    texts += [row.text for row in toxicity.load_davidson(data_dir) if not row.held_out]
    distinct = sorted({t.strip() for t in texts if t.strip()})
    random.Random(seed).shuffle(distinct)  # noqa: S311  # a sample, not a secret
    return distinct[:limit]


@dataclass(frozen=True, slots=True)
class FitReport:
    """What the fit did (written into the table's meta)."""

    texts: int
    epochs: int
    loss_start: float
    """Mean cosine loss of the mapped rows, before the first step."""
    loss_end: float
    """Mean cosine loss after the last epoch."""
    energy_kept: float
    """Share of the targets' energy on the kept directions."""


def principal_directions(x: NDArray[np.float64], dims: int) -> NDArray[np.float64]:
    """The top ``dims`` right singular vectors of ``x`` (not centred here), signs fixed.

    Each is signed so that its largest component is positive: the same data gives the same directions every run.
    """
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    comps = vt[:dims]
    comps *= np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])[:, None]
    return comps


def project(targets: NDArray[np.float32], dims: int) -> tuple[NDArray[np.float32], float]:
    """Targets on their top ``dims`` uncentred directions, and the share of energy kept."""
    t = np.asarray(targets, dtype=np.float64)
    out = t @ principal_directions(t, dims).T
    return out.astype(np.float32), float((out**2).sum() / max((t**2).sum(), 1e-12))


def fit_rows(
    rows: NDArray[np.float32],
    ids: Sequence[NDArray[np.int64]],
    targets: NDArray[np.float32],
    epochs: int = EPOCHS,
    lr: float = LEARNING_RATE,
    pull: float = PULL,
    seed: int = 0,
    batch_size: int = 256,
    report: Callable[[str], None] = print,
) -> tuple[NDArray[np.float32], float, float]:
    """Fit ``rows`` (vocab by dims) so each text's summed rows point at its target; returns rows, loss before, after.

    ``ids``: each text's token ids (an empty array is skipped); ``targets``: one row per text, any dimension: the
    rows are first mapped into the targets' space by least squares.
    """
    import torch

    if len(ids) != len(targets):
        raise ValueError(f"{len(ids)} token lists for {len(targets)} targets")
    keep = [i for i, t in enumerate(ids) if len(t)]
    if not keep:
        raise ValueError("no text has a token: nothing to fit")
    pooled = np.stack([rows[ids[i]].sum(axis=0) for i in keep])
    pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    mapping, *_ = np.linalg.lstsq(pooled, targets[keep], rcond=None)
    start = torch.from_numpy(np.ascontiguousarray(rows @ mapping, dtype=np.float32))
    torch.manual_seed(seed)
    weight = torch.nn.Parameter(start.clone())
    optimizer = torch.optim.Adam([weight], lr=lr)
    tensors = [torch.from_numpy(np.asarray(t, dtype=np.int64)) for t in ids]
    target = torch.from_numpy(np.asarray(targets, dtype=np.float32))
    order = list(keep)

    def batches() -> list[tuple[torch.Tensor, torch.Tensor, list[int]]]:
        out = []
        for k in range(0, len(order), batch_size):
            idx = order[k : k + batch_size]
            flat = torch.cat([tensors[i] for i in idx])
            offsets = torch.tensor([0] + [len(tensors[i]) for i in idx[:-1]]).cumsum(0)
            out.append((flat, offsets, idx))
        return out

    def mean_loss() -> float:
        with torch.no_grad():
            total = 0.0
            for flat, offsets, idx in batches():
                bag = torch.nn.functional.embedding_bag(flat, weight, offsets, mode="sum")
                total += float((1 - torch.nn.functional.cosine_similarity(bag, target[idx])).sum())
            return total / len(order)

    before = after = mean_loss()
    started = time.monotonic()
    for epoch in range(epochs):
        random.Random(seed + epoch).shuffle(order)  # noqa: S311  # a sample order, not a secret
        for flat, offsets, idx in batches():
            bag = torch.nn.functional.embedding_bag(flat, weight, offsets, mode="sum")
            loss = (1 - torch.nn.functional.cosine_similarity(bag, target[idx])).mean()
            touched = torch.unique(flat)
            drift = ((weight[touched] - start[touched]) ** 2).sum(dim=1).mean()
            (loss + pull * drift).backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            optimizer.zero_grad()
        after = mean_loss()
        report(f"  fit epoch {epoch + 1}/{epochs}: loss {after:.4f} ({time.monotonic() - started:.0f} s)")
    return weight.detach().numpy().astype(np.float32), before, after


def fit_table(
    rows: NDArray[np.float32],
    tokenizer_path: Path,
    texts: Sequence[str],
    targets: NDArray[np.float32],
    epochs: int = EPOCHS,
    seed: int = 0,
    report: Callable[[str], None] = print,
) -> tuple[NDArray[np.float32], FitReport]:
    """Tokenize ``texts`` with the static tokenizer and fit ``rows`` to MiniLM's ``targets`` for them."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    ids = [np.asarray(e.ids[:FIT_TOKENS], dtype=np.int64) for e in tokenizer.encode_batch(list(texts), False)]
    projected, energy = project(targets, rows.shape[1])
    fitted, before, after = fit_rows(rows, ids, projected, epochs=epochs, seed=seed, report=report)
    return fitted, FitReport(len(texts), epochs, round(before, 4), round(after, 4), round(energy, 4))
