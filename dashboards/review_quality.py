"""Review dashboard panels for measured detector quality: precision of flags and miss rate, from the labels.

The same definitions as ``lookout detectors report`` (:mod:`evaluators.detector_quality`), in SQL over the time
range of the records: per record and detector the latest label's verdict; precision = confirmed / labeled flags;
miss rate = control records whose verdict for the detector is ``reject`` / labeled control records. Both with
95 % Wilson intervals. Only detectors that received a verdict appear (the command lists every enabled one).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import table

from dashboards.common import Board, prop

Z2 = 1.959963984540054**2
"""Square of the normal quantile of a two-sided 95 % interval."""
PERCENT = prop("unit", "percent")

VERDICTS = (
    "SELECT v.tenant AS tenant, v.model AS model, v.route AS route, v.detector AS detector, v.verdict AS verdict, "
    "v.control AS control, has(r.flags, v.detector) AS flagged FROM ("
    "SELECT i.tenant AS tenant, i.model AS model, i.route AS route, l.record_id AS record_id, detector, "
    "argMax(verdict, l.labeled_at) AS verdict, max(i.control) AS control FROM {db}.v_review_labels AS l "
    "INNER JOIN {db}.v_review_items AS i ON i.queue = l.queue AND i.record_id = l.record_id "
    "ARRAY JOIN mapKeys(l.verdicts) AS detector, mapValues(l.verdicts) AS verdict "
    "WHERE $__timeFilter(i.record_ts) GROUP BY tenant, model, route, record_id, detector) AS v "
    "INNER JOIN (SELECT tenant, id, flags FROM {db}.v_records WHERE $__timeFilter(ts)) AS r "
    "ON r.tenant = v.tenant AND r.id = v.record_id"
)
"""Per labeled record and detector: the stream, the latest verdict, control or not, and whether it was flagged."""
CONTROL_LABELED = (
    "(SELECT uniqExact(i.tenant, i.record_id) FROM {db}.v_review_items AS i INNER JOIN {db}.v_review_labels AS l "
    "ON i.queue = l.queue AND i.record_id = l.record_id WHERE i.control = 1 AND $__timeFilter(i.record_ts))"
)
"""Labeled control records in the time range."""


def wilson_pct(k: str, n: str) -> tuple[str, str]:
    """SQL for the 95 % Wilson interval of ``k`` in ``n`` (expressions), in percent; NULL when n is 0."""
    p, m = f"({k} / nullIf({n}, 0))", f"nullIf({n}, 0)"
    centre = f"({p} + {Z2:.6f} / (2 * {m}))"
    half = f"sqrt({p} * (1 - {p}) / {m} + {Z2:.6f} / (4 * {m} * {m}))"
    scale = f"(1 + {Z2:.6f} / {m})"
    return (
        f"round(100 * greatest(0, ({centre} - 1.959964 * {half}) / {scale}), 1)",
        f"round(100 * least(1, ({centre} + 1.959964 * {half}) / {scale}), 1)",
    )


def add_quality(board: Board) -> None:
    """Add the detector quality table and the precision per stream table."""
    p_low, p_high = wilson_pct("confirmed", "labeled_flags")
    m_low, m_high = wilson_pct("missed", "control_labeled")
    title = "Detector quality from labels"
    columns = ("detector", "labeled_flags", "confirmed", "precision_pct", "precision_low_pct", "precision_high_pct",
               "control_labeled", "missed", "miss_rate_pct", "miss_rate_low_pct", "miss_rate_high_pct")  # fmt: skip
    board.add(
        table.Panel()
        .title(title)
        .description(
            "Precision of each detector's flags (confirmed / labeled flags) and its miss rate on unflagged traffic "
            "(control records whose verdict rejects the detector's silence / labeled control records), with 95 % "
            "Wilson intervals; records in the time range. `lookout detectors report` adds recall and per-stream rows."
        )
        .span(12)
        .height(8)
        .override_by_regexp(".*_pct", [PERCENT])
        .with_target(
            board.sql(
                title,
                "SELECT detector, countIf(flagged) AS labeled_flags, countIf(flagged AND verdict = 'confirm') "
                f"AS confirmed, round(100 * confirmed / nullIf(labeled_flags, 0), 1) AS precision_pct, {p_low} "
                f"AS precision_low_pct, {p_high} AS precision_high_pct, {CONTROL_LABELED} AS control_labeled, "
                "countIf(control = 1 AND NOT flagged AND verdict = 'reject') AS missed, "
                f"round(100 * missed / nullIf(control_labeled, 0), 2) AS miss_rate_pct, {m_low} AS miss_rate_low_pct, "
                f"{m_high} AS miss_rate_high_pct FROM ({VERDICTS}) GROUP BY detector ORDER BY detector",
                columns,
            )
        )
    )
    title = "Detector precision per stream"
    board.add(
        table.Panel()
        .title(title)
        .description("Precision of each detector's flags per tenant, model and route, with its 95 % Wilson interval.")
        .span(12)
        .height(8)
        .override_by_regexp(".*_pct", [PERCENT])
        .with_target(
            board.sql(
                title,
                "SELECT tenant, model, route, detector, countIf(flagged) AS labeled_flags, "
                "countIf(flagged AND verdict = 'confirm') AS confirmed, "
                f"round(100 * confirmed / labeled_flags, 1) AS precision_pct, {p_low} AS precision_low_pct, "
                f"{p_high} AS precision_high_pct FROM ({VERDICTS}) GROUP BY tenant, model, route, detector "
                "HAVING labeled_flags > 0 ORDER BY tenant, model, route, detector",
                ("tenant", "model", "route", "detector", "labeled_flags", "confirmed", "precision_pct",
                 "precision_low_pct", "precision_high_pct"),
            )
        )
    )  # fmt: skip
