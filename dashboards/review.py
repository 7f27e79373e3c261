"""Review: backlog per queue and its oldest item against the SLA, labeling throughput, confirm rate per detector.

Reads the review queue's views (migration 4): ``v_review_items``, ``v_review_labels``, ``v_review_claims``.
An item is in the backlog until it has a label. Measured detector quality (precision and miss rate from the labels)
is added by :mod:`dashboards.review_quality`.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, stat, table
from grafana_foundation_sdk.models import common as cm

from dashboards.common import Board, prop, series, thresholds, where
from dashboards.review_agreement import add_agreement
from dashboards.review_quality import add_quality

UID = "lookout-review"

Q = where("queue")
UNLABELED = (
    "SELECT i.* FROM {db}.v_review_items AS i LEFT ANTI JOIN {db}.v_review_labels AS l "
    "ON l.queue = i.queue AND l.record_id = i.record_id"
)
"""Items with no label yet (the backlog)."""
SECONDS = prop("unit", "s")
PERCENT = prop("unit", "percent")


def build(database: str, sla_minutes: int) -> Board:
    """The review dashboard; ``sla_minutes`` is ``alerts.review_sla_minutes``."""
    board = Board(UID, "lookout / Review", "Human review backlog, throughput and detector confirm rates.", database)
    board.query_variable("queue", "SELECT DISTINCT queue FROM {db}.v_review_items ORDER BY queue")
    sla_s = sla_minutes * 60

    title = "Backlog"
    board.add(
        stat.Panel()
        .title(title)
        .description("Items waiting for a label, items claimed right now, and the oldest waiting item's age.")
        .span(8)
        .height(6)
        .graph_mode(cm.BigValueGraphMode.NONE)
        .override_by_name(
            "oldest_age_s", [SECONDS, prop("thresholds", thresholds((None, "green"), (sla_s, "red")).build())]
        )
        .with_target(
            board.sql(
                title,
                f"SELECT count() AS backlog, dateDiff('second', min(enqueued_at), now64(6)) AS oldest_age_s "
                f"FROM ({UNLABELED}) WHERE {Q}",
                ("backlog", "oldest_age_s"),
            )
        )
    )
    title = "Oldest waiting item vs SLA"
    board.add(
        bargauge.Panel()
        .title(title)
        .description(f"Age of each queue's oldest unlabeled item; red past the SLA ({sla_minutes} min).")
        .unit("s")
        .min(0)
        .max(sla_s * 1.5)
        .span(16)
        .height(6)
        .thresholds(thresholds((None, "green"), (0.75 * sla_s, "yellow"), (sla_s, "red")))
        .with_target(
            board.sql(
                title,
                "SELECT queue, dateDiff('second', min(enqueued_at), now64(6)) AS oldest_age_s "
                f"FROM ({UNLABELED}) WHERE {Q} GROUP BY queue ORDER BY oldest_age_s DESC",
                ("queue", "oldest_age_s"),
            )
        )
    )
    title = "Backlog per queue"
    board.add(
        table.Panel()
        .title(title)
        .span(12)
        .height(8)
        .override_by_name("oldest_age_s", [SECONDS])
        .with_target(
            board.sql(
                title,
                "SELECT b.queue AS queue, count() AS backlog, countIf(b.control = 1) AS control_items, "
                "max(b.priority) AS top_priority, dateDiff('second', min(b.enqueued_at), now64(6)) AS oldest_age_s, "
                "uniqExactIf(c.record_id, c.record_id != '') AS claimed "
                f"FROM ({UNLABELED}) AS b LEFT JOIN (SELECT queue, record_id FROM {{db}}.v_review_claims "
                "WHERE released = 0 AND lease_until > now64(6)) AS c "
                "ON c.queue = b.queue AND c.record_id = b.record_id "
                "WHERE $__conditionalAll(b.queue IN (${queue:singlequote}), $queue) "
                "GROUP BY queue ORDER BY backlog DESC",
                ("queue", "backlog", "control_items", "top_priority", "oldest_age_s", "claimed"),
            )
        )
    )
    title = "Enqueued vs labeled"
    board.add(
        series(title, "short")
        .with_target(
            board.sql(
                title,
                "SELECT $__timeInterval(enqueued_at) AS time, count() AS enqueued FROM {db}.v_review_items "
                f"WHERE $__timeFilter(enqueued_at) AND {Q} GROUP BY time ORDER BY time",
                ("time", "enqueued"),
                time_series=True,
            )
        )
        .with_target(
            board.sql(
                title,
                "SELECT $__timeInterval(labeled_at) AS time, count() AS labeled FROM {db}.v_review_labels "
                f"WHERE $__timeFilter(labeled_at) AND {Q} GROUP BY time ORDER BY time",
                ("time", "labeled"),
                ref_id="B",
                time_series=True,
            )
        )
    )
    title = "Labels per hour per annotator"
    board.add(
        series(title, "short").with_target(
            board.sql(
                title,
                "SELECT $__timeInterval(labeled_at) AS time, annotator, count() * 3600 / $__interval_s "
                f"AS labels_per_hour FROM {{db}}.v_review_labels WHERE $__timeFilter(labeled_at) AND {Q} "
                "GROUP BY time, annotator ORDER BY time",
                ("time", "annotator", "labels_per_hour"),
                time_series=True,
            )
        )
    )
    title = "Confirm rate per detector"
    board.add(
        table.Panel()
        .title(title)
        .description("Of the verdicts annotators gave on a detector's flag, the share that confirmed it.")
        .span(12)
        .height(8)
        .override_by_name("confirm_pct", [PERCENT])
        .with_target(
            board.sql(
                title,
                "SELECT detector, countIf(verdict = 'confirm') AS confirmed, countIf(verdict = 'reject') AS rejected, "
                "round(confirmed * 100 / count(), 1) AS confirm_pct FROM {db}.v_review_labels "
                "ARRAY JOIN mapKeys(verdicts) AS detector, mapValues(verdicts) AS verdict "
                f"WHERE $__timeFilter(labeled_at) AND {Q} GROUP BY detector ORDER BY detector",
                ("detector", "confirmed", "rejected", "confirm_pct"),
            )
        )
    )
    title = "Confirm rate over time"
    board.add(
        series(title, "percent")
        .max(100)
        .with_target(
            board.sql(
                title,
                "SELECT $__timeInterval(labeled_at) AS time, detector, round(avg(verdict = 'confirm') * 100, 1) "
                "AS confirm_pct FROM {db}.v_review_labels ARRAY JOIN mapKeys(verdicts) AS detector, "
                f"mapValues(verdicts) AS verdict WHERE $__timeFilter(labeled_at) AND {Q} "
                "GROUP BY time, detector ORDER BY time",
                ("time", "detector", "confirm_pct"),
                time_series=True,
            )
        )
    )
    title = "Oldest waiting items"
    board.add(
        table.Panel()
        .title(title)
        .span(24)
        .height(10)
        .override_by_name("age_s", [SECONDS])
        .with_target(
            board.sql(
                title,
                "SELECT queue, record_id, enqueued_at, dateDiff('second', enqueued_at, now64(6)) AS age_s, priority, "
                "arrayStringConcat(reasons, ', ') AS reasons, rule, tenant, model, route "
                f"FROM ({UNLABELED}) WHERE {Q} ORDER BY enqueued_at LIMIT 100",
                ("queue", "record_id", "enqueued_at", "age_s", "priority", "reasons", "rule", "tenant", "model",
                 "route"),
            )
        )
    )  # fmt: skip
    add_agreement(board)
    add_quality(board)
    return board
