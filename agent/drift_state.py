"""Per-stream drift state that survives a restart: references kept in ``drift_references``, the rest rebuilt.

The drift step (:mod:`agent.drift`) holds, per stream, a reference per signal, the open windows and the
near-duplicate bank. This module is the storage side of that state:

* :class:`ReferenceSink` keeps each reference once it is ready, one ``drift_references`` row per stream signal
  (embedding references as Int8 unit vectors with a scale each, as ``record_embeddings``; score references as
  values). It is flushed with the batch that filled the reference, before that batch's records and offsets.
* :class:`StateReader` reads, for streams the drift step sees for the first time (after a restart, a
  rebalance or an eviction), what rebuilds them: the stored references of the current encoder and
  ``drift.reference_size``; the end of each signal's last closed window and whether the last embedding window
  drifted (``drift_windows``); and the stream's latest stored records the drift step observed (``records``:
  scores, response length; ``shed_weight > 0``) with their vectors (``record_embeddings`` of the current
  encoder). The drift step refills the open windows from the records after the last closed window and the
  near-duplicate bank from the latest ones. All of it was written before its batch's offsets committed.

Reads are bounded: per stream and text field at most ``max(window_size, near_duplicate_window)`` latest vectors
when the field's reference is kept, else ``reference_records + window_size`` (the reference refills from them);
the same bounds hold for the records (scores, response lengths), by whether every score reference is kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from agent.config import DriftSettings
from agent.sinks.base import BatchingSink, SinkError
from agent.sinks.embeddings import dequantise, quantise
from agent.storage.client import Client
from detectors.types import TextField, Vectors

StreamKey = tuple[str, str, str]
"""(tenant, model, route)."""

RESPONSE_LENGTH = "response_length"
"""Score stream of response lengths in characters."""

_KEYS = "(tenant, model, route) IN {keys:Array(Tuple(String, String, String))}"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def embedding_signal(text_field: TextField) -> str:
    """The ``drift_windows`` stream name of a text field's embeddings (``prompt_embedding``)."""
    return f"{text_field}_embedding"


def score_signal(name: str) -> str:
    """The ``drift_windows`` stream name of a score stream (``score:toxicity``, ``response_length``)."""
    return name if name == RESPONSE_LENGTH else f"score:{name}"


@dataclass(frozen=True, slots=True)
class ReferenceRow:
    """A ready reference of one signal of one stream, to keep."""

    key: StreamKey
    """(tenant, model, route) of the stream."""
    stream: str
    """The signal (``prompt_embedding``, ``score:toxicity``, ``response_length``)."""
    kind: Literal["embedding", "score"]
    """Vectors or values."""
    items: npt.NDArray[Any]
    """Unit vectors (one row each) or values, in the reference's order."""
    end_ms: int | None
    """Timestamp (epoch ms) of the last record offered to the reference."""


@dataclass(frozen=True, slots=True)
class StoredReference:
    """A reference read back: unit vectors (rows, float32) or values (float64), and where it ended."""

    items: npt.NDArray[Any]
    """Unit vectors (one row each) or values, in the reference's order."""
    end_ms: int
    """Timestamp (epoch ms) of the last record offered to the reference."""


@dataclass(frozen=True)
class StoredRecords:
    """A stream's latest stored records that the drift step observed, oldest first."""

    ids: list[str] = field(default_factory=list)
    """Record ids."""
    ts_ms: list[int] = field(default_factory=list)
    """Record times (epoch ms)."""
    response_chars: list[int] = field(default_factory=list)
    """Response lengths in characters."""
    scores: dict[str, list[float | None]] = field(default_factory=dict)
    """Per score stream (detector name, ``response_length``), one value per record."""
    vectors: dict[TextField, tuple[npt.NDArray[np.intp], Vectors]] = field(default_factory=dict)
    """Per text field: the positions (in ``ids``) of the records with a stored vector, and those unit vectors."""


@dataclass(frozen=True)
class StoredStream:
    """What storage holds to rebuild one stream's drift state."""

    references: dict[str, StoredReference]
    """Per signal, its kept reference (current encoder and ``reference_size`` only)."""
    window_ends: dict[str, int]
    """Per signal, the end (epoch ms) of its last closed window."""
    drifted: bool
    """Whether the stream's last embedding window drifted."""
    records: StoredRecords
    """The latest stored records."""

    @property
    def vectors(self) -> int:
        """Stored vectors read for this stream (references and records)."""
        kept = sum(len(r.items) for r in self.references.values() if r.items.ndim == 2)
        return kept + sum(len(rows) for rows, _ in self.records.vectors.values())


class StateReader:
    """Reads what rebuilds the drift state of streams, a batch of streams at a time.

    Args:
        client: clickhouse-connect client.
        database: Database holding the tables.
        settings: The ``drift`` settings (sizes that bound the reads).
        encoder: Name of the encoder whose vectors and references count; None: no embedding state.
    """

    def __init__(self, client: Client, database: str, settings: DriftSettings, encoder: str | None) -> None:
        self.client = client
        self.database = database
        self.settings = settings
        self.encoder = encoder

    def __repr__(self) -> str:
        return f"StateReader(database={self.database!r}, encoder={self.encoder!r})"

    def load(
        self,
        keys: Sequence[StreamKey],
        *,
        fields: Iterable[TextField],
        references: Iterable[str],
        scores: Iterable[str],
    ) -> dict[StreamKey, StoredStream]:
        """The stored state of each stream in ``keys`` (streams with nothing stored get empty state).

        Args:
            keys: The streams.
            fields: Text fields whose vectors are read (drift fields; prompt and response for near-duplicates).
            references: Signals that fill a reference (not pinned ones).
            scores: Score streams whose values are read (detector names, ``response_length``).
        """
        if not keys:
            return {}
        wanted = frozenset(references)
        names = tuple(scores)
        for name in names:
            if name != RESPONSE_LENGTH and not _IDENTIFIER.match(name):
                raise ValueError(f"score stream {name!r} is not a column name")
        kept = self._references(keys, wanted)
        window_ends, drifted = self._windows(keys)
        s = self.settings
        recent = max(s.window_size, s.near_duplicate_window if s.near_duplicate else 0)
        refill = (s.reference_records or s.reference_size) + s.window_size
        text_fields = tuple(sorted(fields))
        embedded = wanted & {embedding_signal(f) for f in text_fields}
        groups: dict[tuple[int, int], list[StreamKey]] = {}
        for k in keys:  # a signal without a kept reference refills it: read enough records (or vectors) for that
            has = kept.get(k, {}).keys()
            limits = (recent if wanted <= has else refill, recent if embedded <= has else refill)
            groups.setdefault(limits, []).append(k)
        records: dict[StreamKey, StoredRecords] = {}
        for (limit, vector_limit), group in groups.items():
            records.update(self._records(group, limit, vector_limit, names, text_fields))
        return {
            k: StoredStream(
                kept.get(k, {}), window_ends.get(k, {}), drifted.get(k, False), records.get(k, StoredRecords())
            )
            for k in keys
        }

    def _query(self, sql: str, **parameters: Any) -> list[Any]:
        return list(self.client.query(sql, parameters=parameters).result_rows)

    def _references(
        self, keys: Sequence[StreamKey], signals: frozenset[str]
    ) -> dict[StreamKey, dict[str, StoredReference]]:
        rows = self._query(
            f"SELECT tenant, model, route, stream, scales, {_hex_bytes('arrayFlatten(vectors)')}, values, "
            "toUnixTimestamp64Milli(reference_end) "
            f"FROM {self.database}.v_drift_references WHERE {_KEYS} AND size = {{size:UInt32}} "
            "AND stream IN {signals:Array(String)} AND encoder IN {encoders:Array(String)}",
            keys=list(keys),
            size=self.settings.reference_size,
            signals=sorted(signals),
            encoders=["", self.encoder] if self.encoder is not None else [""],
        )
        out: dict[StreamKey, dict[str, StoredReference]] = {}
        for tenant, model, route, stream, scales, vectors, values, end in rows:
            if scales:
                items = dequantise(_int8(vectors).reshape(len(scales), -1), scales)
            else:
                items = np.asarray(values, dtype=np.float64)
            if len(items) >= 2:
                out.setdefault((tenant, model, route), {})[stream] = StoredReference(items, int(end))
        return out

    def _windows(self, keys: Sequence[StreamKey]) -> tuple[dict[StreamKey, dict[str, int]], dict[StreamKey, bool]]:
        rows = self._query(
            "SELECT tenant, model, route, stream, any(kind), toUnixTimestamp64Milli(max(window_end)), "
            f"argMax(drifted, window_end) FROM {self.database}.v_drift_windows WHERE {_KEYS} "
            "GROUP BY tenant, model, route, stream",
            keys=list(keys),
        )
        ends: dict[StreamKey, dict[str, int]] = {}
        latest: dict[StreamKey, tuple[int, bool]] = {}
        for tenant, model, route, stream, kind, end, was_drifted in rows:
            key = (tenant, model, route)
            ends.setdefault(key, {})[stream] = int(end)
            if kind == "embedding" and int(end) >= latest.get(key, (-1, False))[0]:
                latest[key] = (int(end), bool(was_drifted))
        return ends, {k: v for k, (_, v) in latest.items()}

    def _records(
        self,
        keys: Sequence[StreamKey],
        limit: int,
        vector_limit: int,
        names: tuple[str, ...],
        fields: tuple[TextField, ...],
    ) -> dict[StreamKey, StoredRecords]:
        scores = "".join(", lengthUTF8(response)" if n == RESPONSE_LENGTH else f", `{n}`" for n in names)
        rows = self._query(
            f"SELECT tenant, model, route, id, toUnixTimestamp64Milli(ts), lengthUTF8(response){scores} "
            f"FROM {self.database}.v_records WHERE {_KEYS} AND shed_weight > 0 "
            "ORDER BY tenant, model, route, ts DESC, id DESC LIMIT {limit:UInt32} BY tenant, model, route",
            keys=list(keys),
            limit=limit,
        )
        found: dict[StreamKey, list[Any]] = {}
        for row in reversed(rows):  # oldest first
            found.setdefault((row[0], row[1], row[2]), []).append(row)
        vectors = self._vectors(list(found), vector_limit, fields, min((r[4] for r in rows), default=0))
        out = {}
        for key, stream_rows in found.items():
            ids = [str(r[3]) for r in stream_rows]
            at = {record_id: i for i, record_id in enumerate(ids)}
            by_field = {}
            for text_field, (record_ids, matrix) in vectors.get(key, {}).items():
                pos = [(at[r], j) for j, r in enumerate(record_ids) if r in at]
                pos.sort()
                if pos:
                    rows_at = np.array([p for p, _ in pos], dtype=np.intp)
                    by_field[text_field] = (rows_at, matrix[[j for _, j in pos]])
            out[key] = StoredRecords(
                ids=ids,
                ts_ms=[int(r[4]) for r in stream_rows],
                response_chars=[int(r[5]) for r in stream_rows],
                scores={n: [_value(r[6 + i]) for r in stream_rows] for i, n in enumerate(names)},
                vectors=by_field,
            )
        return out

    def _vectors(
        self, keys: Sequence[StreamKey], limit: int, fields: tuple[TextField, ...], since_ms: int
    ) -> dict[StreamKey, dict[TextField, tuple[list[str], Vectors]]]:
        if not keys or not fields or self.encoder is None:
            return {}
        rows = self._query(
            f"SELECT tenant, model, route, field, record_id, scale, {_hex_bytes('vector')} "
            f"FROM {self.database}.v_record_embeddings "
            f"WHERE {_KEYS} AND encoder = {{encoder:String}} AND field IN {{fields:Array(String)}} "
            "AND ts >= fromUnixTimestamp64Milli({since:Int64}, 'UTC') "
            "ORDER BY tenant, model, route, field, ts DESC, record_id DESC "
            "LIMIT {limit:UInt32} BY tenant, model, route, field",
            keys=list(keys),
            encoder=self.encoder,
            fields=list(fields),
            since=since_ms,
            limit=limit,
        )
        grouped: dict[tuple[StreamKey, TextField], list[Any]] = {}
        for tenant, model, route, text_field, record_id, scale, vector in rows:
            grouped.setdefault(((tenant, model, route), text_field), []).append((record_id, scale, vector))
        out: dict[StreamKey, dict[TextField, tuple[list[str], Vectors]]] = {}
        for (key, text_field), items in grouped.items():
            q = _int8("".join(v for _, _, v in items)).reshape(len(items), -1)
            matrix = dequantise(q, [s for _, s, _ in items])
            out.setdefault(key, {})[text_field] = ([str(r) for r, _, _ in items], matrix)
        return out


def _hex_bytes(column: str) -> str:
    """SQL: an ``Array(Int8)`` column as one hex string of its bytes, each offset by 128 (see :func:`_int8`).

    clickhouse-connect turns arrays into Python lists, element by element; a hex string decodes with numpy in a
    fraction of that time (a 1,000-vector reference: about 3x faster end to end).
    """
    return f"hex(arrayStringConcat(arrayMap(x -> char(toUInt8(x + 128)), {column})))"


def _int8(text: str) -> npt.NDArray[np.int8]:
    """The Int8 values of a :func:`_hex_bytes` string (byte ``x + 128`` is ``x``'s two's complement XOR 0x80)."""
    return (np.frombuffer(bytes.fromhex(text), dtype=np.uint8) ^ np.uint8(0x80)).view(np.int8)


def _value(value: Any) -> float | None:
    return None if value is None else float(value)


class ReferenceSink(BatchingSink[ReferenceRow]):
    """Inserts ready references into ``drift_references`` (ReplacingMergeTree: the latest per signal wins).

    Args:
        client: clickhouse-connect client.
        database: Database holding ``drift_references``.
        size: ``drift.reference_size`` the references were drawn with (a different size is not restored).
        encoder: Name of the encoder of embedding references.
    """

    metric_label = "clickhouse_drift_references"

    COLUMNS = (
        "tenant", "model", "route", "stream", "encoder", "size", "scales", "vectors", "values", "reference_end",
        "created_at",
    )  # fmt: skip

    def __init__(self, client: Client, database: str, size: int, encoder: str | None) -> None:
        super().__init__()
        self.client = client
        self.database = database
        self.size = size
        self.encoder = encoder

    def write(self, batch: Sequence[ReferenceRow]) -> None:
        """One INSERT for the whole batch."""
        now = datetime.now(UTC)
        rows = []
        for row in batch:
            end = datetime.fromtimestamp((row.end_ms or 0) / 1000, tz=UTC)
            if row.kind == "embedding":
                q, scale = quantise(row.items)
                vectors, scales, values = q.tolist(), scale.tolist(), []
                encoder = self.encoder or ""
            else:
                vectors, scales, values, encoder = [], [], [float(v) for v in row.items], ""
            rows.append([*row.key, row.stream, encoder, self.size, scales, vectors, values, end, now])
        try:
            self.client.insert(f"{self.database}.drift_references", rows, column_names=list(self.COLUMNS))
        except Exception as exc:
            raise SinkError(f"insert into {self.database}.drift_references failed: {exc}") from exc
