"""Measure embedding drift detection on real text: false alarms on same-corpus windows, detection on mixed ones.

Protocol (the issue's acceptance test): a reference of ``reference_size`` prompts from the base corpus, then
``same_windows`` windows drawn from the rest of the base corpus (each window without replacement, windows
independently) and ``drift_windows`` windows where ``contamination`` of the records come from another corpus.
A good detector raises at most 5 % false alarms and detects every mixed window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from detectors.drift import EmbeddingDrift, EmbeddingMethod, WindowSpec


@dataclass(frozen=True, slots=True)
class DriftEval:
    """Outcome of one protocol run."""

    method: str
    """Drift method."""
    window: int
    """Window size (records)."""
    contamination: float
    """Share of other-corpus records in a drifted window."""
    false_alarms: int
    """Same-corpus windows flagged as drifted."""
    same_windows: int
    """Same-corpus windows tested."""
    detected: int
    """Mixed windows flagged as drifted."""
    drift_windows: int
    """Mixed windows tested."""

    @property
    def false_alarm_rate(self) -> float:
        """Share of same-corpus windows flagged."""
        return self.false_alarms / self.same_windows

    @property
    def detection_rate(self) -> float:
        """Share of mixed windows flagged."""
        return self.detected / self.drift_windows


def run_protocol(
    base: npt.NDArray[np.float32],
    other: npt.NDArray[np.float32],
    *,
    method: EmbeddingMethod = "knn-ks",
    reference_size: int = 500,
    window: int = 200,
    contamination: float = 0.3,
    same_windows: int = 40,
    drift_windows: int = 20,
    seed: int = 0,
) -> DriftEval:
    """Run the protocol on embedding matrices of the base corpus and the other corpus."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(base))
    reference, pool = base[order[:reference_size]], base[order[reference_size:]]
    if len(pool) < window:
        raise ValueError(f"base corpus too small: {len(pool)} records left after the reference, window {window}")
    n_other = round(window * contamination)
    detector = EmbeddingDrift(
        reference_size=reference_size, window=WindowSpec(size=window, seconds=None), method=method
    )
    detector.update(reference, list(range(reference_size)))
    clock = reference_size
    outcomes: list[bool] = []
    kinds = [False] * same_windows + [True] * drift_windows
    for mixed in kinds:
        rows = pool[rng.choice(len(pool), size=window - (n_other if mixed else 0), replace=False)]
        if mixed:
            rows = np.concatenate([rows, other[rng.choice(len(other), size=n_other, replace=False)]])
            rows = rows[rng.permutation(len(rows))]
        results = detector.update(rows, list(range(clock, clock + window)))
        clock += window
        if len(results) != 1:
            raise RuntimeError(f"expected one closed window, got {len(results)}")
        outcomes.append(results[0].drifted)
    return DriftEval(
        method=method,
        window=window,
        contamination=contamination,
        false_alarms=sum(o for o, k in zip(outcomes, kinds, strict=True) if not k),
        same_windows=same_windows,
        detected=sum(o for o, k in zip(outcomes, kinds, strict=True) if k),
        drift_windows=drift_windows,
    )


def markdown_table(rows: Sequence[DriftEval]) -> str:
    """One line per protocol run."""
    lines = [
        "| method | window | other-corpus share | false alarms | detected |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.method} | {r.window} | {r.contamination:.0%} | {r.false_alarms}/{r.same_windows} "
            f"({r.false_alarm_rate:.1%}) | {r.detected}/{r.drift_windows} ({r.detection_rate:.0%}) |"
        )
    return "\n".join(lines)
