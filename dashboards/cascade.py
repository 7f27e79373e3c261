"""Cascade scoring panels (on the quality dashboard): audit agreement, escalated share, audited records.

Reads ``score_tiers``, ``audited`` and ``audit_disagree`` of ``v_records`` (migration 17, :mod:`agent.cascade`):
per record, the tier that decided each detector's score (``fast``, or the escalation tier: ``full``, or
``expensive`` where a site model replaces it); whether the record is in the audit sample (every tier scored it, so
its scores are the escalation tier's); and the detectors whose fast-tier flag differed from the escalation tier's.

Only detectors with a fast tier are compared. A record does not say which those are (an audited record holds
escalation tiers only, and detectors without a fast tier are listed as ``full`` when they read embeddings), so
the panels and the alert take the detectors the fast tier decided at least once in the same time range
(:func:`cascaded`). Records scored under ``scoring.mode: full`` have no tiers and count nowhere here.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.models import common as cm

from dashboards.common import Board, prop, thresholds, where

F = where("tenant", "model", "route")
RANGE = "$__timeFilter(ts)"

PER_DETECTOR = "ARRAY JOIN mapKeys(score_tiers) AS detector, mapValues(score_tiers) AS tier"
"""One row per (record, detector) with a tier, and the ``tier`` that decided it."""
AUDITS = "countIf(audited = 1)"
"""Audited rows (records in the audit sample)."""
DISAGREEMENTS = "countIf(audited = 1 AND has(audit_disagree, detector))"
"""Audited rows whose fast-tier flag differed from the escalation tier's."""
AGREEMENT_PCT = f"round((1 - {DISAGREEMENTS} / {AUDITS}) * 100, 2) AS agreement_pct"
"""Share of audited records on which the fast tier's flag matched the escalation tier's, percent."""
DASHED_LINE = cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED)


def cascaded(condition: str) -> str:
    """``detector IN (...)``: the detectors the fast tier decided at least once among records where ``condition``."""
    return (
        "detector IN (SELECT DISTINCT arrayJoin(mapKeys(mapFilter((k, v) -> v = 'fast', score_tiers))) "
        f"FROM {{db}}.v_records WHERE {condition})"
    )


def add_panels(board: Board, agreement_min: float) -> Board:
    """``board`` (with tenant/model/route variables) with a "Cascade" row appended.

    ``agreement_min`` is ``alerts.cascade_agreement_min`` (a share), drawn as a dashed line on the agreement panel.
    """
    board.row("Cascade")
    title = "Audit agreement by detector"
    board.add(
        timeseries.Panel()
        .title(title)
        .description(
            "Share of the audited records (scoring.audit_rate, scored by every tier) on which the fast tier's flag "
            "matched the escalation tier's (full or expensive), per detector with a fast tier; the dashed red line "
            "is alerts.cascade_agreement_min, where the cascade agreement alert fires."
        )
        .unit("percent")
        .axis_soft_min(90)
        .max(100)
        .span(12)
        .height(8)
        .thresholds(thresholds((None, "red"), (round(agreement_min * 100, 4), "green")))
        .thresholds_style(DASHED_LINE)
        .with_target(
            board.sql(
                title,
                f"SELECT $__timeInterval(ts) AS time, detector, {AGREEMENT_PCT} FROM {{db}}.v_records {PER_DETECTOR} "
                f"WHERE {RANGE} AND {F} AND audited = 1 AND {cascaded(f'{RANGE} AND {F}')} "
                "GROUP BY time, detector ORDER BY time",
                ("time", "detector", "agreement_pct"),
                time_series=True,
            )
        )
    )
    title = "Escalated scores by detector"
    board.add(
        timeseries.Panel()
        .title(title)
        .description(
            "Share of each detector's scores decided by the escalation tier (full, or expensive where a site model "
            "replaces it): the fast score fell in the band around the threshold, or the record was audited. The "
            "fast tier decided the rest."
        )
        .unit("percent")
        .min(0)
        .max(100)
        .span(12)
        .height(8)
        .with_target(
            board.sql(
                title,
                "SELECT $__timeInterval(ts) AS time, detector, round(countIf(tier != 'fast') * 100 / count(), 2) "
                f"AS escalated_pct FROM {{db}}.v_records {PER_DETECTOR} WHERE {RANGE} AND {F} "
                f"AND {cascaded(f'{RANGE} AND {F}')} GROUP BY time, detector ORDER BY time",
                ("time", "detector", "escalated_pct"),
                time_series=True,
            )
        )
    )
    title = "Audited records"
    board.add(
        stat.Panel()
        .title(title)
        .description("Records in the cascade's audit sample in the time range (every tier scored them).")
        .unit("short")
        .span(6)
        .height(6)
        .graph_mode(cm.BigValueGraphMode.NONE)
        .with_target(
            board.sql(
                title,
                f"SELECT count() AS audited_records FROM {{db}}.v_records WHERE {RANGE} AND {F} AND audited = 1",
                ("audited_records",),
            )
        )
    )
    title = "Audit agreement in the time range"
    board.add(
        table.Panel()
        .title(title)
        .description(
            "Per detector with a fast tier, over the whole time range: audited records, those whose fast-tier flag "
            "differed from the escalation tier's, and the agreement."
        )
        .span(18)
        .height(6)
        .override_by_name("agreement_pct", [prop("unit", "percent")])
        .with_target(
            board.sql(
                title,
                f"SELECT detector, {AUDITS} AS audited_records, {DISAGREEMENTS} AS disagreed, {AGREEMENT_PCT} "
                f"FROM {{db}}.v_records {PER_DETECTOR} WHERE {RANGE} AND {F} AND audited = 1 "
                f"AND {cascaded(f'{RANGE} AND {F}')} GROUP BY detector ORDER BY agreement_pct, detector",
                ("detector", "audited_records", "disagreed", "agreement_pct"),
            )
        )
    )
    return board
