"""The detoxify backend: offline loading of a detoxify checkpoint, scoring, and `lookout eval --backend toxicity`.

Every checkpoint here is a tiny BERT (hidden 32, 2 layers) with random weights: tests
loading, not quality.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tiny_data import write_public_data, write_toxicity_data

from agent.cli import main
from detectors.detoxify_backend import DetoxifyToxicity, file_sha256, read_checkpoint
from detectors.head import HEADS_DIR, LogisticHead
from detectors.testing import HashingEncoder, Record
from detectors.toxicity import ProfanityCheckModel
from detectors.types import Batch, Detector
from evaluators import backend_eval
from evaluators.training import toxicity as tox

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("detoxify")

WORDS = [
    *("you", "are", "a", "stupid", "idiot", "the", "cat", "sat", "on", "mat"),
    *("hello", "world", "i", "am", "gay", "man", "thanks", "for", "help"),
]
CLASSES = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
TEXTS = ["you are a stupid idiot", "the cat sat on the mat", "", "thanks for the help", "hello world"]


@dataclass(frozen=True)
class Tiny:
    """A tiny checkpoint on disk and the model it was saved from."""

    checkpoint: Path
    config_dir: Path
    model: Any


def _tiny_config(**overrides: Any) -> Any:
    base: dict[str, Any] = {
        "vocab_size": len(WORDS) + 5,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 37,
        "max_position_embeddings": 64,
        "initializer_range": 0.5,
    }
    return transformers.BertConfig(**{**base, **overrides})


def _save_checkpoint(path: Path, state_dict: dict[str, Any], classes: list[str]) -> None:
    """Write a checkpoint the way detoxify publishes them: ``{"config": ..., "state_dict": ...}``."""
    config = {
        "name": "Jigsaw_BERT",
        "arch": {
            "type": "BERT",
            "args": {
                # A hub id that does not exist: loading must never look it up.
                "model_type": "lookout-tests/not-on-the-hub",
                "model_name": "BertForSequenceClassification",
                "tokenizer_name": "BertTokenizer",
                "num_classes": len(classes),
            },
        },
        "dataset": {"type": "JigsawData", "args": {"classes": classes}},
    }
    torch.save({"config": config, "state_dict": state_dict}, path)


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tiny:
    """A seeded tiny BERT saved as a detoxify checkpoint, with a local config and tokenizer directory."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    config_dir = tmp_path / "bert-tiny"
    config_dir.mkdir()
    vocab = config_dir / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n", encoding="utf-8")
    transformers.BertTokenizer(vocab_file=str(vocab), do_lower_case=True, model_max_length=64).save_pretrained(
        config_dir
    )
    _tiny_config().save_pretrained(config_dir)  # the base model's config: no classifier size in it
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(_tiny_config(num_labels=len(CLASSES))).eval()
    checkpoint = tmp_path / "toxic_tiny.ckpt"
    _save_checkpoint(checkpoint, model.state_dict(), CLASSES)
    return Tiny(checkpoint, config_dir, model)


def score(detector: DetoxifyToxicity, texts: list[str], target: str = "response") -> list[float | None]:
    records = [Record(prompt=t, response=t) if target == "response" else Record(prompt=t, response="") for t in texts]
    return [s.value for s in detector.score(Batch(records))]


class TestReadCheckpoint:
    """Reading detoxify's checkpoint format."""

    def test_standardises_class_names_like_detoxify(self, tiny: Tiny) -> None:
        """``toxic``, ``severe_toxic`` and ``identity_hate`` are renamed as detoxify does; arch args are kept."""
        arch, state_dict, classes = read_checkpoint(tiny.checkpoint)
        assert classes == ["toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack"]
        assert arch["model_name"] == "BertForSequenceClassification"
        assert arch["num_classes"] == 6
        assert set(state_dict) == set(tiny.model.state_dict())

    def test_rejects_a_file_without_config_and_state_dict(self, tmp_path: Path) -> None:
        """A bare state dict is not a detoxify checkpoint and the error says so."""
        path = tmp_path / "bare.ckpt"
        torch.save({"weight": torch.zeros(2)}, path)
        with pytest.raises(ValueError, match="not a detoxify checkpoint"):
            read_checkpoint(path)

    def test_missing_file_names_the_path(self, tmp_path: Path) -> None:
        """A missing checkpoint raises FileNotFoundError naming it."""
        with pytest.raises(FileNotFoundError, match=r"nope\.ckpt"):
            read_checkpoint(tmp_path / "nope.ckpt")


class TestDetoxifyToxicity:
    """Loading offline through detoxify's model builder and scoring. Random weights: tests loading, not quality."""

    def test_one_score_per_text_in_unit_interval_same_order(self, tiny: Tiny) -> None:
        """Scores lie in 0..1, one per record, and reversing the batch reverses the scores."""
        detector = DetoxifyToxicity(tiny.checkpoint, tiny.config_dir)
        forward = score(detector, TEXTS)
        assert len(forward) == len(TEXTS)
        assert all(v is not None and 0.0 <= v <= 1.0 for v in forward)
        assert len({round(v or 0.0, 6) for v in forward}) == len(TEXTS)  # distinct inputs, distinct scores
        assert score(detector, TEXTS[::-1]) == pytest.approx(forward[::-1], abs=1e-6)

    def test_deterministic_across_instances(self, tiny: Tiny) -> None:
        """Two detectors loaded from the same files give identical scores."""
        first = score(DetoxifyToxicity(tiny.checkpoint, tiny.config_dir), TEXTS)
        assert score(DetoxifyToxicity(tiny.checkpoint, tiny.config_dir), TEXTS) == first

    def test_scores_are_the_checkpoint_models_toxicity_sigmoid(self, tiny: Tiny) -> None:
        """The loaded weights are the checkpoint's: scores equal the source model's sigmoid of output 0."""
        tokenizer = transformers.BertTokenizer.from_pretrained(tiny.config_dir)
        with torch.no_grad():
            logits = tiny.model(**tokenizer(TEXTS, return_tensors="pt", padding=True))[0]
        expected = torch.sigmoid(logits[:, 0]).tolist()
        assert score(DetoxifyToxicity(tiny.checkpoint, tiny.config_dir), TEXTS) == pytest.approx(expected, abs=1e-5)

    def test_batching_does_not_change_scores(self, tiny: Tiny) -> None:
        """A batch size of 2 gives the same scores as one forward pass."""
        whole = score(DetoxifyToxicity(tiny.checkpoint, tiny.config_dir), TEXTS)
        assert score(DetoxifyToxicity(tiny.checkpoint, tiny.config_dir, batch_size=2), TEXTS) == pytest.approx(
            whole, abs=1e-5
        )

    def test_long_and_non_english_texts_are_truncated_not_fatal(self, tiny: Tiny) -> None:
        """A 100 KB text and Japanese text score within 0..1 (truncated to the model's 64 positions)."""
        values = score(DetoxifyToxicity(tiny.checkpoint, tiny.config_dir), ["idiot " * 20_000, "パンの焼き方は?"])
        assert all(v is not None and 0.0 <= v <= 1.0 for v in values)

    def test_prompt_target_scores_the_prompt(self, tiny: Tiny) -> None:
        """With target="prompt" the detector is prompt_toxicity and reads the prompt, not the response."""
        detector = DetoxifyToxicity(tiny.checkpoint, tiny.config_dir, target="prompt")
        assert detector.name == "prompt_toxicity"
        expected = score(DetoxifyToxicity(tiny.checkpoint, tiny.config_dir), TEXTS)
        assert score(detector, TEXTS, target="prompt") == pytest.approx(expected, abs=1e-6)

    def test_for_target_shares_the_loaded_model(self, tiny: Tiny) -> None:
        """for_target("prompt") gives a prompt_toxicity twin that reuses the response detector's model."""
        response = DetoxifyToxicity(tiny.checkpoint, tiny.config_dir)
        prompt = response.for_target("prompt")
        assert (prompt.name, prompt.target, prompt.version) == ("prompt_toxicity", "prompt", response.version)
        expected = score(response, TEXTS)
        assert score(prompt, TEXTS, target="prompt") == pytest.approx(expected, abs=1e-6)
        assert prompt._state.model is response._state.model  # one model in memory for both columns

    def test_contract_attributes_and_version(self, tiny: Tiny) -> None:
        """It is a Detector; the version is detoxify-<model_type>-<first 12 hex of the file's SHA-256>."""
        detector = DetoxifyToxicity(tiny.checkpoint, tiny.config_dir, model_type="unbiased")
        digest = hashlib.sha256(tiny.checkpoint.read_bytes()).hexdigest()
        assert isinstance(detector, Detector)
        assert detector.version == f"detoxify-unbiased-{digest[:12]}"
        assert file_sha256(tiny.checkpoint) == digest
        assert detector.name == "toxicity"
        assert detector.needs == frozenset()
        assert "DetoxifyToxicity(" in repr(detector)

    def test_empty_batch_scores_nothing_without_loading(self, tiny: Tiny) -> None:
        """No records, no scores."""
        assert score(DetoxifyToxicity(tiny.checkpoint, tiny.config_dir), []) == []

    def test_checkpoint_without_toxicity_output_is_rejected(self, tiny: Tiny, tmp_path: Path) -> None:
        """A checkpoint whose classes lack toxic/toxicity fails on first use, listing its classes."""
        path = tmp_path / "other.ckpt"
        _save_checkpoint(path, tiny.model.state_dict(), ["spam", "ham", "a", "b", "c", "d"])
        with pytest.raises(ValueError, match=r"no toxicity output .*spam, ham"):
            score(DetoxifyToxicity(path, tiny.config_dir), ["hello"])

    def test_missing_config_dir_is_reported(self, tiny: Tiny, tmp_path: Path) -> None:
        """A config directory that does not exist fails at construction, naming it."""
        with pytest.raises(FileNotFoundError, match="missing-dir"):
            DetoxifyToxicity(tiny.checkpoint, tmp_path / "missing-dir")


class TestEvalBackend:
    """`lookout eval --backend toxicity=PATH`: a detoxify checkpoint on the toxicity head's dev sets."""

    @pytest.fixture
    def model_dir(self, tiny: Tiny) -> Path:
        """The base model's config and tokenizer with the checkpoint beside them, as a site keeps one."""
        shutil.copy(tiny.checkpoint, tiny.config_dir / tiny.checkpoint.name)
        return tiny.config_dir

    def test_a_directory_or_the_file_names_the_checkpoint(self, model_dir: Path) -> None:
        """The directory's one .ckpt, or the file itself; its directory holds the config and tokenizer."""
        for spec in (f"toxicity={model_dir}", f"toxicity={model_dir / 'toxic_tiny.ckpt'}"):
            (backend,) = backend_eval.load_backends([spec], device="cpu")
            assert backend.label == "toxicity (detoxify toxic_tiny.ckpt)"
            assert isinstance(backend.detector, DetoxifyToxicity)
            assert backend.detector.config_dir == model_dir

    @pytest.mark.parametrize(("copies", "found"), [(0, "none"), (2, "a.ckpt, b.ckpt")])
    def test_a_directory_needs_exactly_one_checkpoint(
        self, model_dir: Path, tmp_path: Path, copies: int, found: str
    ) -> None:
        """No checkpoint or two in the directory: a one-line error naming what it found."""
        folder = tmp_path / "models"
        folder.mkdir()
        for name in ("a.ckpt", "b.ckpt")[:copies]:
            shutil.copy(model_dir / "toxic_tiny.ckpt", folder / name)
        with pytest.raises(ValueError, match=f"must hold one .ckpt file \\(found {found}\\); name the file"):
            backend_eval.load_backends([f"toxicity={folder}"], device="cpu")

    def test_a_missing_path_is_named(self, tmp_path: Path) -> None:
        """A path that does not exist fails before anything runs."""
        with pytest.raises(FileNotFoundError, match="nowhere not found"):
            backend_eval.load_backends([f"toxicity={tmp_path / 'nowhere'}"], device="cpu")

    def test_without_the_detoxify_extra_it_says_what_to_install(
        self, model_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without detoxify installed the option fails at once with the install line, not after the head's rows."""
        real = importlib.util.find_spec
        monkeypatch.setattr(
            importlib.util, "find_spec", lambda name, *a: None if name == "detoxify" else real(name, *a)
        )
        with pytest.raises(ValueError, match=r"needs the detoxify extra: pip install 'llm-lookout\[detoxify\]'"):
            backend_eval.load_backends([f"toxicity={model_dir}"], device="cpu")

    def test_rows_follow_the_heads_rows_on_the_same_sets(self, model_dir: Path, tmp_path: Path) -> None:
        """One AUC row per held-out set, each right after the head's AUC row on that set, scores from the model."""
        data = write_toxicity_data(tmp_path / "datasets")
        head = LogisticHead.load(HEADS_DIR / "toxicity.json")
        encoder = HashingEncoder(dim=len(head.coef) - 1)
        head_rows = tox._evaluate_with(head, data, encoder, None, ProfanityCheckModel())
        backends = backend_eval.load_backends([f"toxicity={model_dir}"], device="cpu")
        lines: list[str] = []
        rows = backend_eval.with_backend_rows(head_rows, backends, data, report=lines.append, cache_dir=None)
        extra = [r for r in rows if r not in head_rows]
        assert lines == ["evaluating toxicity (detoxify toxic_tiny.ckpt) ..."]
        assert [r for r in rows if r in head_rows] == head_rows
        assert [r.dataset.split(" ")[0] for r in extra] == ["wiki_toxicity_dev", "wiki", "identity", "toxigen_seeds",
                                                            "davidson_hate_offensive"]  # fmt: skip
        for row in extra:
            before = rows[rows.index(row) - 1]
            assert (before.detector, before.dataset, before.metric) == ("toxicity", row.dataset, "AUC")
            assert row.metric == "AUC" and row.baseline is None and 0.0 <= row.lookout <= 1.0
        seeds = tox.load_toxigen(data)
        model = backends[0].detector
        p = backend_eval.detector_scores(model, [backend_eval.Record("", s.text) for s in seeds])
        toxigen = next(r for r in extra if r.dataset.startswith("toxigen_seeds"))
        assert toxigen.lookout == pytest.approx(backend_eval.auc(np.asarray([s.label for s in seeds]), p)[0])

    def test_cli_prints_the_models_rows(
        self, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`lookout eval --only toxicity --backend toxicity=DIR --json` prints the model's five rows."""
        data = write_toxicity_data(write_public_data(tmp_path / "datasets"))
        code = main(["eval", "--data", str(data), "--only", "toxicity", "--json", "--backend", f"toxicity={model_dir}"])
        assert code == 0
        out = capsys.readouterr().out
        assert out.count('"detector": "toxicity (detoxify toxic_tiny.ckpt)"') == 5
