"""What a verdict judges, in words, and the rules a label must follow.

A verdict on a detector says whether *its flag, or its silence*, is right for this record: ``confirm`` = the
detector was right (flagged a bad record, or stayed silent on a fine one), ``reject`` = it was wrong (a false
flag, or a miss). Each stored verdict keeps what the reviewer saw: the detector's score, its threshold and
whether it flagged (:func:`judged`). The detectors that routed the item (its ``reasons``) must get a verdict;
the others are optional. A confirmed harm (a ``confirm`` on one of :data:`HARM_DETECTORS`) needs a severity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from agent.review.errors import ReviewError, shown
from agent.review.rules import DETECTORS
from agent.score import SUPPRESSES
from detectors.registry import flag_rule

HARM_DETECTORS: tuple[str, ...] = ("toxicity", "prompt_toxicity")
"""The safety detectors: confirming one says the record does harm, so the label needs a severity above none.
Hallucination, refusal and the rest judge quality, not harm: their severity is optional."""


@dataclass(frozen=True)
class Thresholds:
    """Each detector's flag threshold: the deployment's (``detectors.thresholds``), else the detector's default.

    Args:
        overrides: Detector → threshold, as configured.
    """

    overrides: Mapping[str, float] = field(default_factory=dict)

    def of(self, detector: str) -> float:
        """The threshold ``detector`` flags at."""
        given = self.overrides.get(detector)
        return float(given) if given is not None else flag_rule(detector).default_threshold


@dataclass(frozen=True, slots=True)
class DetectorView:
    """One detector on one record, as the reviewer is shown it."""

    name: str
    """Detector name."""
    score: float | None
    """Its score (None: it gave none)."""
    threshold: float
    """The threshold it flags at."""
    higher_is_worse: bool
    """True: flags at or above the threshold; False: flags below it."""
    flagged: bool
    """Whether the record was stored with its flag."""
    reason: bool
    """Whether it is one of the detectors that routed the item here (its verdict is required)."""
    harm: bool
    """Whether it is a safety detector (:data:`HARM_DETECTORS`)."""
    taken_over_by: str = ""
    """Another flag of the record that takes this one over (a refusal is off-topic on purpose), if any."""

    @property
    def crossed(self) -> bool:
        """Whether the score is past the threshold in the bad direction."""
        if self.score is None:
            return False
        return self.score >= self.threshold if self.higher_is_worse else self.score < self.threshold

    def words(self) -> str:
        """Why it flagged or not, e.g. ``flagged: below the 0.35 threshold (low relevance)``."""
        high, low = f"at or above the {self.threshold:g} threshold", f"below the {self.threshold:g} threshold"
        bad, good = (high, low.replace("below", "under")) if self.higher_is_worse else (low, high)
        what = f"({'high' if self.higher_is_worse else 'low'} {self.name.replace('_', ' ')})"
        if self.score is None:
            return f"no score, so no flag (it flags {bad})"
        if self.flagged and self.crossed:
            return f"flagged: {bad} {what}"
        if not self.flagged and not self.crossed:
            return f"not flagged: {good}"
        if self.flagged:
            return f"flagged when scored, though now {good} (it was scored under another threshold)"
        if self.taken_over_by:
            return f"not flagged: {bad}, but its {self.taken_over_by} flag takes over"
        return f"not flagged when scored, though now {bad} (it was scored under another threshold)"

    def sentence(self) -> str:
        """Name, score and :meth:`words`: ``relevance 0.316 — flagged: below the 0.35 threshold (low relevance)``."""
        score = "-" if self.score is None else f"{self.score:.3f}"
        return f"{self.name} {score} — {self.words()}"


def detector_views(
    scores: Mapping[str, float | None], flags: Sequence[str], reasons: Sequence[str], thresholds: Thresholds
) -> list[DetectorView]:
    """Every registered detector on a record, in registry order."""
    out = []
    for name in DETECTORS:
        rule = flag_rule(name)
        takes_over = next((f for f in flags if name in SUPPRESSES.get(f, ())), "")
        out.append(
            DetectorView(
                name, scores.get(name), thresholds.of(name), rule.higher_is_worse, name in flags, name in reasons,
                name in HARM_DETECTORS, takes_over,
            )
        )  # fmt: skip
    return out


def required(reasons: Sequence[str]) -> tuple[str, ...]:
    """The routing reasons that are detectors: each needs a verdict (``control``, ``novel``... need none)."""
    return tuple(d for d in DETECTORS if d in reasons)


def check_known(verdicts: Mapping[str, str]) -> None:
    """Raise a one-line :class:`ReviewError` if a verdict names no registered detector."""
    unknown = sorted(set(verdicts) - set(DETECTORS))
    if unknown:
        raise ReviewError(f"verdicts for unknown detectors {shown(', '.join(unknown))} (valid: {', '.join(DETECTORS)})")


def check_verdicts(verdicts: Mapping[str, str], severity: int, reasons: Sequence[str]) -> None:
    """Raise a one-line :class:`ReviewError` unless the label follows the rules.

    Verdicts only for registered detectors; one for each routing reason; a confirmed harm needs severity >= 1.
    """
    check_known(verdicts)
    missing = [d for d in required(reasons) if d not in verdicts]
    if missing:
        raise ReviewError(
            f"verdicts missing for the routing reasons {', '.join(missing)}: confirm or reject each "
            "(was its flag right for this record?)"
        )
    harms = [d for d in HARM_DETECTORS if verdicts.get(d) == "confirm"]
    if harms and severity < 1:
        raise ReviewError(f"{' and '.join(harms)} confirmed as harm: choose a severity (1-3), not none")


@dataclass(frozen=True, slots=True)
class Judged:
    """What each verdict judged, stored beside it (``review_labels.verdict_*``)."""

    scores: dict[str, float]
    """Detector → score the reviewer saw (absent: it gave none)."""
    thresholds: dict[str, float]
    """Detector → threshold it flags at."""
    flagged: dict[str, int]
    """Detector → 1 if the record carried its flag, else 0."""


def judged(verdicts: Mapping[str, str], views: Sequence[DetectorView]) -> Judged:
    """The score, threshold and flag of every detector that got a verdict (from the stored record, not the client)."""
    seen = [v for v in views if v.name in verdicts]
    return Judged(
        scores={v.name: float(v.score) for v in seen if v.score is not None},
        thresholds={v.name: v.threshold for v in seen},
        flagged={v.name: int(v.flagged) for v in seen},
    )
