"""Load shedding: when the agent falls behind, sample the expensive signals and record each record's weight.

Cheap detectors (the heads on the shared embeddings) always score 100 % of records. The expensive signals (the
detectors listed in ``shedding.detectors``, e.g. hallucination with its per-sentence encoder pass, and the drift
step) run only on a deterministic sample while shedding: a record is kept when a hash of its id falls below
``shedding.rate``, so a replay keeps the same records. Each record stores ``shed_weight``: 1 when nothing was
shed, ``1 / rate`` when it was kept while shedding, 0 when its expensive signals were skipped. Summing
``shed_weight`` instead of counting rows gives unbiased counts and rates of the shed signals (the dashboards
do); the cheap signals are unaffected.

The controller has hysteresis: shedding starts when lag (or scoring time) goes over the high threshold and stops
only once both are at or below the low ones, so it does not flap around one value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from agent import metrics
from agent.config import SheddingSettings
from agent.sinks.base import BatchingSink
from agent.step import BatchState
from agent.types import ShedPlan

DRIFT_SIGNAL = "drift"
"""Name of the drift step in ``lookout_records_shed_total``."""


class ShedController:
    """Decides, batch by batch, whether to shed: on above the high thresholds, off at or below the low ones.

    Args:
        lag_high: Start when the consumer lag exceeds this many records.
        lag_low: Stop only when the lag is at or below this.
        inference_high_s: Start when scoring one batch took longer than this; None ignores scoring time.
        inference_low_s: Stop only when scoring a batch took this or less (default half of ``inference_high_s``).
    """

    def __init__(
        self,
        lag_high: int,
        lag_low: int,
        inference_high_s: float | None = None,
        inference_low_s: float | None = None,
    ) -> None:
        if lag_low > lag_high:
            raise ValueError("lag_low must not exceed lag_high")
        self.lag_high = lag_high
        self.lag_low = lag_low
        self.inference_high_s = inference_high_s
        self.inference_low_s = (
            inference_low_s if inference_low_s is not None or inference_high_s is None else inference_high_s / 2
        )
        self.active = False

    def __repr__(self) -> str:
        return (
            f"ShedController(lag_high={self.lag_high}, lag_low={self.lag_low}, "
            f"inference_high_s={self.inference_high_s}, inference_low_s={self.inference_low_s})"
        )

    def update(self, lag: int | None, inference_s: float | None) -> bool:
        """The new state given the latest lag and batch scoring time (None: not known)."""
        slow = self.inference_high_s is not None and inference_s is not None and inference_s > self.inference_high_s
        behind = lag is not None and lag > self.lag_high
        if not self.active and (behind or slow):
            self.active = True
        elif self.active:
            lag_ok = lag is None or lag <= self.lag_low
            low = self.inference_low_s
            time_ok = low is None or inference_s is None or inference_s <= low
            if lag_ok and time_ok:
                self.active = False
        return self.active


def keeps(record_id: str, rate: float) -> bool:
    """Whether the record's expensive signals are computed while shedding (same answer on every replay)."""
    if rate >= 1.0:
        return True
    digest = hashlib.blake2b(record_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") < rate * 2**64


class Shedder:
    """The agent's shedding step: reads lag, remembers scoring time, and plans each batch.

    Args:
        settings: The ``shedding`` settings.
        enabled_detectors: Detectors the scorer runs (``shedding.detectors`` outside it are ignored).
        drift_enabled: Whether the agent has a drift step to sample.
        lag: Current summed consumer lag, or None when unknown.
    """

    def __init__(
        self,
        settings: SheddingSettings,
        enabled_detectors: Sequence[str],
        drift_enabled: bool,
        lag: Callable[[], int | None] | None = None,
    ) -> None:
        self.settings = settings
        self.detectors = frozenset(settings.detectors) & frozenset(enabled_detectors)
        self.drift = settings.drift and drift_enabled
        self.lag = lag
        self.controller = ShedController(
            settings.lag_high, settings.lag_low, settings.inference_high_s, settings.inference_low_s
        )
        self._inference_s: float | None = None
        metrics.shedding.set(0)

    name = "shed"

    def apply(self, batch: BatchState) -> None:
        """Plan the batch: while shedding, which records the expensive detectors and drift see."""
        batch.plan = self.plan([s.id for s in batch.samples]) if batch.samples else None

    def sinks(self) -> Sequence[BatchingSink[Any]]:
        """None."""
        return ()

    def observe_inference(self, seconds: float) -> None:
        """Remember how long the latest batch took to score."""
        self._inference_s = seconds

    def plan(self, record_ids: Sequence[str]) -> ShedPlan | None:
        """The plan for a batch, or None when not shedding (everything runs, every weight is 1)."""
        if not self.settings.enabled or not (self.detectors or self.drift):
            return None
        active = self.controller.update(self.lag() if self.lag is not None else None, self._inference_s)
        metrics.shedding.set(1 if active else 0)
        if not active:
            return None
        rate = self.settings.rate
        plan = ShedPlan(tuple(keeps(i, rate) for i in record_ids), 1.0 / rate, self.detectors, self.drift)
        skipped = len(record_ids) - sum(plan.keep)
        for name in sorted(self.detectors):
            metrics.records_shed.labels(signal=name).inc(skipped)
        if self.drift:
            metrics.records_shed.labels(signal=DRIFT_SIGNAL).inc(skipped)
        return plan
