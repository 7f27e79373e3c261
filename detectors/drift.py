"""Drift of a stream against a reference: embedding drift and score-distribution drift, in tumbling windows.

Drift is a property of a stream, not of a record. Each detector here follows River's drift-detector shape:
``update(...)`` feeds observations and returns the windows it closed, ``reset()`` forgets everything.

Memory is bounded: the reference is a reservoir sample of at most ``reference_size`` items drawn from the first
``reference_records`` of the stream (or a pinned set), and an open window holds at most ``window_size`` items.
State can be rebuilt elsewhere: ``reference`` and ``reference_end_ms`` are what to keep of a ready reference,
``restore_reference`` takes them back, and ``replay`` feeds stored observations without testing the windows
they close (those were tested when the observations first arrived).

Embedding method ``knn-ks`` (default): the reference is split in two halves, a bank and a calibration set. Each
vector's distance to the reference is the mean cosine distance to its ``k`` nearest bank vectors; the calibration
half's distances are the null distribution (held out, so they behave like new same-distribution traffic; the
leave-one-out distances of one set raise false alarms), and the window's distances are compared with it by the
two-sample Kolmogorov-Smirnov test (evidently's ``ks`` stattest, called directly). A window where part of the
traffic is new moves the upper tail, which is what the test sees. The same distances score single vectors:
:meth:`EmbeddingDrift.novelty` ranks a vector's kNN distance among the calibration half's (a per-record score in
0..1, whatever the window method).
evidently's own embedding methods (``mmd``, ``distance``, ``ratio``, ``model``) can be chosen instead; they answer
drifted or not with their own score and threshold and no p-value.

Scores are reported so that higher is more drift and ``drifted == (score > threshold)``: for the p-value tests the
score is ``-log10(p)`` and the threshold ``-log10(alpha)`` (2.0 at ``alpha = 0.01``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

EmbeddingMethod = Literal["knn-ks", "mmd", "distance", "ratio", "model"]
EMBEDDING_METHODS: tuple[str, ...] = get_args(EmbeddingMethod)

_P_FLOOR = 1e-300


@dataclass(frozen=True, slots=True)
class DriftResult:
    """One closed window compared with the reference."""

    window_start_ms: int
    """Timestamp (epoch ms) of the window's first observation."""
    window_end_ms: int
    """Timestamp (epoch ms) of the window's last observation."""
    n: int
    """Observations in the window."""
    score: float
    """Drift score; higher is more drift."""
    threshold: float
    """The window drifted when ``score > threshold``."""
    p_value: float | None
    """The test's p-value, for methods that have one."""
    drifted: bool
    """Whether the window drifted."""
    method: str
    """How the score was computed (``knn-ks``, ``ks``, evidently's ``mmd``...)."""
    reference_n: int
    """Size of the reference the window was compared with."""


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """When a tumbling window closes and when it is tested."""

    size: int = 200
    """A window closes after this many observations..."""
    seconds: float | None = 3600.0
    """...or when an observation arrives this long after the window opened (None: count only)."""
    min_size: int = 30
    """A window closed by time with fewer observations is dropped, not tested (too small to say anything)."""

    def __post_init__(self) -> None:
        if self.size < 2 or self.min_size < 2 or self.min_size > self.size:
            raise ValueError("window size and min_size must be at least 2, and min_size at most size")
        if self.seconds is not None and self.seconds <= 0:
            raise ValueError("window seconds must be positive")


def p_score(p_value: float) -> float:
    """``-log10(p)``, the drift score of a p-value test (finite even when p underflows)."""
    return -math.log10(max(p_value, _P_FLOOR))


def ks_p_value(reference: npt.NDArray[np.float64], current: npt.NDArray[np.float64]) -> float:
    """Two-sided two-sample KS p-value through evidently's ``ks`` stattest (imported lazily: it is slow to load)."""
    import pandas as pd
    from evidently.legacy.calculations.stattests.ks_stattest import _ks_stat_test
    from evidently.legacy.core import ColumnType

    p_value, _ = _ks_stat_test(pd.Series(reference), pd.Series(current), ColumnType.Numerical, 0.05)
    return float(p_value)


class _Reservoir:
    """Algorithm R over the first ``limit`` items offered: a uniform sample of at most ``size`` of them."""

    def __init__(self, size: int, limit: int, seed: int) -> None:
        self.size = size
        self.limit = limit
        self._rng = np.random.default_rng(seed)
        self.items: list[Any] = []
        self.offered = 0

    @property
    def full(self) -> bool:
        return self.offered >= self.limit

    def offer(self, item: Any) -> None:
        if self.full:
            return
        self.offered += 1
        if len(self.items) < self.size:
            self.items.append(item)
            return
        j = int(self._rng.integers(0, self.offered))
        if j < self.size:
            self.items[j] = item


class _Windowed:
    """Reference reservoir + tumbling window bookkeeping shared by both drift detectors."""

    def __init__(self, reference_size: int, reference_records: int | None, window: WindowSpec, seed: int) -> None:
        if reference_size < 2:
            raise ValueError("reference_size must be at least 2")
        self.reference_size = reference_size
        self.reference_records = reference_records if reference_records is not None else reference_size
        if self.reference_records < reference_size:
            raise ValueError("reference_records must be at least reference_size")
        self.window = window
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        """Forget the reference and the open window."""
        self._pool = _Reservoir(self.reference_size, self.reference_records, self.seed)
        self._pinned = False
        self._reference_end_ms: int | None = None
        self._items: list[Any] = []
        self._start_ms: int | None = None
        self._end_ms = 0
        self._dropped = 0

    @property
    def reference_ready(self) -> bool:
        """Whether the reference is complete and windows are being tested."""
        return self._pinned or self._pool.full

    @property
    def pinned(self) -> bool:
        """Whether the reference was pinned (given, not drawn from the stream)."""
        return self._pinned

    @property
    def reference(self) -> list[Any]:
        """The reference's items as kept (a copy, in reservoir order), ready or not."""
        return list(self._pool.items)

    @property
    def reference_end_ms(self) -> int | None:
        """Timestamp (epoch ms) of the last observation offered to the reference; None before the first."""
        return self._reference_end_ms

    @property
    def dropped_windows(self) -> int:
        """Windows closed by time with too few observations to test."""
        return self._dropped

    def pin(self, items: Sequence[Any]) -> None:
        """Use ``items`` as the reference instead of the stream's first records."""
        if len(items) < 2:
            raise ValueError("a pinned reference needs at least 2 items")
        self.reset()
        self._pool.items = list(items)
        self._pinned = True

    def _restore(self, items: Sequence[Any], end_ms: int | None) -> None:
        """Take back a ready reference kept earlier (its ``reference`` and ``reference_end_ms``); no open window."""
        if len(items) < 2:
            raise ValueError("a restored reference needs at least 2 items")
        self.reset()
        self._pool.items = list(items)
        self._pool.offered = self._pool.limit
        self._reference_end_ms = end_ms

    def _feed(self, items: Sequence[Any], ts_ms: Sequence[int]) -> list[tuple[list[Any], int, int]]:
        """Route items to the reference or the open window; return the windows that closed."""
        closed = []
        for item, ts in zip(items, ts_ms, strict=True):
            if not self.reference_ready:
                self._pool.offer(item)
                self._reference_end_ms = ts
                continue
            expired = (
                self._start_ms is not None
                and self.window.seconds is not None
                and ts - self._start_ms >= self.window.seconds * 1000
            )
            if expired:
                closed.extend(self._close(by_time=True))
            if self._start_ms is None:
                self._start_ms = ts
            self._items.append(item)
            self._end_ms = max(self._end_ms, ts)
            if len(self._items) >= self.window.size:
                closed.extend(self._close(by_time=False))
        return closed

    def _close(self, by_time: bool) -> list[tuple[list[Any], int, int]]:
        items, start = self._items, self._start_ms
        self._items, self._start_ms, end = [], None, self._end_ms
        self._end_ms = 0
        if start is None:
            return []
        if by_time and len(items) < self.window.min_size:
            self._dropped += 1
            return []
        return [(items, start, end)]


class EmbeddingDrift(_Windowed):
    """Drift of a stream of embedding vectors.

    Args:
        reference_size: Vectors kept as the reference (a reservoir sample).
        reference_records: The reference is drawn from this many first vectors of the stream (default: exactly
            the first ``reference_size``).
        window: When windows close.
        method: ``knn-ks`` or one of evidently's embedding methods (``mmd``, ``distance``, ``ratio``, ``model``).
        k: Neighbours for ``knn-ks``.
        alpha: Significance level of ``knn-ks``.
        seed: Reservoir sampling seed.
    """

    def __init__(
        self,
        reference_size: int = 500,
        reference_records: int | None = None,
        window: WindowSpec | None = None,
        method: EmbeddingMethod = "knn-ks",
        k: int = 5,
        alpha: float = 0.01,
        seed: int = 0,
    ) -> None:
        if method not in EMBEDDING_METHODS:
            raise ValueError(f"unknown embedding drift method {method!r}; valid: {', '.join(EMBEDDING_METHODS)}")
        if not 0 < alpha < 1:
            raise ValueError("alpha must be in (0, 1)")
        if k < 1 or k > reference_size // 2:
            raise ValueError("k must be at least 1 and at most half of reference_size")
        self.method: EmbeddingMethod = method
        self.k = k
        self.alpha = alpha
        self._null: npt.NDArray[np.float64] | None = None
        self._ref_matrix: npt.NDArray[np.float32] | None = None
        super().__init__(reference_size, reference_records, window or WindowSpec(), seed)

    def __repr__(self) -> str:
        return (
            f"EmbeddingDrift(reference_size={self.reference_size}, reference_records={self.reference_records}, "
            f"window={self.window!r}, method={self.method!r}, k={self.k}, alpha={self.alpha}, seed={self.seed})"
        )

    def reset(self) -> None:
        """Forget the reference, its null distribution and the open window."""
        super().reset()
        self._null = None
        self._ref_matrix = None

    def update(self, vectors: npt.ArrayLike, ts_ms: Sequence[int]) -> list[DriftResult]:
        """Feed vectors (rows, in stream order) with their timestamps; returns the windows that closed."""
        unit = _unit_rows(vectors, len(ts_ms))
        return [self._test(np.stack(items), start, end) for items, start, end in self._feed(list(unit), ts_ms)]

    def replay(self, vectors: npt.ArrayLike, ts_ms: Sequence[int]) -> None:
        """Feed stored vectors as :meth:`update` does, without testing the windows they close."""
        self._feed(list(_unit_rows(vectors, len(ts_ms))), ts_ms)

    def restore_reference(self, vectors: npt.ArrayLike, end_ms: int | None) -> None:
        """Use ``vectors`` (a kept ``reference``, rows in its order) as the ready reference; the window is empty."""
        matrix = _unit_rows(vectors)
        self._restore(list(matrix), end_ms)

    def _reference(self) -> npt.NDArray[np.float32]:
        if self._ref_matrix is None:
            ref = np.stack(self._pool.items)  # shuffled, so the bank and calibration halves are exchangeable
            self._ref_matrix = ref[np.random.default_rng(self.seed).permutation(len(ref))]
        return self._ref_matrix

    def _knn(self, current: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """Mean cosine distance of each row to its ``k`` nearest vectors of the reference's bank half."""
        bank = self._reference()[: self._bank_size()]
        sims = current @ bank.T
        k = min(self.k, bank.shape[0])
        top = np.partition(-sims, k - 1, axis=1)[:, :k]
        return np.asarray(1.0 + top.mean(axis=1), dtype=np.float64)  # mean distance = 1 - mean similarity

    def _bank_size(self) -> int:
        return len(self._pool.items) // 2

    def _calibration(self) -> npt.NDArray[np.float64]:
        """The held-out reference half's kNN distances to the bank: the null distribution, computed once."""
        if self._null is None:
            self._null = self._knn(self._reference()[self._bank_size() :])
        return self._null

    def novelty(self, vectors: npt.ArrayLike) -> npt.NDArray[np.float64] | None:
        """How far each vector lies from the reference, in 0..1; None until the reference is ready.

        A vector's kNN distance to the bank half is ranked among the calibration half's distances (the same
        null distribution ``knn-ks`` tests windows against): the score is the share of held-out reference
        vectors that lie closer (ties count half). Traffic like the reference scores uniformly in 0..1, so
        ``novelty >= 0.99`` marks a vector farther out than 99% of the reference's own held-out vectors: about
        1% of same-distribution traffic (plus ``1 / calibration size``), far more of off-topic traffic. Vectors
        beyond every calibration distance score 1.0. Does not change the reference or the open window.
        """
        if not self.reference_ready:
            return None
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim != 2:
            raise ValueError("vectors must be a 2-D array")
        if len(matrix) == 0:
            return np.zeros(0, dtype=np.float64)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        unit = (matrix / np.where(norms == 0, 1.0, norms)).astype(np.float32)
        null = np.sort(self._calibration())
        distances = self._knn(unit)
        below = np.searchsorted(null, distances, side="left")
        at_most = np.searchsorted(null, distances, side="right")
        return np.asarray((below + at_most) / (2.0 * len(null)), dtype=np.float64)

    def _test(self, window: npt.NDArray[np.float32], start: int, end: int) -> DriftResult:
        ref = self._reference()
        if self.method == "knn-ks":
            p = ks_p_value(self._calibration(), self._knn(window))
            score, threshold = p_score(p), p_score(self.alpha)
            return DriftResult(start, end, len(window), score, threshold, p, score > threshold, self.method, len(ref))
        score, drifted, threshold = _evidently_embedding(self.method, ref, window)
        return DriftResult(
            start, end, len(window), score, threshold, None, drifted, f"evidently-{self.method}", len(ref)
        )


def _unit_rows(vectors: npt.ArrayLike, rows: int | None = None) -> npt.NDArray[np.float32]:
    """``vectors`` as float32 unit rows (zero rows stay zero); ``rows``: the row count they must have."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValueError("vectors must be a 2-D array")
    if rows is not None and len(matrix) != rows:
        raise ValueError("vectors must be a 2-D array with one row per timestamp")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.asarray(matrix / np.where(norms == 0, 1.0, norms), dtype=np.float32)


def _evidently_embedding(
    method: str, reference: npt.NDArray[np.float32], current: npt.NDArray[np.float32]
) -> tuple[float, bool, float]:
    """Run one of evidently's embedding drift methods directly (no ``Report``); returns score, drifted, threshold."""
    import pandas as pd
    from evidently.legacy.metrics.data_drift import embedding_drift_methods as edm

    factory = {"mmd": edm.mmd, "distance": edm.distance, "ratio": edm.ratio, "model": edm.model}[method]
    drift_method = factory()
    columns = [f"e{i}" for i in range(reference.shape[1])]
    score, drifted, _ = drift_method(pd.DataFrame(current, columns=columns), pd.DataFrame(reference, columns=columns))
    threshold = float(getattr(drift_method, "threshold", math.nan))
    return float(score), bool(drifted), threshold


class ScoreDrift(_Windowed):
    """Drift of a stream of numbers (a detector's scores, response length) by the two-sample KS test.

    Args:
        reference_size: Values kept as the reference (a reservoir sample).
        reference_records: The reference is drawn from this many first values of the stream.
        window: When windows close.
        alpha: Significance level.
        seed: Reservoir sampling seed.
    """

    def __init__(
        self,
        reference_size: int = 500,
        reference_records: int | None = None,
        window: WindowSpec | None = None,
        alpha: float = 0.01,
        seed: int = 0,
    ) -> None:
        if not 0 < alpha < 1:
            raise ValueError("alpha must be in (0, 1)")
        self.alpha = alpha
        super().__init__(reference_size, reference_records, window or WindowSpec(), seed)

    def __repr__(self) -> str:
        return (
            f"ScoreDrift(reference_size={self.reference_size}, reference_records={self.reference_records}, "
            f"window={self.window!r}, alpha={self.alpha}, seed={self.seed})"
        )

    def update(self, values: Sequence[float | None], ts_ms: Sequence[int]) -> list[DriftResult]:
        """Feed values with their timestamps (``None`` values are skipped); returns the windows that closed."""
        closed = self._feed(*_finite(values, ts_ms))
        return [self._test(np.asarray(items, dtype=np.float64), start, end) for items, start, end in closed]

    def replay(self, values: Sequence[float | None], ts_ms: Sequence[int]) -> None:
        """Feed stored values as :meth:`update` does, without testing the windows they close."""
        self._feed(*_finite(values, ts_ms))

    def restore_reference(self, values: Sequence[float], end_ms: int | None) -> None:
        """Use ``values`` (a kept ``reference``) as the ready reference; the window is empty."""
        self._restore([float(v) for v in values], end_ms)

    def _test(self, window: npt.NDArray[np.float64], start: int, end: int) -> DriftResult:
        ref = np.asarray(self._pool.items, dtype=np.float64)
        p = ks_p_value(ref, window)
        score, threshold = p_score(p), p_score(self.alpha)
        return DriftResult(start, end, len(window), score, threshold, p, score > threshold, "ks", len(ref))


def _finite(values: Sequence[float | None], ts_ms: Sequence[int]) -> tuple[list[float], list[int]]:
    """The finite values and their timestamps (None and NaN are skipped)."""
    kept = [(float(v), t) for v, t in zip(values, ts_ms, strict=True) if v is not None and math.isfinite(v)]
    return [v for v, _ in kept], [t for _, t in kept]
