"""The expensive tier: a site's cross-encoder and NLI model from a local directory, and `lookout eval --backend`.

Every model here is a tiny BERT (hidden 32, 2 layers, 2 heads) the tests write with ``save_pretrained``: random
weights, seeded, or a classifier layer set by hand so one label always wins. They test loading, label reading and
the scoring rule, not quality. The ``_Oracle`` detector is a stand-in that reads the answer from the tiny dev
sets, to check the metrics of ``evaluators/backend_eval.py`` against known values.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from tiny_data import write_begin_data

from agent.cli import main
from detectors.expensive import (
    CrossEncoderRelevance,
    NliHallucination,
    build_expensive,
    relevance_rule,
    support_rule,
)
from detectors.hallucination import HeadHallucination
from detectors.head import HEADS_DIR, LogisticHead
from detectors.relevance import EmbeddingRelevance
from detectors.testing import HashingEncoder, Record
from detectors.types import Batch, Detector, Score, TextField
from evaluators import backend_eval
from evaluators.quality import EvalRow
from evaluators.training import hallucination as faith
from evaluators.training import relevance as rel

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

WORDS = [
    *("the", "cat", "sat", "on", "mat", "a", "dog", "ran", "in", "park", "paris", "is", "capital", "of", "france"),
    *("berlin", "germany", "who", "what", "where", "mayor", "town", "river", "person", "lies", "it", "rains"),
]
NLI = {0: "entailment", 1: "neutral", 2: "contradiction"}
NLI_MNLI = {0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"}  # roberta-large-mnli's order
CONTEXT = ("Paris is the capital of France. The cat sat on the mat.",)
THREE = "Paris is the capital of France. The dog ran in the park. It rains in Berlin."


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach a hub: transformers and huggingface_hub run offline."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def make_model(
    folder: Path, id2label: dict[int, str] | None = None, num_labels: int = 1, bias: dict[int, float] | None = None
) -> Any:
    """Write a tiny BERT classifier and its WordPiece tokenizer to ``folder``; returns the model saved.

    ``bias`` zeroes the classifier's weights and sets these logits, so those labels win whatever the input.
    """
    folder.mkdir(parents=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n", encoding="utf-8")
    transformers.BertTokenizerFast(vocab=str(vocab), do_lower_case=True, model_max_length=64).save_pretrained(folder)
    labels = id2label or {i: f"LABEL_{i}" for i in range(num_labels)}
    config = transformers.BertConfig(
        vocab_size=len(WORDS) + 5,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
        initializer_range=0.5,
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config).eval()
    if bias is not None:
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.zero_()
            for index, value in bias.items():
                model.classifier.bias[index] = value
    model.save_pretrained(folder)
    return model


def values(detector: Detector, records: Sequence[Record]) -> list[float | None]:
    return [s.value for s in detector.score(Batch(records))]


def one(detector: Detector, response: str, context: tuple[str, ...] = CONTEXT) -> float:
    value = values(detector, [Record("q", response, context)])[0]
    assert value is not None
    return value


class TestLabelRules:
    """Which output is 'supported' (NLI) or 'relevant' (cross-encoder), read from config.json's labels."""

    @pytest.mark.parametrize(
        ("labels", "expected"),
        [
            (NLI, ("softmax", 0)),
            (NLI_MNLI, ("softmax", 2)),
            ({0: "entailment", 1: "not_entailment"}, ("softmax", 0)),
            ({0: "NOT-ENTAILMENT", 1: "Entailment"}, ("softmax", 1)),
            ({0: "hallucinated", 1: "consistent"}, ("softmax", 1)),
            ({0: "consistent", 1: "inconsistent"}, ("softmax", 0)),
            ({0: "LABEL_0"}, ("sigmoid", 0)),
        ],
    )
    def test_support_rule(self, labels: dict[int, str], expected: tuple[str, int]) -> None:
        """Entailment (not its negation) first, then 'consistent' (not 'inconsistent'), then a single logit."""
        assert support_rule(labels, Path("m")) == expected

    @pytest.mark.parametrize("labels", [{0: "LABEL_0", 1: "LABEL_1"}, {0: "a", 1: "b", 2: "c"}])
    def test_unreadable_labels_are_refused_in_one_line(self, labels: dict[int, str]) -> None:
        """Labels that name no supported class give a one-line error naming the directory."""
        with pytest.raises(ValueError, match=r"^/models/x: cannot tell which output") as exc:
            support_rule(labels, Path("/models/x"))
        assert "\n" not in str(exc.value)

    def test_two_entailment_labels_are_ambiguous(self) -> None:
        """Two labels that both read as entailment are refused."""
        with pytest.raises(ValueError, match="more than one entail label"):
            support_rule({0: "entailment", 1: "entailment_strict"}, Path("m"))

    def test_relevance_rule(self) -> None:
        """One logit: sigmoid; two labels: class 1; more: refused."""
        assert relevance_rule({0: "LABEL_0"}, Path("m")) == ("sigmoid", 0)
        assert relevance_rule({0: "LABEL_0", 1: "LABEL_1"}, Path("m")) == ("softmax", 1)
        with pytest.raises(ValueError, match="1 or 2 outputs, this one has 3"):
            relevance_rule(NLI, Path("m"))


class TestDirectories:
    """Construction checks the directory; nothing is ever fetched."""

    @pytest.mark.parametrize("cls", [CrossEncoderRelevance, NliHallucination])
    def test_missing_directory(self, cls: type[Any], tmp_path: Path) -> None:
        """A missing directory is a one-line FileNotFoundError naming it and saying nothing is downloaded."""
        with pytest.raises(FileNotFoundError, match=r"nope not found.*never downloaded") as exc:
            cls(tmp_path / "nope")
        assert str(tmp_path / "nope") in str(exc.value) and "\n" not in str(exc.value)

    @pytest.mark.parametrize("cls", [CrossEncoderRelevance, NliHallucination])
    def test_directory_without_config(self, cls: type[Any], tmp_path: Path) -> None:
        """A directory without config.json is refused the same way."""
        (tmp_path / "empty").mkdir()
        with pytest.raises(FileNotFoundError, match=r"empty has no config\.json.*never downloaded"):
            cls(tmp_path / "empty")

    def test_nli_with_unreadable_labels_fails_at_construction(self, tmp_path: Path) -> None:
        """A 3-label model with default names fails when built, before any scoring, naming the directory."""
        make_model(tmp_path / "nli", num_labels=3)
        with pytest.raises(ValueError, match=re.escape(str(tmp_path / "nli")) + ": cannot tell"):
            NliHallucination(tmp_path / "nli")

    def test_config_without_weights_fails_on_first_score(self, tmp_path: Path) -> None:
        """A folder holding only a config loads nothing from anywhere: the first score fails naming it."""
        folder = tmp_path / "config-only"
        transformers.BertConfig(
            hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_labels=1
        ).save_pretrained(folder)
        detector = CrossEncoderRelevance(folder)
        with pytest.raises(ValueError, match=r"cannot load the model in .*config-only"):
            detector.score(Batch([Record("a question", "an answer")]))

    def test_contract_and_versions(self, tmp_path: Path) -> None:
        """Both satisfy the Detector protocol with the shipped heads' names, directions and thresholds."""
        make_model(tmp_path / "ce-tiny")
        make_model(tmp_path / "nli-tiny", NLI)
        relevance, hallucination = CrossEncoderRelevance(tmp_path / "ce-tiny"), NliHallucination(tmp_path / "nli-tiny")
        assert isinstance(relevance, Detector) and isinstance(hallucination, Detector)
        assert (relevance.name, relevance.higher_is_worse, relevance.needs) == ("relevance", False, frozenset())
        assert (hallucination.name, hallucination.higher_is_worse) == ("hallucination", True)
        assert relevance.default_threshold == EmbeddingRelevance.default_threshold
        assert hallucination.default_threshold == HeadHallucination.default_threshold
        assert (relevance.version, hallucination.version) == ("cross-encoder-ce-tiny", "nli-nli-tiny")
        assert "ce-tiny" in repr(relevance) and "max_sentences=24" in repr(hallucination)

    def test_build_expensive(self, tmp_path: Path) -> None:
        """The factory builds one detector per directory given, by name; a missing one fails."""
        make_model(tmp_path / "ce")
        make_model(tmp_path / "nli", NLI)
        assert build_expensive(None, None, "cpu") == {}
        built = build_expensive(tmp_path / "ce", tmp_path / "nli", "cpu")
        assert isinstance(built["relevance"], CrossEncoderRelevance)
        assert isinstance(built["hallucination"], NliHallucination)
        assert list(build_expensive(None, tmp_path / "nli", "cpu")) == ["hallucination"]
        with pytest.raises(FileNotFoundError):
            build_expensive(tmp_path / "missing", None, "cpu")


class TestCrossEncoderRelevance:
    """Relevance = the cross-encoder's probability on (prompt, response)."""

    PAIRS: ClassVar[list[tuple[str, str]]] = [
        ("what is the capital of france", "paris is the capital of france"),
        ("who is the mayor", "the cat sat on the mat"),
        ("where is the park", "a dog ran in the park"),
    ]

    def test_scores_are_the_sigmoid_of_the_pairs_logit(self, tmp_path: Path) -> None:
        """Each score is sigmoid(logit) of the saved model on (prompt, response), in that order."""
        model = make_model(tmp_path / "ce")
        detector = CrossEncoderRelevance(tmp_path / "ce", batch_size=2)
        got = values(detector, [Record(p, r) for p, r in self.PAIRS])
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "ce"), local_files_only=True)
        assert tokenizer.unk_token_id not in tokenizer("paris is the capital")["input_ids"]  # the vocab was read

        def direct(first: str, second: str) -> float:
            with torch.no_grad():
                return float(torch.sigmoid(model(**tokenizer(first, second, return_tensors="pt")).logits[0, 0]))

        assert got == pytest.approx([direct(p, r) for p, r in self.PAIRS], abs=1e-5)
        assert any(abs(g - direct(r, p)) > 1e-4 for g, (p, r) in zip(got, self.PAIRS, strict=True) if g is not None)
        assert len({round(v or 0, 6) for v in got}) == len(self.PAIRS)

    def test_blank_prompt_or_response_is_none(self, tmp_path: Path) -> None:
        """Blank prompts and responses score None; the others one value each in 0..1, in order."""
        make_model(tmp_path / "ce")
        detector = CrossEncoderRelevance(tmp_path / "ce")
        records = [Record("", "the cat"), Record("who", "the cat"), Record("who", "  "), Record("what", "paris")]
        got = values(detector, records)
        assert got[0] is None and got[2] is None
        assert all(v is not None and 0.0 <= v <= 1.0 for v in (got[1], got[3]))
        assert values(detector, []) == []

    @pytest.mark.parametrize(("winner", "expected"), [(1, 1.0), (0, 0.0)])
    def test_two_label_model_reads_class_one(self, tmp_path: Path, winner: int, expected: float) -> None:
        """A two-label cross-encoder's relevance is the softmax of class 1."""
        make_model(tmp_path / "ce2", num_labels=2, bias={winner: 20.0})
        assert values(CrossEncoderRelevance(tmp_path / "ce2"), [Record("who", "paris")])[0] == pytest.approx(
            expected, abs=1e-6
        )

    def test_batch_size_does_not_change_scores(self, tmp_path: Path) -> None:
        """Padding inside a batch does not change a pair's score."""
        make_model(tmp_path / "ce")
        records = [Record(p, r) for p, r in self.PAIRS]
        one_by_one = values(CrossEncoderRelevance(tmp_path / "ce", batch_size=1), records)
        assert values(CrossEncoderRelevance(tmp_path / "ce", batch_size=16), records) == pytest.approx(
            one_by_one, abs=1e-5
        )


class TestNliHallucination:
    """Hallucination = 1 - the least entailed response sentence."""

    @pytest.mark.parametrize(("labels", "expected"), [(NLI, 0.0), (NLI_MNLI, 1.0)])
    def test_entailment_index_comes_from_id2label(
        self, tmp_path: Path, labels: dict[int, str], expected: float
    ) -> None:
        """Output 0 always wins: supported when label 0 is entailment, unsupported when it is contradiction."""
        make_model(tmp_path / "nli", labels, bias={0: 20.0})
        assert one(NliHallucination(tmp_path / "nli"), THREE) == pytest.approx(expected, abs=1e-6)

    @pytest.mark.parametrize(("winner", "expected"), [(2, 0.0), (0, 1.0), (1, 1.0)])
    def test_forced_labels(self, tmp_path: Path, winner: int, expected: float) -> None:
        """Forced entailment (index 2 in MNLI order) gives ~0; forced contradiction or neutral gives ~1."""
        make_model(tmp_path / "nli", NLI_MNLI, bias={winner: 20.0})
        assert one(NliHallucination(tmp_path / "nli"), THREE) == pytest.approx(expected, abs=1e-6)

    @pytest.mark.parametrize(("logit", "expected"), [(20.0, 0.0), (-20.0, 1.0)])
    def test_single_logit_consistency_model(self, tmp_path: Path, logit: float, expected: float) -> None:
        """An HHEM-style model (one logit, high = consistent): support is its sigmoid."""
        make_model(tmp_path / "hhem", bias={0: logit})
        assert one(NliHallucination(tmp_path / "hhem"), THREE) == pytest.approx(expected, abs=1e-6)

    @pytest.mark.parametrize(("winner", "expected"), [(1, 0.0), (0, 1.0)])
    def test_consistent_label(self, tmp_path: Path, winner: int, expected: float) -> None:
        """A two-label model naming 'consistent': support is that label's probability."""
        make_model(tmp_path / "c2", {0: "hallucinated", 1: "consistent"}, bias={winner: 20.0})
        assert one(NliHallucination(tmp_path / "c2"), THREE) == pytest.approx(expected, abs=1e-6)

    def test_none_without_context_or_response(self, tmp_path: Path) -> None:
        """No context, only blank passages or a blank response score None; the rest one value in 0..1 each."""
        make_model(tmp_path / "nli", NLI)
        records = [
            Record("q", "Paris is the capital.", ()),
            Record("q", "Paris is the capital.", ("  ", "")),
            Record("q", " ", CONTEXT),
            Record("q", "Paris is the capital.", CONTEXT),
            Record("q", THREE, ("", *CONTEXT)),
        ]
        got = values(NliHallucination(tmp_path / "nli"), records)
        assert got[:3] == [None, None, None]
        assert all(v is not None and 0.0 <= v <= 1.0 for v in got[3:])

    def test_least_supported_sentence_decides(self, tmp_path: Path) -> None:
        """The score of a response is the largest of its sentences' scores alone (1 - min support), not the mean."""
        make_model(tmp_path / "nli", NLI)
        detector = NliHallucination(tmp_path / "nli")
        sentences = ["Paris is the capital of France.", "The dog ran in the park.", "It rains in Berlin."]
        alone = [one(detector, s) for s in sentences]
        assert len({round(a, 5) for a in alone}) == 3  # random weights: the sentences differ
        assert one(detector, THREE) == pytest.approx(max(alone), abs=1e-5)
        assert not math.isclose(one(detector, THREE), float(np.mean(alone)), abs_tol=1e-4)

    def test_max_sentences_reads_the_first_ones(self, tmp_path: Path) -> None:
        """With max_sentences=1 only the first sentence is checked."""
        make_model(tmp_path / "nli", NLI)
        first = one(NliHallucination(tmp_path / "nli"), "Paris is the capital of France.")
        assert one(NliHallucination(tmp_path / "nli", max_sentences=1), THREE) == pytest.approx(first, abs=1e-5)
        with pytest.raises(ValueError, match="max_sentences"):
            NliHallucination(tmp_path / "nli", max_sentences=0)

    def test_long_sentences_and_context_fit_the_token_budget(self, tmp_path: Path) -> None:
        """A context and a sentence longer than the model's 64 positions are cut, not an error."""
        make_model(tmp_path / "nli", NLI)
        long_context = (" ".join(["the cat sat on the mat"] * 60),)
        long_sentence = " ".join(["paris is the capital of france"] * 20) + "."
        got = values(NliHallucination(tmp_path / "nli"), [Record("q", long_sentence, long_context)])
        assert got[0] is not None and 0.0 <= got[0] <= 1.0


# ---- lookout eval --backend ----

N_QUESTIONS = 24
N_CONVERSATIONS = 24
_TAG = re.compile(r"(?:Town|Topic)\d+")


def write_datasets(root: Path) -> Path:
    """A tiny datasets folder with the files the relevance and hallucination evaluations read."""
    qa = root / "hallucination" / "halueval_qa"
    qa.mkdir(parents=True)
    rows = [
        {
            "knowledge": f"Town{i} lies on river {i}. The mayor of Town{i} is Person{i}.",
            "question": f"Who is the mayor of Town{i}?",
            "right_answer": f"Person{i} of Town{i}",
            "hallucinated_answer": f"The mayor of Town{i} is Someone{i}.",
        }
        for i in range(N_QUESTIONS)
    ]
    (qa / "qa_one-turn_data.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    write_begin_data(root)
    hh = root / rel.HH_FILE
    hh.parent.mkdir(parents=True)
    chats = [
        f"\n\nHuman: Tell me about Topic{k}\n\nAssistant: Topic{k} is a thing.\n\nHuman: Why does Topic{k} matter?"
        f"\n\nAssistant: Topic{k} matters a lot."
        for k in range(N_CONVERSATIONS)
    ]
    hh.write_text("\n".join(json.dumps({"chosen": c, "rejected": c}) for c in chats) + "\n", encoding="utf-8")
    for folder in ("toxicity", "relevance"):
        (root / folder).mkdir(exist_ok=True)
    return root


@dataclass
class _Oracle:
    """A stand-in detector that knows the tiny dev sets' answers (not a model).

    Relevance is 1 when the response names the prompt's Town/Topic; hallucination is 1 when the response names an
    invented 'Someone'.
    """

    name: str
    inverted: bool = False
    version: str = "oracle"
    needs: frozenset[TextField] = frozenset()
    higher_is_worse: bool = True
    default_threshold: float = 0.5

    def score(self, batch: Batch) -> list[Score]:
        """1 or 0 from the answers (reversed when ``inverted``); None for a hallucination record without context."""
        out = []
        for item in batch.items:
            value: float | None
            if self.name == "relevance":
                tag = _TAG.search(item.prompt)
                value = float(tag is not None and tag.group(0) in _TAG.findall(item.response))
            else:
                value = float("Someone" in item.response) if item.context else None
            out.append(Score(None if value is None else (1.0 - value if self.inverted else value)))
        return out


class TestBackendEval:
    """`lookout eval --backend NAME=DIR`: the expensive detector's AUC/MAP rows on the heads' own dev sets."""

    @pytest.fixture
    def data(self, tmp_path: Path) -> Path:
        root = write_datasets(tmp_path / "datasets")
        held_q = [q for q in rel.load_halueval(root / "hallucination" / "halueval_qa") if rel.held_out(q.group)]
        held_hh = {e.group for e in rel.load_hh(root / rel.HH_FILE) if rel.held_out(e.group)}
        assert len(held_q) >= 3 and len(held_hh) >= 3  # both classes in every held-out set
        return root

    def head_rows(self, data: Path) -> list[EvalRow]:
        """The shipped heads' rows on ``data``, features from the hashing encoder."""
        encoder = HashingEncoder()
        rows = rel._evaluate_with(LogisticHead.load(HEADS_DIR / "relevance.json"), data, encoder, None)
        head = LogisticHead.load(HEADS_DIR / "hallucination.json")
        return rows + faith._evaluate_with(head, faith.load_all(data), encoder, None)

    def test_rows_follow_the_heads_rows_on_the_same_sets(self, data: Path, tmp_path: Path) -> None:
        """With tiny models, every backend row sits right after the head's row of the same dev set and metric."""
        make_model(tmp_path / "ce-tiny")
        make_model(tmp_path / "nli-tiny", NLI_MNLI)
        backends = backend_eval.load_backends(
            [f"relevance={tmp_path / 'ce-tiny'}", f"hallucination={tmp_path / 'nli-tiny'}"], device="cpu"
        )
        head = self.head_rows(data)
        lines: list[str] = []
        rows = backend_eval.with_backend_rows(
            head, backends, data, report=lines.append, encoder=HashingEncoder(), cache_dir=None
        )
        extra = [r for r in rows if r not in head]
        assert {r.detector for r in extra} == {"relevance (cross-encoder ce-tiny)", "hallucination (NLI nli-tiny)"}
        assert {r.metric for r in extra} == {"AUC"}
        assert [r for r in rows if r in head] == head
        for row in extra:
            before = rows[rows.index(row) - 1]
            assert (before.dataset, before.metric) == (row.dataset, row.metric), row
            assert before.detector in (row.detector.split(" ")[0], row.detector)
            assert 0.0 <= row.lookout <= 1.0 and row.baseline is None
        assert len([r for r in extra if r.detector.startswith("relevance")]) == 5  # 3 HaluEval + 2 HH-RLHF
        assert len([r for r in extra if r.detector.startswith("hallucination")]) == len(
            faith._eval_sets(faith.load_all(data))
        ) + len(faith.written_sets())
        assert lines == [
            "evaluating relevance (cross-encoder ce-tiny) ...",
            "evaluating hallucination (NLI nli-tiny) ...",
        ]

    @pytest.mark.parametrize(("inverted", "expected"), [(False, 1.0), (True, 0.0)])
    def test_metrics_of_a_known_detector(self, data: Path, inverted: bool, expected: float) -> None:
        """A detector that is always right scores AUC 1 on every dev set, one always wrong 0 (labels not flipped)."""
        relevance = backend_eval.Backend("relevance (oracle)", _Oracle("relevance", inverted))
        rows = backend_eval.relevance_rows(relevance, data, HashingEncoder(), None)
        assert [r.lookout for r in rows] == [expected] * 5
        faithful = backend_eval.Backend("hallucination (oracle)", _Oracle("hallucination", inverted))
        by_set = {r.dataset.split(" ")[0]: r.lookout for r in backend_eval.hallucination_rows(faithful, data)}
        assert {k: v for k, v in by_set.items() if not k.startswith("faithfulness")} == {
            "halueval_qa": expected,
            "begin_dev": expected,
            **{f"begin_{s}": expected for s in faith.BEGIN_SOURCES},
        }

    def test_wikiqa_ranking(self, data: Path) -> None:
        """With WikiQA dev present, MAP and MRR rank each question's sentences by the detector's score."""
        folder = data / "relevance" / "wikiqa"
        folder.mkdir(parents=True)
        lines = ["QuestionID\tQuestion\tDocumentID\tDocumentTitle\tSentenceID\tSentence\tLabel"]
        for i in range(4):
            lines.append(f"Q{i}\tWhat about Town{i}?\tD\tT\tS0\tNothing here.\t0")
            lines.append(f"Q{i}\tWhat about Town{i}?\tD\tT\tS1\tTown{i} is here.\t1")
        (folder / "WikiQA-dev.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        rows = backend_eval.relevance_rows(
            backend_eval.Backend("relevance (oracle)", _Oracle("relevance")), data, HashingEncoder(), None
        )
        assert [(r.dataset, r.metric, r.lookout) for r in rows[:2]] == [
            ("WikiQA dev (questions with an answer, n=4)", "MAP", 1.0),
            ("WikiQA dev (questions with an answer, n=4)", "MRR", 1.0),
        ]

    def test_merge_appends_rows_without_a_head_row(self) -> None:
        """A backend row whose set the head did not evaluate goes last; the others follow their head row."""
        head = [EvalRow("relevance", "a", "AUC", 0.5), EvalRow("relevance", "b", "AUC", 0.6)]
        extra = [EvalRow("relevance (x)", "c", "AUC", 0.7), EvalRow("relevance (x)", "a", "AUC", 0.8)]
        assert backend_eval.merge(head, extra) == [head[0], extra[1], head[1], extra[0]]

    @pytest.mark.parametrize(
        ("spec", "error", "message"),
        [
            ("relevance", ValueError, "expected NAME=DIR"),
            ("refusal=/m", ValueError, "unknown detector 'refusal'; valid: relevance, hallucination, toxicity"),
            ("hallucination=/no/such/dir", FileNotFoundError, "never downloaded"),
        ],
    )
    def test_bad_specs(self, spec: str, error: type[Exception], message: str) -> None:
        """Malformed, unknown or missing backends are one-line errors."""
        with pytest.raises(error, match=re.escape(message)):
            backend_eval.load_backends([spec], device="cpu")

    def test_cli_checks_backends_before_evaluating(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """`lookout eval --backend` with a missing model directory fails at once, before the long head evaluation."""
        code = main(["eval", "--data", str(tmp_path / "not-a-datasets-folder"), "--backend", f"relevance={tmp_path}"])
        assert code == 1
        err = capsys.readouterr().err
        assert "has no config.json" in err and "not a datasets folder" not in err
