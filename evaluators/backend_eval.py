"""``lookout eval --backend NAME=DIR``: a site's own model on the shipped heads' dev sets.

``relevance=DIR`` measures :class:`~detectors.expensive.CrossEncoderRelevance`, ``hallucination=DIR``
:class:`~detectors.expensive.NliHallucination` (the expensive tier), ``toxicity=PATH``
:class:`~detectors.detoxify_backend.DetoxifyToxicity` (a detoxify checkpoint: the ``.ckpt`` file, or a directory
holding one, beside the base model's ``config.json`` and tokenizer files), on the same held-out sets as the head's
rows of ``lookout eval`` (same split, same negatives: the relevance pairs' hard negatives are chosen with MiniLM,
as for the head) and with the threshold-free metrics only (AUC; MAP and MRR on WikiQA): a site's model need not
put its decision point at 0.5. Each row is labelled ``<detector> (<kind> <dir or .ckpt name>)`` and printed right
after the head's row on the same dev set and metric; its baseline column is empty (the head's row has it).
Records the model does not score (blank prompt or response, no context) are left out, as for the head.

The same row functions measure cascade scoring (``lookout eval --cascade``, :mod:`evaluators.cascade_eval`): any
:class:`~detectors.types.Detector` can stand in the :class:`Backend`. Relevance records carry the earlier turns of a
follow-up, as the head reads them (the cross-encoder reads prompt and response only).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from agent.types import Message
from detectors.detoxify_backend import DetoxifyToxicity
from detectors.encoder import SentenceTransformerEncoder
from detectors.expensive import CrossEncoderRelevance, NliHallucination
from detectors.types import Batch, Detector, Encoder, Turn
from evaluators.heads import DEFAULT_CACHE
from evaluators.quality import EvalRow
from evaluators.training import hallucination as faith
from evaluators.training import relevance as rel
from evaluators.training import toxicity as tox
from evaluators.training.toxicity_probes import identity_templates, swap_identities

BACKENDS: dict[str, str] = {"relevance": "cross-encoder", "hallucination": "NLI", "toxicity": "detoxify"}
"""Detectors a site's own model can be measured for, and the kind of model each reads."""


@dataclass(frozen=True, slots=True)
class Backend:
    """One expensive-tier detector to measure, with its row label."""

    label: str
    """Detector column of its rows, e.g. ``relevance (cross-encoder ms-marco-MiniLM-L-6-v2)``."""
    detector: Detector
    """The loaded detector (its model loads on first score)."""


@dataclass(frozen=True, slots=True)
class Record:
    """A dev-set record as the detectors read it."""

    prompt: str
    response: str
    context: tuple[str, ...] = ()
    history: tuple[Turn, ...] = ()


def default_device() -> str:
    """``cuda`` when torch sees a GPU, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_backends(specs: Sequence[str], device: str | None = None) -> list[Backend]:
    """The backends of ``--backend NAME=DIR`` options; checks every directory before anything runs.

    Raises a one-line ValueError for a malformed or unknown NAME, FileNotFoundError for a missing directory.
    """
    out = []
    for spec in specs:
        name, sep, folder = spec.partition("=")
        name = name.strip()
        if not sep or not folder.strip():
            raise ValueError(f"--backend {spec!r}: expected NAME=DIR, e.g. relevance=/models/ms-marco-MiniLM-L-6-v2")
        if name not in BACKENDS:
            raise ValueError(f"--backend {spec!r}: unknown detector {name!r}; valid: {', '.join(BACKENDS)}")
        model_dir = Path(folder.strip()).expanduser()
        where = device or default_device()
        detector: Detector
        if name == "relevance":
            detector = CrossEncoderRelevance(model_dir, device=where)
        elif name == "hallucination":
            detector = NliHallucination(model_dir, device=where)
        else:
            if importlib.util.find_spec("detoxify") is None:
                raise ValueError("--backend toxicity needs the detoxify extra: pip install 'llm-lookout[detoxify]'")
            checkpoint = detoxify_checkpoint(model_dir)
            detector = DetoxifyToxicity(checkpoint, checkpoint.parent, device=where)
            model_dir = checkpoint
        out.append(Backend(f"{name} ({BACKENDS[name]} {model_dir.name})", detector))
    return out


def detoxify_checkpoint(path: Path) -> Path:
    """``path`` itself if it is a file, else the one ``*.ckpt`` file in the directory ``path``.

    Raises a one-line FileNotFoundError or ValueError naming ``path``.
    """
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"--backend toxicity: {path} not found (a detoxify .ckpt file or its directory)")
    found = sorted(path.glob("*.ckpt"))
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise ValueError(f"--backend toxicity: {path} must hold one .ckpt file (found {names}); name the file")
    return found[0]


def pair_records(pairs: rel.Pairs) -> list[Record]:
    """Relevance pairs as records, with the earlier user and assistant turns a follow-up carries (as the head reads)."""
    out = []
    for prompt, response, user, assistant in zip(
        pairs.prompts, pairs.responses, pairs.earlier("users"), pairs.earlier("assistants"), strict=True
    ):
        history = tuple(Message(role, text) for role, text in (("user", user), ("assistant", assistant)) if text)
        out.append(Record(prompt, response, (), history))
    return out


def detector_scores(detector: Detector, records: Sequence[Record]) -> NDArray[np.float64]:
    """The detector's scores, NaN where it does not apply."""
    values = [s.value for s in detector.score(Batch(records))]
    return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)


def auc(y: NDArray[np.int_], p: NDArray[np.float64]) -> tuple[float, int]:
    """AUC over the scored rows (NaN when one class is missing) and their count."""
    from sklearn.metrics import roc_auc_score

    ok = ~np.isnan(p)
    if len(set(y[ok].tolist())) < 2:
        return float("nan"), int(ok.sum())
    return float(roc_auc_score(y[ok], p[ok])), int(ok.sum())


def relevance_rows(
    backend: Backend, data_dir: Path, encoder: Encoder, cache_dir: Path | None = DEFAULT_CACHE
) -> list[EvalRow]:
    """WikiQA dev MAP/MRR, and AUC on the held-out HaluEval QA pairs and HH-RLHF turns (the head's sets)."""
    rows: list[EvalRow] = []
    wikiqa = data_dir / "relevance" / "wikiqa" / "WikiQA-dev.tsv"
    if wikiqa.is_file():
        groups = [g for g in rel.load_wikiqa(wikiqa).values() if any(g[2])]
        records = [Record(q, s) for q, sents, _ in groups for s in sents]
        scores = np.nan_to_num(detector_scores(backend.detector, records), nan=0.0)
        ranked: list[tuple[NDArray[np.float64], Sequence[int]]] = []
        start = 0
        for _, sents, labels in groups:
            ranked.append((scores[start : start + len(sents)], labels))
            start += len(sents)
        metrics = rel.ranking_metrics(ranked)
        label = f"WikiQA dev (questions with an answer, n={len(groups)})"
        rows.extend(EvalRow(backend.label, label, m, metrics[m], None, rel.WIKIQA_PUBLISHED[m]) for m in ("MAP", "MRR"))

    questions = rel.load_halueval(data_dir / "hallucination" / "halueval_qa")
    held = [q for q in questions if rel.held_out(q.group)]
    pairs = rel.make_pairs(
        held, encoder, cache_dir, seed=12345, neg_random=1, neg_hard=1, knowledge=False, topical=False
    )
    p_all = detector_scores(backend.detector, pair_records(pairs))
    kinds, y_all = np.asarray(pairs.kinds), np.asarray(pairs.labels)
    for positive, negative, what in (
        ("right answer", "random other", "own right answer vs a random other answer"),
        ("right answer", "hard other", "own right answer vs the other answer nearest to it"),
        ("hallucinated answer", "random other", "own sentence answer vs a random other answer"),
    ):
        mask = (kinds == positive) | (kinds == negative)
        value, n = auc(y_all[mask], p_all[mask])
        rows.append(EvalRow(backend.label, f"halueval_qa held-out 30 %: {what} (n={n})", "AUC", value))

    hh_path = data_dir / rel.HH_FILE
    if hh_path.is_file():
        exchanges = [e for e in rel.load_hh(hh_path) if rel.held_out(e.group)]
        hh = rel.hh_pairs(exchanges, seed=12345, negatives=1)
        p_hh = detector_scores(backend.detector, pair_records(hh))
        kinds, y_hh = np.asarray(hh.kinds).astype(str), np.asarray(hh.labels)
        for turn, what in (("first turn", "first turns"), ("follow-up", "follow-up turns (earlier turns given)")):
            mask = np.char.find(kinds, turn) >= 0
            value, n = auc(y_hh[mask], p_hh[mask])
            label = f"hh-rlhf held-out 30 %, {what}: reply vs another conversation's reply (n={n})"
            rows.append(EvalRow(backend.label, label, "AUC", value))
    return rows


def hallucination_rows(backend: Backend, data_dir: Path) -> list[EvalRow]:
    """AUC on every held-out set of the hallucination head (HaluEval QA, BEGIN dev) and its written sets."""
    rows: list[EvalRow] = []
    sets = faith._eval_sets(faith.load_all(data_dir))  # the head's own held-out sets, unchanged
    for name, examples in sets.items():
        if not examples:
            continue
        p = detector_scores(backend.detector, [Record(e.prompt, e.response, e.context) for e in examples])
        value, n = auc(np.asarray([e.label for e in examples]), p)
        rows.append(EvalRow(backend.label, f"{name} (held-out 30 %, n={n})", "AUC", value))
    for name, entries in faith.written_sets().items():
        p = detector_scores(backend.detector, [Record("", answer, (context,)) for context, answer, _, _ in entries])
        value, _ = auc(np.asarray([label for _, _, _, label in entries]), p)
        rows.append(EvalRow(backend.label, name, "AUC", value))
    return rows


def toxicity_rows(backend: Backend, data_dir: Path) -> list[EvalRow]:
    """AUC on the toxicity head's held-out sets, labelled as its rows; each text is scored as a response.

    The sets: wiki held-out half (and with identity terms swapped), the identity templates, ToxiGen seeds, Davidson.
    """
    wiki = [e for e in tox.load_wiki(data_dir) if e.held_out]
    templates = identity_templates("eval")
    seeds = tox.load_toxigen(data_dir)
    davidson = [e for e in tox.load_davidson(data_dir) if e.held_out]
    groups = len({s.group for s in seeds})
    sets: list[tuple[str, list[str], list[int]]] = [
        (tox.WIKI_SET.format(n=len(wiki)), [e.text for e in wiki], [e.label for e in wiki]),
        (tox.SWAPPED_SET.format(n=len(wiki)), [swap_identities(e.text) for e in wiki], [e.label for e in wiki]),
        (tox.TEMPLATES_SET.format(n=len(templates)), [t for t, _ in templates], [label for _, label in templates]),
        (tox.TOXIGEN_SET.format(groups=groups, n=len(seeds)), [s.text for s in seeds], [s.label for s in seeds]),
        (tox.DAVIDSON_SET.format(n=len(davidson)), [e.text for e in davidson], [e.label for e in davidson]),
    ]
    rows = []
    for dataset, texts, labels in sets:
        if not texts:
            continue
        p = detector_scores(backend.detector, [Record("", t) for t in texts])
        value, _ = auc(np.asarray(labels, dtype=np.int_), p)
        rows.append(EvalRow(backend.label, dataset, "AUC", value))
    return rows


def rows_for(
    backend: Backend, data_dir: Path, encoder: Encoder | None = None, cache_dir: Path | None = DEFAULT_CACHE
) -> list[EvalRow]:
    """The rows of ``backend`` by its detector's name; ``encoder`` (MiniLM by default) picks relevance negatives."""
    name = backend.detector.name
    if name == "relevance":
        return relevance_rows(backend, data_dir, encoder or SentenceTransformerEncoder(), cache_dir)
    if name == "toxicity":
        return toxicity_rows(backend, data_dir)
    return hallucination_rows(backend, data_dir)


def merge(head_rows: Sequence[EvalRow], extra: Sequence[EvalRow]) -> list[EvalRow]:
    """``head_rows`` with each extra row right after the head's row on the same dev set and metric; the rest last."""
    pending: dict[tuple[str, str, str], list[EvalRow]] = {}
    for row in extra:
        pending.setdefault((row.detector.split(" ", 1)[0], row.dataset, row.metric), []).append(row)
    out: list[EvalRow] = []
    for row in head_rows:
        out.append(row)
        out.extend(pending.pop((row.detector, row.dataset, row.metric), []))
    placed = {id(r) for r in out}
    out.extend(r for r in extra if id(r) not in placed)
    return out


def with_backend_rows(
    head_rows: Sequence[EvalRow],
    backends: Sequence[Backend],
    data_dir: Path,
    report: Callable[[str], None] = print,
    encoder: Encoder | None = None,
    cache_dir: Path | None = DEFAULT_CACHE,
) -> list[EvalRow]:
    """``head_rows`` merged with every backend's rows; ``encoder`` (MiniLM by default) picks relevance negatives."""
    extra: list[EvalRow] = []
    for backend in backends:
        report(f"evaluating {backend.label} ...")
        if encoder is None and backend.detector.name == "relevance":
            encoder = SentenceTransformerEncoder()  # one for every relevance backend
        extra.extend(rows_for(backend, data_dir, encoder, cache_dir))
    return merge(head_rows, extra)
