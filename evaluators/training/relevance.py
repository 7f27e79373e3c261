"""Train and evaluate the relevance head (``detectors/heads/relevance.json``).

Training data is redistributable only: ``hallucination/halueval_qa`` (HaluEval, MIT). Every question gives

* positives: its right answer and its hallucinated answers (one-turn and multi-turn files). A wrong answer
  still *addresses* the question; whether it is true is the ``hallucination`` detector's job. The sentence
  of the question's knowledge passage that contains the right answer is a positive too (a full-sentence
  answer, like a chat response);
* negatives: answers and knowledge sentences of *other* questions: ``NEG_RANDOM`` drawn at random and
  ``NEG_HARD`` nearest by MiniLM cosine to the question's own answers (hard negatives: the same kind of
  answer to another question); and (``TOPICAL``) the sentences of the question's own knowledge passage that
  do not contain the right answer: on topic, but they do not answer it (WikiQA's kind of negative).

Conversations: ``traffic/hh_rlhf_harmless_base_test`` (Anthropic HH-RLHF, MIT) gives chat turns: every assistant
reply (``chosen`` transcripts) is a positive for the user turn it follows, read with the earlier turns (see
``detectors/relevance.py``), and ``HH_NEGATIVES`` replies from other conversations are its negatives. This
teaches the head where 0.5 sits on chat traffic, which HaluEval's short answers do not; HaluEval keeps
``1 - HH_SHARE`` of the total weight. Conversations are split by the same SHA-256 rule (key ``hh`` + first
user turn). WikiQA (research-only) chose the feature set, the negative mix
and the hard-negative rule on WikiQA-train only (see the model card); its dev part is only evaluated; nothing
from WikiQA is fitted into the shipped weights or committed.

Split: SHA-256 of the group key (``halueval``, knowledge, question, newline-joined) modulo 10 < 3 is held
out (≈30 %), the same split as the hallucination head. Negatives for a held-out question come from held-out
questions only.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from agent.hh import hh_turns
from detectors.head import HEADS_DIR, LogisticHead, fit_logistic
from detectors.relevance import FEATURES, compute_features, conversation_features, previous_turns
from detectors.types import Encoder, Vectors
from evaluators.quality import EvalRow, cached_encode, held_out_metrics, released
from evaluators.training import relevance_card

if TYPE_CHECKING:
    from evaluators.site_labels import SiteRows

NAME = "relevance"
DATE = "2026-11-27"
HELD_OUT_BUCKETS = 3
"""Groups whose hash mod 10 is below this are held out (≈30 %)."""
NEG_RANDOM = 2
"""Random other-question texts per question (answers, then knowledge sentences alternately)."""
NEG_HARD = 2
"""Nearest other-question texts (by cosine to the question) per question."""
TOPICAL = True
"""Whether knowledge sentences of the question's own passage that lack the answer are negatives."""
C = 1.0
"""Inverse L2 strength of the logistic regression."""
HH_SHARE = 0.25
"""Share of the total training weight on HH-RLHF conversation turns (the rest on HaluEval)."""
HH_NEGATIVES = 2
"""Other conversations' replies per HH-RLHF turn."""
SHIFT_GRID: tuple[float, ...] = tuple(round(-1.0 + 0.05 * i, 2) for i in range(41))
"""Intercept shifts tried after the fit (see :func:`balanced_shift`)."""
HH_FILE = Path("traffic") / "hh_rlhf_harmless_base_test" / "test.jsonl"
WIKIQA_PUBLISHED = {"MAP": "CNN-Cnt 0.659 (Yang et al. 2015, test)", "MRR": "CNN-Cnt 0.674 (Yang et al. 2015, test)"}
LICENSES = {
    "halueval_qa": "MIT (Copyright (c) 2020 RUCAIBox)",
    "hh_rlhf_harmless_base_test": "MIT (Copyright (c) 2022 Anthropic)",
}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[a-z)\]][.!?])(?=[A-Z])")


@dataclass(frozen=True, slots=True)
class Question:
    """One HaluEval question with its candidate responses."""

    group: str
    """Split key (same as the hallucination head's)."""
    question: str
    """The prompt."""
    answers: tuple[str, ...]
    """Right answer first, then distinct hallucinated answers."""
    sentences: tuple[str, ...]
    """Knowledge sentences that contain the right answer."""
    others: tuple[str, ...]
    """Knowledge sentences that do not contain it."""


def held_out(group: str) -> bool:
    """Whether ``group`` is in the held-out part (deterministic SHA-256 bucket)."""
    return int(hashlib.sha256(group.encode("utf-8")).hexdigest(), 16) % 10 < HELD_OUT_BUCKETS


def load_halueval(folder: Path) -> list[Question]:
    """Questions of the one-turn file, with the multi-turn file's extra hallucinated answers."""
    rows: dict[str, dict[str, Any]] = {}
    for file in ("qa_one-turn_data.jsonl", "qa_multi-turn_data.jsonl"):
        path = folder / file
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            key = "halueval\n" + row["knowledge"] + "\n" + row["question"]
            entry = rows.setdefault(key, {"row": row, "answers": [row["right_answer"]]})
            if row["hallucinated_answer"] not in entry["answers"]:
                entry["answers"].append(row["hallucinated_answer"])
    out = []
    for key, entry in rows.items():
        row = entry["row"]
        right = row["right_answer"].strip().lower()
        sents = [s.strip() for s in _SENTENCE_END.split(row["knowledge"]) if len(s.strip()) > 20]
        hit = tuple(s for s in sents if right and right in s.lower())
        miss = tuple(s for s in sents if s not in hit)
        out.append(Question(key, row["question"], tuple(entry["answers"]), hit, miss))
    return out


def encode_unique(encoder: Encoder, texts: Sequence[str], cache_dir: Path | None) -> Vectors:
    """Rows for ``texts``, encoding each distinct text once (through the cache)."""
    index: dict[str, int] = {}
    ix = [index.setdefault(t, len(index)) for t in texts]
    if not index:
        return np.zeros((0, 0), dtype=np.float32)
    vectors: Vectors = cached_encode(encoder, list(index), cache_dir)[np.asarray(ix)]
    return vectors


@dataclass(frozen=True, slots=True)
class Pairs:
    """Labelled (prompt, response) pairs with a tag saying how each was made."""

    prompts: list[str]
    responses: list[str]
    labels: list[int]
    kinds: list[str]
    users: list[str] = field(default_factory=list)
    """Previous user turn per pair ('' for none; an empty list means none for every pair)."""
    assistants: list[str] = field(default_factory=list)
    """Previous assistant turn per pair, like ``users``."""

    def __add__(self, other: Pairs) -> Pairs:
        return Pairs(
            self.prompts + other.prompts,
            self.responses + other.responses,
            self.labels + other.labels,
            self.kinds + other.kinds,
            self.earlier("users") + other.earlier("users"),
            self.earlier("assistants") + other.earlier("assistants"),
        )

    def earlier(self, which: str) -> list[str]:
        """``users`` or ``assistants``, one entry per pair."""
        turns: list[str] = getattr(self, which)
        return turns or [""] * len(self.prompts)


def make_pairs(
    questions: Sequence[Question],
    encoder: Encoder,
    cache_dir: Path | None,
    seed: int,
    neg_random: int = NEG_RANDOM,
    neg_hard: int = NEG_HARD,
    knowledge: bool = True,
    topical: bool = TOPICAL,
) -> Pairs:
    """Positives and random/hard negatives of ``questions``, negatives drawn from the same list only.

    Hard negatives are the other questions' texts nearest to this question's *own answers* (same kind of
    answer: another city, another year), not nearest to the question: choosing them by the question's
    cosine would select exactly on the cosine feature and teach the head that cosine does not matter.
    """
    rng = np.random.default_rng(seed)
    pool: list[tuple[int, str]] = []
    for i, q in enumerate(questions):
        pool.extend((i, a) for a in q.answers)
        if knowledge:
            pool.extend((i, s) for s in q.sentences + q.others)
    owner = np.asarray([i for i, _ in pool])
    texts = [t for _, t in pool]
    pv = encode_unique(encoder, texts, cache_dir)
    own_rows = [np.flatnonzero(owner == i) for i in range(len(questions))]
    out = Pairs([], [], [], [])

    def add(prompt: str, response: str, label: int, kind: str) -> None:
        out.prompts.append(prompt)
        out.responses.append(response)
        out.labels.append(label)
        out.kinds.append(kind)

    for i, q in enumerate(questions):
        for j, answer in enumerate(q.answers):
            add(q.question, answer, 1, "right answer" if j == 0 else "hallucinated answer")
        if knowledge:
            for sent in q.sentences:
                add(q.question, sent, 1, "answer sentence")
        if topical:
            for sent in q.others:
                add(q.question, sent, 0, "same-passage non-answer sentence")
        others = np.flatnonzero(owner != i)
        for k in rng.choice(others, size=min(neg_random, len(others)), replace=False):
            add(q.question, texts[k], 0, "random other")
        if neg_hard:
            sims = (pv[own_rows[i]] @ pv[others].T).max(axis=0)
            for k in others[np.argsort(-sims, kind="stable")][:neg_hard]:
                add(q.question, texts[k], 0, "hard other")
    return out


def featurize(pairs: Pairs, encoder: Encoder, cache_dir: Path | None) -> NDArray[np.float64]:
    """Feature rows of ``pairs`` (cosines from cached embeddings)."""
    pv = encode_unique(encoder, pairs.prompts, cache_dir)
    rv = encode_unique(encoder, pairs.responses, cache_dir)
    before = list(zip(pairs.earlier("users"), pairs.earlier("assistants"), strict=True))
    return conversation_features(
        pairs.prompts, pairs.responses, before, pv, rv, lambda texts: encode_unique(encoder, texts, cache_dir)
    )


@dataclass(frozen=True, slots=True)
class Exchange:
    """One HH-RLHF user turn, the reply to it and the two turns before it."""

    group: str
    """Split key: ``hh`` and the conversation's first user turn."""
    user: str
    """Previous user turn ('' for the first)."""
    assistant: str
    """Previous assistant turn ('' for the first)."""
    prompt: str
    """The user turn."""
    reply: str
    """The assistant's reply to it."""


def load_hh(path: Path) -> list[Exchange]:
    """Every (user turn, assistant reply) of the ``chosen`` transcripts, with the two turns before it."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        turns = hh_turns(json.loads(line)["chosen"])
        if not turns:
            continue
        group = "hh\n" + turns[0][1]
        for k in range(1, len(turns)):
            (role, prompt), (reply_role, reply) = turns[k - 1], turns[k]
            if role != "user" or reply_role != "assistant" or not prompt or not reply:
                continue
            user = next((t for r, t in reversed(turns[: k - 1]) if r == "user"), "")
            assistant = next((t for r, t in reversed(turns[: k - 1]) if r == "assistant"), "")
            out.append(Exchange(group, user, assistant, prompt, reply))
    return out


def hh_pairs(exchanges: Sequence[Exchange], seed: int, negatives: int = HH_NEGATIVES) -> Pairs:
    """Each exchange's own reply (1) and ``negatives`` replies of other conversations (0), same turns before."""
    rng = np.random.default_rng(seed)
    groups = np.asarray([e.group for e in exchanges])
    out = Pairs([], [], [], [], [], [])
    for e in exchanges:
        follow = "follow-up" if e.user else "first turn"
        others = np.flatnonzero(groups != e.group)
        replies = [exchanges[k].reply for k in rng.choice(others, size=min(negatives, len(others)), replace=False)]
        for reply, label, kind in [
            (e.reply, 1, f"hh {follow} reply"),
            *((r, 0, f"hh {follow} other reply") for r in replies),
        ]:
            out.prompts.append(e.prompt)
            out.responses.append(reply)
            out.labels.append(label)
            out.kinds.append(kind)
            out.users.append(e.user)
            out.assistants.append(e.assistant)
    return out


def split_questions(questions: Sequence[Question]) -> tuple[list[Question], list[Question]]:
    """The training part and the held-out part (:func:`held_out` of each question's group)."""
    train = [q for q in questions if not held_out(q.group)]
    return train, [q for q in questions if held_out(q.group)]


SITE_KIND = "site label"
"""Kind of the pairs made from the site's review labels (``lookout train-heads --labels``)."""


def site_pairs(site: SiteRows) -> Pairs:
    """The site's label rows as pairs (label 1 = relevant), with the turns before each prompt."""
    turns = [previous_turns(r.history) for r in site.rows]
    return Pairs(
        [r.prompt for r in site.rows],
        [r.response for r in site.rows],
        [r.label for r in site.rows],
        [SITE_KIND] * len(site.rows),
        [u for u, _ in turns],
        [a for _, a in turns],
    )


def _site_mask(pairs: Pairs) -> NDArray[np.bool_]:
    return np.asarray([k == SITE_KIND for k in pairs.kinds], dtype=bool)


def source_shares(pairs: Pairs, site_weight: float = 0.0) -> list[tuple[NDArray[np.bool_], float]]:
    """(mask, share of the total weight) per source: HaluEval, and HH-RLHF (kinds ``hh ...``) with :data:`HH_SHARE`.

    Site label pairs (:data:`SITE_KIND`), when present, are a third source whose share is their total weight
    (``site_weight`` each) over everything's; the public sources keep their ratio in the rest.
    """
    hh = np.asarray([k.startswith("hh ") for k in pairs.kinds], dtype=bool)
    site = _site_mask(pairs)
    public = [(~hh & ~site, 1.0 - HH_SHARE if hh.any() else 1.0), (hh, HH_SHARE)]
    if not site.any():
        return public
    n_public = float((~site).sum())
    keep = n_public / (n_public + site_weight * float(site.sum()))
    return [(mask, share * keep) for mask, share in public] + [(site, 1.0 - keep)]


def fit(pairs: Pairs, x: NDArray[np.float64], seed: int, site_weight: float = 0.0) -> LogisticHead:
    """Fit with positives and negatives of each source given equal weight (0.5 between the classes).

    HH-RLHF pairs (kinds ``hh ...``), when present, carry :data:`HH_SHARE` of the public weight, HaluEval the rest;
    public pairs weigh 1 on average. Site label pairs weigh ``site_weight`` each, as labeled (not rebalanced).
    """
    y = np.asarray(pairs.labels)
    site = _site_mask(pairs)
    n_public = int((~site).sum())
    w = np.zeros(len(y), dtype=np.float64)
    for source, share in source_shares(pairs)[:2]:
        for label in (0, 1):
            mask = source & (y == label)
            if mask.any():
                w[mask] = share * n_public / (2 * mask.sum())
    w[site] = site_weight
    return fit_logistic(x, y, FEATURES, name=NAME, version="pending", c=C, seed=seed, sample_weight=w)


def balanced_shift(
    head: LogisticHead, pairs: Pairs, x: NDArray[np.float64], site_weight: float = 0.0
) -> tuple[float, dict[str, float]]:
    """The intercept shift (from :data:`SHIFT_GRID`) that maximises balanced accuracy at 0.5 on the training pairs.

    Balanced accuracy is averaged over the sources with :func:`source_shares`'s shares (HaluEval, HH-RLHF, site
    labels); a source with one class counts that class's recall; ties go to the smallest shift. The logistic fit
    balances log-loss, not decisions: unshifted, its 0.5 flags many genuine HH-RLHF replies while passing almost
    no other conversation's reply. Returns the shift and the weighted
    balanced accuracy at 0 and at the chosen shift (for the card).
    """
    y = np.asarray(pairs.labels)
    shares = source_shares(pairs, site_weight)
    decision = head.decision(x)

    def score(shift: float) -> float:
        total = 0.0
        for source, share in shares:
            if not source.any():
                continue
            flag, ys = decision[source] + shift >= 0.0, y[source]
            recalls = [float(np.mean(flag[ys == c] == bool(c))) for c in (0, 1) if np.any(ys == c)]
            total += share * float(np.mean(recalls))
        return total

    best = max(SHIFT_GRID, key=lambda shift: (round(score(shift), 6), -abs(shift)))
    return best, {"balanced_accuracy_at_0": round(score(0.0), 4), "balanced_accuracy_chosen": round(score(best), 4)}


def load_hh_split(data_dir: Path) -> tuple[list[Exchange], list[Exchange]]:
    """HH-RLHF exchanges under ``data_dir``: the training part and the held-out part (by conversation)."""
    path = data_dir / HH_FILE
    if not path.is_file():
        raise FileNotFoundError(f"the relevance head trains on HH-RLHF turns too: {path} is missing")
    exchanges = load_hh(path)
    return [e for e in exchanges if not held_out(e.group)], [e for e in exchanges if held_out(e.group)]


def train(
    data_dir: Path, encoder: Encoder, seed: int = 0, cache_dir: Path | None = None, site: SiteRows | None = None
) -> LogisticHead:
    """Fit the head on the HaluEval QA and HH-RLHF train parts and shift its intercept; held-out metrics go in meta.

    ``site``: the site's review label rows (their training part), added as a third source at their weight.
    """
    train_q, _ = split_questions(load_halueval(data_dir / "hallucination" / "halueval_qa"))
    train_hh, _ = load_hh_split(data_dir)
    pairs = make_pairs(train_q, encoder, cache_dir, seed) + hh_pairs(train_hh, seed)
    site_weight = 0.0
    if site is not None and site.rows:
        pairs, site_weight = pairs + site_pairs(site), site.weight
    x = featurize(pairs, encoder, cache_dir)
    head = fit(pairs, x, seed, site_weight)
    shift, shift_scores = balanced_shift(head, pairs, x, site_weight)
    head = dataclasses.replace(head, intercept=head.intercept + shift)
    kinds = {k: pairs.kinds.count(k) for k in dict.fromkeys(pairs.kinds)}
    meta: dict[str, Any] = {
        "date": DATE,
        "seed": seed,
        "encoder": encoder.name,
        "c": C,
        "train_questions": len(train_q),
        "train_hh_turns": len(train_hh),
        "hh_share": HH_SHARE,
        "threshold_shift": {"shift": shift, **shift_scores},
        "train_pairs": kinds,
        "licenses": LICENSES,
        "labels": "1 = the question's own answer (right or hallucinated) or its knowledge sentence holding the "
        f"right answer; 0 = other questions' answers/knowledge sentences ({NEG_RANDOM} random + {NEG_HARD} "
        "nearest to the own answers by cosine) and own-passage sentences without the answer; HH-RLHF: 1 = the "
        f"reply to the user turn, 0 = {HH_NEGATIVES} replies from other conversations",
        "weighting": f"within each source positives and negatives carry equal weight; HH-RLHF {HH_SHARE} of the total",
        "split": "sha256('halueval\\n' + knowledge + '\\n' + question) % 10 < 3 held out; HH-RLHF by "
        "sha256('hh\\n' + first user turn)",
        "retrain": "lookout train-heads --data DIR",
    }
    head = released(head, DATE, meta)
    rows = _evaluate_with(head, data_dir, encoder, cache_dir)
    meta["held_out_metrics"] = held_out_metrics(rows)
    return head


def load_wikiqa(path: Path) -> dict[str, tuple[str, list[str], list[int]]]:
    """WikiQA rows grouped by question id: (question, candidate sentences, labels)."""
    groups: dict[str, tuple[str, list[str], list[int]]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            entry = groups.setdefault(row["QuestionID"], (row["Question"], [], []))
            entry[1].append(row["Sentence"])
            entry[2].append(int(row["Label"]))
    return groups


def ranking_metrics(groups: Sequence[tuple[NDArray[np.float64], Sequence[int]]]) -> dict[str, float]:
    """MAP and MRR over groups of (scores, labels) with at least one positive; ties broken by input order."""
    aps, rrs = [], []
    for scores, labels in groups:
        y = np.asarray(labels)[np.argsort(-np.asarray(scores), kind="stable")]
        if not y.any():
            continue
        hits = np.flatnonzero(y)
        aps.append(float(np.mean(np.arange(1, len(hits) + 1) / (hits + 1))))
        rrs.append(1.0 / (hits[0] + 1))
    return {"MAP": float(np.mean(aps)), "MRR": float(np.mean(rrs))}


def wikiqa_scores(
    path: Path, encoder: Encoder, cache_dir: Path | None, head: LogisticHead
) -> tuple[list[tuple[NDArray[np.float64], list[int]]], list[tuple[NDArray[np.float64], list[int]]]]:
    """Per question with a positive: (raw cosine, labels) and (head probability, labels)."""
    groups = [g for g in load_wikiqa(path).values() if any(g[2])]
    prompts = [q for q, sents, _ in groups for _ in sents]
    responses = [s for _, sents, _ in groups for s in sents]
    cos = np.einsum(
        "ij,ij->i", encode_unique(encoder, prompts, cache_dir), encode_unique(encoder, responses, cache_dir)
    ).astype(np.float64)
    x = compute_features(prompts, responses, cos)
    p = head.predict_proba(x[:, [FEATURES.index(n) for n in head.feature_names]])
    base: list[tuple[NDArray[np.float64], list[int]]] = []
    ours: list[tuple[NDArray[np.float64], list[int]]] = []
    start = 0
    for _, sents, labels in groups:
        end = start + len(sents)
        base.append((cos[start:end], labels))
        ours.append((p[start:end], labels))
        start = end
    return base, ours


def _classification(y: NDArray[np.int_], p: NDArray[np.float64]) -> dict[str, float]:
    from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

    pred = (p >= 0.5).astype(int)
    return {
        "AUC": float(roc_auc_score(y, p)),
        "F1@0.5": float(f1_score(y, pred, zero_division=0)),
        "balanced accuracy": float(balanced_accuracy_score(y, pred)),
    }


def _evaluate_with(head: LogisticHead, data_dir: Path, encoder: Encoder, cache_dir: Path | None) -> list[EvalRow]:
    rows: list[EvalRow] = []
    wikiqa = data_dir / "relevance" / "wikiqa" / "WikiQA-dev.tsv"
    if wikiqa.is_file():
        base, ours = wikiqa_scores(wikiqa, encoder, cache_dir, head)
        mb, mo = ranking_metrics(base), ranking_metrics(ours)
        label = f"WikiQA dev (questions with an answer, n={len(base)})"
        rows.extend(EvalRow(NAME, label, m, mo[m], mb[m], WIKIQA_PUBLISHED[m]) for m in ("MAP", "MRR"))
    _, held = split_questions(load_halueval(data_dir / "hallucination" / "halueval_qa"))
    pairs = make_pairs(held, encoder, cache_dir, seed=12345, neg_random=1, neg_hard=1, knowledge=False, topical=False)
    x_all = featurize(pairs, encoder, cache_dir)
    p_all = head.predict_proba(x_all)
    cos_all = np.clip(x_all[:, FEATURES.index("cosine")], 0.0, 1.0)
    kinds = np.asarray(pairs.kinds)
    y_all = np.asarray(pairs.labels)
    for positive, negative, what in (
        ("right answer", "random other", "own right answer vs a random other answer"),
        ("right answer", "hard other", "own right answer vs the other answer nearest to it"),
        ("hallucinated answer", "random other", "own sentence answer vs a random other answer"),
    ):
        mask = (kinds == positive) | (kinds == negative)
        y = y_all[mask]
        ours_m, base_m = _classification(y, p_all[mask]), _classification(y, cos_all[mask])
        label = f"halueval_qa held-out 30 %: {what} (n={int(mask.sum())})"
        rows.extend(EvalRow(NAME, label, m, ours_m[m], base_m[m]) for m in ("AUC", "F1@0.5", "balanced accuracy"))
    rows.extend(_hh_rows(head, data_dir, encoder, cache_dir))
    return rows


def _hh_rows(head: LogisticHead, data_dir: Path, encoder: Encoder, cache_dir: Path | None) -> list[EvalRow]:
    """Held-out HH-RLHF turns: the reply vs another conversation's reply, first turns and follow-ups apart."""
    _, held = load_hh_split(data_dir)
    pairs = hh_pairs(held, seed=12345, negatives=1)
    p_all = head.predict_proba(featurize(pairs, encoder, cache_dir))
    plain = np.einsum(
        "ij,ij->i", encode_unique(encoder, pairs.prompts, cache_dir), encode_unique(encoder, pairs.responses, cache_dir)
    )
    cos_all = np.clip(plain.astype(np.float64), 0.0, 1.0)
    kinds = np.asarray(pairs.kinds)
    y_all = np.asarray(pairs.labels)
    rows: list[EvalRow] = []
    for turn, what in (("first turn", "first turns"), ("follow-up", "follow-up turns (earlier turns given)")):
        mask = np.char.find(kinds.astype(str), turn) >= 0
        y = y_all[mask]
        ours_m, base_m = _classification(y, p_all[mask]), _classification(y, cos_all[mask])
        label = f"hh-rlhf held-out 30 %, {what}: reply vs another conversation's reply (n={int(mask.sum())})"
        rows.extend(EvalRow(NAME, label, m, ours_m[m], base_m[m]) for m in ("AUC", "F1@0.5", "balanced accuracy"))
    return rows


def evaluate(data_dir: Path, encoder: Encoder, cache_dir: Path | None = None) -> list[EvalRow]:
    """The shipped head and raw MiniLM cosine on WikiQA dev (ranking) and held-out HaluEval (classification)."""
    head = LogisticHead.load(HEADS_DIR / f"{NAME}.json")
    return _evaluate_with(head, data_dir, encoder, cache_dir)


def model_card(head: LogisticHead) -> str:
    """The markdown model card for ``head`` (written beside the JSON as ``relevance.md``)."""
    return relevance_card.render(head, DATE, HH_SHARE)
