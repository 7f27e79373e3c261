"""Verdict meaning: each detector's score, threshold and direction in words, and the rules a label must follow."""

from __future__ import annotations

import re

import pytest

from agent.review.errors import ReviewError
from agent.review.verdicts import (
    HARM_DETECTORS,
    DetectorView,
    Thresholds,
    check_verdicts,
    detector_views,
    judged,
    required,
)
from detectors import registry


def view(
    name: str, score: float | None, flags: tuple[str, ...] = (), reasons: tuple[str, ...] = (), **t: float
) -> DetectorView:
    views = detector_views({name: score}, flags, reasons, Thresholds(t))
    return next(v for v in views if v.name == name)


class TestFlagRule:
    """The direction and default threshold are read off the detector classes, without building a model."""

    @pytest.mark.parametrize("name", registry.NAMES)
    def test_matches_the_built_detector(self, name: str) -> None:
        """flag_rule(name) is what the detector the registry builds declares."""
        built = registry.create(name, registry.DetectorOptions(toxicity_backend="lexical"))
        rule = registry.flag_rule(name)
        assert (rule.higher_is_worse, rule.default_threshold) == (built.higher_is_worse, built.default_threshold)

    def test_relevance_flags_low_scores(self) -> None:
        """Relevance and formality flag below their threshold; toxicity at or above."""
        assert not registry.flag_rule("relevance").higher_is_worse
        assert not registry.flag_rule("formality").higher_is_worse
        assert registry.flag_rule("toxicity").higher_is_worse

    def test_unknown_name_lists_the_valid_ones(self) -> None:
        """An unknown detector is a one-line error naming the valid ones."""
        with pytest.raises(ValueError, match="valid: formality, hallucination"):
            registry.flag_rule("toxcity")


class TestWords:
    """The page states each detector's score, threshold and direction in words."""

    def test_flagged_low_relevance(self) -> None:
        """A relevance flag says it is below the threshold, and that low is the bad direction."""
        v = view("relevance", 0.316, flags=("relevance",), relevance=0.35)
        assert v.sentence() == "relevance 0.316 — flagged: below the 0.35 threshold (low relevance)"

    def test_quiet_toxicity(self) -> None:
        """An unflagged toxicity score is under its (default) threshold."""
        assert view("toxicity", 0.08).sentence() == "toxicity 0.080 — not flagged: under the 0.5 threshold"

    def test_flagged_high_and_quiet_low(self) -> None:
        """Toxicity flags at or above; relevance is quiet at or above."""
        assert view("toxicity", 0.5, flags=("toxicity",)).words() == (
            "flagged: at or above the 0.5 threshold (high toxicity)"
        )
        assert view("relevance", 0.9).words() == "not flagged: at or above the 0.26 threshold"  # relevance's default

    def test_no_score(self) -> None:
        """A missing score never flags, and the words say where it would."""
        assert view("formality", None).words() == "no score, so no flag (it flags below the 0.2 threshold)"

    def test_taken_over_by_refusal(self) -> None:
        """A low relevance score on a refusal is not flagged: the refusal flag takes over, and the words say so."""
        v = detector_views({"relevance": 0.1}, ("refusal",), (), Thresholds())[2]
        assert (v.name, v.flagged, v.crossed) == ("relevance", False, True)
        assert v.words() == "not flagged: below the 0.26 threshold, but its refusal flag takes over"

    def test_scored_under_another_threshold(self) -> None:
        """A stored flag that disagrees with the threshold now is shown as such, not silently recomputed."""
        v = view("toxicity", 0.3, flags=("toxicity",))
        assert v.flagged and not v.crossed
        assert (
            v.words()
            == "flagged when scored, though now under the 0.5 threshold (it was scored under another threshold)"
        )


class TestRules:
    """Routing reasons need verdicts; a confirmed harm needs a severity; only registered detectors."""

    def test_required_are_the_detector_reasons(self) -> None:
        """control, novel and near_duplicate route items but are not detectors: no verdict is required for them."""
        assert required(("novel", "relevance", "toxicity", "control")) == ("toxicity", "relevance")

    def test_missing_reason_verdict(self) -> None:
        """A label without a verdict on a routing reason is refused, naming it, in one line."""
        with pytest.raises(ReviewError) as err:
            check_verdicts({"relevance": "reject"}, 0, ("toxicity", "relevance", "novel"))
        assert str(err.value).startswith("verdicts missing for the routing reasons toxicity:")
        assert "\n" not in str(err.value)

    @pytest.mark.parametrize("harm", HARM_DETECTORS)
    def test_confirmed_harm_needs_severity(self, harm: str) -> None:
        """Confirming toxicity or prompt_toxicity with severity none is refused; severity 1 is enough."""
        with pytest.raises(ReviewError, match=f"{harm} confirmed as harm: choose a severity"):
            check_verdicts({harm: "confirm"}, 0, ())
        check_verdicts({harm: "confirm"}, 1, ())

    def test_rejected_harm_and_other_confirms_need_no_severity(self) -> None:
        """A rejected toxicity flag, or a confirmed hallucination, may keep severity none."""
        check_verdicts({"toxicity": "reject", "hallucination": "confirm"}, 0, ("toxicity",))

    def test_unknown_detector(self) -> None:
        """A verdict for an unregistered name is refused with the valid names."""
        with pytest.raises(ReviewError, match=re.escape("unknown detectors 'novel' (valid: toxicity")):
            check_verdicts({"novel": "confirm"}, 0, ())

    def test_judged_keeps_only_judged_detectors(self) -> None:
        """Only detectors with a verdict get score/threshold/flag; a missing score is absent, not NaN."""
        views = detector_views(
            {"toxicity": 0.9, "relevance": 0.316, "tone": None},
            ("toxicity",),
            ("toxicity",),
            Thresholds({"relevance": 0.35}),
        )
        seen = judged({"toxicity": "confirm", "relevance": "reject", "tone": "reject"}, views)
        assert seen.scores == {"toxicity": 0.9, "relevance": 0.316}
        assert seen.thresholds == {"toxicity": 0.5, "relevance": 0.35, "tone": 0.75}
        assert seen.flagged == {"toxicity": 1, "relevance": 0, "tone": 0}
