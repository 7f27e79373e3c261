"""``lookout report drift``: an evidently HTML report of one stream's reference window against its current one.

Both windows come from stored data only: score columns and response length from ``v_records``, embeddings
from ``record_embeddings`` (Int8, dequantised; nothing is encoded again). Records without a stored embedding
of every requested field are left out of the embedding comparison's windows.

Windows (defaults): the current window is the ``current`` span (1 day) ending at ``until`` (default the
stream's latest record); the reference window is the ``reference`` span (7 days) before it.
The report holds evidently's DataDrift preset over the score columns plus an ``EmbeddingsDrift`` metric per
embedding field (its t-SNE plot takes a few seconds; this is a CLI, not the agent's hot path).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np

from agent.drift_state import RESPONSE_LENGTH
from agent.errors import LookoutError
from agent.sinks.embeddings import dequantise
from agent.storage.records import ExportFilter, parse_time
from detectors.types import TextField
from evaluators.stored import score_columns, utc, where

EmbeddingMethod = Literal["distance", "mmd", "model", "ratio"]


@dataclass(frozen=True, slots=True)
class Windows:
    """The two time windows compared."""

    reference_since: datetime
    """Reference window start (inclusive)."""
    current_since: datetime
    """Reference end and current start."""
    until: datetime
    """Current window end (exclusive)."""


@dataclass(frozen=True, slots=True)
class ColumnDrift:
    """One column's (or embedding field's) drift test."""

    column: str
    """Score column, ``response_length`` or ``<field>_embedding``."""
    method: str
    """Test used."""
    value: float
    """Its statistic or p-value."""
    drifted: bool
    """Whether evidently calls it drifted."""


@dataclass(frozen=True, slots=True)
class DriftReport:
    """What ``report drift`` wrote."""

    path: Path
    """The HTML file."""
    windows: Windows
    """Windows compared."""
    reference_n: int
    """Records in the reference window."""
    current_n: int
    """Records in the current window."""
    columns: tuple[ColumnDrift, ...]
    """One test per column and embedding field."""


def resolve_windows(
    client: Any, db: str, stream: ExportFilter, until: str | None, current: str, reference: str
) -> Windows:
    """Window bounds from ``--until`` (default: just after the stream's latest record) and two spans."""
    if until is not None:
        end = parse_time(until)
    else:
        cond, params = where(stream, db)
        latest = client.query(f"SELECT max(ts), count() FROM {db}.v_records WHERE {cond}", parameters=params)
        ts, n = latest.result_rows[0]
        if not n:
            raise LookoutError("no stored records match this stream; check --tenant/--model/--route")
        end = utc(ts) + timedelta(milliseconds=1)  # the latest record is in the current window
    current_since = parse_time(current, now=end)
    return Windows(parse_time(reference, now=current_since), current_since, end)


def _frame(
    client: Any, db: str, stream: ExportFilter, since: datetime, until: datetime, fields: tuple[TextField, ...]
) -> Any:
    """One window as a DataFrame: score columns, ``response_length`` and ``<field>_<i>`` embedding columns."""
    import pandas as pd

    window = ExportFilter(since=since, until=until, tenants=stream.tenants, models=stream.models,
                          routes=stream.routes, detectors=stream.detectors, queues=stream.queues)  # fmt: skip
    cond, params = where(window, db)
    scores = score_columns(client, db)
    score_select = "".join(f", {s}" for s in scores)
    rows = client.query(
        f"SELECT id, lengthUTF8(response){score_select} FROM {db}.v_records WHERE {cond} "
        "ORDER BY id, ingested_at DESC LIMIT 1 BY id",
        parameters=params,
    ).result_rows
    frame = pd.DataFrame(rows, columns=["id", RESPONSE_LENGTH, *scores]).set_index("id")
    frame = frame.astype("float64")
    for field in fields:
        emb = client.query(
            f"SELECT record_id, scale, vector FROM {db}.v_record_embeddings WHERE field = {{field:String}} "
            f"AND record_id IN (SELECT id FROM {db}.v_records WHERE {cond}) "
            "ORDER BY record_id, ingested_at DESC LIMIT 1 BY record_id",
            parameters={**params, "field": field},
        ).result_rows
        if not emb:
            raise LookoutError(
                f"no stored {field} embeddings between {since:%Y-%m-%d %H:%M} and {until:%Y-%m-%d %H:%M}; "
                "the agent stores them with embeddings.store (default on) for records scored since"
            )
        vectors = dequantise(np.array([r[2] for r in emb], dtype=np.int8), [r[1] for r in emb])
        columns = [f"{field}_{i}" for i in range(vectors.shape[1])]
        frame = frame.join(pd.DataFrame(vectors, index=[r[0] for r in emb], columns=columns), how="inner")
    return frame


def _method(name: EmbeddingMethod) -> Any:
    from evidently.metrics.embeddings import DistanceDriftMethod, MMDDriftMethod, ModelDriftMethod, RatioDriftMethod

    return {"distance": DistanceDriftMethod, "mmd": MMDDriftMethod, "model": ModelDriftMethod,
            "ratio": RatioDriftMethod}[name]()  # fmt: skip


def build_report(
    client: Any,
    db: str,
    stream: ExportFilter,
    windows: Windows,
    out: Path,
    fields: tuple[TextField, ...] = ("prompt", "response"),
    method: EmbeddingMethod = "distance",
) -> DriftReport:
    """Write the HTML report to ``out`` and return what it found."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics.embeddings import EmbeddingsDrift
    from evidently.presets import DataDriftPreset

    reference = _frame(client, db, stream, windows.reference_since, windows.current_since, fields)
    current = _frame(client, db, stream, windows.current_since, windows.until, fields)
    for name, frame in (("reference", reference), ("current", current)):
        if len(frame) < 2:
            raise LookoutError(
                f"the {name} window has {len(frame)} records with stored embeddings; widen it (--current, "
                "--reference, --until)"
            )
    embedding_columns = {f: [c for c in reference.columns if c.startswith(f"{f}_") and c[len(f) + 1 :].isdigit()]
                         for f in fields}  # fmt: skip
    flat = {c for cols in embedding_columns.values() for c in cols}
    numeric = [
        c for c in reference.columns if c not in flat and reference[c].notna().any() and current[c].notna().any()
    ]
    definition = DataDefinition(numerical_columns=numeric, embeddings=embedding_columns)
    drift_methods = {f: _method(method) for f in fields}
    report = Report(
        [DataDriftPreset(columns=numeric)]
        + [EmbeddingsDrift(embeddings_name=f, drift_method=drift_methods[f]) for f in fields]
    )
    # evidently's embedding widget runs a Barnes-Hut t-SNE; its OpenMP threads spin-wait, which on a busy host
    # costs far more than the work itself (docs/benchmarks.md). One thread is faster here.
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # ships no type information

    with threadpool_limits(limits=1, user_api="openmp"):
        snapshot = report.run(
            Dataset.from_pandas(current.reset_index(drop=True), data_definition=definition),
            Dataset.from_pandas(reference.reset_index(drop=True), data_definition=definition),
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(out))
    results = []
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith(":ValueDrift"):
            value, threshold, test = float(metric["value"]), float(config["threshold"]), str(config["method"])
            drifted = value < threshold if "p_value" in test else value >= threshold
            results.append(ColumnDrift(config["column"], test, value, drifted))
    for f in fields:  # evidently keeps only the score; its method gives the decision (no t-SNE here)
        cols = embedding_columns[f]
        score, drifted, test = drift_methods[f](current[cols], reference[cols])
        results.append(ColumnDrift(f"{f}_embedding", str(test), float(score), bool(drifted)))
    return DriftReport(out, windows, len(reference), len(current), tuple(results))
