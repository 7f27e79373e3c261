"""Train and evaluate the hallucination head (``detectors/heads/hallucination.json``).

Data (all redistributable, so the trained head may ship):

* ``hallucination/halueval_qa/qa_one-turn_data.jsonl`` (HaluEval, MIT): each row gives two records with
  ``context = (knowledge,)`` and ``prompt = question``: ``right_answer`` → 0, ``hallucinated_answer`` → 1.
* ``hallucination/begin_dev/begin_dev_{wow,cmu,tc}.tsv`` (BEGIN dev; WoW part CC BY 4.0, CMU-DoG part
  festvox/CMU permissive license + CC BY 4.0 text in the folder, TopicalChat part CDLA-Sharing-1.0 whose
  section 3.5 puts no restriction on Results such as a trained model): ``Fully attributable`` → 0,
  ``Not fully attributable`` → 1, ``Generic`` → 1 (a generic reply is not supported by the knowledge; the
  score's contract is "less supported by the context", and BEGIN's own binary task is Fully vs the rest).

Split: every record's group key (HaluEval: knowledge + question; BEGIN: source + knowledge + message, so the
four models' replies to one dialogue turn stay together) is hashed with SHA-256; groups whose hash is 0-2
modulo 10 (≈30 %) are held out, the rest train. The split does not depend on the seed. Nothing is tuned on
the held-out part: the head uses fixed settings (C = 1) and weights that give each (dataset family, class)
cell the same total weight, so 0.5 sits between the classes whatever each set's positive rate; that choice,
and keeping ``log_tokens``, were made on grouped 5-fold cross-validation of the train part only.
``qa_multi-turn_data.jsonl`` repeats the one-turn
file's knowledge, questions and right answers with other hallucinated answers, so only its held-out groups
are evaluated, never trained on.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from detectors.hallucination import FEATURES, compute_features
from detectors.head import HEADS_DIR, LogisticHead, fit_logistic
from detectors.types import Encoder, Vectors
from evaluators.quality import (
    EvalRow,
    Tried,
    cached_encode,
    held_out_metrics,
    metric_table,
    released,
    tried_table,
    weight_table,
)
from evaluators.training.hallucination_probes import FAITH_PROBES
from evaluators.training.hallucination_set_b import FAITH_SET_B

if TYPE_CHECKING:
    from evaluators.site_labels import SiteRows

NAME = "hallucination"
DATE = "2026-11-27"
MAX_SENTENCES = 24
"""The detector's default, used for training features too."""
HELD_OUT_BUCKETS = 3
"""Groups whose hash mod 10 is below this are held out (≈30 %)."""
HALUEVAL_PUBLISHED = "ChatGPT judge accuracy 62.59 % (Li et al. 2023, HaluEval QA)"
BEGIN_SOURCES = ("wow", "cmu", "tc")
LICENSES = {
    "halueval_qa": "MIT (Copyright (c) 2020 RUCAIBox)",
    "begin_dev wow": "CC BY 4.0 (Wizard of Wikipedia; BEGIN outputs and ratings by Google under the same terms)",
    "begin_dev cmu": "CMU festvox-style permissive license (CMU-DoG) with the CC BY 4.0 text shipped by BEGIN",
    "begin_dev tc": "CDLA-Sharing-1.0 (TopicalChat); section 3.5: no restriction on Results such as a model",
}


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled (prompt, response, context) record."""

    group: str
    """Split key: records of one group are all train or all held-out."""
    dataset: str
    """``halueval_qa``, ``halueval_qa_multi`` or ``begin_<source>``."""
    prompt: str
    """Question or previous dialogue turn (not used by the features)."""
    response: str
    """Answer or reply judged."""
    context: tuple[str, ...]
    """Knowledge the response should be grounded in."""
    label: int
    """1 = not supported by the context, 0 = supported."""


def held_out(group: str) -> bool:
    """Whether ``group`` is in the held-out part (deterministic SHA-256 bucket)."""
    return int(hashlib.sha256(group.encode("utf-8")).hexdigest(), 16) % 10 < HELD_OUT_BUCKETS


def load_halueval(path: Path, dataset: str = "halueval_qa") -> list[Example]:
    """Two records per line: the right answer (0) and the hallucinated one (1)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        group = "halueval\n" + row["knowledge"] + "\n" + row["question"]
        for key, label in (("right_answer", 0), ("hallucinated_answer", 1)):
            out.append(Example(group, dataset, row["question"], row[key], (row["knowledge"],), label))
    return out


def load_begin(folder: Path) -> list[Example]:
    """BEGIN dev rows of every source; Fully attributable → 0, Not fully attributable and Generic → 1."""
    out = []
    for source in BEGIN_SOURCES:
        with (folder / f"begin_dev_{source}.tsv").open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
                label = 0 if row["begin_label"].strip() == "Fully attributable" else 1
                group = "begin\n" + source + "\n" + row["knowledge"] + "\n" + row["message"]
                out.append(
                    Example(group, f"begin_{source}", row["message"], row["response"], (row["knowledge"],), label)
                )
    return out


def load_all(data_dir: Path) -> dict[str, list[Example]]:
    """Every labelled set, keyed by dataset name."""
    root = data_dir / "hallucination"
    sets = {"halueval_qa": load_halueval(root / "halueval_qa" / "qa_one-turn_data.jsonl")}
    multi = root / "halueval_qa" / "qa_multi-turn_data.jsonl"
    if multi.is_file():
        sets["halueval_qa_multi"] = load_halueval(multi, "halueval_qa_multi")
    for ex in load_begin(root / "begin_dev"):
        sets.setdefault(ex.dataset, []).append(ex)
    return sets


def featurize(
    examples: Sequence[Example], encoder: Encoder, cache_dir: Path | None
) -> tuple[NDArray[np.float64], NDArray[np.int_]]:
    """Feature rows and labels of ``examples`` (all must have context and a response)."""

    def encode(texts: list[str]) -> Vectors:
        return cached_encode(encoder, texts, cache_dir)

    x, applies = compute_features([(e.response, e.context) for e in examples], encode, MAX_SENTENCES)
    keep = np.asarray(applies, dtype=bool)
    return x[keep], np.asarray([e.label for e in examples], dtype=np.int_)[keep]


def balanced_weights(families: Sequence[str], labels: NDArray[np.int_]) -> NDArray[np.float64]:
    """Weights giving every (dataset family, class) cell the same total weight, mean weight 1."""
    fam = np.asarray(families)
    cells = [(f, c) for f in sorted(set(families)) for c in (0, 1) if np.any((fam == f) & (labels == c))]
    w = np.ones(len(labels), dtype=np.float64)
    for f, c in cells:
        mask = (fam == f) & (labels == c)
        w[mask] = len(labels) / (len(cells) * mask.sum())
    return w


def _metrics(y: NDArray[np.int_], p: NDArray[np.float64]) -> dict[str, float]:
    from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

    pred = (p >= 0.5).astype(int)
    return {
        "AUC": float(roc_auc_score(y, p)),
        "F1@0.5": float(f1_score(y, pred, zero_division=0)),
        "balanced accuracy": float(balanced_accuracy_score(y, pred)),
        "accuracy": float(np.mean(pred == y)),
    }


def _train_part(sets: dict[str, list[Example]]) -> list[Example]:
    return [e for name, rows in sets.items() if name != "halueval_qa_multi" for e in rows if not held_out(e.group)]


def _eval_sets(sets: dict[str, list[Example]]) -> dict[str, list[Example]]:
    held = {name: [e for e in rows if held_out(e.group)] for name, rows in sets.items()}
    begin = [e for name in held if name.startswith("begin_") for e in held[name]]
    out: dict[str, list[Example]] = {name: held[name] for name in ("halueval_qa", "halueval_qa_multi") if name in held}
    out["begin_dev"] = begin
    out.update({name: held[name] for name in held if name.startswith("begin_")})
    return out


def site_examples(site: SiteRows | None) -> list[Example]:
    """The site's label rows as examples (label 1 = not supported), each its own split group."""
    rows = site.rows if site is not None else ()
    return [Example("site\n" + r.record_id, "site_labels", r.prompt, r.response, r.context, r.label) for r in rows]


def train(
    data_dir: Path, encoder: Encoder, seed: int = 0, cache_dir: Path | None = None, site: SiteRows | None = None
) -> LogisticHead:
    """Fit the head on the train part of HaluEval QA one-turn and BEGIN dev; held-out metrics go in meta.

    C = 1; each (dataset family, class) cell gets equal total weight, the family being the dataset name up to
    its first underscore (``halueval``, ``begin``). ``site``: the site's review label rows (their training part),
    each weighing ``site.weight`` (a public row weighs 1 on average).
    """
    sets = load_all(data_dir)
    examples = _train_part(sets)
    extra = site_examples(site)
    x, y = featurize(examples + extra, encoder, cache_dir)
    if len(y) != len(examples) + len(extra):
        raise ValueError("a site label row has no context or response; it cannot train the hallucination head")
    weights = balanced_weights([e.dataset.split("_")[0] for e in examples], y[: len(examples)])
    if extra and site is not None:
        weights = np.concatenate([weights, np.full(len(extra), site.weight)])
    head = fit_logistic(x, y, FEATURES, name=NAME, version="pending", c=1.0, seed=seed, sample_weight=weights)
    counts = {name: len([e for e in _train_part({name: rows})]) for name, rows in sets.items()}
    meta: dict[str, Any] = {
        "date": DATE,
        "seed": seed,
        "encoder": encoder.name,
        "max_sentences": MAX_SENTENCES,
        "train_rows": {k: v for k, v in counts.items() if k != "halueval_qa_multi"},
        "train_positive_rate": float(np.mean([e.label for e in examples])),
        "licenses": LICENSES,
        "labels": "HaluEval right 0 / hallucinated 1; BEGIN Fully attributable 0, Not fully attributable 1, Generic 1",
        "weighting": "each (dataset family, class) cell has equal total weight",
        "split": "sha256(group) % 10 < 3 held out; group = knowledge+question (HaluEval), "
        "source+knowledge+message (BEGIN)",
        "retrain": "lookout train-heads --data DIR",
    }
    head = released(head, DATE, meta)
    rows = _evaluate_with(head, sets, encoder, cache_dir)
    meta["held_out_metrics"] = held_out_metrics(rows, published=False)
    return head


def baseline(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """The plain baseline on feature rows: 1 - mean over response sentences of the best context cosine."""
    return np.clip(1.0 - x[:, FEATURES.index("sent_cos_mean")], 0.0, 1.0)


def _evaluate_with(
    head: LogisticHead, sets: dict[str, list[Example]], encoder: Encoder, cache_dir: Path | None
) -> list[EvalRow]:
    rows: list[EvalRow] = []
    for name, examples in _eval_sets(sets).items():
        if not examples:
            continue
        x, y = featurize(examples, encoder, cache_dir)
        ours = _metrics(y, head.predict_proba(x))
        base = _metrics(y, baseline(x))
        label = f"{name} (held-out 30 %, n={len(y)})"
        metrics = ["AUC", "F1@0.5", "balanced accuracy"]
        if name.startswith("halueval"):
            metrics.append("accuracy")
        for metric in metrics:
            published = HALUEVAL_PUBLISHED if name == "halueval_qa" and metric == "accuracy" else ""
            rows.append(EvalRow(NAME, label, metric, ours[metric], base[metric], published))
    rows.extend(_probe_rows(head, encoder, cache_dir))
    return rows


Probe = tuple[str, str, str, int]
"""(context, response, kind, label) of a written evaluation set."""


def written_sets() -> dict[str, list[Probe]]:
    """The blind-written evaluation sets, keyed by their row name in ``lookout eval``."""
    probes = list(FAITH_PROBES)
    set_b = [(context, answer, kind, label) for _, context, answer, kind, label in FAITH_SET_B]
    return {
        f"faithfulness probes, written blind ({len({p[0] for p in probes})} contexts x 4, n={len(probes)})": probes,
        f"faithfulness set B, written blind ({len({p[0] for p in set_b})} contexts x 4, n={len(set_b)})": set_b,
    }


def _probe_rows(head: LogisticHead, encoder: Encoder, cache_dir: Path | None) -> list[EvalRow]:
    """AUC and the flagged rate per kind on each blind-written set (evaluation only)."""
    from sklearn.metrics import roc_auc_score

    rows: list[EvalRow] = []
    for name, entries in written_sets().items():
        examples = [Example("probe", "probe", "", answer, (context,), label) for context, answer, _, label in entries]
        x, y = featurize(examples, encoder, cache_dir)
        ours, base = head.predict_proba(x), baseline(x)
        kinds = np.asarray([kind for _, _, kind, _ in entries])
        rows.append(EvalRow(NAME, name, "AUC", float(roc_auc_score(y, ours)), float(roc_auc_score(y, base))))
        for kind in dict.fromkeys(kinds):
            m = kinds == kind
            what = f"flagged rate: {kind.replace('_', ' ')} (label {int(y[m][0])})"
            rows.append(EvalRow(NAME, name, what, float(np.mean(ours[m] >= 0.5)), float(np.mean(base[m] >= 0.5))))
    return rows


def evaluate(data_dir: Path, encoder: Encoder, cache_dir: Path | None = None) -> list[EvalRow]:
    """The shipped head and the plain baseline (1 - mean best-sentence cosine) on every held-out set."""
    head = LogisticHead.load(HEADS_DIR / f"{NAME}.json")
    return _evaluate_with(head, load_all(data_dir), encoder, cache_dir)


def model_card(head: LogisticHead) -> str:
    """The markdown model card for ``head`` (written beside the JSON as ``hallucination.md``)."""
    meta = head.meta
    weights = weight_table(head)
    metrics = metric_table(meta, published=False)
    licenses = "\n".join(f"- {k}: {v}" for k, v in meta.get("licenses", {}).items())
    train_rows = ", ".join(f"{k} {v}" for k, v in meta.get("train_rows", {}).items())
    return CARD.format(
        version=head.version,
        date=meta.get("date", DATE),
        seed=meta.get("seed", 0),
        encoder=meta.get("encoder", ""),
        licenses=licenses,
        train_rows=train_rows,
        weights=weights,
        intercept=head.intercept,
        metrics=metrics,
        tried=tried_table(TRIED),
    )


TRIED: tuple[Tried, ...] = (
    (
        "each (dataset family, class) cell given equal weight",
        "CV BEGIN balanced accuracy 0.77 → 0.82",
        "adopted",
    ),
    (
        "dropping `log_tokens`",
        "CV HaluEval AUC -0.03",
        "kept",
    ),
    (
        'a sentence\'s first word not counted as a new name ("Annual", "Running" were 0.51 of the reworded probes\' '
        "entities)",
        "CV 0.976 / 0.819 → 0.974 / 0.825",
        "adopted",
    ),
    (
        "set B's 240 rows as training rows (a third weight family)",
        "probes: reworded flagged 40/40 (unchanged), contradictions caught 6/40 (was 15); held-out HaluEval AUC 0.949 "
        "→ 0.938 (F1@0.5 0.857 → 0.812), BEGIN AUC 0.931 → 0.929 (balanced accuracy 0.871 → 0.862); 5-fold CV over "
        "set B's contexts: 0.72 of reworded faithful answers still flagged, 0.87 of unsupported details and 0.45 of "
        "contradictions caught",
        "rejected by the rule",
    ),
    (
        "token-level support (BERTScore-style precision over MiniLM token states; one-off)",
        "set B unsupported details vs reworded faithful answers: AUC 0.55-0.59",
        "not adopted",
    ),
    (
        "Porter-stemming content words before the overlap features (one-off)",
        "CV 0.974 / 0.828 → 0.973 / 0.829; set B reworded flagged 52 instead of 51",
        "not adopted",
    ),
    (
        'stripping possessives ("Tuesday\'s" counts as a new name)',
        "CV 0.9737 / 0.8278 → 0.9732 / 0.8247; held-out BEGIN balanced accuracy 0.871 → 0.853",
        "not adopted",
    ),
    (
        "also the question's words and numbers as support for new names and numbers",
        "CV 0.9730 / 0.8232; held-out BEGIN balanced accuracy 0.871 → 0.853",
        "not adopted",
    ),
    (
        "also for word recall",
        "CV 0.9572 / 0.7985",
        "not adopted",
    ),
    (
        "logistic regression over degree-2 interactions of the eight features (C = 0.1)",
        "CV 0.986 / 0.807 (linear in the same pipeline 0.974 / 0.825)",
        "not pursued: the extra fit goes to HaluEval's artefacts",
    ),
    (
        "gradient-boosted trees on the eight features",
        "CV 0.981 / 0.771",
        "not pursued",
    ),
)
"""Experiments behind the card's "What was tried" table (measured once; not re-run by training)."""

CARD = """# hallucination head — model card

Version `{version}`, trained {date}, seed {seed}, encoder {encoder}. Retrain: `lookout train-heads --data DIR`
(DIR = the shared datasets root); measure: `lookout eval --data DIR`.

## What it scores
`hallucination` in 0..1: how little the response is supported by the record's `context` passages; higher is
worse, flagged at or above the default threshold (0.68, chosen to flag at most 10 % of genuine traffic; the
head is fitted with 0.5 between the classes). `None` when the record has no context (empty or blank passages) or
a blank response. It is a logistic regression over the eight features documented in
`detectors/hallucination.py`:

| feature | weight (standardised) |
|---|---|
{weights}

intercept {intercept:+.3f}

- `sent_cos_min`, `sent_cos_mean`: per response sentence, the best cosine (all-MiniLM-L6-v2) to any context
  sentence; min and mean over the response's sentences (≤ 24 sentences each side, ≤ 300 characters each).
- `whole_cos`: cosine of the whole response to the whole context (first 2,000 characters of each).
- `novel_numbers`: fraction of the response's numbers absent from the context.
- `novel_entities`: fraction of capitalised non-stopword tokens absent from the context (case-insensitive); a
  sentence's first word is not counted unless it is the whole sentence.
- `content_recall`: fraction of the response's content words found in the context.
- `negation_mismatch`: fraction of response sentences with a negation cue whose best-matching context
  sentence has none.
- `log_tokens`: log(1 + response word tokens).

## Data and licenses
Trained only on redistributable data:
{licenses}

Labels: HaluEval QA one-turn right answer 0 / hallucinated answer 1 (context = the knowledge passage);
BEGIN dev Fully attributable 0, Not fully attributable 1, Generic 1 (a generic reply is not supported by the
knowledge; BEGIN's binary task is Fully vs the rest). Training rows: {train_rows}.

Split: SHA-256 of a group key (HaluEval: knowledge + question, so both answers to a question fall together;
BEGIN: source + knowledge + message, so the four models' replies to one turn fall together); hash mod 10 < 3
is held out (≈30 %). No setting was tuned on the held-out part: C = 1 is fixed; each (dataset family, class)
cell gets the same total sample weight (HaluEval is 50 % positive, BEGIN ≈ 77 %), so 0.5 sits between the
classes. That weighting and keeping `log_tokens` were chosen by grouped 5-fold cross-validation on the train
part only (see "What was tried"). HaluEval QA multi-turn shares its questions with the one-turn file, so only its
held-out questions are evaluated and it never trains.

## Held-out metrics
Plain baseline = 1 - mean over response sentences of the best-sentence cosine to the context, scored on the
same rows, thresholded at 0.5. Published: HaluEval's ChatGPT-as-judge accuracy on QA is 62.59 % (Li et al.
2023, on their filtered 10K QA set, not this 500-question generation file). The baseline is inverted on
HaluEval (AUC < 0.5): right answers are short spans ("Delhi") whose cosine to a whole context sentence is
low, while hallucinated answers are full sentences reusing the context's wording. The faithfulness probes
(`evaluators/training/hallucination_probes.py`) were written on 2026-11-27 by a separate agent session that
never saw this repository: 40 invented contexts, each with a supported answer reworded in other words, a
supported answer close to the context's wording, an answer adding an unsupported fact and a contradiction.
They measure what the benchmarks above cannot: HaluEval's right answers are spans of the knowledge and BEGIN's
attributable replies mostly copy it, so nothing here teaches that new wording can be faithful. The head flags
every reworded faithful answer (40 of 40) and catches only 15 of 40 contradictions; that takes entailment (an
NLI model, none offline here) or the optional LLM judge (`judge.*`, ragas Faithfulness). Faithfulness set B
(`evaluators/training/hallucination_set_b.py`) was written blind the same day by another session that saw
neither the repository nor the probes: 60 invented contexts in twelve domains (software docs, support
articles, drug leaflets, contracts, timetables, banking terms ...), each with a user question and four
answers of similar length and style: faithful mostly in other words, faithful mixing the context's phrases
with new wording (as retrieval-augmented assistants answer), one adding an unsupported detail, and a
contradiction. The head flags 51 of 60 reworded faithful answers but only 9 of 60 mixed-wording ones, and
catches 56 of 60 unsupported details and 42 of 60 contradictions.

| held-out set | metric | lookout | baseline |
|---|---|---|---|
{metrics}

## What was tried
Measured 2026-11-27. "CV" = grouped 5-fold cross-validation on the train part, as HaluEval AUC / BEGIN balanced
accuracy; "held-out" = the held-out rows above. Each rule was fixed before its run: set B as training rows needed
HaluEval and BEGIN to fall by at most 0.01, no row to fall to the baseline, at most half of the probes' reworded
answers flagged, at least 0.9 of their unsupported facts still caught and their AUC at 0.571; a lexical fix needed
no CV fall above 0.005 and the best mean of the two; a nonlinear head a mean rise of 0.005 with neither falling.
The set B run was `scripts/explore_hallucination_rows.py`, removed from the repository after commit 096e08f
(`git show 096e08f:scripts/explore_hallucination_rows.py`).

{tried}

The eight features cannot tell a reworded faithful answer from one that adds a claim: both have low word recall
and similar cosine to the context.

## Known blind spots
- Paraphrased contradictions that reuse the context's words ("founded after 1990" vs "before 1990") and
  swapped roles between entities that are both in the context ("A beat B" vs "B beat A") keep high overlap
  and high cosine: the features cannot see them; only the negation cue is checked.
- Wrong answers copied from elsewhere in the context (another entity, another date that is present) look
  supported.
- World knowledge: a true fact that is simply not in the context counts as unsupported, and a false claim
  the context also makes counts as supported.
- Faithful answers in other words than the context are flagged: all 40 reworded answers of the faithfulness
  probes and 51 of set B's 60 score ≥ 0.5 (the features reward copying: content-word recall and cosine to the
  context's sentences); answers that mix the context's phrases with new wording fare better (9 of 60
  flagged). On RAG traffic whose model paraphrases, expect false alarms; use the LLM judge on flagged
  records (their scores sit near 1, so a higher threshold does not help).
- Probes (context: "The Eiffel Tower was completed in 1889 for the World's Fair in Paris. It is 330 metres
  tall and was designed by Gustave Eiffel's company."; measured 2026-11-27 with this version): "The Eiffel
  Tower was not completed in 1889." scores 0.28 (missed: negation is one weak feature); "The tower, finished
  in 1889 for the World's Fair, rises 330 metres above Paris. Gustave Eiffel's firm designed it." scores 0.68
  (false alarm); "It was completed in 1925 by Napoleon in Lyon." scores 1.00.
- Length: on HaluEval right answers are short spans and hallucinated ones full sentences, so
  `log_tokens` partly learns "long answers are suspicious"; long well-grounded responses rely on the
  overlap features to stay low. Calibrate the threshold on your own traffic.
- A possessive ("Tuesday's") counts as a new name, and a day or amount the user's question gave ("on a
  Wednesday", "a $50 order") counts as new: the question is not read as support.
- Lexical features are English-centric (stopword list, capitalisation for entities); other languages get
  only the embedding features' support (MiniLM is mostly English too).
- Context beyond 24 selected sentences (chosen by word overlap with the response) and responses beyond 24
  sentences are not embedded.
"""
