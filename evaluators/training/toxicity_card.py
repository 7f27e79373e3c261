"""The toxicity head's model card: its markdown template, the "What was tried" table and the renderer.

Kept apart from :mod:`evaluators.training.toxicity` (training and evaluation) so that module stays short;
``toxicity.model_card`` calls :func:`render` with the training defaults.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from detectors.head import LogisticHead
from detectors.toxicity import STACK_KEY
from evaluators.quality import Tried, metric_table, tried_table


def _cv_table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "(not recorded for this version)"
    lines = [
        "| tuning data (cross-validated) | metric | lookout | baseline | spread of the difference |",
        "|---|---|---|---|---|",
    ]
    lines.extend(
        f"| {r['dataset']} | {r['metric']} | {r['lookout']:.3f} | {r['baseline']:.3f} | {r['spread']:.3f} |"
        for r in rows
    )
    return "\n".join(lines)


def _group_table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "(not recorded for this version)"
    lines = [
        "| group | hateful | flagged: lookout | flagged: baseline | benign | flagged: lookout | flagged: baseline |",
        "|---|---|---|---|---|---|---|",
    ]
    lines.extend(
        f"| {r['group']} | {r['hateful']} | {r['hateful_flagged']:.2f} | {r['baseline_hateful_flagged']:.2f} "
        f"| {r['benign']} | {r['benign_flagged']:.2f} | {r['baseline_benign_flagged']:.2f} |"
        for r in rows
    )
    return "\n".join(lines)


def _grid(tuning: Mapping[str, Any]) -> str:
    parts = []
    for g in tuning.get("grid", []):
        if "cv_auc" in g:
            parts.append(f"C={g['C']:g}: {g['cv_auc']:.4f} ± {g['cv_sd']:.4f}")
        else:  # heads before 2026-12-03 were tuned on the wiki tuning half
            parts.append(f"C={g['C']:g}: {g['tune_auc']:.4f}")
    return ", ".join(parts)


def render(head: LogisticHead, date: str, share: float) -> str:
    """The markdown card for ``head``; ``date`` and ``share`` fill in what an older head's meta lacks."""
    meta = head.meta
    tuning = meta.get("tuning", {})
    return CARD.format(
        version=head.version,
        date=meta.get("date", date),
        seed=meta.get("seed", 0),
        encoder=meta.get("encoder", ""),
        lexical=meta.get("lexical", ""),
        licenses="\n".join(f"- {k}: {v}" for k, v in meta.get("licenses", {}).items()),
        train_rows=", ".join(f"{k} {v}" for k, v in meta.get("train_rows", {}).items()),
        positive_rate=meta.get("train_positive_rate_davidson", 0.0),
        share=meta.get("template_share", share),
        grid=_grid(tuning),
        chosen=tuning.get("chosen", {}).get("C", ""),
        tune_on=tuning.get("on", ""),
        lexical_coef=head.coef[-1],
        n_features=len(head.coef),
        dim=len(head.coef) - 1,
        stack_head=meta[STACK_KEY]["head"],
        stack_lex=meta[STACK_KEY]["lexical_masked"],
        stack_b=meta[STACK_KEY]["intercept"],
        stack_c=meta[STACK_KEY]["C"],
        intercept=head.intercept,
        cv=_cv_table(meta.get("cv_metrics", [])),
        metrics=metric_table(meta),
        groups=_group_table(meta.get("toxigen_per_group", [])),
        tried=tried_table(TRIED),
        tried_toxigen=tried_table(TRIED_TOXIGEN),
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
"""Experiments of 2026-11-27 behind the card's first "What was tried" table (measured once; not re-run)."""

TRIED_TOXIGEN: tuple[Tried, ...] = (
    (
        "the 2026-11-27 stacker (fitted on the wiki tuning half alone) under 5-fold CV",
        "wiki AUC difference to the baseline +0.000 ± 0.012, F1@0.5 -0.051 ± 0.127, balanced accuracy -0.027 ± 0.076; "
        "Davidson balanced accuracy -0.008 ± 0.006",
        "replaced by the pooled stacker: same AUC, F1 and balanced accuracy spreads halved",
    ),
    (
        "pooled stacker (wiki tuning half + Davidson out-of-fold rows, equal weight per source)",
        "wiki -0.000 ± 0.011 / +0.001 ± 0.051 / +0.006 ± 0.033; Davidson AUC +0.000 ± 0.000, balanced accuracy "
        "-0.009 ± 0.004; Davidson at 0.5 / 2 / 4 times wiki's weight: no row better by more than its spread",
        "adopted (equal weights)",
    ),
    (
        "C = 0.01 in the grid (0.01 / 0.03 / 0.1), pooled stacker",
        "CV score 0.9844 ± 0.0090 / 0.9842 ± 0.0083 / 0.9845 ± 0.0081, so the rule picks 0.01; but (e) quoting "
        "1.0 → 0.9 and harmless words 1.0 → 0.9, Davidson held-out balanced accuracy 0.935",
        "0.01 dropped from the grid (a guarded row fell)",
    ),
    (
        "stacker intercept shifted by -0.5 / -0.25 / +0.25 / +0.5 (the flag threshold)",
        "wiki balanced accuracy difference +0.020 / +0.006 / -0.034 / -0.043, Davidson -0.020 / -0.014 / -0.005 / "
        "-0.002 (unshifted: +0.006 / -0.009)",
        "no shift beats the baseline on both; the unshifted fit has the best mean",
    ),
    (
        "class-balanced pooled stacker; unmasked lexical probability as a third stacker input",
        "Davidson balanced accuracy -0.013 ± 0.003; unmasked input: wiki AUC +0.001 ± 0.006 but 8.3 % of non-toxic "
        "identity templates flagged and suite (d) 0.479",
        "not adopted (identity fairness)",
    ),
    (
        "to stop losing Davidson balanced accuracy (2026-12-03, same out-of-fold rows, C = 0.03): a stacker with its "
        "own weights for texts that name a group (5 inputs); logit(head) x logit(lexical) as a third input; each "
        "with per-source class-balanced weights",
        "difference to the baseline, wiki / Davidson balanced accuracy: shipped -0.012 ± 0.026 / -0.009 ± 0.001; "
        "group-gated -0.026 / -0.008, balanced +0.018 / -0.007; product term +0.016 / -0.017, balanced +0.031 / "
        "-0.022. 87 % of Davidson's tweets name no group, so the gate cannot reach the loss",
        "not adopted: none closes the Davidson gap and each trades it against wiki; alt-profanity-check was "
        "trained on Davidson, so its operating point there is in-sample",
    ),
    (
        "ToxiGen seeds alone, logistic regression on the embedding (the ceiling of this form)",
        "group-held-out AUC 0.907 (5 grouped folds, C = 0.01), 0.899 (leave one group out); hateful flagged at 5 % of "
        "benign flagged: 0.58 / 0.60",
        "the goal (0.70 at 0.05) is above what a linear head on MiniLM reaches here",
    ),
    (
        "ToxiGen seeds in the head's training at 0.05 / 0.1 / 0.3 of Davidson's weight",
        "group-held-out hateful / benign flagged with the pooled stacker 0.38 / 0.05 (0.05 and 0.1; C = 0.03); the "
        "head alone at 0.3: 0.58 / 0.12, its wiki tuning-half AUC 0.973 → 0.959; at 0.05: wiki CV AUC -0.004 ± "
        "0.007, counter-speech (d) 0.667 → 0.333, (e) 0.6 → 0.5",
        "rejected: counter-speech is a guarded row",
    ),
    (
        "ToxiGen seeds as a third source of the pooled stacker (half a source's weight)",
        "hateful / benign flagged 0.46 / 0.11; Davidson CV balanced accuracy -0.034 ± 0.005; counter-speech (d) 0.333",
        "rejected",
    ),
    (
        "a second, implicit-hate head (embedding only; ToxiGen seeds, templates and Davidson's 'neither' tweets at "
        "0.3 of the seeds' weight, C = 0.01), combined by max after a threshold t on its probability",
        "its own group-held-out AUC 0.883. t = 0.8: hateful / benign flagged 0.49 / 0.04, (e) implicit hate 0 → 4/10, "
        "but (d) negation 0.5 → 0.33, counter-speech 0.67 → 0.33, quoting 0.67 → 0.5, (e) negation 0.8 → 0.6, "
        "counter-speech 0.6 → 0.4, quoting 1.0 → 0.8. t = 0.9: 0.40 / 0.04, still -1 case in three guarded rows. "
        "t = 0.98 (the lowest with no guarded row worse): 0.30 / 0.03, (e) implicit hate 2/10",
        "not adopted: where no guarded row falls, the gain is within the fold spread; the simpler form ships",
    ),
    (
        "that head on the ToxiGen seeds alone",
        "its AUC 0.907, but at t = 0.8 Davidson CV balanced accuracy -0.166",
        "rejected",
    ),
    (
        "8 self-written counter-speech, quoting and negation frames around training-fold hateful seeds (label 0) "
        "in that head",
        "its group-held-out AUC 0.883 → 0.843; t = 0.8: 0.42 / 0.05 with (d) counter-speech and (e) negation -1 "
        "case each; never a guarded row kept above 0.30 hateful flagged",
        "rejected: a frame barely moves a mean-pooled embedding",
    ),
    (
        "MiniLM's intermediate layers: a mean-pooled earlier layer (3 or 4 of 6) beside the sentence vector, from the "
        "same forward pass; all six layers; max pooling; ToxiGen seeds alone, 5 grouped folds, 4 heads per input "
        "(research/toxigen_layers.py)",
        "AUC 0.929 to 0.931 and hateful flagged at 5 % of benign 0.64 to 0.66 (logistic C = 1; a 64-unit MLP 0.665), "
        "0.68 standardised at C = 0.01 (the shipped head's form), against 0.909 / 0.57 for the sentence vector alone; "
        "all six layers 0.66 to 0.67; max pooling 0.47 to 0.49. The best of 40 input-and-head pairs is picked on the "
        "test folds, so 0.68 is optimistic",
        "not built: below 0.70 even before Davidson and the guarded rows (which cost the sentence-vector head its "
        "ToxiGen gains above); the encoder would return a second vector per text",
    ),
    (
        "the shipped trainer (C = 0.03, the pooled stacker, every guarded row) over layers 6 + 3 instead of the "
        "sentence vector, without and with the ToxiGen seeds at 0.1 of Davidson's weight (scratch probe, 2026-12-03)",
        "without the seeds: ToxiGen AUC 0.732, (d) counter-speech 0.667 → 0.333, (e) 0.6 → 0.5. With them, group-held-"
        "out: AUC 0.803, hateful / benign flagged 0.45 / 0.07, hateful at 5 % of benign 0.40; (e) implicit hate 2/10, "
        "negation 0.8 → 0.7, quoting 1.0 → 0.9; Davidson balanced accuracy 0.942 (baseline 0.942)",
        "rejected: counter-speech falls even without the seeds, and with them benign flags pass 5 %",
    ),
    (
        "MiniLM fine-tuned end to end as a classifier on the seeds (3 epochs, AdamW 3e-5, batch 16; 5 grouped folds)",
        "AUC 0.910, hateful flagged at 5 % of benign 0.58 (fold AUCs 0.85 to 0.96)",
        "no better than a linear head on its layers, at a second transformer pass per text",
    ),
)
"""Experiments of 2026-12-03 (issue 26) behind the card's second table (exploration; CV numbers are fold means ±
fold-to-fold standard deviation of lookout minus baseline; measured once, not re-run by training)."""

CARD = """# toxicity head — model card

Version `{version}`, trained {date}, seed {seed}, encoder {encoder}, lexical feature {lexical}.
Retrain: `lookout train-heads --data DIR` (DIR = the shared datasets root; `--only toxicity` for this head);
measure: `lookout eval --data DIR`.
Code: `evaluators/training/toxicity.py` (training, evaluation), `evaluators/training/toxicity_card.py` (this
card), `evaluators/training/toxicity_probes.py` (self-written templates, swap list, functional suite),
`evaluators/training/toxicity_suite_b.py` (functional suite B, written blind), `detectors/toxicity.py`
(`HeadToxicity`).

## What it scores
`toxicity` (the response) or `prompt_toxicity` (the prompt) in 0..1, higher = more toxic; 0.5 is the
default flag threshold; a blank text scores 0.0. Logistic regression over {n_features} standardised features:
the {dim}-d embedding the batch already computed for the field ({encoder}), and alt-profanity-check's
probability for the same text (weight {lexical_coef:+.3f} on the standardised scale; intercept
{intercept:+.3f}), then stacked:
`sigmoid({stack_head:+.3f} * logit(head) {stack_lex:+.3f} * logit(lexical(masked)) {stack_b:+.3f})`
where *masked* is the text with identity terms removed (`detectors/identity.py`: "I am a gay man" keeps
only "I am a"), so alt-profanity-check no longer fires on the group's name while slurs and insults stay.
The three stacker weights are fitted by cross-validation on the head's out-of-fold probabilities over the wiki
tuning half and Davidson's training tweets, each source with the same total weight (C = {stack_c:g}, fixed),
so 0.5 is a calibrated threshold on both. Cost per text: the shared embedding plus two alt-profanity-check
calls (microseconds). The cascade's fast tier (docs/cascade.md) gets the same trainer, data and stacker over the
static encoder's embeddings (`lookout train-heads --tier fast`, card `detectors/heads/fast/toxicity.md`).

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

## Split and tuning
Davidson rows whose SHA-256(cleaned text) % 10 == 0 are held out (≈10 %). wiki_toxicity_dev is split by
SHA-256(rev_id) % 2: the even half tunes, the odd half is held out and only reported. Tuning is
{tune_on}: for each C the head is fitted five times, each time without one fold, and predicts that fold; the
stacker is fitted on four folds' out-of-fold rows and scored on the fifth. Mean fold score (mean of the
two sources' AUCs) ± fold-to-fold spread: {grid}. Chosen C = {chosen}: the smallest (simplest) C whose score
is within the fold-to-fold spread of the best. The head itself never trains on wiki text. The identity-term
list is general (sexuality, gender, religion, ethnicity, nationality, migration, disability) but covers the
24 groups of the self-written templates (c), so (c) is easier for the masked lexical part than unseen groups
would be.

Cross-validated quality of the chosen C (fold means; spread = standard deviation over the five folds of
lookout minus baseline; a difference smaller than its spread is noise):

{cv}

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
training rows; it is committed as written, evaluation only. (f) toxigen_seeds: ToxiGen's human-curated seed
statements (546 implicitly hateful, 445 benign mentions of the same 15 groups); the head never trained on them,
so every group is held out. The wiki held-out half (382 comments) is small: its fold-sized pieces differ from
each other by about ±0.01 AUC, so read it with the cross-validated table above.
**Not blind:** the stacker's design (identity masking; no class weights) was chosen on 2026-11-27 after
seeing held-out numbers as well as tuning-half ones, and on 2026-12-03 the rejected ToxiGen variants were
judged on (d), (e) and (f) as well as on cross-validation (see "What was tried").

| held-out set | metric | lookout | baseline | published |
|---|---|---|---|---|
{metrics}

ToxiGen seeds per group, share flagged at 0.5 (groups are ToxiGen's: `lgbtq` and `bisexual` overlap, and so do
`mexican` and `latino`):

{groups}

## What was tried
Measured 2026-11-27. The stance rows are 260 sentences written by a third author, blind to (d) and (e): 45
negated hateful claims and the same 45 asserted, 40 counter-speech, 40 quotes and reports of hate, 45 implicit
hate, 45 neutral mentions of groups, over 20+ groups. They and their script were removed from the repository
(`git show 8c0e4cb:scripts/toxicity_stance_rows.py`, `git show 53908f2:scripts/explore_toxicity_stance.py`).
The rule for the stance rows, fixed before the run: adopt only if (d) and (e) both improve and no other row
falls by more than 0.005.

{tried}

Measured 2026-12-03 (ToxiGen seeds, issue 26). ToxiGen numbers are group-held-out: five folds by target group
(`lgbtq` alone; the other 14 groups spread to balance the folds), so a group's statements are never in both a
training and a test fold. The guarded rows, set by the issue before the runs: identity-template fairness,
reclaimed use, counter-speech and quoting in (d) and (e) must not get worse (negation was added here, as the
same failure), and wiki and Davidson rows must stay within their fold-to-fold spread of the baseline. The
exploration scripts are not kept.

{tried_toxigen}

Sentences written by language-model sessions share a style, so (d) and (e) reward a model trained on such
sentences more than real traffic would; lookout does not ship one. Reading stance in real text needs a
fine-tuned encoder (the detoxify backend) or labelled real counter-speech, which is not here; so does implicit
hate: every cheap way to add the ToxiGen seeds flagged counter-speech and negations that repeat a hateful claim
as readily as the claim itself.

## What was not reached (issue 26)
- ToxiGen seeds, group-held-out, ≥ 70 % of hateful statements flagged with ≤ 5 % of benign ones: not reached
  (see (f)); the best linear head on this embedding flags about 60 % at 5 % (about 68 % with an earlier MiniLM
  layer beside it, trained on the seeds alone), and no variant that flagged more than about 30 % kept the guarded
  rows. Reaching 70 % with them kept needs a stronger encoder (a fine-tuned toxicity model), not offline here;
  `lookout eval --backend toxicity=PATH` measures a detoxify checkpoint on these rows once one is on disk.
- Functional suites toward 75 %: (e) is at its previous level (0.750); its implicit-hate row is still 0 of
  10. (d) fell from 0.646 to 0.604: "Immigrants are a plague on this country." and "You'd better watch your
  back, I know where you live." scored 0.52 with the 2026-11-27 version and 0.49 with this one (the pooled
  stacker gives the lexical part a little more weight); both sat on the threshold.
- Never below alt-profanity-check on a wiki or Davidson row: within the fold-to-fold spread on every row except
  Davidson's balanced accuracy (see the cross-validated table), which no threshold fixes without losing more
  on wiki.

## Known blind spots
- Implicit hate without insulting words is mostly missed: see (f) and suite B's implicit-hate row; stereotypes
  ("Jews control the banks", "Women belong in the kitchen"), dehumanising comparisons ("<group> people are a
  disease") and indirect threats ("Keep talking and you'll end up in a ditch") score low.
- Profanity without a target ("Holy shit, this pizza is fucking amazing") is flagged: Davidson labels
  profanity offensive. Deployments that only want abuse or hate should raise the threshold or use detoxify.
- Negated and counter-speech statements that repeat a hateful phrase ("I don't hate gay people", "Calling
  immigrants vermin is disgusting") are often flagged: the embedding sees the topic, not the stance.
- Reclaimed slurs ("We're here, we're queer") can be flagged; slurs not in Davidson can be missed.
- On Wikipedia talk comments the 0.5 threshold is conservative: shouting, condescension and "you are a Mossad
  terrorist"-style attacks score lower than tweets' profanity. Lowering the threshold raises recall there but
  also flags identity statements again.
- English only: MiniLM and alt-profanity-check are English models; other languages score low (not safe).
- The identity-template set (c) shares the 24 groups with training (templates differ) and was visible while
  fixing the template weight, and the functional suite (d) is written by the same author as the training
  templates: both are checks, not independent benchmarks. Suite B (e) was written blind, but by a language
  model session, not by annotators, and three of its harmless idioms ("Shoot me an email...", "She killed it
  at...", "kill the process") coincide with training sentences.
"""
