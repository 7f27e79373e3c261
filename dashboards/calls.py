"""LLM call panels (on the quality dashboard): latency quantiles and error rates per model and route, and sessions.

Reads ``latency_ms``, ``error`` and ``session_id`` of ``v_records`` (migration 13 added the last two): the latency
the application logged (or the span's duration), the error of a failed call (``''`` when it succeeded), and the
conversation the call belongs to. Latency quantiles count only records that carry a latency.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import table
from grafana_foundation_sdk.models import common as cm

from dashboards.common import Board, prop, series, thresholds, where

F = where("tenant", "model", "route")
RANGE = "$__timeFilter(ts)"
SESSIONS_TOP = 50
"""Sessions the Sessions table lists: those with the most records in the time range."""

QUANTILES = (
    "round(toFloat64(quantile(0.5)(latency_ms)), 1) AS p50_ms, "
    "round(toFloat64(quantile(0.95)(latency_ms)), 1) AS p95_ms, "
    "round(toFloat64(quantile(0.99)(latency_ms)), 1) AS p99_ms"
)
DASHED_LINE = cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED)
"""Thresholds drawn as a dashed line (the alert threshold)."""
ERROR_PCT = "round(countIf(error != '') * 100 / count(), 2) AS error_pct"


def _latency(board: Board, dimension: str, p95_threshold_ms: float) -> None:
    title = f"Call latency by {dimension} (p50, p95, p99)"
    steps = thresholds((None, "green"), (p95_threshold_ms, "red"))
    board.add(
        series(title, "ms")
        .description(
            f"Quantiles of the logged call latency (latency_ms) per {dimension}; the dashed red line is "
            "alerts.latency_p95_ms, where the p95 latency alert fires."
        )
        .thresholds(steps)
        .thresholds_style(DASHED_LINE)
        .with_target(
            board.sql(
                title,
                f"SELECT $__timeInterval(ts) AS time, {dimension}, {QUANTILES} FROM {{db}}.v_records "
                f"WHERE {RANGE} AND {F} AND latency_ms IS NOT NULL GROUP BY time, {dimension} ORDER BY time",
                ("time", dimension, "p50_ms", "p95_ms", "p99_ms"),
                time_series=True,
            )
        )
    )


def _errors(board: Board, dimension: str, error_rate_pct: float) -> None:
    title = f"Error rate by {dimension}"
    board.add(
        series(title, "percent")
        .description(f"Share of calls that ended in an error (error is not empty), per {dimension}.")
        .max(100)
        .thresholds(thresholds((None, "green"), (error_rate_pct, "red")))
        .thresholds_style(DASHED_LINE)
        .with_target(
            board.sql(
                title,
                f"SELECT $__timeInterval(ts) AS time, {dimension}, {ERROR_PCT} FROM {{db}}.v_records "
                f"WHERE {RANGE} AND {F} GROUP BY time, {dimension} ORDER BY time",
                ("time", dimension, "error_pct"),
                time_series=True,
            )
        )
    )


def add_panels(board: Board, p95_threshold_ms: float, error_rate_pct: float) -> Board:
    """``board`` (with tenant/model/route variables) with "Latency and errors" and "Sessions" rows appended.

    ``p95_threshold_ms`` and ``error_rate_pct`` are the alert thresholds (``alerts.*``), drawn as lines.
    """
    board.row("Latency and errors")
    for dimension in ("model", "route"):
        _latency(board, dimension, p95_threshold_ms)
    for dimension in ("model", "route"):
        _errors(board, dimension, error_rate_pct)
    title = "Top call errors"
    board.add(
        table.Panel()
        .title(title)
        .description("The most frequent errors of failed calls in the time range, per model and route.")
        .span(24)
        .height(8)
        .with_target(
            board.sql(
                title,
                "SELECT substring(error, 1, 200) AS error, model, route, count() AS calls, max(ts) AS last_seen "
                f"FROM {{db}}.v_records WHERE {RANGE} AND {F} AND error != '' GROUP BY error, model, route "
                "ORDER BY calls DESC LIMIT 20",
                ("error", "model", "route", "calls", "last_seen"),
            )
        )
    )

    board.row("Sessions")
    title = "Sessions"
    board.add(
        table.Panel()
        .title(title)
        .description(
            f"The {SESSIONS_TOP} sessions (conversations, by session_id) with the most records in the time range: "
            "records, the share flagged by any detector, errors, and the first and last call."
        )
        .span(24)
        .height(10)
        .override_by_name("flagged_pct", [prop("unit", "percent")])
        .with_target(
            board.sql(
                title,
                "SELECT session_id, tenant, count() AS records, round(avg(notEmpty(flags)) * 100, 2) AS flagged_pct, "
                "countIf(error != '') AS errors, min(ts) AS first_ts, max(ts) AS last_ts "
                f"FROM {{db}}.v_records WHERE {RANGE} AND {F} AND session_id != '' GROUP BY tenant, session_id "
                f"ORDER BY records DESC, last_ts DESC LIMIT {SESSIONS_TOP}",
                ("session_id", "tenant", "records", "flagged_pct", "errors", "first_ts", "last_ts"),
            )
        )
    )
    return board
