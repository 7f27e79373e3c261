"""``lookout eval --cascade``: the AUC/MAP rows through the real cascade, beside the full tier's rows."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from tiny_data import write_begin_data, write_public_data, write_toxicity_data

from agent.cascade import Cascade
from agent.cli import main
from detectors.cascade import Bands, build_fast
from detectors.encoder import SentenceTransformerEncoder, build_batch
from detectors.registry import build
from detectors.static_encoder import StaticEncoder
from detectors.testing import Record
from detectors.types import Batch
from evaluators import cascade_eval, heads
from evaluators.quality import EvalRow

NAMES = list(cascade_eval.CASCADED)


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_begin_data(write_toxicity_data(write_public_data(tmp_path_factory.mktemp("datasets"))))


@pytest.fixture(scope="module")
def head_rows(data: Path) -> list[EvalRow]:
    return heads.evaluate_all(data, NAMES, cache_dir=None, report=lambda _line: None)


def detectors(width: float, encoder: SentenceTransformerEncoder) -> dict[str, cascade_eval.CascadeDetector]:
    """Every cascaded detector over one band ``width`` (0: the fast tier decides all; huge: the full tier does)."""
    full = build(NAMES)
    lexical = next(d.lexical for d in full if d.name == "toxicity")  # type: ignore[attr-defined]
    fast = build_fast(NAMES, lexical=lexical)
    cascade = Cascade(StaticEncoder(), encoder, fast, Bands(dict.fromkeys(NAMES, width)), audit_rate=0.0)
    return {d.name: cascade_eval.CascadeDetector(cascade, d) for d in full}


def rows_of(
    found: dict[str, cascade_eval.CascadeDetector], data: Path, encoder: SentenceTransformerEncoder
) -> list[EvalRow]:
    return cascade_eval.cascade_rows(found, data, encoder, cache_dir=None, report=lambda _line: None)


def test_all_in_band_reproduces_every_full_tier_row(
    data: Path, head_rows: list[EvalRow], minilm: SentenceTransformerEncoder
) -> None:
    """With every record escalated, each cascade row equals the head's row of the same set and metric.

    So a gap measured with real bands is the cascade's, not a difference between the two ways of scoring.
    """
    found = detectors(1e9, minilm)
    rows = rows_of(found, data, minilm)
    paired = cascade_eval.gaps(head_rows, rows)
    assert len(paired) == len(rows) >= 12  # every cascade row found its full-tier row
    assert {g.detector for g in paired} == set(NAMES)
    assert all(abs(g.delta) < 1e-9 for g in paired), [g for g in paired if abs(g.delta) >= 1e-9]
    assert all(d.full_fraction == 1.0 and d.scored > 0 for d in found.values())


def test_nothing_in_band_is_the_fast_tier_alone(data: Path, minilm: SentenceTransformerEncoder) -> None:
    """Width 0: no record reaches the full tier and the scores are the fast twins' own."""
    found = detectors(0.0, minilm)
    records = [Record("Who is the mayor of Town1?", "Person1 of Town1", ("Town1's mayor is Person1.",)),
               Record("hello", "you are a stupid worthless idiot", ("The sky is blue.",))]  # fmt: skip
    fast = build_fast(NAMES, lexical=found["toxicity"].detector.lexical)  # type: ignore[attr-defined]
    static = StaticEncoder()
    for name, det in found.items():
        got = [s.value for s in det.score(Batch(records))]
        twin = fast[name]
        want = [s.value for s in twin.score(build_batch(records, static, twin.needs))]
        assert got == pytest.approx(want), name
        assert det.escalated == 0 and det.full_fraction == 0.0


def test_shipped_bands_rows_and_summary(
    data: Path, head_rows: list[EvalRow], minilm: SentenceTransformerEncoder
) -> None:
    """The shipped fast tier and bands give finite AUCs next to the full tier's, and one summary line each."""
    from agent.config_scoring import ScoringSettings

    found = cascade_eval.build_detectors(NAMES, ScoringSettings(mode="cascade", audit_rate=0.5), minilm)
    assert {d.cascade.audit_rate for d in found.values()} == {0.0}  # the bands alone choose the tier
    rows = rows_of(found, data, minilm)
    paired = cascade_eval.gaps(head_rows, rows)
    assert len(paired) == len(rows)
    assert all(0.0 <= g.cascade <= 1.0 for g in paired if math.isfinite(g.cascade))
    lines = cascade_eval.summary(paired, found)
    assert len(lines) == 3
    for name, line in zip(NAMES, lines, strict=True):
        assert line.startswith(f"{name} (cascade): ") and "AUC/MAP/MRR rows within 0.01 of the full tier" in line
        assert f"of {found[name].scored} records" in line


def test_summary_names_the_largest_gap() -> None:
    """The worst row by absolute gap is named with its sign; rows inside the tolerance are counted."""

    class Det:
        full_fraction, scored = 0.25, 8

    found = [
        cascade_eval.Gap("relevance", "set a", "AUC", 0.90, 0.895),
        cascade_eval.Gap("relevance", "set b", "MAP", 0.70, 0.68),
    ]
    (line,) = cascade_eval.summary(found, {"relevance": Det()})  # type: ignore[dict-item]
    assert line == (
        "relevance (cascade): 1 of 2 AUC/MAP/MRR rows within 0.01 of the full tier; largest gap -0.0200 "
        "(MAP, set b); full tier scored 25.0% of 8 records"
    )


def test_gaps_skip_threshold_metrics_and_other_sets() -> None:
    head = [EvalRow("relevance", "s", "AUC", 0.9), EvalRow("relevance", "s", "F1@0.5", 0.8)]
    rows = [
        EvalRow("relevance (cascade)", "s", "AUC", 0.91),
        EvalRow("relevance (cascade)", "s", "F1@0.5", 0.7),
        EvalRow("relevance (cascade)", "other", "AUC", 0.5),
    ]
    (only,) = cascade_eval.gaps(head, rows)
    assert (only.dataset, only.metric, only.full, only.cascade) == ("s", "AUC", 0.9, 0.91)


def test_unknown_detector_is_refused(minilm: SentenceTransformerEncoder) -> None:
    from agent.config_scoring import ScoringSettings

    with pytest.raises(ValueError, match="no cascade for refusal"):
        cascade_eval.build_detectors(["refusal"], ScoringSettings(), minilm)


def test_cli_prints_cascade_rows_and_the_summary(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--data", str(data), "--only", "relevance", "--cascade"]) == 0
    out, err = capsys.readouterr()
    table = [line for line in out.splitlines() if line.startswith("| relevance")]
    cascade = [line for line in table if line.startswith("| relevance (cascade) |")]
    assert len(cascade) == 5  # no WikiQA here: 3 HaluEval and 2 HH-RLHF AUC rows
    assert "relevance (cascade): " in err and "full tier scored" in err
