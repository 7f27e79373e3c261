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
the ``drift`` flag. State (references, open windows, near-duplicate banks) lives in this process and survives it
(``drift.restore``): each ready reference is kept in ``drift_references`` (:mod:`agent.drift_state`), and a
stream seen for the first time (after a restart, after a rebalance took one of its partitions away, after an
eviction) is rebuilt from storage before its records are observed. Stored records that come again (a batch
re-delivered after a crash between write and commit) are scored but not observed twice. With several replicas
each one sees the partitions it owns: key messages by tenant (or stream) so a stream stays on one partition.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import structlog

from agent import metrics
from agent.config import DriftSettings
from agent.drift_state import (
    RESPONSE_LENGTH,
    ReferenceRow,
    ReferenceSink,
    StateReader,
    StoredStream,
    StreamKey,
    embedding_signal,
    score_signal,
)
from agent.errors import ConfigError
from agent.sinks.base import BatchingSink, SinkError
from agent.step import BatchState
from agent.storage.client import Client
from agent.types import ScoredSample
from detectors.drift import DriftResult, EmbeddingDrift, ScoreDrift, WindowSpec
from detectors.duplicates import NearDuplicates
from detectors.types import Encoder, TextField, Vectors

log = structlog.get_logger(__name__)

Partition = tuple[str, int]
"""(topic, partition) a record came from."""

DRIFT_FLAG = "drift"
"""Flag of records scored while their stream's last embedding window drifted."""

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
        self.kept: set[str] = set()
        """Signals whose ready reference is stored (or was read back)."""
        self.seen: frozenset[str] = frozenset()
        """Ids of the latest stored records it was rebuilt from: a re-delivered copy is not observed again."""
        self.partitions: set[Partition] = set()
        """Source partitions its records came from."""


class DriftMonitor:
    """Feeds each batch to its streams' drift detectors and returns the windows that closed.

    Args:
        settings: The ``drift`` settings.
        available: Score names the records carry (enabled detectors); ``drift.scores`` outside it are skipped.
        pinned: Optional pinned reference embeddings per text field (every stream uses them).
        reader: Reads stored state to rebuild streams seen for the first time; None: streams start empty and
            references are not kept.
        redelivered: Latest stored records per rebuilt stream whose re-delivered copies are not observed again
            (``batch.max_records``: at most one batch is written and not committed).
    """

    def __init__(
        self,
        settings: DriftSettings,
        available: Sequence[str] = (),
        pinned: Mapping[TextField, Vectors] | None = None,
        reader: StateReader | None = None,
        redelivered: int = 256,
    ) -> None:
        self.settings = settings
        self.score_names = tuple(n for n in settings.scores if n == RESPONSE_LENGTH or n in available)
        self.pinned = dict(pinned or {})
        self.reader = reader
        self.redelivered = redelivered
        self._streams: OrderedDict[StreamKey, _Stream] = OrderedDict()
        self._kept: list[ReferenceRow] = []
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

    def _stream(self, key: StreamKey, rebuilt: _Stream | None = None) -> _Stream:
        """The stream's state; a stream not tracked yet starts as ``rebuilt`` (from storage), else empty."""
        stream = self._streams.get(key)
        if stream is None:
            if len(self._streams) >= self.settings.max_streams:
                old, _ = self._streams.popitem(last=False)
                self.evicted += 1
                log.warning("drift: too many streams, forgetting the least recent", stream=old)
            stream = self._streams[key] = rebuilt or self._new_stream()
        self._streams.move_to_end(key)
        return stream

    def _new_stream(self) -> _Stream:
        return _Stream(self.settings, self.score_names, self.pinned)

    def forget_partitions(self, lost: Collection[Partition]) -> None:
        """Forget the streams with records from partitions that left this agent; each is rebuilt when next seen.

        Another replica may have observed such a stream since (even if the partition came back): only storage
        has its current state. Without a reader nothing is forgotten (there is nothing to rebuild from).
        """
        if self.reader is None or not lost:
            return
        gone = [key for key, stream in self._streams.items() if not stream.partitions.isdisjoint(lost)]
        for key in gone:
            del self._streams[key]
        if gone:
            log.info("drift: partitions moved, their streams are rebuilt from storage when seen", streams=len(gone))

    def kept_references(self) -> list[ReferenceRow]:
        """References that became ready since the last call, to store (empty without a reader)."""
        rows, self._kept = self._kept, []
        return rows

    def observe(
        self, scored: Sequence[ScoredSample], embeddings: Mapping[TextField, Vectors]
    ) -> tuple[list[ScoredSample], list[DriftRow]]:
        """Flag records of drifted streams and feed the batch; returns (records, closed windows).

        Streams seen for the first time are rebuilt from storage first; a stream whose stored state cannot be
        read is left out of this batch (its records get no stream signals) and tried again with its next one.
        """
        groups: dict[StreamKey, list[int]] = {}
        for i, item in enumerate(scored):
            s = item.sample
            groups.setdefault((s.tenant, s.model, s.route), []).append(i)
        rebuilt, unreadable = self._rebuild([key for key in groups if key not in self._streams])
        out = list(scored)
        rows: list[DriftRow] = []
        for key, idx in groups.items():
            if key in unreadable:
                continue
            stream = self._stream(key, rebuilt.get(key))
            stream.partitions.update((o.topic, o.partition) for i in idx if (o := scored[i].sample.origin) is not None)
            if stream.drifted:
                for i in idx:
                    out[i] = dataclasses.replace(out[i], flags=(*out[i].flags, DRIFT_FLAG))
            fresh = [i for i in idx if out[i].sample.id not in stream.seen] if stream.seen else idx
            self._signals(stream, out, idx, set(fresh), embeddings)
            ts = [int(scored[i].sample.ts.timestamp() * 1000) for i in fresh]
            for field, detector in stream.embeddings.items():
                vectors = embeddings.get(field)
                if vectors is None or not fresh:
                    continue
                for result in detector.update(np.asarray(vectors)[fresh], ts):
                    rows.append(DriftRow(embedding_signal(field), "embedding", key, result))
                    stream.drifted = result.drifted
            for name, score_detector in stream.scores.items():
                values = [_signal(scored[i], name) for i in fresh]
                for result in score_detector.update(values, ts):
                    rows.append(DriftRow(score_signal(name), "score", key, result))
            self._keep(key, stream)
        return out, rows

    def _signals(
        self,
        stream: _Stream,
        out: list[ScoredSample],
        idx: list[int],
        fresh: set[int],
        embeddings: Mapping[TextField, Vectors],
    ) -> None:
        """Score novelty (before the batch joins the window) and near-duplicates of one stream's records.

        Records not in ``fresh`` (seen before a restart) are scored against the window without joining it.
        """
        values: dict[str, list[float | None]] = {}
        prompts = embeddings.get("prompt")
        reference = stream.embeddings.get("prompt")
        if NOVELTY in self.signals and prompts is not None and reference is not None:
            ranks = reference.novelty(np.asarray(prompts)[idx])
            values[NOVELTY] = [None] * len(idx) if ranks is None else [float(v) for v in ranks]
        responses = embeddings.get("response")
        if stream.duplicates is not None and prompts is not None and responses is not None:
            found: dict[int, float | None] = {}
            seen = [i for i in idx if i not in fresh]
            for part, method in (
                (seen, stream.duplicates.score),
                ([i for i in idx if i in fresh], stream.duplicates.update),
            ):
                if part:
                    chars = [len(out[i].sample.response) for i in part]
                    p, r = np.asarray(prompts)[part], np.asarray(responses)[part]
                    found.update(zip(part, method(p, r, chars), strict=True))
            values[NEAR_DUPLICATE] = [found[i] for i in idx]
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

    def _keep(self, key: StreamKey, stream: _Stream) -> None:
        """Queue the stream's references that became ready (drawn from the stream, not pinned) for storage."""
        if self.reader is None:
            return
        for field, embedding in stream.embeddings.items():
            signal = embedding_signal(field)
            if signal not in stream.kept and embedding.reference_ready and not embedding.pinned:
                items = np.stack(embedding.reference)
                self._kept.append(ReferenceRow(key, signal, "embedding", items, embedding.reference_end_ms))
                stream.kept.add(signal)
        for name, score in stream.scores.items():
            signal = score_signal(name)
            if signal not in stream.kept and score.reference_ready:
                items = np.asarray(score.reference, dtype=np.float64)
                self._kept.append(ReferenceRow(key, signal, "score", items, score.reference_end_ms))
                stream.kept.add(signal)

    def _rebuild(self, keys: list[StreamKey]) -> tuple[dict[StreamKey, _Stream], set[StreamKey]]:
        """Streams seen for the first time, rebuilt from storage; and the streams whose state could not be read."""
        if self.reader is None or not keys:
            return {}, set()
        started = time.perf_counter()
        references = [embedding_signal(f) for f in self.settings.fields if f not in self.pinned]
        references += [score_signal(n) for n in self.score_names]
        try:
            stored = self.reader.load(
                keys, fields=required_fields(self.settings), references=references, scores=self.score_names
            )
        except Exception as exc:
            metrics.drift_restore_failures.inc()
            log.warning(
                "drift: cannot read stored stream state; these streams skip this batch and are tried again",
                streams=len(keys),
                error=" ".join(str(exc).split())[:300],
            )
            return {}, set(keys)
        rebuilt: dict[StreamKey, _Stream] = {}
        states: Counter[str] = Counter()
        for key in keys:
            rebuilt[key] = self._new_stream()
            state = self._apply(key, rebuilt[key], stored[key])
            states[state] += 1
            metrics.drift_streams_restored.labels(state=state).inc()
        elapsed = time.perf_counter() - started
        metrics.drift_restore_duration.observe(elapsed)
        (log.info if states["ready"] or states["filling"] else log.debug)(
            "drift: streams rebuilt from storage",
            streams=len(keys),
            ready=states["ready"],
            filling=states["filling"],
            empty=states["empty"],
            vectors=sum(stored[k].vectors for k in keys),
            ms=round(elapsed * 1000, 1),
        )
        return rebuilt, set()

    def _apply(self, key: StreamKey, stream: _Stream, stored: StoredStream) -> str:
        """Rebuild one stream from storage; returns its state: ``ready``, ``filling`` or ``empty`` (nothing stored)."""
        records = stored.records
        for field, embedding in stream.embeddings.items():
            since = self._restore_reference(stream, embedding_signal(field), embedding, stored)
            if field in records.vectors:
                rows, matrix = records.vectors[field]
                picked = [j for j, p in enumerate(rows) if since is None or records.ts_ms[p] > since]
                embedding.replay(matrix[picked], [records.ts_ms[rows[j]] for j in picked])
        for name, score in stream.scores.items():
            since = self._restore_reference(stream, score_signal(name), score, stored)
            picked = [p for p, t in enumerate(records.ts_ms) if since is None or t > since]
            values = records.scores.get(name, [])
            score.replay([values[p] for p in picked], [records.ts_ms[p] for p in picked])
        if stream.duplicates is not None and "prompt" in records.vectors and "response" in records.vectors:
            (p_rows, prompts), (r_rows, responses) = records.vectors["prompt"], records.vectors["response"]
            both = sorted(set(p_rows.tolist()) & set(r_rows.tolist()))
            p_at = {p: j for j, p in enumerate(p_rows.tolist())}
            r_at = {p: j for j, p in enumerate(r_rows.tolist())}
            chars = [records.response_chars[p] for p in both]
            stream.duplicates.remember(prompts[[p_at[p] for p in both]], responses[[r_at[p] for p in both]], chars)
        stream.drifted = stored.drifted
        stream.seen = frozenset(records.ids[-self.redelivered :]) if self.redelivered else frozenset()
        self._keep(key, stream)
        if not records.ids and not stored.references:
            return "empty"
        detectors: list[EmbeddingDrift | ScoreDrift] = [*stream.embeddings.values(), *stream.scores.values()]
        started = [d for d in detectors if d.reference_ready or d.reference]  # a score never seen has no reference
        return "ready" if started and all(d.reference_ready for d in started) else "filling"

    @staticmethod
    def _restore_reference(
        stream: _Stream, signal: str, detector: EmbeddingDrift | ScoreDrift, stored: StoredStream
    ) -> int | None:
        """Take back a stored reference; returns the time after which stored records belong to the open window.

        None: no reference was stored (or it is pinned and no window closed yet), so every stored record is
        replayed — the first ones refill the reference, as when they first arrived.
        """
        last_window = stored.window_ends.get(signal)
        kept = stored.references.get(signal)
        if detector.pinned or kept is None:
            return last_window if detector.pinned else None
        if isinstance(detector, EmbeddingDrift):
            detector.restore_reference(kept.items, kept.end_ms)
        else:
            detector.restore_reference(list(kept.items), kept.end_ms)
        stream.kept.add(signal)
        return max(kept.end_ms, last_window if last_window is not None else kept.end_ms)


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
    """The drift step: the monitor over each batch, and the sinks of closed windows and kept references."""

    monitor: DriftMonitor
    """Per-stream drift detectors."""
    sink: DriftSink
    """Writes closed windows; flushed with the other sinks before the commit."""
    references: ReferenceSink | None = None
    """Keeps each reference once ready (with ``drift.restore``); flushed after the windows, before the records."""
    lost_partitions: Callable[[], Collection[Partition]] | None = None
    """Partitions a rebalance took away since the last batch (the source's): their streams are rebuilt."""
    name: ClassVar[str] = "drift"
    """The step's name."""

    def apply(self, batch: BatchState) -> None:
        """Observe the batch (or, while shedding, the records the plan keeps only); buffer closed windows."""
        if self.lost_partitions is not None:
            self.monitor.forget_partitions(self.lost_partitions())
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
        references = self.monitor.kept_references()
        if self.references is not None:
            self.references.extend(references)

    def sinks(self) -> Sequence[BatchingSink[Any]]:
        """The drift windows sink, then the references sink."""
        return (self.sink,) if self.references is None else (self.sink, self.references)


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
