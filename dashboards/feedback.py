"""User feedback panels (on the quality dashboard): counts per model/tenant/route, thumbs-down rate, missed queue.

Reads ``v_record_feedback`` (migration 6): feedback joined to its records when read, so the tenant, model and
route filters apply and feedback that arrived before its record counts once the record is stored. "Missed" are
the items of the ``missed`` review queue: negative feedback on records no detector flagged.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import stat, table
from grafana_foundation_sdk.models import common as cm

from dashboards.common import Board, prop, series, thresholds, where

F = where("tenant", "model", "route")
RANGE = "$__timeFilter(ts)"
MISSED_QUEUE = "missed"
"""The default ``feedback.missed_queue``."""

COUNTS = """
    count() AS events,
    countIf(kind = 'thumbs_up') AS thumbs_up,
    countIf(kind = 'thumbs_down') AS thumbs_down,
    countIf(kind = 'report') AS reports,
    countIf(kind = 'rating') AS ratings,
    round(avgIf(value, kind = 'rating'), 2) AS avg_rating,
    round(countIf(kind = 'thumbs_down') * 100 / greatest(countIf(kind IN ('thumbs_up', 'thumbs_down')), 1), 2)
        AS thumbs_down_pct
"""
COUNT_COLUMNS = ("events", "thumbs_up", "thumbs_down", "reports", "ratings", "avg_rating", "thumbs_down_pct")
MISSED_BACKLOG = (
    "SELECT i.* FROM {db}.v_review_items AS i LEFT ANTI JOIN {db}.v_review_labels AS l "
    f"ON l.queue = i.queue AND l.record_id = i.record_id WHERE i.queue = '{MISSED_QUEUE}'"
)
"""Missed-queue items with no label yet."""


def add_panels(board: Board, thumbs_down_pct: float) -> Board:
    """``board`` (with tenant/model/route variables) with a "User feedback" row appended."""
    board.row("User feedback")
    steps = thresholds((None, "green"), (thumbs_down_pct, "red"))
    title = "User feedback"
    board.add(
        stat.Panel()
        .title(title)
        .description("Feedback events in the time range, the thumbs-down share of thumbs, and the missed backlog.")
        .span(24)
        .height(5)
        .graph_mode(cm.BigValueGraphMode.NONE)
        .override_by_name("thumbs_down_pct", [prop("unit", "percent"), prop("thresholds", steps.build())])
        .with_target(
            board.sql(
                title,
                f"SELECT {COUNTS}, (SELECT count() FROM ({MISSED_BACKLOG}) WHERE {F}) AS missed_backlog "
                f"FROM {{db}}.v_record_feedback WHERE {RANGE} AND {F}",
                (*COUNT_COLUMNS, "missed_backlog"),
            )
        )
    )
    title = "Feedback by model, tenant and route"
    board.add(
        table.Panel()
        .title(title)
        .description("Feedback counts per stream; missed: records with negative feedback that no detector flagged.")
        .span(24)
        .height(8)
        .override_by_name("thumbs_down_pct", [prop("unit", "percent")])
        .with_target(
            board.sql(
                title,
                f"SELECT model, tenant, route, {COUNTS}, uniqExactIf(record_id, "
                "(kind IN ('thumbs_down', 'report') OR (kind = 'rating' AND value <= 2)) "
                "AND empty(arrayFilter(x -> x != 'drift', flags))) AS missed "
                f"FROM {{db}}.v_record_feedback WHERE {RANGE} AND {F} GROUP BY model, tenant, route "
                "ORDER BY events DESC",
                ("model", "tenant", "route", *COUNT_COLUMNS, "missed"),
            )
        )
    )
    title = "Thumbs-down rate over time"
    board.add(
        series(title, "percent")
        .max(100)
        .with_target(
            board.sql(
                title,
                "SELECT $__timeInterval(ts) AS time, model, "
                "round(countIf(kind = 'thumbs_down') * 100 / count(), 2) AS thumbs_down_pct "
                f"FROM {{db}}.v_record_feedback WHERE {RANGE} AND {F} AND kind IN ('thumbs_up', 'thumbs_down') "
                "GROUP BY time, model ORDER BY time",
                ("time", "model", "thumbs_down_pct"),
                time_series=True,
            )
        )
    )
    title = "Missed by the detectors (waiting for review)"
    board.add(
        table.Panel()
        .title(title)
        .description("The missed queue: thumbs-down, reports and low ratings on records no detector flagged.")
        .span(12)
        .height(8)
        .with_target(
            board.sql(
                title,
                "SELECT enqueued_at, record_id, tenant, model, route, arrayStringConcat(reasons, ', ') AS feedback "
                f"FROM ({MISSED_BACKLOG}) WHERE {F} ORDER BY enqueued_at DESC LIMIT 100",
                ("enqueued_at", "record_id", "tenant", "model", "route", "feedback"),
            )
        )
    )
    return board
