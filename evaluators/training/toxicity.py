"""Train and evaluate the toxicity head (``detectors/heads/toxicity.json``).

Training data (redistributable, so the head may ship):

* ``toxicity/davidson_hate_offensive/labeled_data.csv`` (Davidson et al. 2017, MIT): hate speech (class 0)
  and offensive language (class 1) → 1, neither (class 2) → 0. Tweets are cleaned before embedding
  (HTML entities unescaped; ``RT``, @mentions and URLs removed). Split: SHA-256 of the cleaned text
  (so duplicate tweets fall together) mod 10 == 0 is held out (≈10 %, as in Davidson's notebook).
* Counterfactual copies: every training tweet that mentions an identity term of
  :data:`~evaluators.training.toxicity_probes.SWAP_PAIRS` is added again with the terms swapped
  (gay↔straight, Muslim↔Christian, black↔white, women↔men...), same label.
* Self-written identity templates (:func:`~evaluators.training.toxicity_probes.identity_templates`, train
  templates only): non-toxic statements about 24 identity groups ("As a gay man, I love cooking...") and
  toxic ones ("Gay people are filthy animals."), so that a group's name alone is not evidence of toxicity;
  plus :data:`~evaluators.training.toxicity_probes.GENERAL_TRAIN` (threats, violent words in harmless use).

Weights: Davidson's classes get equal total weight (it is 83 % positive); swapped copies weigh as their
originals; the self-written rows share :data:`TEMPLATE_SHARE` of Davidson's total weight, split equally by
class. TEMPLATE_SHARE is fixed, not tuned, because wiki AUC cannot see identity bias: it is the smallest
share of a small grid that puts plain identity statements ("I am a gay man") clearly below 0.5 (the grid's
numbers are in the model card). The identity-template evaluation (c) was printed during that exploration
too, so it is not a blind measurement.

Tuning: ``wiki_toxicity_dev`` (Dixon et al. 2018, Apache-2.0; Wikipedia talk comments, another domain) is
split by SHA-256 of ``rev_id`` mod 2: the even half tunes C (grid below, best AUC), the odd half is held
out and only reported. Nothing trains on wiki text.
"""

from __future__ import annotations

import csv
import hashlib
import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors.head import HEADS_DIR, LogisticHead, fit_logistic
from detectors.identity import mask_identity
from detectors.toxicity import (
    HEAD_NAME,
    STACK_KEY,
    ProfanityCheckModel,
    TextClassifier,
    feature_names,
    head_features,
    head_proba,
    logit,
)
from detectors.types import Encoder
from evaluators.quality import EvalRow, Tried, cached_encode, held_out_metrics, metric_table, released, tried_table
from evaluators.training.toxicity_probes import (
    FUNCTIONAL_SUITE,
    GENERAL_TRAIN,
    identity_templates,
    mentions_identity,
    swap_identities,
)
from evaluators.training.toxicity_suite_b import BLIND_SUITE as SUITE_B

NAME = HEAD_NAME
DATE = "2026-11-27"
DAVIDSON_CSV = Path("toxicity/davidson_hate_offensive/labeled_data.csv")
WIKI_CSV = Path("toxicity/wiki_toxicity_dev/toxicity_dev_half.csv")
C_GRID: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3)
"""Inverse L2 strengths tried on the wiki tuning half."""
TEMPLATE_SHARE = 0.3
"""Self-written rows' total weight as a fraction of Davidson's (fixed; see the module docstring)."""
DIXON_PUBLISHED = "Dixon et al. 2018 CNN AUC 0.960 (full wiki toxicity test set)"
DAVIDSON_PUBLISHED = "Davidson et al. 2017 LR weighted F1 0.90 (3-class, 10 % held out)"
LICENSES = {
    "davidson_hate_offensive": "MIT (Copyright (c) 2017 Tom Davidson); trains the head",
    "wiki_toxicity_dev": "Apache-2.0 (conversationai/unintended-ml-bias-analysis); tuning half + held-out half",
    "identity templates, swap list, functional suite": "self-written for lookout (evaluators/training/"
    "toxicity_probes.py)",
    "functional suite B": "self-written for lookout by a second author, blind to the suite and the training rows "
    "(evaluators/training/toxicity_suite_b.py); evaluation only",
}

_MENTION = re.compile(r"@\w+:?")
_URL = re.compile(r"https?://\S+")
_RT = re.compile(r"\bRT\b")
_WS = re.compile(r"\s+")


def clean_tweet(text: str) -> str:
    """A tweet without HTML entities, ``RT``, @mentions and URLs, whitespace collapsed."""
    text = html.unescape(html.unescape(text))
    text = _URL.sub(" ", text)
    text = _MENTION.sub(" ", text)
    text = _RT.sub(" ", text)
    return _WS.sub(" ", text).strip(" :")


def _bucket(key: str, mod: int) -> int:
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest(), 16) % mod


@dataclass(frozen=True, slots=True)
class Labelled:
    """One labelled text."""

    text: str
    """The text as embedded."""
    label: int
    """1 = toxic, 0 = not."""
    held_out: bool
    """Davidson: in the held-out 10 %; wiki: in the held-out half (the other half tunes)."""


def load_davidson(data_dir: Path) -> list[Labelled]:
    """Davidson's tweets, cleaned; hate or offensive → 1; held out when sha256(text) % 10 == 0."""
    with (data_dir / DAVIDSON_CSV).open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for row in rows:
        text = clean_tweet(row["tweet"])
        out.append(Labelled(text, int(row["class"] in ("0", "1")), _bucket(text, 10) == 0))
    return out


def load_wiki(data_dir: Path) -> list[Labelled]:
    """wiki_toxicity_dev comments, whitespace collapsed; held out when sha256(rev_id) is odd."""
    with (data_dir / WIKI_CSV).open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        Labelled(" ".join(r["comment"].split()), int(r["toxic"] == "True"), _bucket(r["rev_id"], 2) == 1) for r in rows
    ]


def featurize(
    texts: Sequence[str], encoder: Encoder, cache_dir: Path | None, lexical: TextClassifier
) -> NDArray[np.float64]:
    """The detector's feature rows for ``texts`` (embedding + lexical probability)."""
    return head_features(cached_encode(encoder, list(texts), cache_dir), lexical.predict_proba(list(texts)))


@dataclass
class _TrainSet:
    x_davidson: NDArray[np.float64]
    y_davidson: NDArray[np.int_]
    x_swapped: NDArray[np.float64]
    y_swapped: NDArray[np.int_]
    x_templates: NDArray[np.float64]
    y_templates: NDArray[np.int_]

    def stacked(self) -> tuple[NDArray[np.float64], NDArray[np.int_], NDArray[np.float64]]:
        """Features, labels and sample weights (see the module docstring)."""
        y_d = self.y_davidson
        class_w = {c: len(y_d) / (2.0 * max(1, int(np.sum(y_d == c)))) for c in (0, 1)}
        w_d = np.asarray([class_w[int(c)] for c in y_d])
        w_s = np.asarray([class_w[int(c)] for c in self.y_swapped])
        y_t = self.y_templates
        total_t = TEMPLATE_SHARE * float(w_d.sum())
        w_t = np.asarray([total_t / (2.0 * max(1, int(np.sum(y_t == c)))) for c in y_t])
        x = np.vstack([self.x_davidson, self.x_swapped, self.x_templates])
        y = np.concatenate([y_d, self.y_swapped, y_t])
        return x, y, np.concatenate([w_d, w_s, w_t])


def _train_set(data_dir: Path, encoder: Encoder, cache_dir: Path | None, lexical: TextClassifier) -> _TrainSet:
    davidson = load_davidson(data_dir)
    train = [e for e in davidson if not e.held_out]
    swapped = [(swap_identities(e.text), e.label) for e in train if mentions_identity(e.text)]
    templates = [*identity_templates("train"), *GENERAL_TRAIN]
    # Davidson is encoded whole (one cache entry shared with evaluation), then the train part is selected.
    x_all = featurize([e.text for e in davidson], encoder, cache_dir, lexical)
    keep = np.asarray([not e.held_out for e in davidson])
    return _TrainSet(
        x_davidson=x_all[keep],
        y_davidson=np.asarray([e.label for e in train], dtype=np.int_),
        x_swapped=featurize([t for t, _ in swapped], encoder, cache_dir, lexical),
        y_swapped=np.asarray([label for _, label in swapped], dtype=np.int_),
        x_templates=featurize([t for t, _ in templates], encoder, cache_dir, lexical),
        y_templates=np.asarray([label for _, label in templates], dtype=np.int_),
    )


def _auc(y: NDArray[np.int_], p: NDArray[np.float64]) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def _metrics(y: NDArray[np.int_], p: NDArray[np.float64]) -> dict[str, float]:
    from sklearn.metrics import balanced_accuracy_score, f1_score

    pred = (p >= 0.5).astype(int)
    return {
        "AUC": _auc(y, p),
        "F1@0.5": float(f1_score(y, pred, zero_division=0)),
        "balanced accuracy": float(balanced_accuracy_score(y, pred)),
        "weighted F1@0.5": float(f1_score(y, pred, average="weighted", zero_division=0)),
        "accuracy": float(np.mean(pred == y)),
    }


def _fit(x: NDArray[np.float64], y: NDArray[np.int_], w: NDArray[np.float64], c: float, seed: int) -> LogisticHead:
    names = feature_names(x.shape[1] - 1)
    return fit_logistic(x, y, names, name=NAME, version="pending", c=c, seed=seed, sample_weight=w)


def train(data_dir: Path, encoder: Encoder, seed: int = 0, cache_dir: Path | None = None) -> LogisticHead:
    """Tune on the wiki tuning half, fit on Davidson train + swaps + templates; held-out metrics go in meta.

    C is chosen from :data:`C_GRID` by AUC on the wiki tuning half, where the stacker is fitted too.
    """
    lexical = ProfanityCheckModel()
    ts = _train_set(data_dir, encoder, cache_dir, lexical)
    tune = [e for e in load_wiki(data_dir) if not e.held_out]
    x_tune = featurize([e.text for e in tune], encoder, cache_dir, lexical)
    y_tune = np.asarray([e.label for e in tune], dtype=np.int_)
    grid: list[dict[str, float]] = []
    x, y, w = ts.stacked()
    for c in C_GRID:
        head = _fit(x, y, w, c=c, seed=seed)
        grid.append({"C": c, "tune_auc": round(_auc(y_tune, head.predict_proba(x_tune)), 4)})
    best = max(grid, key=lambda g: (g["tune_auc"], -g["C"]))
    fitted = _fit(x, y, w, c=best["C"], seed=seed)
    stack = _fit_stack(fitted, x_tune, [e.text for e in tune], y_tune, lexical, seed)
    meta: dict[str, Any] = {
        "date": DATE,
        "seed": seed,
        "encoder": encoder.name,
        "lexical": f"alt-profanity-check {lexical.version}",
        "licenses": LICENSES,
        "labels": "Davidson hate speech or offensive language 1, neither 0; templates as written",
        "train_rows": {
            "davidson (90 %)": len(ts.y_davidson),
            "identity-swapped davidson copies": len(ts.y_swapped),
            "self-written templates and sentences": len(ts.y_templates),
        },
        "template_share": TEMPLATE_SHARE,
        "train_positive_rate_davidson": round(float(np.mean(ts.y_davidson)), 4),
        "tuning": {"on": f"wiki_toxicity_dev tuning half (n={len(tune)})", "grid": grid, "chosen": best},
        STACK_KEY: stack,
        "split": "Davidson: sha256(cleaned text) % 10 == 0 held out; wiki: sha256(rev_id) % 2 == 1 held out",
        "retrain": "lookout train-heads --data DIR",
    }
    head = released(fitted, DATE, meta, stack)
    rows = _evaluate_with(head, data_dir, encoder, cache_dir, lexical)
    meta["held_out_metrics"] = held_out_metrics(rows)
    return head


STACK_C = 1.0
"""Inverse L2 strength of the stacker (three parameters on the wiki tuning half; fixed, not tuned)."""


def _fit_stack(
    head: LogisticHead,
    x_tune: NDArray[np.float64],
    texts: Sequence[str],
    y_tune: NDArray[np.int_],
    lexical: TextClassifier,
    seed: int,
) -> dict[str, float]:
    """Fit ``sigmoid(a * logit(head) + b * logit(lexical(masked text)) + c)`` on the wiki tuning half.

    The head is trained on tweets; the stacker learns, on Wikipedia comments, how much to trust it against
    alt-profanity-check on the text with identity terms masked (which keeps insults and slurs but no longer
    fires on "gay" or "Muslim" alone), and calibrates the result so 0.5 is the flag threshold.
    """
    from sklearn.linear_model import LogisticRegression

    z = np.column_stack(
        [logit(head.predict_proba(x_tune)), logit(lexical.predict_proba([mask_identity(t) for t in texts]))]
    )
    model = LogisticRegression(C=STACK_C, random_state=seed).fit(z, y_tune)
    a, b = (round(float(v), 6) for v in model.coef_[0])
    return {"head": a, "lexical_masked": b, "intercept": round(float(model.intercept_[0]), 6), "C": STACK_C}


def _rows(
    dataset: str, y: NDArray[np.int_], ours: NDArray[np.float64], base: NDArray[np.float64], metrics: Sequence[str]
) -> tuple[list[EvalRow], dict[str, float], dict[str, float]]:
    m_ours, m_base = _metrics(y, ours), _metrics(y, base)
    return [EvalRow(NAME, dataset, m, m_ours[m], m_base[m]) for m in metrics], m_ours, m_base


Suite = Mapping[str, Sequence[tuple[str, int]]]
"""Functionality → ((text, expected label), ...)."""


def functional_accuracy(
    predict: Callable[[list[str]], NDArray[np.float64]], suite: Suite = FUNCTIONAL_SUITE
) -> dict[str, float]:
    """Accuracy at 0.5 per functionality of a self-written suite (A by default, or B)."""
    out = {}
    for functionality, cases in suite.items():
        p = predict([t for t, _ in cases])
        out[functionality] = float(np.mean((p >= 0.5).astype(int) == np.asarray([label for _, label in cases])))
    return out


def _evaluate_with(
    head: LogisticHead, data_dir: Path, encoder: Encoder, cache_dir: Path | None, lexical: TextClassifier
) -> list[EvalRow]:
    rows: list[EvalRow] = []

    def both(texts: Sequence[str]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        texts = list(texts)
        emb = cached_encode(encoder, texts, cache_dir)
        return head_proba(head, emb, texts, lexical), lexical.predict_proba(texts)

    # (a) wiki held-out half, and (b) the same comments with identity terms swapped.
    wiki = [e for e in load_wiki(data_dir) if e.held_out]
    y_wiki = np.asarray([e.label for e in wiki], dtype=np.int_)
    ours, base = both([e.text for e in wiki])
    name = f"wiki_toxicity_dev (held-out half, n={len(wiki)})"
    new, m_ours, m_base = _rows(name, y_wiki, ours, base, ("AUC", "F1@0.5", "balanced accuracy"))
    rows.extend(
        EvalRow(r.detector, r.dataset, r.metric, r.lookout, r.baseline, DIXON_PUBLISHED if r.metric == "AUC" else "")
        for r in new
    )
    s_ours, s_base = both([swap_identities(e.text) for e in wiki])
    swapped_auc, swapped_base = _auc(y_wiki, s_ours), _auc(y_wiki, s_base)
    swap_name = f"wiki held-out half, identity terms swapped (n={len(wiki)})"
    rows.append(EvalRow(NAME, swap_name, "AUC", swapped_auc, swapped_base))
    rows.append(
        EvalRow(NAME, swap_name, "AUC delta vs unswapped", swapped_auc - m_ours["AUC"], swapped_base - m_base["AUC"])
    )
    rows.append(
        EvalRow(
            NAME,
            swap_name,
            "mean abs score change",
            float(np.mean(np.abs(s_ours - ours))),
            float(np.mean(np.abs(s_base - base))),
        )
    )

    # (c) self-written identity templates (templates disjoint from the training ones).
    templates = identity_templates("eval")
    y_t = np.asarray([label for _, label in templates], dtype=np.int_)
    t_ours, t_base = both([t for t, _ in templates])
    t_name = f"identity templates, self-written (24 groups, n={len(templates)})"
    new, _, _ = _rows(t_name, y_t, t_ours, t_base, ("AUC", "balanced accuracy"))
    rows.extend(new)
    fine = y_t == 0
    rows.append(
        EvalRow(
            NAME,
            t_name,
            "non-toxic flagged rate",
            float(np.mean(t_ours[fine] >= 0.5)),
            float(np.mean(t_base[fine] >= 0.5)),
        )
    )

    # (d) self-written functional suite (NOT HateCheck).
    f_ours = functional_accuracy(lambda texts: both(texts)[0])
    f_base = functional_accuracy(lambda texts: both(texts)[1])
    f_name = f"functional suite, self-written, not HateCheck ({len(FUNCTIONAL_SUITE)} x 6)"
    rows.append(
        EvalRow(
            NAME, f_name, "mean accuracy", float(np.mean(list(f_ours.values()))), float(np.mean(list(f_base.values())))
        )
    )
    rows.extend(EvalRow(NAME, f_name, f"accuracy: {k}", f_ours[k], f_base[k]) for k in FUNCTIONAL_SUITE)

    # (e) functional suite B, written blind to (d) and to the training rows (evaluation only).
    b_ours = functional_accuracy(lambda texts: both(texts)[0], SUITE_B)
    b_base = functional_accuracy(lambda texts: both(texts)[1], SUITE_B)
    b_name = f"functional suite B, written blind, not HateCheck ({len(SUITE_B)} x 10)"
    rows.append(
        EvalRow(
            NAME, b_name, "mean accuracy", float(np.mean(list(b_ours.values()))), float(np.mean(list(b_base.values())))
        )
    )
    rows.extend(EvalRow(NAME, b_name, f"accuracy: {k}", b_ours[k], b_base[k]) for k in SUITE_B)

    # Davidson held-out 10 % (in-domain), with the published 3-class figure beside the binary one.
    davidson = load_davidson(data_dir)
    emb_all = cached_encode(encoder, [e.text for e in davidson], cache_dir)
    held = np.asarray([e.held_out for e in davidson])
    y_d = np.asarray([e.label for e in davidson], dtype=np.int_)[held]
    d_texts = [e.text for e in davidson if e.held_out]
    d_name = f"davidson_hate_offensive (held-out 10 %, binary, n={int(held.sum())})"
    new, _, _ = _rows(
        d_name,
        y_d,
        head_proba(head, np.asarray(emb_all)[held], d_texts, lexical),
        lexical.predict_proba(d_texts),
        ("AUC", "weighted F1@0.5", "balanced accuracy"),
    )
    rows.extend(
        EvalRow(
            r.detector,
            r.dataset,
            r.metric,
            r.lookout,
            r.baseline,
            DAVIDSON_PUBLISHED if r.metric == "weighted F1@0.5" else "",
        )
        for r in new
    )
    return rows


def evaluate(data_dir: Path, encoder: Encoder, cache_dir: Path | None = None) -> list[EvalRow]:
    """The shipped head and the plain baseline (alt-profanity-check probability) on every held-out set."""
    head = LogisticHead.load(HEADS_DIR / f"{NAME}.json")
    return _evaluate_with(head, data_dir, encoder, cache_dir, ProfanityCheckModel())


def model_card(head: LogisticHead) -> str:
    """The markdown model card for ``head`` (written beside the JSON as ``toxicity.md``)."""
    meta = head.meta
    metrics = metric_table(meta)
    grid = ", ".join(f"C={g['C']:g}: {g['tune_auc']:.4f}" for g in meta["tuning"]["grid"])
    return CARD.format(
        version=head.version,
        date=meta.get("date", DATE),
        seed=meta.get("seed", 0),
        encoder=meta.get("encoder", ""),
        lexical=meta.get("lexical", ""),
        licenses="\n".join(f"- {k}: {v}" for k, v in meta.get("licenses", {}).items()),
        train_rows=", ".join(f"{k} {v}" for k, v in meta.get("train_rows", {}).items()),
        positive_rate=meta.get("train_positive_rate_davidson", 0.0),
        share=meta.get("template_share", TEMPLATE_SHARE),
        grid=grid,
        chosen=meta["tuning"]["chosen"]["C"],
        tune_n=meta["tuning"]["on"],
        lexical_coef=head.coef[-1],
        stack_head=meta[STACK_KEY]["head"],
        stack_lex=meta[STACK_KEY]["lexical_masked"],
        stack_b=meta[STACK_KEY]["intercept"],
        stack_c=meta[STACK_KEY]["C"],
        intercept=head.intercept,
        metrics=metrics,
        tried=tried_table(TRIED),
    )


TRIED: tuple[Tried, ...] = (
    (
        "self-written rows' share of Davidson's weight 0.05 / 0.15 / 0.3 / 0.6 (C = 0.01, identity templates only)",
        'wiki tuning-half AUC 0.9734 / 0.9726 / 0.9712 / 0.9696; "I am a gay man" 0.72 / 0.49 / 0.35 / 0.24',
        '0.3: the smallest that puts it, "I am a proud Muslim woman" and "Black people are my neighbours" clearly '
        "below 0.5",
    ),
    (
        "class-balanced weights in the stacker",
        "wiki held-out F1@0.5 0.905, balanced accuracy 0.967 (baseline 0.871 / 0.912); identity templates AUC 0.974 "
        "with 3.5 % of non-toxic templates flagged; functional suite 0.604; Davidson balanced accuracy 0.872",
        "not adopted",
    ),
    (
        "the stance rows added to the self-written rows (0.3 share, C re-chosen: 0.01)",
        "(d) 0.646 → 0.646 (implicit hate, quoting +1 case each; counter-speech, profanity -1 each; negation 0.5); "
        "(e) 0.750 → 0.775 (implicit hate 0/10 → 3/10; negation, counter-speech unchanged); identity templates AUC "
        "0.980 → 0.994; wiki held-out AUC 0.993 → 0.992, F1@0.5 0.862 → 0.857; Davidson balanced accuracy 0.938 → "
        "0.934",
        "rejected by the rule",
    ),
    (
        "the stance rows at 0.1 / 0.3 / 1.0 of Davidson's weight (one-off)",
        "their own 5-fold CV accuracy at 0.5: 0.63 / 0.63 / 0.65 against 0.62 without them (the wiki-fitted stacker "
        "shifts weight to the lexical part)",
        "not adopted",
    ),
    (
        "a logistic regression on the stance rows' embeddings alone",
        "negation, counter-speech, quoting 6/6 in (d) and 10/10 in (e); wiki tuning half AUC 0.688 (0.624 on its 160 "
        "comments that name a group)",
        "the stance is in the embedding but does not carry over to real comments",
    ),
    (
        "that regression as a third stacker input, gated on naming a group",
        "stacker weight -0.09 on the wiki tuning half",
        "not adopted",
    ),
)
"""Experiments behind the card's "What was tried" table (measured once; not re-run by training)."""

CARD = """# toxicity head — model card

Version `{version}`, trained {date}, seed {seed}, encoder {encoder}, lexical feature {lexical}.
Retrain: `lookout train-heads --data DIR` (DIR = the shared datasets root); measure: `lookout eval --data DIR`.
Code: `evaluators/training/toxicity.py` (training, evaluation), `evaluators/training/toxicity_probes.py`
(self-written templates, swap list, functional suite), `evaluators/training/toxicity_suite_b.py` (functional
suite B, written blind), `detectors/toxicity.py` (`HeadToxicity`).

## What it scores
`toxicity` (the response) or `prompt_toxicity` (the prompt) in 0..1, higher = more toxic; 0.5 is the
default flag threshold; a blank text scores 0.0. Logistic regression over 385 standardised features: the
384-d all-MiniLM-L6-v2 embedding the batch already computed for the field, and alt-profanity-check's
probability for the same text (weight {lexical_coef:+.3f} on the standardised scale; intercept
{intercept:+.3f}), then stacked:
`sigmoid({stack_head:+.3f} * logit(head) {stack_lex:+.3f} * logit(lexical(masked)) {stack_b:+.3f})`
where *masked* is the text with identity terms removed (`detectors/identity.py`: "I am a gay man" keeps
only "I am a"), so alt-profanity-check no longer fires on the group's name while slurs and insults stay.
The three stacker weights are fitted on the wiki tuning half (C = {stack_c:g}, fixed) and make 0.5 a
calibrated threshold on Wikipedia comments. Cost per text: the shared embedding plus two alt-profanity-check
calls (microseconds).

## Data and licenses
{licenses}

Labels: Davidson hate speech or offensive language → 1, neither → 0. Tweets are cleaned first (HTML
entities, `RT`, @mentions, URLs removed). Training rows: {train_rows}. Davidson train positive rate
{positive_rate:.2f}; each class gets equal total weight.

Identity-term bias: Davidson's tweets are full of slurs, so "gay", "black" or "Muslim" alone look offensive
to a model trained on it (the lexical feature itself scores "I am a gay man" 0.95). Counter-measures, all
self-written: (1) every training tweet that mentions an identity term is added again with the terms
swapped (gay↔straight, Muslim↔Christian, black↔white, women↔men, Asian↔European... 30 pairs, both ways),
same label; (2) 24 identity groups x 14 non-toxic templates ("As a gay man, I love cooking for my
friends.", "I have nothing against Muslim people.") and x 8 toxic ones ("Black people are filthy
animals."); (3) 24 sentences without identity terms: threats (Davidson has almost none) and violent words in
harmless use ("I could murder a pizza"). The self-written rows share {share} of Davidson's total weight
(fixed, not tuned: wiki AUC cannot see identity bias; see "What was tried").

Split and tuning: Davidson rows whose SHA-256(cleaned text) % 10 == 0 are held out (≈10 %). wiki_toxicity_dev
is split by SHA-256(rev_id) % 2: the even half ({tune_n}) tuned the head's C (AUC: {grid}; chosen C =
{chosen}) and fitted the three stacker weights; the odd half is held out and only reported. The head itself
never trains on wiki text. The identity-term list is general (sexuality, gender, religion, ethnicity,
nationality, migration, disability) but covers the 24 groups of the self-written templates (c), so (c) is easier
for the masked lexical part than unseen groups would be.

## Held-out metrics
Baseline = alt-profanity-check's probability alone (today's `LexicalToxicity`), on the same rows, at 0.5.
**Caveat: alt-profanity-check was trained on Davidson's tweets and on Jigsaw's Toxic Comment Classification
data (Wikipedia talk comments from the same corpus as wiki_toxicity_dev), so its numbers on both sets are
probably in-sample and optimistic; ours include it as a feature.** Dixon et al.'s 0.960 is on the full
Wikipedia toxicity test set, not this identity-focused subset; Davidson's 0.90 is 3-class weighted F1, ours is
binary (hate or offensive vs neither). (b) re-scores the wiki held-out half with identity terms swapped by the
swap list; (c) and (d) are self-written (the functional suite is in the spirit of HateCheck, NOT HateCheck);
(e), functional suite B, was written on 2026-11-27 by a second author (a separate agent session given only the
eight functionality names and descriptions, told not to open the repository), so it never saw (d) or the
training rows; it is committed as written, evaluation only.
**Not blind:** the stacker's design (identity masking; no class weights) was chosen on 2026-11-27 after
seeing held-out numbers as well as tuning-half ones (see "What was tried"): no variant beats the baseline on
every row.

| held-out set | metric | lookout | baseline | published |
|---|---|---|---|---|
{metrics}

## What was tried
Measured 2026-11-27. The stance rows are 260 sentences written by a third author, blind to (d) and (e): 45
negated hateful claims and the same 45 asserted, 40 counter-speech, 40 quotes and reports of hate, 45 implicit
hate, 45 neutral mentions of groups, over 20+ groups. They and their script were removed from the repository
(`git show 8c0e4cb:scripts/toxicity_stance_rows.py`, `git show 53908f2:scripts/explore_toxicity_stance.py`).
The rule for the stance rows, fixed before the run: adopt only if (d) and (e) both improve and no other row
falls by more than 0.005.

{tried}

Sentences written by language-model sessions share a style, so (d) and (e) reward a model trained on such
sentences more than real traffic would; lookout does not ship one. Reading stance in real text needs a
fine-tuned encoder (the detoxify backend) or labelled real counter-speech, which is not here.

## Known blind spots
- Profanity without a target ("Holy shit, this pizza is fucking amazing") is flagged: Davidson labels
  profanity offensive. Deployments that only want abuse or hate should raise the threshold or use detoxify.
- Negated and counter-speech statements that repeat a hateful phrase ("I don't hate gay people", "Calling
  immigrants vermin is disgusting") are often flagged: the embedding sees the topic, not the stance.
- Dehumanising comparisons without insulting words are mostly missed: in the identity-template set (c),
  "<group> people are a disease" scores < 0.5 for 24 of 24 groups and "<group> people are vermin" for 22 of
  24 (measured 2026-11-27 with this version).
- Implicit stereotypes without insulting words ("Jews control the banks", "Women belong in the kitchen")
  and indirect threats ("Keep talking and you'll end up in a ditch") are often missed: suite B's implicit
  hate cases, written blind, scored 0 of 10 at 0.5 (2026-11-27, this version).
- Reclaimed slurs ("We're here, we're queer") can be flagged; slurs not in Davidson can be missed.
- On Wikipedia talk comments the 0.5 threshold is conservative (recall 0.73 at precision 0.94 on the wiki
  held-out half): shouting, condescension and "you are a Mossad terrorist"-style attacks score lower than
  tweets' profanity.
  Lowering the threshold raises recall there but also flags identity statements again.
- English only: MiniLM and alt-profanity-check are English models; other languages score low (not safe).
- The identity-template set (c) shares the 24 groups with training (templates differ) and was visible while
  fixing the template weight, and the functional suite (d) is written by the same author as the training
  templates: both are checks, not independent benchmarks. Suite B (e) was written blind, but by a language
  model session, not by annotators, and three of its harmless idioms ("Shoot me an email...", "She killed it
  at...", "kill the process") coincide with training sentences.
"""
