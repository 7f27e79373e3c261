"""Review dashboard, annotator agreement row: Krippendorff's alpha per queue and detector, gold accuracy per annotator.

The same measures as ``lookout review agreement`` (:mod:`evaluators.agreement`), over the labels of the time range:
each annotator's latest label of an item counts once. Alpha (nominal, two values: confirm and reject) is
``1 - (n - 1) * sum_u c_u (m_u - c_u) / (m_u - 1) / (n_c (n - n_c))`` over the items with ``m_u >= 2`` verdicts, ``c_u``
of them confirms, ``n`` verdicts and ``n_c`` confirms in all; empty when every verdict is the same. Gold items are
in ``v_gold_items`` (migration 16).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import table

from dashboards.common import Board, prop, where

Q = where("queue")
LATEST = (
    "SELECT queue, record_id, annotator, verdicts FROM {db}.v_review_labels "
    f"WHERE $__timeFilter(labeled_at) AND {Q} ORDER BY labeled_at DESC LIMIT 1 BY queue, record_id, annotator"
)
"""Each annotator's latest label of each item in the time range."""
UNITS = (
    "SELECT queue, record_id, detector, count() AS m, countIf(verdict = 'confirm') AS c "
    f"FROM ({LATEST}) ARRAY JOIN mapKeys(verdicts) AS detector, mapValues(verdicts) AS verdict "
    "GROUP BY queue, record_id, detector HAVING m >= 2"
)
"""Per item and detector with two or more verdicts: how many (``m``) and how many confirm (``c``)."""
PERCENT = prop("unit", "percent")


def add_agreement(board: Board) -> None:
    """Append the agreement row to the review dashboard."""
    board.row("Annotator agreement")
    title = "Agreement per queue and detector"
    board.add(
        table.Panel()
        .title(title)
        .description(
            "Krippendorff's alpha (nominal) over items that two or more annotators labeled (overlap and gold "
            "items): 1 is full agreement, 0 what chance gives. Empty when every verdict was the same."
        )
        .span(12)
        .height(8)
        .with_target(
            board.sql(
                title,
                "SELECT queue, detector, count() AS items, sum(m) AS verdicts, "
                "if(sum(c) * (sum(m) - sum(c)) = 0, NULL, "
                "round(1 - (sum(m) - 1) * sum(c * (m - c) / (m - 1)) / (sum(c) * (sum(m) - sum(c))), 3)) AS alpha "
                f"FROM ({UNITS}) GROUP BY queue, detector ORDER BY queue, detector",
                ("queue", "detector", "items", "verdicts", "alpha"),
            )
        )
    )
    title = "Gold accuracy per annotator"
    board.add(
        table.Panel()
        .title(title)
        .description("Each annotator's verdicts on gold items (review.gold) against the known verdicts.")
        .span(12)
        .height(8)
        .override_by_name("accuracy_pct", [PERCENT])
        .with_target(
            board.sql(
                title,
                "SELECT l.annotator AS annotator, uniqExact(l.queue, l.record_id) AS gold_items, count() AS verdicts, "
                "countIf(l.verdict = g.verdict) AS correct, round(correct * 100 / verdicts, 1) AS accuracy_pct "
                "FROM (SELECT queue, record_id, annotator, detector, toString(verdict) AS verdict "
                f"FROM ({LATEST}) ARRAY JOIN mapKeys(verdicts) AS detector, mapValues(verdicts) AS verdict) AS l "
                "INNER JOIN (SELECT queue, record_id, detector, toString(verdict) AS verdict FROM {db}.v_gold_items "
                "ARRAY JOIN mapKeys(expected) AS detector, mapValues(expected) AS verdict WHERE retired = 0) AS g "
                "ON l.queue = g.queue AND l.record_id = g.record_id AND l.detector = g.detector "
                "GROUP BY annotator ORDER BY annotator",
                ("annotator", "gold_items", "verdicts", "correct", "accuracy_pct"),
            )
        )
    )
