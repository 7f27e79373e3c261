"""Calibration: thresholds that meet a target precision on held-out labels, directions, scopes, the versioned file."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import pytest
from site_sim import Site, StreamSpec, simulate

from agent.config import Settings
from agent.errors import ConfigError
from agent.score import Scorer
from agent.thresholds import LabelSet, load_thresholds
from agent.types import Sample
from evaluators.calibrate import Current, calibrate, cuts, label_set, points, propose, thresholds_file
from evaluators.labeled import ANY, LabeledRecord, Stream, Traffic

ACME = ("acme", "gpt-4o-mini", "chat")
GLOBEX = ("globex", "gpt-4o-mini", "chat")
NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
PREVALENCE = {"toxicity": 0.15, "relevance": 0.15}


def _halves(site: Site) -> tuple[list[LabeledRecord], list[LabeledRecord]]:
    """Labeled records split by a hash of their id: (fit, held out)."""
    fit: list[LabeledRecord] = []
    held: list[LabeledRecord] = []
    for r in site.labeled:
        (held if hashlib.sha256(r.record_id.encode()).digest()[0] % 2 else fit).append(r)
    return fit, held


def _half_traffic(site: Site) -> Traffic:
    """Half the traffic (the fit half stands for half the records)."""
    t = site.traffic()
    return Traffic({k: n // 2 for k, n in t.flagged.items()}, {k: n // 2 for k, n in t.unflagged.items()})


def _held_out_precision(held: list[LabeledRecord], detector: str, threshold: float, higher_is_worse: bool) -> float:
    """Confirmed share of the held-out labeled flags that the new threshold still flags."""
    kept = [
        r for r in held
        if detector in r.flags and detector in r.verdicts and (
            (s := r.scores[detector]) is not None and (s >= threshold if higher_is_worse else s < threshold))
    ]  # fmt: skip
    return sum(r.verdicts[detector] == "confirm" for r in kept) / len(kept)


class TestHeldOut:
    """Fit on half the labels, check on the other half."""

    SPEC: ClassVar[dict[Stream, StreamSpec]] = {
        ACME: StreamSpec(n=20000, prevalence={"toxicity": 0.15, "relevance": 0.15}, separation=2.5)
    }

    @pytest.mark.parametrize("target", [0.8, 0.9])
    def test_reaches_target_on_held_out_labels(self, target: float) -> None:
        """Today's 0.5 flags at ~60 % precision; the proposal reaches the target on labels it never saw."""
        site = simulate(11, self.SPEC, label_share=0.5, control_rate=0.05)
        fit, held = _halves(site)
        current = Current({"toxicity": 0.5, "relevance": 0.5})
        proposals = calibrate(site.detectors, fit, _half_traffic(site), current, target, min_n=30)
        by = {p.detector: p for p in proposals if p.tenant == ANY}
        tox, rel = by["toxicity"], by["relevance"]
        assert tox.status == rel.status == "calibrated"
        assert tox.precision_now is not None and tox.precision_now < target
        assert tox.proposed is not None and tox.proposed > 0.5  # toxicity flags high scores: stricter is higher
        assert rel.proposed is not None and rel.proposed < 0.5  # relevance flags low scores: stricter is lower
        assert _held_out_precision(held, "toxicity", tox.proposed, True) >= target
        assert _held_out_precision(held, "relevance", rel.proposed, False) >= target
        assert tox.recall_cost is not None and 0 < tox.recall_cost < 1
        assert tox.recall is not None and tox.recall_now is not None and tox.recall < tox.recall_now

    def test_higher_target_costs_more_recall(self) -> None:
        """0.9 is stricter than 0.8: a threshold at least as strict and at least as much recall lost."""
        site = simulate(11, self.SPEC, label_share=0.5, control_rate=0.05)
        current = Current({"toxicity": 0.5})
        low, high = (propose("toxicity", ANY, site.labeled, site.traffic(), 0.5, t, 30) for t in (0.8, 0.9))
        assert low.proposed is not None and high.proposed is not None and high.proposed >= low.proposed
        assert high.recall_cost is not None and low.recall_cost is not None and high.recall_cost >= low.recall_cost
        assert current.of("toxicity", "acme") == 0.5


class TestKeep:
    """When the labels do not say enough, the current threshold stays."""

    def test_too_few_labels(self) -> None:
        """Fewer labeled flags than min_n: kept, and said so."""
        site = simulate(2, {ACME: StreamSpec(n=300)}, label_share=0.2)
        p = propose("toxicity", ANY, site.labeled, site.traffic(), 0.5, 0.9, min_n=30)
        assert (p.status, p.proposed, p.current) == ("too few labels", None, 0.5) and p.n < 30

    def test_unreachable_target(self) -> None:
        """A detector whose scores say nothing about the truth cannot be made precise: kept."""
        site = simulate(4, {ACME: StreamSpec(n=4000, separation=0.0)}, label_share=0.5)
        p = propose("toxicity", ANY, site.labeled, site.traffic(), 0.5, 0.9, min_n=30)
        assert (p.status, p.proposed) == ("target not reached", None) and p.precision_now is not None

    def test_already_precise_is_unchanged(self) -> None:
        """Every labeled flag confirmed and no miss: nothing to move."""
        labeled = [
            LabeledRecord(f"r{i}", NOW, ACME, frozenset({"toxicity"}), False, {"toxicity": "confirm"},
                          {"toxicity": 0.6 + i / 1000})
            for i in range(200)
        ]  # fmt: skip
        p = propose("toxicity", ANY, labeled, Traffic({("toxicity", ACME): 200}, {ACME: 1000}), 0.5, 0.9, 30)
        assert (p.status, p.proposed) == ("unchanged", None)


class TestCuts:
    """Candidate thresholds."""

    def test_thresholds_sit_between_scores_and_ties_go_together(self) -> None:
        """Equal scores are one cut; each threshold separates the scores on its two sides, rounded."""
        labeled = [
            LabeledRecord(rid, NOW, ACME, frozenset({"toxicity"}), False, {"toxicity": v}, {"toxicity": s})
            for rid, s, v in (("a", 0.9, "confirm"), ("b", 0.7, "confirm"), ("c", 0.7, "reject"), ("d", 0.55, "reject"))
        ]  # fmt: skip
        evidence = points("toxicity", labeled, Traffic({("toxicity", ACME): 4}, {ACME: 0}))
        assert [(c.threshold, round(c.precision, 3)) for c in cuts(evidence, True)] == [
            (0.8, 1.0), (0.62, 0.667), (0.55, 0.5),
        ]  # fmt: skip
        lower = cuts(evidence, False)  # low-is-worse: the same scores from the other end
        assert [c.threshold for c in lower][:2] == [0.62, 0.8]


class TestScopes:
    """Per tenant where labels suffice."""

    def test_tenant_with_enough_labels_gets_its_own_threshold(self) -> None:
        """Tenant acme (many labels) gets an override; globex (few labels) follows the global threshold."""
        site = simulate(5, {
            ACME: StreamSpec(n=20000, prevalence=PREVALENCE, separation=2.5),
            GLOBEX: StreamSpec(n=150, separation=3.0),
        }, label_share=0.5)  # fmt: skip
        proposals = calibrate(("toxicity",), site.labeled, site.traffic(), Current({}), 0.85, min_n=30)
        assert {(p.tenant, p.status) for p in proposals} == {(ANY, "calibrated"), ("acme", "calibrated")}
        only = calibrate(("toxicity",), site.labeled, site.traffic(), Current({}), 0.85, 30, tenants=("globex",))
        assert [(p.tenant, p.status) for p in only] == [("globex", "too few labels")]

    def test_current_threshold_prefers_tenant_then_file_then_default(self) -> None:
        """A tenant override, then the global one, then the detector's default."""
        current = Current({"toxicity": 0.6}, {"acme": {"toxicity": 0.7}})
        assert (current.of("toxicity", "acme"), current.of("toxicity", "globex")) == (0.7, 0.6)
        assert current.of("relevance", "acme") == 0.26  # relevance's default (docs/detectors.md#operating-points)


class TestThresholdsFile:
    """The versioned file: content-addressed version, round trip, one-line errors."""

    def test_version_follows_content_and_round_trips(self, tmp_path: Path) -> None:
        """Same proposals and labels: same version; the YAML reads back equal; tenant entries equal to global drop."""
        site = simulate(5, {ACME: StreamSpec(n=20000, prevalence=PREVALENCE, separation=2.5)}, label_share=0.5)
        proposals = calibrate(("toxicity",), site.labeled, site.traffic(), Current({}), 0.85, min_n=30)
        labels = label_set(site.labeled)
        first = thresholds_file(proposals, None, labels, 0.85, NOW)
        again = thresholds_file(proposals, None, labels, 0.85, datetime(2026, 12, 1, 18, tzinfo=UTC))
        assert first.version == again.version and first.version.startswith("cal-20261201-")
        assert first.tenants == {}  # acme's threshold equals the global one
        assert labels.count == len(site.labeled) and len(labels.label_ids_sha256) == 64
        path = tmp_path / "t.yaml"
        path.write_text(first.to_yaml())
        assert load_thresholds(path) == first
        other = thresholds_file(proposals, None, labels, 0.9, NOW)
        assert other.version != first.version

    def test_keeps_the_base_file_and_replaces_what_was_calibrated(self) -> None:
        """Entries of the current file stay unless calibrated anew."""
        base = thresholds_file([], None, LabelSet(count=0), 0.9, NOW).model_copy(
            update={"thresholds": {"tone": 0.3, "toxicity": 0.5}, "tenants": {"acme": {"tone": 0.4}}}
        )
        site = simulate(5, {ACME: StreamSpec(n=20000, prevalence=PREVALENCE, separation=2.5)}, label_share=0.5)
        proposals = calibrate(("toxicity",), site.labeled, site.traffic(), Current({}), 0.85, min_n=30)
        new = thresholds_file(proposals, base, label_set(site.labeled), 0.85, NOW)
        assert new.thresholds["tone"] == 0.3 and new.thresholds["toxicity"] > 0.5
        assert new.tenants == {"acme": {"tone": 0.4}}

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("version: v1\nthresholds: {toxcity: 0.5}\n", "thresholds: unknown detector 'toxcity'; valid: formality,"),
            ("version: v1\ntenants: {acme: {tone: x}}\n", "tenants.acme.tone: Input should be a valid number"),
            ("version: v1\ntenants: {acme: {tone: .inf}}\n", "tenants: acme: tone: inf is not a finite number"),
            ("version: 'v 1'\n", "version: version 'v 1': use letters"),
            ("version: v1\ntenant: {acme: {toxicity: 0.5}}\n", "tenant: Extra inputs are not permitted"),
            ("version: v1\nthresholds: {toxicity: .nan}\n", "is not a finite number"),
            ("thresholds: {toxicity: 0.5}\n", "version: Field required"),
            ("version: v1\nthresholds: [\n", "not valid YAML or JSON at line"),
            ("- a list\n", "expected a mapping"),
        ],
    )
    def test_bad_file_is_one_config_error_line(self, tmp_path: Path, text: str, message: str) -> None:
        """Each problem is one ConfigError line naming the file and what is wrong."""
        path = tmp_path / "bad.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError) as info:
            load_thresholds(path)
        line = str(info.value)
        assert "\n" not in line and line.startswith(f"thresholds file {path}: ") and message in line, line

    def test_missing_file(self, tmp_path: Path) -> None:
        """A path that does not exist says so and names the setting."""
        with pytest.raises(ConfigError, match=r"cannot read it .*detectors\.thresholds_file"):
            load_thresholds(tmp_path / "nope.yaml")


class TestScorerReadsTheFile:
    """The score step applies the file: global entries over the settings, tenant entries for that tenant only."""

    def _scorer(self, tmp_path: Path, text: str, **detectors: object) -> Scorer:
        path = tmp_path / "t.yaml"
        path.write_text(text)
        settings = Settings().with_overrides(
            detectors={"enabled": ["repetition", "refusal"], "thresholds_file": str(path), **detectors},
            drift={"enabled": False}, embeddings={"store": False},
        )  # fmt: skip
        return Scorer.from_settings(settings)

    def test_tenant_override_and_version(self, tmp_path: Path) -> None:
        """Acme flags repetition at 0 (every record), others at 1.01 (none); the version is the file's."""
        scorer = self._scorer(
            tmp_path, "version: cal-x\nthresholds: {repetition: 1.01}\ntenants: {acme: {repetition: 0.0}}\n",
            thresholds={"refusal": 0.9},
        )  # fmt: skip
        samples = [Sample(id=f"r{i}", ts=NOW, prompt="hi", response="hello there", tenant=t)
                   for i, t in enumerate(("acme", "globex", "acme"))]  # fmt: skip
        flagged = [("repetition" in s.flags) for s in scorer.score(samples)]
        assert flagged == [True, False, True]
        assert scorer.thresholds_version == "cal-x"
        assert scorer.thresholds_for("acme") == {"repetition": 0.0, "refusal": 0.9}
        assert scorer.thresholds_for("globex") == {"repetition": 1.01, "refusal": 0.9}

    def test_detectors_not_enabled_are_ignored(self, tmp_path: Path) -> None:
        """An entry for a detector that is switched off does not stop the agent."""
        scorer = self._scorer(tmp_path, "version: v2\nthresholds: {toxicity: 0.7}\ntenants: {acme: {tone: 0.2}}\n")
        assert scorer.thresholds == {"repetition": 0.5, "refusal": 0.5} and scorer.thresholds_version == "v2"

    def test_bad_file_is_a_config_error(self, tmp_path: Path) -> None:
        """Building the scorer from a bad file raises the one-line ConfigError the CLI prints."""
        with pytest.raises(ConfigError, match=r"^thresholds file .*: version: Field required$"):
            self._scorer(tmp_path, "thresholds: {repetition: 0.4}\n")
