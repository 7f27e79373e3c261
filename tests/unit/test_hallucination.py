"""The hallucination detector's features, scores and the training module's loaders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import real_encoder

from detectors.encoder import build_batch
from detectors.hallucination import FEATURES, HeadHallucination, compute_features, split_sentences
from detectors.head import LogisticHead
from detectors.testing import HashingEncoder, Record
from detectors.types import Detector, Encoder
from evaluators.training.hallucination import balanced_weights, held_out, load_begin, load_halueval
from evaluators.training.hallucination_probes import FAITH_PROBES
from evaluators.training.hallucination_set_b import FAITH_SET_B

CONTEXT = (
    "The Eiffel Tower was completed in 1889 for the World's Fair in Paris. "
    "It is 330 metres tall and was designed by Gustave Eiffel's company.",
)


def scores(records: list[Record], encoder: Encoder | None = None) -> list[float | None]:
    detector = HeadHallucination()
    batch = build_batch(records, encoder or HashingEncoder(), detector.needs)
    return [s.value for s in detector.score(batch)]


def features(response: str, context: tuple[str, ...]) -> dict[str, float]:
    x, applies = compute_features([(response, context)], HashingEncoder().encode, 24)
    assert applies == [True]
    return dict(zip(FEATURES, x[0].tolist(), strict=True))


class TestSplitSentences:
    """The regex sentence splitter."""

    def test_splits_on_end_punctuation_newlines_and_glued_sentences(self) -> None:
        """Periods, question marks, newlines and a period glued to the next capital all end a sentence."""
        text = "It rains. Does it?\nYes it does.Then it stops"
        assert split_sentences(text, 10) == ["It rains.", "Does it?", "Yes it does.", "Then it stops"]

    def test_caps_count_and_length(self) -> None:
        """A long sentence is cut into 300-character pieces and no more than max_sentences come back."""
        pieces = split_sentences("a" * 700 + ". b. c. d.", 3)
        assert [len(p) for p in pieces] == [300, 300, 101]

    def test_blank_text_has_no_sentences(self) -> None:
        """Whitespace only gives nothing to embed."""
        assert split_sentences(" \n\t ", 5) == []


class TestComputeFeatures:
    """The eight support features."""

    def test_copied_response_is_fully_supported(self) -> None:
        """A response equal to the context has cosine 1, full recall and nothing novel."""
        f = features(CONTEXT[0], CONTEXT)
        assert f["sent_cos_min"] == pytest.approx(1.0)
        assert f["sent_cos_mean"] == pytest.approx(1.0)
        assert f["whole_cos"] == pytest.approx(1.0)
        assert (f["novel_numbers"], f["novel_entities"], f["content_recall"], f["negation_mismatch"]) == (
            0.0,
            0.0,
            1.0,
            0.0,
        )

    def test_novel_numbers_and_entities_are_counted(self) -> None:
        """One of two numbers and one of two names absent from the context give 0.5 each."""
        f = features("We saw Paris in 1889 and 2024 with Napoleon.", CONTEXT)
        assert f["novel_numbers"] == 0.5
        assert f["novel_entities"] == 0.5

    def test_sentence_initial_words_are_not_entities(self) -> None:
        """A sentence's capitalised first word is not a name ("Annual", "Running"); a one-word answer is."""
        f = features("Annual visitors love it. Running up the stairs takes long. They climb in Lyon.", CONTEXT)
        assert f["novel_entities"] == 1.0  # only "Lyon" counts, and it is not in the context
        assert features("Annual visitors love it. Running up takes long.", CONTEXT)["novel_entities"] == 0.0
        assert features("Mumbai", CONTEXT)["novel_entities"] == 1.0
        assert features("Paris", CONTEXT)["novel_entities"] == 0.0

    def test_negation_absent_from_best_context_sentence(self) -> None:
        """A negated response sentence whose best-matching context sentence is affirmative is a mismatch."""
        f = features("The Eiffel Tower was not completed in 1889.", CONTEXT)
        assert f["negation_mismatch"] == 1.0

    def test_log_tokens(self) -> None:
        """Length is log(1 + word tokens)."""
        assert features("one two three", CONTEXT)["log_tokens"] == pytest.approx(np.log(4.0))

    def test_one_encode_call_for_all_records(self) -> None:
        """Every sentence of every record is embedded in a single encoder call; inapplicable rows are zero."""
        encoder = HashingEncoder()
        records = [("A tower. In Paris.", CONTEXT), ("no context", ()), ("Tall.", ("It is tall.", "Really."))]
        x, applies = compute_features(records, encoder.encode, 24)
        assert applies == [True, False, True]
        assert len(encoder.calls) == 1
        assert not x[1].any()


class TestHeadHallucination:
    """The detector over the bundled head."""

    def test_contract(self) -> None:
        """Name, direction, threshold, needs, version and repr follow the detector contract."""
        detector = HeadHallucination()
        assert isinstance(detector, Detector)
        assert (detector.name, detector.higher_is_worse, detector.default_threshold) == ("hallucination", True, 0.68)
        assert detector.needs == frozenset()
        assert detector.version.startswith("head-logit-") and detector.version.endswith("-s24")
        assert repr(detector).startswith("HeadHallucination(head=hallucination@")

    def test_none_without_context_or_response(self) -> None:
        """No context, blank passages or a blank response score None."""
        records = [Record("q", "hi"), Record("q", "hi", ("  ", "")), Record("q", " ", CONTEXT)]
        assert scores(records) == [None, None, None]

    def test_empty_batch(self) -> None:
        """No records, no scores."""
        assert scores([]) == []

    def test_supported_below_and_invented_above_threshold_with_real_encoder(self) -> None:
        """A grounded answer scores under 0.5; one with invented date, person and place scores at least 0.5."""
        fine, bad = scores(
            [
                Record("When was it completed?", "The Eiffel Tower was completed in 1889.", CONTEXT),
                Record("When was it completed?", "It was completed in 1925 by Napoleon in Lyon.", CONTEXT),
            ],
            real_encoder(),
        )
        assert fine is not None and bad is not None
        assert fine < 0.5 <= bad

    def test_huge_and_non_english_texts(self) -> None:
        """A 100 KB response, a 150 KB context and French text score within 0..1."""
        records = [
            Record("q", "x" * 100_000, ("y. " * 50_000,)),
            Record("q", "La tour Eiffel a été achevée en 1889.", ("La tour Eiffel fut achevée en 1889.",)),
        ]
        values = scores(records, real_encoder())
        assert all(v is not None and 0.0 <= v <= 1.0 for v in values)

    def test_thousand_records_one_encoder_call(self) -> None:
        """A batch of 1,000 records gets 1,000 scores from one extra encoder call."""
        encoder = HashingEncoder()
        detector = HeadHallucination()
        batch = build_batch([Record("q", "It is tall. In Paris.", CONTEXT)] * 1000, encoder, detector.needs)
        values = [s.value for s in detector.score(batch)]
        assert len(values) == 1000 and len(set(values)) == 1
        assert len(encoder.calls) == 1

    def test_rejects_head_with_other_features(self) -> None:
        """A head trained on other features is refused with a retrain hint."""
        one = np.ones(1)
        head = LogisticHead("hallucination", "x", ("other",), one * 0, one, one, 0.0)
        with pytest.raises(ValueError, match="lookout train-heads"):
            HeadHallucination(head=head)

    def test_rejects_zero_sentences(self) -> None:
        """max_sentences below 1 is a configuration error."""
        with pytest.raises(ValueError, match="max_sentences"):
            HeadHallucination(max_sentences=0)


class TestTrainingData:
    """Loaders, split and weights of the training module."""

    def test_halueval_row_gives_right_and_hallucinated_records(self, tmp_path: Path) -> None:
        """One HaluEval line becomes a 0-labelled right answer and a 1-labelled hallucinated one."""
        row = {"knowledge": "K.", "question": "Q?", "right_answer": "R", "hallucinated_answer": "H"}
        path = tmp_path / "qa.jsonl"
        path.write_text(json.dumps(row) + "\n", encoding="utf-8")
        examples = load_halueval(path)
        assert [(e.response, e.label, e.context) for e in examples] == [("R", 0, ("K.",)), ("H", 1, ("K.",))]
        assert examples[0].group == examples[1].group

    def test_begin_labels_generic_as_unsupported(self, tmp_path: Path) -> None:
        """Fully attributable is 0; Not fully attributable and Generic are 1."""
        header = "model_name\tdata_source\tknowledge\tmessage\tresponse\tbegin_label\n"
        labels = ["Fully attributable", "Not fully attributable", "Generic"]
        for source in ("wow", "cmu", "tc"):
            body = "".join(f"t5\t{source}\tK\tM\tR{i}\t{label}\n" for i, label in enumerate(labels))
            (tmp_path / f"begin_dev_{source}.tsv").write_text(header + body, encoding="utf-8")
        examples = load_begin(tmp_path)
        assert [e.label for e in examples] == [0, 1, 1] * 3
        assert [e.dataset for e in examples[::3]] == ["begin_wow", "begin_cmu", "begin_tc"]

    def test_split_is_a_fixed_hash(self) -> None:
        """The held-out decision depends only on the group key, about 30 % of keys."""
        keys = [f"group {i}" for i in range(2000)]
        share = sum(held_out(k) for k in keys) / len(keys)
        assert [held_out(k) for k in keys] == [held_out(k) for k in keys]
        assert 0.27 < share < 0.33

    def test_balanced_weights_equalise_cells(self) -> None:
        """Each (family, class) cell carries the same total weight and the mean weight is 1."""
        w = balanced_weights(["a", "a", "a", "b"], np.array([0, 1, 1, 1]))
        assert w.tolist() == pytest.approx([4 / 3, 2 / 3, 2 / 3, 4 / 3])

    def test_faithfulness_probes_shape(self) -> None:
        """40 contexts, each with one answer of each of the four kinds; labels follow the kind."""
        contexts: dict[str, list[str]] = {}
        for context, answer, kind, label in FAITH_PROBES:
            assert answer.strip() and context.strip()
            assert label == (0 if kind.startswith("faithful") else 1)
            contexts.setdefault(context, []).append(kind)
        assert len(contexts) == 40
        kinds = ["faithful_paraphrase", "faithful_extract", "unsupported_fact", "contradiction"]
        assert all(sorted(found) == sorted(kinds) for found in contexts.values())

    def test_faithfulness_set_b_shape(self) -> None:
        """60 contexts, one question each, one answer of each of the four kinds; labels follow the kind."""
        contexts: dict[str, list[str]] = {}
        questions: dict[str, set[str]] = {}
        for question, context, answer, kind, label in FAITH_SET_B:
            assert answer.strip() and context.strip() and question.strip()
            assert label == (0 if kind.startswith("faithful") else 1)
            contexts.setdefault(context, []).append(kind)
            questions.setdefault(context, set()).add(question)
        assert len(contexts) == 60
        assert all(len(q) == 1 for q in questions.values())
        kinds = ["faithful_reworded", "faithful_mixed", "unsupported_detail", "contradiction"]
        assert all(sorted(found) == sorted(kinds) for found in contexts.values())
        assert not {c for c, *_ in FAITH_PROBES} & set(contexts), "set B shares no context with the probes"
