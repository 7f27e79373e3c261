"""Drift: per-stream drift score vs threshold, windows drifted, and shifts of the score distributions."""

from __future__ import annotations

from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.models import common as cm

from dashboards.common import DASHED, Board, series, thresholds, where

UID = "lookout-drift"

F = where("tenant", "model", "route", "stream")
WINDOWS = "$__timeFilter(window_end)"


def _novelty(board: Board, records: str) -> None:
    """Novel prompts: the share flagged per stream, and the most novel prompts (``v_records.novelty``)."""
    title = "Novel prompt rate"
    board.add(
        series(title, "percent")
        .description(
            "Share of prompts farther from their stream's reference than drift.novelty_percentile of the "
            "reference's own held-out prompts (about 1% when traffic looks like the reference). Records scored "
            "before their stream's reference was ready have no novelty and are not counted."
        )
        .with_target(
            board.sql(
                title,
                "SELECT $__timeInterval(ts) AS time, concat(tenant, '/', model, '/', route) AS stream, "
                "round(avg(has(flags, 'novel')) * 100, 2) AS novel_pct FROM {db}.v_records "
                f"WHERE $__timeFilter(ts) AND {records} AND novelty IS NOT NULL GROUP BY time, stream ORDER BY time",
                ("time", "stream", "novel_pct"),
                time_series=True,
            )
        )
    )
    title = "Most novel prompts"
    board.add(
        table.Panel()
        .title(title)
        .description("Prompts flagged novel, newest first; those another detector also flagged are reviewed first.")
        .span(12)
        .height(8)
        .with_target(
            board.sql(
                title,
                "SELECT ts, tenant, model, route, id, round(novelty, 3) AS novelty, "
                "arrayStringConcat(flags, ', ') AS flags, substring(prompt, 1, 200) AS prompt FROM {db}.v_records "
                f"WHERE $__timeFilter(ts) AND {records} AND has(v_records.flags, 'novel') ORDER BY ts DESC LIMIT 50",
                ("ts", "tenant", "model", "route", "id", "novelty", "flags", "prompt"),
            )
        )
    )


def build(database: str) -> Board:
    """The drift dashboard (``v_drift_windows``, plus score quantiles from ``v_records``)."""
    board = Board(UID, "lookout / Drift", "Embedding and score drift per stream against its threshold.", database)
    board.dimension_variables("v_drift_windows", "window_end")
    board.query_variable(
        "stream", "SELECT DISTINCT stream FROM {db}.v_drift_windows WHERE $__timeFilter(window_end) ORDER BY stream"
    )

    title = "Drift in range"
    board.add(
        stat.Panel()
        .title(title)
        .description("Streams with at least one drifted window, drifted windows, and all windows in the range.")
        .span(8)
        .height(5)
        .graph_mode(cm.BigValueGraphMode.NONE)
        .thresholds(thresholds((None, "green"), (1, "red")))
        .with_target(
            board.sql(
                title,
                "SELECT uniqExactIf(stream, drifted = 1) AS streams_drifted, countIf(drifted = 1) AS windows_drifted, "
                f"count() AS windows FROM {{db}}.v_drift_windows WHERE {WINDOWS} AND {F}",
                ("streams_drifted", "windows_drifted", "windows"),
            )
        )
    )
    title = "Windows drifted"
    board.add(
        timeseries.Panel()
        .title(title)
        .unit("short")
        .min(0)
        .draw_style(cm.GraphDrawStyle.BARS)
        .span(16)
        .height(5)
        .with_target(
            board.sql(
                title,
                "SELECT $__timeInterval(window_end) AS time, kind, countIf(drifted = 1) AS windows_drifted "
                f"FROM {{db}}.v_drift_windows WHERE {WINDOWS} AND {F} GROUP BY time, kind ORDER BY time",
                ("time", "kind", "windows_drifted"),
                time_series=True,
            )
        )
    )
    title = "Drift score vs threshold"
    board.add(
        timeseries.Panel()
        .title(title)
        .description("Each stream's drift score per window (solid) and its threshold (dashed).")
        .span(24)
        .height(9)
        .override_by_regexp(".* threshold", [DASHED])
        .with_target(
            board.sql(
                title,
                "SELECT window_end AS time, stream, score FROM {db}.v_drift_windows "
                f"WHERE {WINDOWS} AND {F} ORDER BY time",
                ("time", "stream", "score"),
                time_series=True,
            )
        )
        .with_target(
            board.sql(
                title,
                "SELECT window_end AS time, concat(stream, ' threshold') AS series, threshold "
                f"FROM {{db}}.v_drift_windows WHERE {WINDOWS} AND {F} ORDER BY time",
                ("time", "series", "threshold"),
                ref_id="B",
                time_series=True,
            )
        )
    )
    title = "Latest window per stream"
    board.add(
        table.Panel()
        .title(title)
        .span(24)
        .height(8)
        .with_target(
            board.sql(
                title,
                "SELECT stream, kind, max(window_end) AS last_window, argMax(score, window_end) AS last_score, "
                "argMax(threshold, window_end) AS last_threshold, argMax(p_value, window_end) AS last_p_value, "
                "argMax(drifted, window_end) AS is_drifted, argMax(method, window_end) AS last_method, "
                "argMax(n, window_end) AS window_n, argMax(reference_n, window_end) AS last_reference_n "
                f"FROM {{db}}.v_drift_windows WHERE {WINDOWS} AND {F} GROUP BY stream, kind "
                "ORDER BY is_drifted DESC, last_score DESC",
                ("stream", "kind", "last_window", "last_score", "last_threshold", "last_p_value", "is_drifted",
                 "last_method", "window_n", "last_reference_n"),
            )
        )
    )  # fmt: skip
    records = where("tenant", "model", "route")
    _novelty(board, records)
    shifts = (
        ("toxicity", (0.5, 0.9)), ("relevance", (0.1, 0.5)), ("hallucination", (0.5, 0.9)), ("tone", (0.5, 0.9)),
        ("formality", (0.1, 0.5)), ("repetition", (0.5, 0.99)),
    )  # fmt: skip
    for detector, quantiles in shifts:
        title = f"{detector.capitalize()} score distribution shift"
        columns = [f"p{int(q * 100)}" for q in quantiles]
        selects = ", ".join(
            f"round(quantile({q})({detector}), 3) AS {c}" for q, c in zip(quantiles, columns, strict=True)
        )
        board.add(
            timeseries.Panel()
            .title(title)
            .description(f"Quantiles of the {detector} score per interval; a shift is a change in distribution.")
            .min(0)
            .max(1)
            .span(8)
            .height(8)
            .with_target(
                board.sql(
                    title,
                    f"SELECT $__timeInterval(ts) AS time, {selects} FROM {{db}}.v_records "
                    f"WHERE $__timeFilter(ts) AND {records} AND {detector} IS NOT NULL GROUP BY time ORDER BY time",
                    ("time", *columns),
                    time_series=True,
                )
            )
        )
    return board
