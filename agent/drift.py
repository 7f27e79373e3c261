"""The drift step: per stream (tenant, model, route), feed embeddings and scores to drift detectors.

The same per-stream state scores two record-level signals that need a stream, not just a record:

* ``novelty`` (flag ``novel``): how far the prompt lies from the stream's prompt reference, the percentile rank
  of its kNN distance among the reference's held-out distances (:meth:`EmbeddingDrift.novelty`, no extra
  encoder pass). NULL until the stream's reference is ready (the first ``drift.reference_records`` records, or
  at once with a pinned ``drift.reference_file``). Flagged at ``drift.novelty_percentile / 100``.
* ``near_duplicate``: the highest cosine similarity of the response to one of the stream's last
  ``drift.near_duplicate_window`` responses to a *different* prompt (:class:`NearDuplicates`); flagged at
  ``drift.near_duplicate_threshold``. NULL for the stream's first record and for short responses.

Closed windows become :class:`DriftRow` values written to ``drift_windows`` by :class:`DriftSink`, flushed with
the other sinks before offsets commit. Records scored while their stream's last embedding window drifted carry
the ``drift`` flag. State (references, open windows) lives in this process: a restart starts each stream's
reference again, and with several replicas each one sees the partitions it owns — key messages by tenant (or
stream) so a stream stays on one partition.
"""

from __future__ import annotations

import dataclasses
import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import structlog

from agent.config import DriftSettings
from agent.errors import ConfigError
from agent.sinks.base import BatchingSink, SinkError
from agent.step import BatchState
from agent.storage.client import Client
from agent.types import ScoredSample
from detectors.drift import DriftResult, EmbeddingDrift, ScoreDrift, WindowSpec
from detectors.duplicates import NearDuplicates
from detectors.types import Encoder, TextField, Vectors

log = structlog.get_logger(__name__)

StreamKey = tuple[str, str, str]
"""(tenant, model, route)."""

DRIFT_FLAG = "drift"
"""Flag of records scored while their stream's last embedding window drifted."""

RESPONSE_LENGTH = "response_length"
"""Score stream of response lengths in characters."""

NOVELTY = "novelty"
"""Column of the prompt's novelty against its stream's reference (0..1, higher is farther out)."""
NOVEL_FLAG = "novel"
"""Flag of records whose novelty crosses ``drift.novelty_percentile``."""
NEAR_DUPLICATE = "near_duplicate"
"""Column and flag: the response nearly repeats a recent response to a different prompt."""
STREAM_SIGNALS: tuple[str, ...] = (NOVELTY, NEAR_DUPLICATE)
"""Score columns written by this step rather than by a detector."""
SIGNAL_FLAGS: dict[str, str] = {NOVELTY: NOVEL_FLAG, NEAR_DUPLICATE: NEAR_DUPLICATE}
"""Flag set by each stream signal."""


@dataclasses.dataclass(frozen=True, slots=True)
class DriftRow:
    """One closed window of one signal of one stream."""

    stream: str
    """The signal: ``prompt_embedding``, ``response_embedding``, ``score:<detector>`` or ``response_length``."""
    kind: str
    """``embedding`` or ``score``."""
    key: StreamKey
    """(tenant, model, route) of the stream."""
    result: DriftResult
    """The window and its test."""


class _Stream:
    """Every drift detector of one (tenant, model, route)."""

    def __init__(self, settings: DriftSettings, scores: Sequence[str], pinned: Mapping[TextField, Vectors]) -> None:
        window = WindowSpec(settings.window_size, settings.window_seconds, settings.min_window)
        self.embeddings: dict[TextField, EmbeddingDrift] = {}
        for field in settings.fields:
            detector = EmbeddingDrift(
                settings.reference_size, settings.reference_records, window, settings.method, settings.k, settings.alpha
            )
            if field in pinned:
                detector.pin(list(pinned[field]))
            self.embeddings[field] = detector
        self.scores = {
            name: ScoreDrift(settings.reference_size, settings.reference_records, window, settings.alpha)
            for name in scores
        }
        self.drifted = False
        self.duplicates = (
            NearDuplicates(
                settings.near_duplicate_window,
                settings.near_duplicate_prompt_similarity,
                settings.near_duplicate_min_chars,
            )
            if settings.near_duplicate
            else None
        )


class DriftMonitor:
    """Feeds each batch to its streams' drift detectors and returns the windows that closed.

    Args:
        settings: The ``drift`` settings.
        available: Score names the records carry (enabled detectors); ``drift.scores`` outside it are skipped.
        pinned: Optional pinned reference embeddings per text field (every stream uses them).
    """

    def __init__(
        self,
        settings: DriftSettings,
        available: Sequence[str] = (),
        pinned: Mapping[TextField, Vectors] | None = None,
    ) -> None:
        self.settings = settings
        self.score_names = tuple(n for n in settings.scores if n == RESPONSE_LENGTH or n in available)
        self.pinned = dict(pinned or {})
        self._streams: OrderedDict[StreamKey, _Stream] = OrderedDict()
        self.evicted = 0
        self.signals = stream_signals(settings)
        """Stream signals this monitor scores (each a ``records`` column)."""
        self.versions = {
            NOVELTY: f"knn{settings.k}-rank-p{settings.novelty_percentile:g}",
            NEAR_DUPLICATE: f"cos-w{settings.near_duplicate_window}-p{settings.near_duplicate_prompt_similarity:g}",
        }

    @property
    def fields(self) -> frozenset[TextField]:
        """Text fields whose embeddings the scorer must compute for drift and the stream signals."""
        return required_fields(self.settings)

    def _stream(self, key: StreamKey) -> _Stream:
        stream = self._streams.get(key)
        if stream is None:
            if len(self._streams) >= self.settings.max_streams:
                old, _ = self._streams.popitem(last=False)
                self.evicted += 1
                log.warning("drift: too many streams, forgetting the least recent", stream=old)
            stream = self._streams[key] = _Stream(self.settings, self.score_names, self.pinned)
        self._streams.move_to_end(key)
        return stream

    def observe(
        self, scored: Sequence[ScoredSample], embeddings: Mapping[TextField, Vectors]
    ) -> tuple[list[ScoredSample], list[DriftRow]]:
        """Flag records of drifted streams and feed the batch; returns (records, closed windows)."""
        groups: dict[StreamKey, list[int]] = {}
        for i, item in enumerate(scored):
            s = item.sample
            groups.setdefault((s.tenant, s.model, s.route), []).append(i)
        out = list(scored)
        rows: list[DriftRow] = []
        for key, idx in groups.items():
            stream = self._stream(key)
            if stream.drifted:
                for i in idx:
                    out[i] = dataclasses.replace(out[i], flags=(*out[i].flags, DRIFT_FLAG))
            self._signals(stream, out, idx, embeddings)
            ts = [int(scored[i].sample.ts.timestamp() * 1000) for i in idx]
            for field, detector in stream.embeddings.items():
                vectors = embeddings.get(field)
                if vectors is None:
                    continue
                for result in detector.update(np.asarray(vectors)[idx], ts):
                    rows.append(DriftRow(f"{field}_embedding", "embedding", key, result))
                    stream.drifted = result.drifted
            for name, score_detector in stream.scores.items():
                values = [_signal(scored[i], name) for i in idx]
                for result in score_detector.update(values, ts):
                    rows.append(DriftRow(f"score:{name}" if name != RESPONSE_LENGTH else name, "score", key, result))
        return out, rows

    def _signals(
        self, stream: _Stream, out: list[ScoredSample], idx: list[int], embeddings: Mapping[TextField, Vectors]
    ) -> None:
        """Score novelty (before the batch joins the window) and near-duplicates of one stream's records."""
        values: dict[str, list[float | None]] = {}
        prompts = embeddings.get("prompt")
        reference = stream.embeddings.get("prompt")
        if NOVELTY in self.signals and prompts is not None and reference is not None:
            ranks = reference.novelty(np.asarray(prompts)[idx])
            values[NOVELTY] = [None] * len(idx) if ranks is None else [float(v) for v in ranks]
        responses = embeddings.get("response")
        if stream.duplicates is not None and prompts is not None and responses is not None:
            chars = [len(out[i].sample.response) for i in idx]
            values[NEAR_DUPLICATE] = stream.duplicates.update(
                np.asarray(prompts)[idx], np.asarray(responses)[idx], chars
            )
        thresholds = {
            NOVELTY: self.settings.novelty_percentile / 100,
            NEAR_DUPLICATE: self.settings.near_duplicate_threshold,
        }
        for name in self.signals:
            column = values.get(name, [None] * len(idx))
            for i, value in zip(idx, column, strict=True):
                item = out[i]
                flags = item.flags
                if value is not None and value >= thresholds[name]:
                    flags = (*flags, SIGNAL_FLAGS[name])
                out[i] = dataclasses.replace(
                    item,
                    scores={**item.scores, name: value},
                    versions={**item.versions, name: self.versions[name]},
                    flags=flags,
                )


def stream_signals(settings: DriftSettings) -> tuple[str, ...]:
    """The stream signals (``records`` columns) the drift step scores with these settings."""
    if not settings.enabled:
        return ()
    on = {NOVELTY: settings.novelty and "prompt" in settings.fields, NEAR_DUPLICATE: settings.near_duplicate}
    return tuple(name for name in STREAM_SIGNALS if on[name])


def required_fields(settings: DriftSettings) -> frozenset[TextField]:
    """Text fields the scorer must embed for the drift step (empty when drift is off)."""
    if not settings.enabled:
        return frozenset()
    fields: set[TextField] = set(settings.fields)
    if settings.near_duplicate:
        fields |= {"prompt", "response"}
    return frozenset(fields)


def _signal(item: ScoredSample, name: str) -> float | None:
    if name == RESPONSE_LENGTH:
        return float(len(item.sample.response))
    return item.scores.get(name)


def load_pinned(path: Path, fields: Sequence[TextField], encoder: Encoder) -> dict[TextField, Vectors]:
    """Embed a pinned reference file: JSONL with the text fields (``prompt``, ``response``) per line."""
    texts: dict[TextField, list[str]] = {f: [] for f in fields}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"drift reference file {path}: {exc.strerror}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise ConfigError(f"drift reference file {path}:{n} is not JSON") from None
        for field in fields:
            value = row.get(field) if isinstance(row, dict) else None
            if isinstance(value, str) and value.strip():
                texts[field].append(value)
    out: dict[TextField, Vectors] = {}
    for field, values in texts.items():
        if len(values) < 4:
            raise ConfigError(f"drift reference file {path} has {len(values)} {field!r} texts; need at least 4")
        out[field] = encoder.encode(values)
    return out


@dataclasses.dataclass(frozen=True)
class DriftStep:
    """The drift step: the monitor over each batch, and the sink of closed windows."""

    monitor: DriftMonitor
    """Per-stream drift detectors."""
    sink: DriftSink
    """Writes closed windows; flushed with the other sinks before the commit."""
    name: ClassVar[str] = "drift"
    """The step's name."""

    def apply(self, batch: BatchState) -> None:
        """Observe the batch (or, while shedding, the records the plan keeps only); buffer closed windows."""
        scored, vectors, plan = batch.scored, batch.vectors, batch.plan
        if plan is None or not plan.drift:
            batch.scored, windows = self.monitor.observe(scored, vectors)
        else:
            kept = [i for i, item in enumerate(scored) if item.shed_weight > 0]
            rows = np.asarray(kept, dtype=np.intp)
            observed, windows = self.monitor.observe(
                [scored[i] for i in kept], {f: v[rows] for f, v in vectors.items()}
            )
            out = list(scored)
            for i, item in zip(kept, observed, strict=True):
                out[i] = item
            batch.scored = out
        self.sink.extend(windows)

    def sinks(self) -> Sequence[BatchingSink[Any]]:
        """The drift windows sink."""
        return (self.sink,)


class DriftSink(BatchingSink[DriftRow]):
    """Inserts closed windows into ``drift_windows`` (ReplacingMergeTree: a replayed window replaces itself)."""

    metric_label = "clickhouse_drift_windows"

    COLUMNS = (
        "stream", "kind", "tenant", "model", "route", "window_start", "window_end", "n", "score", "threshold",
        "p_value", "drifted", "method", "reference_n", "computed_at",
    )  # fmt: skip

    def __init__(self, client: Client, database: str) -> None:
        super().__init__()
        self.client = client
        self.database = database

    def write(self, batch: Sequence[DriftRow]) -> None:
        """One INSERT for the whole batch."""
        now = datetime.now(UTC)
        rows = []
        for row in batch:
            r = row.result
            rows.append(
                [
                    row.stream, row.kind, *row.key,
                    datetime.fromtimestamp(r.window_start_ms / 1000, tz=UTC),
                    datetime.fromtimestamp(r.window_end_ms / 1000, tz=UTC),
                    r.n, r.score, r.threshold, r.p_value, int(r.drifted), r.method, r.reference_n, now,
                ]
            )  # fmt: skip
        try:
            self.client.insert(f"{self.database}.drift_windows", rows, column_names=list(self.COLUMNS))
        except Exception as exc:
            raise SinkError(f"insert into {self.database}.drift_windows failed: {exc}") from exc
