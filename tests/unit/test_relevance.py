"""The relevance detector (trained head over cosine + lexical features) and its training module."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from conftest import real_encoder

from agent.types import Sample
from detectors.encoder import build_batch
from detectors.head import LogisticHead
from detectors.relevance import FEATURES, EmbeddingRelevance, compute_features, conversation_cosine, previous_turns
from detectors.testing import HashingEncoder, Record, Turn
from detectors.types import Encoder
from evaluators.training import relevance as training

TS = datetime(2026, 1, 1, tzinfo=UTC)


def scores(pairs: list[tuple[str, str]], detector: EmbeddingRelevance, encoder: Encoder) -> list[float | None]:
    items = [Sample(id=str(i), ts=TS, prompt=p, response=r, context=()) for i, (p, r) in enumerate(pairs)]
    return [s.value for s in detector.score(build_batch(items, encoder, detector.needs))]


def fixed_head(coef: tuple[float, float, float], intercept: float = 0.0) -> LogisticHead:
    return LogisticHead(
        name="relevance",
        version="test",
        feature_names=FEATURES,
        mean=np.zeros(3),
        scale=np.ones(3),
        coef=np.asarray(coef, dtype=np.float64),
        intercept=intercept,
    )


RELEVANT = [
    (
        "How do I bake bread?",
        "To bake bread, mix flour, water, yeast and salt, knead the dough, let it rise, then bake.",
    ),
    ("What is the capital of France?", "The capital of France is Paris."),
    ("How do I reverse a list in Python?", "Use my_list.reverse() in place, or my_list[::-1] for a reversed copy."),
    ("Why is the sky blue?", "The sky looks blue because air molecules scatter blue sunlight more than red light."),
    ("When was the Eiffel Tower completed?", "The Eiffel Tower was completed in 1889 for the World's Fair."),
]
OFF_TOPIC = [
    ("How do I bake bread?", "The 1998 World Cup final was played in Saint-Denis."),
    ("What is the capital of France?", "Berlin is known for its nightlife and techno clubs."),
    ("How do I reverse a list in Python?", "Cats sleep for twelve to sixteen hours a day."),
    ("Why is the sky blue?", "The stock market closed higher on Friday after strong earnings."),
    ("When was the Eiffel Tower completed?", "Photosynthesis turns carbon dioxide and water into sugar."),
]


class TestFeatures:
    """The lexical features beside the cosine."""

    def test_prompt_recall_counts_content_words_found(self) -> None:
        """Two of the prompt's four content words (capital, france, population, city) occur: recall 0.5."""
        x = compute_features(["What is the capital of France and its population city?"], ["France's capital."], [0.3])
        assert x.shape == (1, 3)
        assert x[0, 0] == pytest.approx(0.3)
        assert x[0, 1] == pytest.approx(0.5)

    def test_answer_type_present_absent_and_not_asked(self) -> None:
        """A year answers 'when' (+1), its absence is -1, and a 'how do' prompt asks for no type (0)."""
        x = compute_features(
            ["When was it built?", "When was it built?", "How many legs has a spider?", "How do I cook rice?"],
            ["It was built in 1889.", "It was built by engineers.", "A spider has eight legs.", "Boil it."],
            [0.5, 0.5, 0.5, 0.5],
        )
        assert x[:, 2].tolist() == [1.0, -1.0, 1.0, 0.0]

    def test_name_answer_must_be_new_to_the_prompt(self) -> None:
        """'Who' is answered by a capitalised name absent from the prompt, not by repeating the prompt's."""
        x = compute_features(["Who wrote Hamlet?"] * 2, ["William Shakespeare.", "Hamlet is a play."], [0.5, 0.5])
        assert x[:, 2].tolist() == [1.0, -1.0]

    def test_no_rows_and_odd_text(self) -> None:
        """No inputs give a (0, 3) array; empty, non-Latin and 100 KB texts give finite rows."""
        assert compute_features([], [], []).shape == (0, 3)
        x = compute_features(
            ["", "パンの焼き方は?", "word " * 20_000], ["", "小麦粉と水を混ぜて焼きます。", "w " * 50_000], [0, 0, 0]
        )
        assert np.isfinite(x).all()


class TestEmbeddingRelevance:
    """The detector over the bundled head and the real encoder."""

    def test_bundled_head_loads_with_versioned_name(self) -> None:
        """The no-argument constructor loads detectors/heads/relevance.json; version names the head."""
        detector = EmbeddingRelevance()
        assert detector.head.feature_names == FEATURES
        assert detector.version == f"head-{detector.head.version}"
        assert detector.version.startswith("head-logit-2026-11-27-")
        assert "EmbeddingRelevance(head='relevance'@" in repr(detector)

    def test_on_topic_answers_pass_and_off_topic_ones_flag(self) -> None:
        """Full-sentence answers score at least 0.5; unrelated sentences score below it."""
        detector = EmbeddingRelevance()
        good = scores(RELEVANT, detector, real_encoder())
        bad = scores(OFF_TOPIC, detector, real_encoder())
        assert all(v is not None and v >= 0.5 for v in good), good
        assert all(v is not None and v < 0.5 for v in bad), bad

    def test_answer_ranks_above_same_prompt_distractor(self) -> None:
        """For each prompt, its answer scores higher than another prompt's answer."""
        detector = EmbeddingRelevance()
        good = scores(RELEVANT, detector, real_encoder())
        swapped = [(p, RELEVANT[(i + 1) % len(RELEVANT)][1]) for i, (p, _) in enumerate(RELEVANT)]
        for g, s in zip(good, scores(swapped, detector, real_encoder()), strict=True):
            assert g is not None and s is not None and g > s

    def test_blank_prompt_or_response_is_none(self) -> None:
        """Nothing to relate: blank or whitespace-only prompt or response scores None."""
        values = scores([("", "An answer."), ("A question?", "  \n"), ("", "")], EmbeddingRelevance(), HashingEncoder())
        assert values == [None, None, None]

    def test_injected_head_is_applied_exactly(self) -> None:
        """A head with weight 1 on cosine only gives sigmoid(cosine) (identical texts: cosine 1)."""
        detector = EmbeddingRelevance(head=fixed_head((1.0, 0.0, 0.0)))
        (value,) = scores([("same words here", "same words here")], detector, HashingEncoder())
        assert value == pytest.approx(1.0 / (1.0 + np.exp(-1.0)))

    def test_head_with_other_features_is_rejected(self) -> None:
        """A head of another detector fails at construction with a message naming the features."""
        other = LogisticHead("toxicity", "x", ("a",), np.zeros(1), np.ones(1), np.ones(1), 0.0)
        with pytest.raises(ValueError, match="not a relevance head"):
            EmbeddingRelevance(head=other)


PUPPY = (Turn("user", "What's a good name for my new puppy?"), Turn("assistant", "How about Biscuit, Luna or Max?"))
CACTUS = (
    Turn("user", "How often should I water a cactus?"),
    Turn("assistant", "Water a cactus about once every two weeks in summer, when the soil is dry."),
)


class TestConversation:
    """Follow-up prompts are read with the previous user and assistant turns."""

    def test_previous_turns_are_the_last_user_and_assistant_turns(self) -> None:
        """System turns and blank turns are skipped; a one-shot record has none."""
        history = (Turn("system", "Be brief."), *CACTUS, Turn("user", "Thanks."), Turn("assistant", "  "))
        assert previous_turns(history) == ("Thanks.", CACTUS[1].content)
        assert previous_turns(()) == ("", "")

    def test_conversation_cosine_falls_back_to_plain_and_never_lowers_it(self) -> None:
        """Zero turn rows give the plain cosine; with turns it is the max of plain and the joined cosine."""
        rng = np.random.default_rng(0)
        p, r, u = (rng.normal(size=(4, 8)).astype(np.float32) for _ in range(3))
        p, r, u = (v / np.linalg.norm(v, axis=1, keepdims=True) for v in (p, r, u))
        plain = np.einsum("ij,ij->i", p, r)
        zero = np.zeros_like(p)
        assert conversation_cosine(p, r, zero, zero) == pytest.approx(plain)
        joined = conversation_cosine(p, r, u, zero)
        assert (joined >= plain - 1e-9).all()
        expected = np.einsum("ij,ij->i", (p + u) / np.linalg.norm(p + u, axis=1, keepdims=True), r)
        assert joined == pytest.approx(np.maximum(plain, expected))
        assert conversation_cosine(p, r, -p, zero) == pytest.approx(plain)  # prompt + turn = 0: plain, not NaN

    def test_follow_up_passes_with_history_and_off_topic_reply_still_flags(self) -> None:
        """'I like the second one.' flags alone but passes after the puppy-name turns; an unrelated reply flags."""
        detector = EmbeddingRelevance()
        items = [
            Record(
                "I like the second one.", "Luna is a lovely name for a puppy, short and easy to call.", history=PUPPY
            ),
            Record("I like the second one.", "Luna is a lovely name for a puppy, short and easy to call."),
            Record(
                "I like the second one.", "Photosynthesis turns carbon dioxide and water into sugar.", history=PUPPY
            ),
            Record(
                "And in winter?", "In winter, water it once a month or less: the cactus is dormant.", history=CACTUS
            ),
            Record("And in winter?", "The stock market closed higher on Friday after strong earnings.", history=CACTUS),
        ]
        values = [s.value for s in detector.score(build_batch(items, real_encoder(), detector.needs))]
        with_history, alone, off_topic, winter, market = values
        assert with_history is not None and alone is not None and off_topic is not None
        assert with_history >= 0.5 > alone and off_topic < 0.5, values
        assert winter is not None and market is not None and winter >= 0.5 > market, values

    def test_earlier_turns_are_encoded_once_through_the_batch(self) -> None:
        """Two records sharing the same earlier turns add one encoder call with those two texts; none without."""
        detector = EmbeddingRelevance()
        encoder = HashingEncoder()
        one_shot = [Record("What is rain?", "Water falling from clouds.")]
        detector.score(build_batch(one_shot, encoder, detector.needs))
        assert len(encoder.calls) == 1
        encoder.calls.clear()
        items = [Record("And in winter?", "Less water.", history=CACTUS), Record("Why?", "It rests.", history=CACTUS)]
        detector.score(build_batch(items, encoder, detector.needs))
        assert sorted(encoder.calls[1]) == sorted(t.content for t in CACTUS)
        assert len(encoder.calls) == 2


class TestTraining:
    """Pieces of evaluators/training/relevance.py that need no shared datasets."""

    def test_ranking_metrics_exact(self) -> None:
        """MAP/MRR of two ranked lists: ranks (2) and (1, 3) give AP 0.5 and 0.8333, RR 0.5 and 1."""
        groups = [
            (np.asarray([0.9, 0.5, 0.1]), [0, 1, 0]),
            (np.asarray([0.9, 0.5, 0.4]), [1, 0, 1]),
            (np.asarray([0.2, 0.1]), [0, 0]),
        ]
        m = training.ranking_metrics(groups)
        assert m["MAP"] == pytest.approx((0.5 + (1 + 2 / 3) / 2) / 2)
        assert m["MRR"] == pytest.approx(0.75)

    def test_held_out_split_is_deterministic(self) -> None:
        """The split is a pure function of the group key (same as the hallucination head's)."""
        keys = [f"halueval\nk{i}\nq{i}" for i in range(200)]
        first = [training.held_out(k) for k in keys]
        assert first == [training.held_out(k) for k in keys]
        assert 40 <= sum(first) <= 80

    def _write_halueval(self, folder: Path, n: int) -> None:
        folder.mkdir(parents=True)
        lines = [
            json.dumps(
                {
                    "knowledge": f"Town{i} lies on river {i}. The mayor of Town{i} is Person{i}.",
                    "question": f"Who is the mayor of Town{i}?",
                    "right_answer": f"Person{i}",
                    "hallucinated_answer": f"The mayor of Town{i} is Someone{i}.",
                }
            )
            for i in range(n)
        ]
        (folder / "qa_one-turn_data.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    def test_pairs_have_positives_and_negatives_of_each_kind(self, tmp_path: Path) -> None:
        """Each question gives 2 answers and 1 answer sentence as positives, 1 topical + 2 random + 2 hard negatives."""
        self._write_halueval(tmp_path / "halueval_qa", 6)
        questions = training.load_halueval(tmp_path / "halueval_qa")
        assert questions[0].sentences == ("The mayor of Town0 is Person0.",)
        pairs = training.make_pairs(questions, HashingEncoder(), None, seed=0)
        counts = {k: pairs.kinds.count(k) for k in set(pairs.kinds)}
        assert counts == {
            "right answer": 6,
            "hallucinated answer": 6,
            "answer sentence": 6,
            "same-passage non-answer sentence": 6,
            "random other": 12,
            "hard other": 12,
        }
        by_prompt = {q.question: q for q in questions}
        for p, r, y in zip(pairs.prompts, pairs.responses, pairs.labels, strict=True):
            q = by_prompt[p]
            if y == 1:
                assert r in q.answers + q.sentences
            else:
                assert r not in q.answers + q.sentences

    def _write_hh(self, path: Path, n: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [
            json.dumps(
                {
                    "chosen": f"\n\nHuman: How do I plant tree{i}?\n\nAssistant: Dig a hole for tree{i} and water it."
                    f"\n\nHuman: How deep?\n\nAssistant: Dig the tree{i} hole two feet deep.",
                    "rejected": "\n\nHuman: x\n\nAssistant: y",
                }
            )
            for i in range(n)
        ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def test_hh_turns_become_exchanges_with_earlier_turns(self, tmp_path: Path) -> None:
        """Each user turn of a chosen transcript gives one exchange; a follow-up carries the turns before it."""
        self._write_hh(tmp_path / "test.jsonl", 3)
        first, follow = training.load_hh(tmp_path / "test.jsonl")[:2]
        assert (first.user, first.assistant, first.prompt) == ("", "", "How do I plant tree0?")
        assert follow.user == "How do I plant tree0?" and follow.assistant == "Dig a hole for tree0 and water it."
        assert (follow.prompt, follow.reply) == ("How deep?", "Dig the tree0 hole two feet deep.")
        assert first.group == follow.group

    def test_hh_pairs_take_negatives_from_other_conversations(self, tmp_path: Path) -> None:
        """Per exchange: its own reply (1) and two replies of other conversations (0), with the same earlier turns."""
        self._write_hh(tmp_path / "test.jsonl", 5)
        exchanges = training.load_hh(tmp_path / "test.jsonl")
        pairs = training.hh_pairs(exchanges, seed=0)
        assert pairs.labels.count(1) == 10 and pairs.labels.count(0) == 20
        by_turn = {(e.prompt, e.user): e for e in exchanges}
        owner = {e.reply: e.group for e in exchanges}
        for prompt, reply, label, user, assistant in zip(
            pairs.prompts, pairs.responses, pairs.labels, pairs.users, pairs.assistants, strict=True
        ):
            own = by_turn[(prompt, user)]
            assert assistant == own.assistant
            assert (reply == own.reply) == (label == 1)
            assert (owner[reply] == own.group) == (label == 1)

    def test_train_writes_a_working_head(self, tmp_path: Path) -> None:
        """train() on small HaluEval- and HH-RLHF-shaped folders gives a head the detector accepts, with metrics."""
        self._write_halueval(tmp_path / "hallucination" / "halueval_qa", 40)
        self._write_hh(tmp_path / training.HH_FILE, 30)
        head = training.train(tmp_path, HashingEncoder(), seed=0)
        assert head.feature_names == FEATURES and head.version.startswith("logit-2026-11-27-")
        assert {m["metric"] for m in head.meta["held_out_metrics"]} == {"AUC", "F1@0.5", "balanced accuracy"}
        assert any("follow-up" in m["dataset"] for m in head.meta["held_out_metrics"])
        assert head.meta["train_hh_turns"] > 0
        assert "relevance head" in training.model_card(head)
        EmbeddingRelevance(head=head)

    def test_train_without_hh_says_what_is_missing(self, tmp_path: Path) -> None:
        """The HH-RLHF file is part of the recipe: its absence is a one-line error naming the path."""
        self._write_halueval(tmp_path / "hallucination" / "halueval_qa", 10)
        with pytest.raises(FileNotFoundError, match="hh_rlhf_harmless_base_test"):
            training.train(tmp_path, HashingEncoder(), seed=0)


class TestBalancedShift:
    """After the fit, the intercept moves to where 0.5 balances the classes of the training pairs."""

    @staticmethod
    def _head() -> LogisticHead:
        one = np.ones(1)
        return LogisticHead("relevance", "t", ("cosine",), np.zeros(1), one, one, 0.0)

    def test_shift_moves_the_threshold_between_the_classes(self) -> None:
        """Decisions -1.0/-0.8 for positives, -2/-3 for negatives: the smallest grid shift separating them, +1.0."""
        d = np.asarray([[-1.0], [-0.8], [-2.0], [-3.0]])
        pairs = training.Pairs(["p"] * 4, ["r"] * 4, [1, 1, 0, 0], ["right answer"] * 2 + ["random other"] * 2)
        shift, scores = training.balanced_shift(self._head(), pairs, d)
        assert shift == 1.0 and scores == {"balanced_accuracy_at_0": 0.5, "balanced_accuracy_chosen": 1.0}

    def test_sources_count_by_their_share(self) -> None:
        """HaluEval (75 %) wants |shift| < 0.1, HH-RLHF (25 %) +0.3 to +0.55: the share decides; ties go to 0."""
        d = np.asarray([[0.1], [-0.1], [-0.3], [-0.6]])
        labels = [1, 0, 1, 0]
        kinds = ["right answer", "random other", "hh first turn reply", "hh first turn other reply"]
        shift, _ = training.balanced_shift(self._head(), training.Pairs(["p"] * 4, ["r"] * 4, labels, kinds), d)
        assert shift == 0.0
