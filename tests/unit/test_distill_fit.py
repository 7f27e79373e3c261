"""Fitting the static table to MiniLM's sentence vectors (issue 22, ``lookout distill-static --fit-data``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_data import write_public_data, write_toxicity_data

from agent.cli import main
from evaluators.distill_fit import fit_corpus, fit_rows, project
from evaluators.training import relevance, toxicity


def _problem(seed: int = 0) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """A vocabulary whose true rows the fit must recover from the texts' summed vectors, from noisy rows."""
    rng = np.random.default_rng(seed)
    true = rng.normal(size=(40, 12)).astype(np.float32)
    ids = [rng.integers(0, 40, size=rng.integers(1, 6)).astype(np.int64) for _ in range(400)]
    targets = np.stack([true[i].sum(axis=0) for i in ids])
    targets /= np.linalg.norm(targets, axis=1, keepdims=True)
    start = rng.normal(size=(40, 8)).astype(np.float32)  # another dimension: the fit maps it first
    return start, ids, targets.astype(np.float32)


def test_fit_points_summed_rows_at_the_targets() -> None:
    start, ids, targets = _problem()
    projected, energy = project(targets, 8)
    rows, before, after = fit_rows(start, ids, projected, epochs=30, lr=0.05, batch_size=64, report=lambda _: None)
    assert rows.shape == start.shape
    assert energy > 0.8
    assert after < before / 3
    assert after < 0.1


def test_fit_is_deterministic_with_a_seed() -> None:
    start, ids, targets = _problem()
    first = fit_rows(start, ids, targets, epochs=3, seed=5, report=lambda _: None)[0]
    second = fit_rows(start, ids, targets, epochs=3, seed=5, report=lambda _: None)[0]
    other = fit_rows(start, ids, targets, epochs=3, seed=6, report=lambda _: None)[0]
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


def test_fit_refuses_mismatched_or_empty_input() -> None:
    start, ids, targets = _problem()
    with pytest.raises(ValueError, match="token lists"):
        fit_rows(start, ids[:3], targets, report=lambda _: None)
    with pytest.raises(ValueError, match="no text has a token"):
        fit_rows(start, [np.zeros(0, dtype=np.int64)] * 2, targets[:2], report=lambda _: None)


def test_projection_keeps_cosines_when_nothing_is_dropped() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 6)).astype(np.float32)
    y, energy = project(x, 6)
    assert energy == pytest.approx(1.0)
    np.testing.assert_allclose(_cosines(y), _cosines(x), atol=1e-5)


def _cosines(a: np.ndarray) -> np.ndarray:
    unit = a / np.linalg.norm(a, axis=1, keepdims=True)
    return np.asarray(unit @ unit.T)


def test_corpus_holds_only_training_texts(tmp_path: Path) -> None:
    """No held-out HaluEval question, HH-RLHF conversation or Davidson tweet, no wiki comment; seeded, limited."""
    root = write_toxicity_data(write_public_data(tmp_path))
    texts = fit_corpus(root, limit=100_000, seed=0)
    assert len(texts) == len(set(texts)) > 20
    questions = relevance.load_halueval(root / "hallucination" / "halueval_qa")
    held = {t for q in questions if relevance.held_out(q.group) for t in (q.question, *q.answers)}
    kept = {t for q in questions if not relevance.held_out(q.group) for t in (q.question, *q.answers)}
    assert held and kept and not held & set(texts) and kept <= set(texts)
    _, hh_held = relevance.load_hh_split(root)
    assert hh_held and not {e.reply for e in hh_held} & set(texts)
    davidson = toxicity.load_davidson(root)
    assert not {r.text for r in davidson if r.held_out} & set(texts)
    assert {r.text for r in davidson if not r.held_out} <= set(texts)
    assert not any("comment" in t for t in texts)  # wiki rows are not fitted on
    assert fit_corpus(root, limit=100_000, seed=0) == texts
    assert fit_corpus(root, limit=10, seed=1) != texts[:10]
    assert len(fit_corpus(root, limit=10, seed=1)) == 10


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["distill-static", "--fit-data", str(tmp_path / "missing"), "--out", str(tmp_path / "t")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("lookout: error:") and "\n" not in err
    with pytest.raises(SystemExit):
        main(["distill-static", "--fit-texts", "0"])
    assert "not a positive number" in capsys.readouterr().err
