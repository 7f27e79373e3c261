"""Agreement measures against hand-computed values; the gold file; which items overlap and which picks are gold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.errors import ConfigError
from agent.review.gold import gold_turn, read_gold_file
from agent.review.overlap import is_overlap
from agent.review.testing import FLAGGED_TO_ONE_QUEUE
from evaluators.agreement import (
    GoldAnswer,
    StoredLabel,
    agreement,
    cohen_kappa,
    gold_accuracy,
    krippendorff_alpha_nominal,
)

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def pairs(table: dict[tuple[str, str], int]) -> list[tuple[str, str]]:
    """Rater pairs from a contingency table (A's value, B's value) → count."""
    return [key for key, n in table.items() for _ in range(n)]


def lab(record_id: str, who: str, minute: int, severity: int = 0, queue: str = "q", **verdicts: str) -> StoredLabel:
    """A label of ``who`` on ``record_id``, ``minute`` minutes after T0."""
    return StoredLabel(queue, record_id, who, T0 + timedelta(minutes=minute), verdicts, severity)


class TestCohenKappa:
    """Cohen's kappa: (p_o - p_e) / (1 - p_e) with each rater's own marginals."""

    def test_contingency_table(self) -> None:
        """Yes/yes 20, yes/no 5, no/yes 10, no/no 15: p_o = 0.7, p_e = 0.5*0.6 + 0.5*0.4 = 0.5, kappa = 0.4."""
        table = {("yes", "yes"): 20, ("yes", "no"): 5, ("no", "yes"): 10, ("no", "no"): 15}
        assert cohen_kappa(pairs(table)) == pytest.approx(0.4)

    def test_krippendorff_binary_example(self) -> None:
        """Krippendorff (2011), 2 coders x 10 units: p_o = 0.6, p_e = 0.2*0.4 + 0.8*0.6 = 0.56, kappa = 0.04/0.44."""
        a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
        b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
        assert cohen_kappa(list(zip(a, b, strict=True))) == pytest.approx(0.04 / 0.44)

    def test_perfect_and_opposite(self) -> None:
        """Agreeing on both values is 1; always disagreeing with balanced marginals is -1."""
        assert cohen_kappa(pairs({("c", "c"): 3, ("r", "r"): 2})) == pytest.approx(1.0)
        assert cohen_kappa(pairs({("c", "r"): 2, ("r", "c"): 2})) == pytest.approx(-1.0)

    def test_undefined(self) -> None:
        """No pairs, or both raters always giving the same one value (chance agreement 1): None."""
        assert cohen_kappa([]) is None
        assert cohen_kappa(pairs({("c", "c"): 4})) is None


class TestKrippendorffAlpha:
    """Nominal alpha: 1 - (n - 1) * sum of off-diagonal coincidences / sum over c != k of n_c * n_k."""

    def test_reliability_data_with_missing_values(self) -> None:
        """Krippendorff (2011) 4 coders x 12 units, values 1-5 with missing ones: alpha = 0.743."""
        n = None
        coders = [
            [1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n],
            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
            [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n],
            [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n],
        ]
        units = [[v for v in unit if v is not None] for unit in zip(*coders, strict=True)]
        alpha = krippendorff_alpha_nominal(units)
        assert alpha == pytest.approx(0.743, abs=5e-4)
        # by hand: n = 40; n_c = 9, 13, 10, 5, 3 (values 1-5), so sum over c != k of n_c * n_k = 1600 - 384 = 1216;
        # disagreeing units 2, 6, 8 add 6/3 + 12/3 + 6/3 = 8 off-diagonal coincidences
        assert alpha == pytest.approx(1 - 39 * 8 / 1216)

    def test_binary_example(self) -> None:
        """Krippendorff (2011) 2 coders x 10 units, binary: o_01 = 4, n_0 = 14, n_1 = 6, alpha = 1 - 19 * 4 / 84."""
        a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
        b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
        alpha = krippendorff_alpha_nominal([list(u) for u in zip(a, b, strict=True)])
        assert alpha == pytest.approx(0.095, abs=5e-4)
        assert alpha == pytest.approx(1 - 19 * 4 / (6 * 14))

    def test_small_coincidence_matrix(self) -> None:
        """Units {a,a}, {a,b}, {b,b}, {b}: o_ab = 1, n_a = n_b = 3, n = 6 → 1 - 5 * 1 / 9; the lone {b} drops out."""
        assert krippendorff_alpha_nominal([["a", "a"], ["a", "b"], ["b", "b"], ["b"]]) == pytest.approx(1 - 5 / 9)

    def test_undefined(self) -> None:
        """Nothing pairable, or one value only: None."""
        assert krippendorff_alpha_nominal([["a"], ["b"]]) is None
        assert krippendorff_alpha_nominal([["a", "a"], ["a", "a", "a"]]) is None


class TestAgreementFromLabels:
    """Labels become per-(queue, detector) units: each annotator's latest label, two or more verdicts an item."""

    def test_pairs_units_and_latest_label(self) -> None:
        """Kappa over the two-verdict items (earlier label is rater A), alpha over every item with two or more."""
        labels = [
            lab("i1", "ann", 0, toxicity="confirm"),
            lab("i1", "bob", 1, toxicity="confirm"),
            lab("i2", "bob", 0, toxicity="confirm"),
            lab("i2", "ann", 1, toxicity="reject"),
            lab("i3", "ann", 0, toxicity="reject"),
            lab("i3", "bob", 1, toxicity="reject"),
            lab("i3", "cat", 2, toxicity="confirm"),  # three verdicts: alpha only
            lab("i4", "ann", 0, toxicity="confirm"),  # one verdict: neither
            lab("i5", "ann", 0, toxicity="confirm"),
            lab("i5", "bob", 1, toxicity="confirm"),
            lab("i5", "bob", 2, toxicity="reject"),  # bob's later label replaces his earlier one
            lab("i1", "ann", 0, refusal="confirm", queue="other"),
        ]
        (row,) = agreement(labels)
        assert (row.queue, row.detector, row.items, row.verdicts, row.pairs) == ("q", "toxicity", 4, 9, 3)
        # pairs (A, B): (c, c), (c, r), (c, r): p_o = 1/3, p_e = 1 * 1/3 + 0 * 2/3 = 1/3 → 0
        assert row.kappa == pytest.approx(0.0)
        # units {c,c}, {c,r}, {r,r,c}, {c,r}: n = 9, n_c = 5, n_r = 4; D_o sum = 2 + 4/2 + 2 = 6 → 1 - 8 * 6 / 40
        assert row.alpha == pytest.approx(1 - 8 * 6 / 40)


class TestGoldAccuracy:
    """Each annotator's latest label of a gold item against its known verdicts and severity."""

    def test_scores_per_annotator(self) -> None:
        """Correct and wrong verdicts, a verdict left out, severities, and labels on non-gold items ignored."""
        answers = {
            ("q", "g1"): GoldAnswer({"toxicity": "confirm"}, 2),
            ("q", "g2"): GoldAnswer({"toxicity": "reject", "refusal": "confirm"}, None),
        }
        labels = [
            lab("g1", "ann", 0, 2, toxicity="confirm"),
            lab("g2", "ann", 0, toxicity="reject", refusal="confirm"),
            lab("g1", "bob", 0, 1, toxicity="reject"),
            lab("g1", "bob", 5, 1, toxicity="confirm"),  # bob corrected himself: the latest counts
            lab("g2", "bob", 0, toxicity="confirm"),  # no refusal verdict: unanswered
            lab("x", "bob", 0, toxicity="confirm"),
        ]
        got = {g.annotator: g for g in gold_accuracy(labels, answers)}
        ann, bob = got["ann"], got["bob"]
        assert (ann.items, ann.verdicts, ann.correct, ann.accuracy, ann.unanswered) == (2, 3, 3, 1.0, 0)
        assert (bob.items, bob.verdicts, bob.correct, bob.accuracy, bob.unanswered) == (2, 2, 1, 0.5, 1)
        assert (ann.severities, ann.severity_correct, bob.severities, bob.severity_correct) == (1, 1, 1, 0)


class TestGoldFile:
    """The gold file: YAML or JSONL, validated against the rules' queues and the detectors; one-line errors."""

    def test_yaml_and_jsonl(self, tmp_path: Path) -> None:
        """Defaults: a UUID from the text, reasons from ``expected``, the queue's top rule and its priority."""
        yml = tmp_path / "gold.yaml"
        yml.write_text("items:\n  - {queues: [safety], response: hi, expected: {toxicity: reject}}\n")
        jsonl = tmp_path / "gold.jsonl"
        jsonl.write_text('{"queues": ["safety"], "response": "hi", "expected": {"toxicity": "reject"}}\n\n')
        (a,) = read_gold_file(yml, FLAGGED_TO_ONE_QUEUE)
        (b,) = read_gold_file(jsonl, FLAGGED_TO_ONE_QUEUE)
        assert a.record_id == b.record_id and len(a.record_id) == 36
        assert (a.queue, a.rule, a.priority, a.reasons, a.control) == ("safety", "toxic", 10, ("toxicity",), False)

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("- {queues: [nope], expected: {toxicity: reject}}",
             "item 1: unknown queue 'nope' (queues: safety)"),
            ("- {queues: [safety], expected: {toxcity: reject}}",
             "item 1 field expected: unknown detector 'toxcity'"),
            ("- {queues: [safety], expected: {toxicity: maybe}}",
             "item 1 field expected.toxicity: Input should be 'confirm' or 'reject'"),
            ("- {queues: [safety], expected: {}}", "item 1 field expected: Dictionary should have at least 1 item"),
            ("- {queues: [safety], expected: {toxicity: reject}, colour: red}",
             "item 1 field colour: Extra inputs are not permitted"),
            ("- {queues: [safety], response: a, expected: {toxicity: reject}}\n"
             "- {queues: [safety], response: a, expected: {toxicity: confirm}}",
             "item 2 has the record id of item 1 in queue 'safety'"),
            ("queues: [safety]", "must be a list of items"),
            ("- [unclosed", "is not valid YAML"),
        ],
    )  # fmt: skip
    def test_errors_name_the_item(self, tmp_path: Path, text: str, message: str) -> None:
        """Each mistake is one line naming the file, the item and the field."""
        path = tmp_path / "gold.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError) as info:
            read_gold_file(path, FLAGGED_TO_ONE_QUEUE)
        assert str(info.value).startswith(f"review gold file {path}")
        assert message in str(info.value) and "\n" not in str(info.value)

    def test_missing_file(self, tmp_path: Path) -> None:
        """An unreadable file is a one-line error."""
        with pytest.raises(ConfigError, match="is not readable"):
            read_gold_file(tmp_path / "none.yaml", FLAGGED_TO_ONE_QUEUE)


class TestShares:
    """Overlap and gold picks are deterministic hashes that hit their share."""

    def test_overlap_is_deterministic_and_near_its_rate(self) -> None:
        """Same (queue, id), same answer; over 4000 ids about 10% overlap; 0 and 1 are none and all."""
        ids = [f"r-{i}" for i in range(4000)]
        marked = [is_overlap("safety", r, 0.1) for r in ids]
        assert marked == [is_overlap("safety", r, 0.1) for r in ids]
        assert 0.08 < sum(marked) / len(ids) < 0.12
        assert not any(is_overlap("safety", r, 0.0) for r in ids[:100])
        assert all(is_overlap("safety", r, 1.0) for r in ids[:100])
        assert marked != [is_overlap("grounding", r, 0.1) for r in ids]  # the queue salts the hash

    def test_gold_turns_near_their_share(self) -> None:
        """Over 4000 positions about 5% of an annotator's picks are gold; another annotator gets other positions."""
        alice = [gold_turn("alice", "safety", k, 0.05) for k in range(4000)]
        assert 0.04 < sum(alice) / len(alice) < 0.06
        assert alice != [gold_turn("bob", "safety", k, 0.05) for k in range(4000)]
        assert all(gold_turn("alice", "safety", k, 1.0) for k in range(100))
