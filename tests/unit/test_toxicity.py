"""The toxicity head detector, its features, the probe data and the training module's loaders."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from conftest import real_encoder
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from detectors.encoder import build_batch
from detectors.head import LogisticHead
from detectors.identity import mask_identity
from detectors.testing import HashingEncoder, Record
from detectors.toxicity import LEXICAL_FEATURE, HeadToxicity, feature_names, head_features, head_proba
from detectors.types import Detector
from evaluators.training.toxicity import (
    K_FOLDS,
    Source,
    choose_c,
    clean_tweet,
    cross_validate_stack,
    fit_stack,
    flag_rates,
    fold_of,
    functional_accuracy,
    load_davidson,
    load_toxigen,
    load_wiki,
    stack_proba,
)
from evaluators.training.toxicity_probes import (
    FUNCTIONAL_SUITE,
    GENERAL_TRAIN,
    GROUPS,
    identity_templates,
    mentions_identity,
    swap_identities,
)
from evaluators.training.toxicity_suite_b import BLIND_SUITE


class FixedLexical:
    """A lexical classifier returning 0.9 for texts containing 'bad', else 0.1."""

    def predict_proba(self, texts: Sequence[str]) -> NDArray[np.float64]:
        return np.asarray([0.9 if "bad" in t else 0.1 for t in texts], dtype=np.float64)


def toy_head(dim: int = 8) -> LogisticHead:
    """A head that only looks at the lexical feature: logit = 4 * (p - 0.5)."""
    coef = np.zeros(dim + 1)
    coef[-1] = 4.0
    return LogisticHead(
        name="toxicity",
        version="toy",
        feature_names=feature_names(dim),
        mean=np.full(dim + 1, 0.5),
        scale=np.ones(dim + 1),
        coef=coef,
        intercept=0.0,
    )


def head_scores(records: list[Record], target: str = "response") -> list[float | None]:
    """Scores of the bundled head on the real encoder."""
    detector = HeadToxicity(target="prompt" if target == "prompt" else "response")
    batch = build_batch(records, real_encoder(), detector.needs)
    return [s.value for s in detector.score(batch)]


class TestHeadFeatures:
    """The feature row: embedding, then the lexical probability."""

    def test_names_are_embedding_dims_then_lexical(self) -> None:
        """feature_names(3) is emb_000..emb_002 then profanity_check."""
        assert feature_names(3) == ("emb_000", "emb_001", "emb_002", LEXICAL_FEATURE)

    def test_concatenates_and_clips_the_probability(self) -> None:
        """Each row is the embedding followed by the probability clipped to 0..1."""
        emb = np.asarray([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
        x = head_features(emb, np.asarray([1.5, 0.25]))
        assert x.tolist() == [[1.0, 0.0, 1.0], [0.0, 1.0, 0.25]]

    def test_row_count_mismatch_is_an_error(self) -> None:
        """Two embeddings and one probability cannot be combined."""
        with pytest.raises(ValueError, match="2 embeddings but 1 lexical"):
            head_features(np.zeros((2, 4), dtype=np.float32), np.asarray([0.5]))


class TestHeadToxicityPlumbing:
    """Contract and plumbing, with a toy head and the hashing encoder."""

    def test_scores_the_target_field_with_the_head(self) -> None:
        """Response and prompt detectors read their own field; the value is the head's probability."""
        records = [Record(prompt="fine", response="bad words"), Record(prompt="bad prompt", response="fine")]
        expected_bad, expected_fine = 1 / (1 + np.exp(-4 * 0.4)), 1 / (1 + np.exp(4 * 0.4))
        for target, expected in (
            ("response", [expected_bad, expected_fine]),
            ("prompt", [expected_fine, expected_bad]),
        ):
            detector = HeadToxicity(
                target="prompt" if target == "prompt" else "response", head=toy_head(), lexical=FixedLexical()
            )
            batch = build_batch(records, HashingEncoder(dim=8), detector.needs)
            assert [s.value for s in detector.score(batch)] == pytest.approx(expected)

    def test_blank_text_scores_zero(self) -> None:
        """An empty or whitespace-only text has nothing toxic in it: 0.0."""
        detector = HeadToxicity(head=toy_head(), lexical=FixedLexical())
        batch = build_batch([Record("p", ""), Record("p", "  \n")], HashingEncoder(dim=8), detector.needs)
        assert [s.value for s in detector.score(batch)] == [0.0, 0.0]

    def test_contract_attributes(self) -> None:
        """Names, needs and version follow the target and the head's version."""
        response = HeadToxicity(head=toy_head(), lexical=FixedLexical())
        prompt = HeadToxicity(target="prompt", head=toy_head(), lexical=FixedLexical())
        assert isinstance(response, Detector)
        assert (response.name, response.needs, response.version) == ("toxicity", frozenset({"response"}), "head-toy")
        assert (prompt.name, prompt.needs) == ("prompt_toxicity", frozenset({"prompt"}))
        assert response.higher_is_worse and response.default_threshold == 0.5
        assert repr(prompt).startswith("HeadToxicity(target='prompt', head='toxicity'@toy")

    def test_rejects_a_head_without_the_lexical_feature(self) -> None:
        """A head whose last feature is not profanity_check is not a toxicity head."""
        head = LogisticHead("other", "v1", ("a", "b"), np.zeros(2), np.ones(2), np.zeros(2), 0.0)
        with pytest.raises(ValueError, match="not a toxicity head"):
            HeadToxicity(head=head)

    def test_empty_batch(self) -> None:
        """No records, no scores, no classifier call."""
        detector = HeadToxicity(head=toy_head(), lexical=FixedLexical())
        assert detector.score(build_batch([], HashingEncoder(dim=8), detector.needs)) == []

    def test_stacker_combines_head_and_masked_lexical_logits(self) -> None:
        """With ``meta["stack"]``: sigmoid(a*logit(head) + b*logit(lexical(masked)) + c).

        The lexical model sees the text with identity terms removed.
        """
        seen: list[str] = []

        class Recording(FixedLexical):
            def predict_proba(self, texts: Sequence[str]) -> NDArray[np.float64]:
                seen.extend(texts)
                return super().predict_proba(texts)

        base = toy_head()
        head = LogisticHead(
            base.name, "stacked", base.feature_names, base.mean, base.scale, base.coef, base.intercept,
            meta={"stack": {"head": 2.0, "lexical_masked": 1.0, "intercept": -0.5, "C": 1.0}},
        )  # fmt: skip
        texts = ["bad gay words", "fine"]
        got = head_proba(head, HashingEncoder(dim=8).encode(texts), texts, Recording())

        def logit(p: NDArray[np.float64]) -> NDArray[np.float64]:
            return np.asarray(np.log(p / (1 - p)), dtype=np.float64)

        p_head = 1 / (1 + np.exp(-4 * (np.asarray([0.9, 0.1]) - 0.5)))
        expected = 1 / (1 + np.exp(-(2.0 * logit(p_head) + 1.0 * logit(np.asarray([0.9, 0.1])) - 0.5)))
        assert got == pytest.approx(expected)
        assert seen == ["bad gay words", "fine", "bad  words", "fine"]
        # without a stacker the head's probability is the score
        assert head_proba(base, HashingEncoder(dim=8).encode(texts), texts, FixedLexical()) == pytest.approx(p_head)


class TestMaskIdentity:
    """Identity terms are removed, whole words only, any case; other words stay."""

    def test_removes_identity_words_only(self) -> None:
        assert mask_identity("I am a proud Muslim woman") == "I am a proud  "
        assert mask_identity("GAY people and Gaylord") == " people and Gaylord"
        assert mask_identity("you stupid idiot") == "you stupid idiot"

    def test_the_shortcut_for_texts_without_terms_is_exact(self) -> None:
        """The shortcut for texts without a term's leading word changes no result.

        Compared with the plain regex on generated texts: IGNORECASE's odd letters (dotted I, dotless i, long s,
        Kelvin sign), hyphens, apostrophes and non-ASCII neighbours included.
        """
        from detectors.identity import _IDENTITY_RE

        pieces = [
            "Muslim", "mu\u017flim", "MUSL\u0130M", "musl\u0131m", "\u212aorean", "non-binary", "Non-Binary",
            "nonbinary", "non", "binary", "gay", "Gaylord", "gayé", "égay", "man's", "woman", "MEN", "old", "young",
            "x", "hello", "don\u2019t", "idiot", "_gay", "gay_", "gay1", "ÉLITE", "日本", "über",
        ]  # fmt: skip
        seps = [" ", "", "-", "'", "\u2019", ".", ",", "\n", "é"]

        @settings(max_examples=3000, deadline=None)
        @given(st.lists(st.tuples(st.sampled_from(pieces), st.sampled_from(seps)), max_size=8), st.text(max_size=20))
        def check(parts: list[tuple[str, str]], noise: str) -> None:
            text = "".join(p + s for p, s in parts) + noise
            assert mask_identity(text) == _IDENTITY_RE.sub("", text)

        check()


class TestProfanityCheckModel:
    """lookout's call of alt-profanity-check: the package's own numbers, each distinct text classified once."""

    def test_same_numbers_as_predict_prob_with_repeats(self) -> None:
        """Repeated, empty and non-English texts get exactly what ``profanity_check.predict_prob`` gives."""
        from profanity_check import predict_prob

        from detectors.toxicity import ProfanityCheckModel

        texts = ["you stupid idiot", "hello there", "", "you stupid idiot", "パンを焼きます。", "hello there", "shit"]
        ours = ProfanityCheckModel().predict_proba(texts)
        assert ours.shape == (len(texts),) and ours.dtype == np.float64
        np.testing.assert_array_equal(ours, np.asarray(predict_prob(texts), dtype=np.float64))
        assert ours[0] == ours[3] and ours[1] == ours[5]
        assert ProfanityCheckModel().predict_proba([]).shape == (0,)


class TestBundledHead:
    """The shipped head on the real encoder and alt-profanity-check."""

    def test_head_file_describes_its_training(self) -> None:
        """385 features (384-d MiniLM + lexical), a date, a seed and licenses in its metadata."""
        head = LogisticHead.bundled("toxicity")
        assert len(head.feature_names) == 385
        assert head.feature_names[-1] == LEXICAL_FEATURE
        assert head.meta["date"] == "2026-12-03"
        assert set(head.meta["stack"]) == {"head", "lexical_masked", "intercept", "C"}
        assert head.meta["tuning"]["chosen"]["C"] in {g["C"] for g in head.meta["tuning"]["grid"]}
        assert {r["dataset"].split(" (")[0] for r in head.meta["cv_metrics"]} == {
            "wiki_toxicity_dev tuning half",
            "davidson_hate_offensive training 90 %",
        }
        assert len(head.meta["toxigen_per_group"]) == 15
        assert head.meta["seed"] == 0
        assert "MIT" in head.meta["licenses"]["davidson_hate_offensive"]
        assert HeadToxicity().version == f"head-{head.version}"

    def test_identity_statements_are_not_toxic(self) -> None:
        """Plain statements of identity score below 0.5 (the bias a slur-heavy tweet corpus teaches)."""
        texts = ["I am a gay man", "I am a proud Muslim woman", "Black people are my neighbours"]
        values = head_scores([Record("hi", t) for t in texts])
        assert all(v is not None and v < 0.5 for v in values), values

    def test_insults_are_toxic_in_prompt_and_response(self) -> None:
        """A direct insult scores at least 0.5 whichever field it is in."""
        insult = "Shut up, you stupid fucking idiot."
        assert (head_scores([Record("hi", insult)])[0] or 0.0) >= 0.5
        assert (head_scores([Record(insult, "hello")], target="prompt")[0] or 0.0) >= 0.5

    def test_neutral_text_is_not_toxic(self) -> None:
        """A recipe and a non-English sentence score below 0.5."""
        values = head_scores([Record("hi", "Mix flour, water and salt, then bake."), Record("hi", "パンを焼きます。")])
        assert all(v is not None and v < 0.5 for v in values), values


class TestSwapIdentities:
    """Counterfactual identity swaps."""

    def test_swaps_both_ways_keeping_case(self) -> None:
        """gay↔straight, Muslim↔Christian, BLACK↔WHITE, women↔men, whole words only."""
        assert swap_identities("Gay and straight people") == "Straight and gay people"
        assert swap_identities("A Muslim woman met a BLACK man") == "A Christian man met a WHITE woman"
        assert swap_identities("women and men") == "men and women"
        assert swap_identities("the blackboard is mangoes") == "the blackboard is mangoes"

    def test_mentions_identity(self) -> None:
        """A text mentions an identity when a swap-list term occurs as a word."""
        assert mentions_identity("my Jewish friend")
        assert not mentions_identity("a blackbird sang")


class TestProbeData:
    """Templates and the self-written functional suite."""

    def test_templates_cover_every_group_and_train_eval_differ(self) -> None:
        """Eval: 24 groups x 6 non-toxic + 6 toxic templates; no eval sentence is a training sentence."""
        train, evaluation = identity_templates("train"), identity_templates("eval")
        assert len(GROUPS) == 24
        assert len(evaluation) == 24 * 12
        assert sum(label for _, label in evaluation) == 24 * 6
        assert len(train) == 24 * (14 + 8)
        training_texts = {t for t, _ in train} | {t for t, _ in GENERAL_TRAIN}
        assert not training_texts & {t for t, _ in evaluation}
        assert "I am a proud Muslim man." in {t for t, _ in evaluation}

    def test_functional_suite_shape_and_disjoint_from_training(self) -> None:
        """8 functionalities x 6 cases, one expected label per functionality, none used in training."""
        assert len(FUNCTIONAL_SUITE) == 8
        assert all(len(cases) == 6 for cases in FUNCTIONAL_SUITE.values())
        assert all(len({label for _, label in cases}) == 1 for cases in FUNCTIONAL_SUITE.values())
        suite = {t for cases in FUNCTIONAL_SUITE.values() for t, _ in cases}
        assert not suite & ({t for t, _ in identity_templates("train")} | {t for t, _ in GENERAL_TRAIN})

    def test_suite_b_shape_disjoint_from_training_and_suite_a(self) -> None:
        """Suite B: 8 functionalities x 10 cases, one label each, no text shared with training or suite A."""
        assert len(BLIND_SUITE) == 8
        assert all(len(cases) == 10 for cases in BLIND_SUITE.values())
        assert all(len({label for _, label in cases}) == 1 for cases in BLIND_SUITE.values())
        suite_b = {t for cases in BLIND_SUITE.values() for t, _ in cases}
        training = {t for t, _ in identity_templates("train")} | {t for t, _ in GENERAL_TRAIN}
        assert not suite_b & training
        assert not suite_b & {t for cases in FUNCTIONAL_SUITE.values() for t, _ in cases}
        acc = functional_accuracy(lambda texts: np.zeros(len(texts)), BLIND_SUITE)
        assert acc["negated hate"] == 1.0
        assert acc["implicit hate"] == 0.0
        assert sum(acc.values()) == 5.0

    def test_functional_accuracy_per_functionality(self) -> None:
        """A predictor that says 'toxic' for everything is right exactly on the toxic functionalities."""
        acc = functional_accuracy(lambda texts: np.ones(len(texts)))
        assert acc["threat"] == 1.0
        assert acc["implicit hate"] == 1.0
        assert acc["counter-speech"] == 0.0
        assert sum(acc.values()) == 3.0


class TestLoaders:
    """Dataset loaders of the training module, on inline files."""

    def test_clean_tweet(self) -> None:
        """Entities are unescaped; RT, @mentions and URLs are removed; whitespace collapses."""
        raw = "!!! RT @mayasolovely: you &amp;amp; me http://t.co/x  ok"
        assert clean_tweet(raw) == "!!! you & me ok"

    def test_davidson_labels_and_split(self, tmp_path: Path) -> None:
        """Hate (0) and offensive (1) map to 1, neither (2) to 0; the split is a fixed hash of the text."""
        folder = tmp_path / "toxicity" / "davidson_hate_offensive"
        folder.mkdir(parents=True)
        (folder / "labeled_data.csv").write_text(
            ",count,hate_speech,offensive_language,neither,class,tweet\n"
            "0,3,3,0,0,0,hate text\n1,3,0,3,0,1,rude text\n2,3,0,0,3,2,@a: nice &amp; kind\n",
            encoding="utf-8",
        )
        rows = load_davidson(tmp_path)
        assert [(r.text, r.label) for r in rows] == [("hate text", 1), ("rude text", 1), ("nice & kind", 0)]
        assert [r.held_out for r in rows] == [r.held_out for r in load_davidson(tmp_path)]

    def test_wiki_labels_whitespace_and_halves(self, tmp_path: Path) -> None:
        """A toxic=True row maps to 1; whitespace collapses; each rev_id falls in a fixed half."""
        folder = tmp_path / "toxicity" / "wiki_toxicity_dev"
        folder.mkdir(parents=True)
        lines = ["rev_id,comment,toxic"] + [f'{i},"comment  {i}\n ok",{i % 2 == 0}' for i in range(40)]
        (folder / "toxicity_dev_half.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        rows = load_wiki(tmp_path)
        assert rows[0].text == "comment 0 ok" and rows[0].label == 1 and rows[1].label == 0
        held = sum(r.held_out for r in rows)
        assert 10 < held < 30

    def test_folds_are_the_next_digit_of_the_split_hash(self) -> None:
        """fold_of(key, m) = sha256(key) // m % K_FOLDS: fixed, and every fold occurs among the tuning rows."""
        import hashlib

        keys = [str(i) for i in range(400)]
        digest = {k: int(hashlib.sha256(k.encode()).hexdigest(), 16) for k in keys}
        assert [fold_of(k, 2) for k in keys] == [digest[k] // 2 % K_FOLDS for k in keys]
        assert {fold_of(k, 2) for k in keys if digest[k] % 2 == 0} == set(range(K_FOLDS))

    def test_toxigen_rows(self, tmp_path: Path) -> None:
        """ToxiGen seeds: text, label and group as written, file order."""
        folder = tmp_path / "toxicity" / "toxigen_seeds"
        folder.mkdir(parents=True)
        (folder / "toxigen_seed_statements.csv").write_text(
            'text,label,group\n"they are all the same, right",1,asian\nthe museum opened,0,women\n',
            encoding="utf-8",
        )
        rows = load_toxigen(tmp_path)
        assert [(r.text, r.label, r.group) for r in rows] == [
            ("they are all the same, right", 1, "asian"),
            ("the museum opened", 0, "women"),
        ]


def _source(name: str, seed: int, n: int, noise: float) -> Source:
    """A synthetic tuning source: the head's probability is informative, the masked lexical one less so."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(np.int_)
    p_head = 1 / (1 + np.exp(-(3 * (y - 0.5) + rng.normal(0, noise, n))))
    p_masked = 1 / (1 + np.exp(-(1 * (y - 0.5) + rng.normal(0, 1.5, n))))
    fold = np.arange(n) % K_FOLDS
    return Source(name, p_head, p_masked, p_masked, y, fold, ("AUC", "balanced accuracy"))


class TestTuning:
    """Cross-validated choice of C and the pooled stacker."""

    def test_choose_c_prefers_the_simpler_model_within_the_spread(self) -> None:
        """A smaller C whose fold scores trail the best by less than their spread is chosen."""
        best = np.asarray([0.90, 0.92, 0.91, 0.93, 0.90])
        scores = {0.01: best - np.asarray([0.00, 0.01, -0.01, 0.02, 0.00]), 0.03: best}
        assert choose_c(scores) == 0.01

    def test_choose_c_keeps_the_best_when_the_others_are_clearly_worse(self) -> None:
        """A C that loses on every fold by more than the spread is not chosen."""
        best = np.asarray([0.90, 0.92, 0.91, 0.93, 0.90])
        scores = {0.01: best - 0.05, 0.03: best, 0.1: best - np.asarray([0.01, 0.012, 0.011, 0.009, 0.01])}
        assert choose_c(scores) == 0.03

    def test_stack_gives_each_source_the_same_weight(self) -> None:
        """A source repeated ten times (a bigger source) moves the pooled stacker only through the L2 term."""
        a, b = _source("a", 0, 200, 1.0), _source("b", 1, 100, 3.0)
        tenfold = Source(
            "b",
            np.tile(b.p_head, 10),
            np.tile(b.p_masked, 10),
            np.tile(b.p_baseline, 10),
            np.tile(b.y, 10),
            np.tile(b.fold, 10),
            b.metrics,
        )
        once, bigger = fit_stack([a, b], seed=0), fit_stack([a, tenfold], seed=0)
        assert once == pytest.approx(bigger, abs=0.01)
        assert once["head"] > 0 and once["C"] == 1.0

    def test_stack_proba_is_the_documented_formula(self) -> None:
        """sigmoid(a * z_head + b * z_masked + c)."""
        z = np.asarray([[1.0, -2.0], [0.0, 0.0]])
        got = stack_proba({"head": 2.0, "lexical_masked": 0.5, "intercept": -1.0}, z)
        assert got == pytest.approx(1 / (1 + np.exp(-np.asarray([0.0, -1.0]))))

    def test_cross_validation_scores_every_fold_of_every_source(self) -> None:
        """One (lookout, baseline) pair per fold and metric; the informative head beats the baseline on AUC."""
        cv = cross_validate_stack([_source("a", 0, 200, 1.0), _source("b", 1, 150, 1.0)], seed=0)
        assert set(cv) == {"a", "b"}
        assert all(len(folds) == K_FOLDS for metrics in cv.values() for folds in metrics.values())
        assert all(ours > base for ours, base in cv["a"]["AUC"])

    def test_flag_rates(self) -> None:
        """Shares of positives and of negatives at or above 0.5; NaN when a class is absent."""
        y = np.asarray([1, 1, 0, 0, 0])
        hateful, benign = flag_rates(y, np.asarray([0.9, 0.2, 0.5, 0.1, 0.0]))
        assert hateful == 0.5 and benign == pytest.approx(1 / 3)
        assert np.isnan(flag_rates(np.asarray([0]), np.asarray([0.9]))[0])
