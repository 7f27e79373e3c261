"""Quality overview: flag rates and score distributions by model, tenant and route; the top flagged records."""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, histogram, stat, table, timeseries
from grafana_foundation_sdk.models import common as cm

from dashboards import cascade
from dashboards.common import Board, series, thresholds, where

UID = "lookout-quality"

F = where("tenant", "model", "route")
RANGE = "$__timeFilter(ts)"

# Flag rates in percent. Hallucination and relevance only count records the detector scored (they need context
# or a prompt); the others count every record. Signals that load shedding samples (hallucination and the drift
# step's flags by default, see agent/shedding.py) are weighted by shed_weight (1/rate for sampled records, 0 for
# skipped ones), so their rates stay unbiased while the agent sheds.
SHED_SIGNALS = ("hallucination", "drift", "novel", "near_duplicate")
"""Flags whose rates are weighted by ``shed_weight`` (the default ``shedding.detectors`` and the drift step)."""


def weighted_pct(flag: str, condition: str = "1") -> str:
    """Percentage of records (where ``condition``) carrying ``flag``, each counted with its ``shed_weight``."""
    return (
        f"round(sumIf(shed_weight * has(flags, '{flag}'), {condition}) * 100 / "
        f"nullIf(sumIf(shed_weight, {condition}), 0), 2)"
    )


RATES = f"""
    round(avg(has(flags, 'toxicity')) * 100, 2) AS toxicity_pct,
    round(avg(has(flags, 'prompt_toxicity')) * 100, 2) AS prompt_toxicity_pct,
    {weighted_pct("hallucination", "hallucination IS NOT NULL")} AS hallucination_pct,
    round(avgIf(has(flags, 'relevance'), relevance IS NOT NULL) * 100, 2) AS low_relevance_pct,
    round(avg(has(flags, 'refusal')) * 100, 2) AS refusal_pct,
    round(avg(has(flags, 'repetition')) * 100, 2) AS repetition_pct,
    {weighted_pct("near_duplicate")} AS near_duplicate_pct,
    round(avgIf(has(flags, 'tone'), tone IS NOT NULL) * 100, 2) AS negative_tone_pct
"""
RATE_COLUMNS = (
    "toxicity_pct", "prompt_toxicity_pct", "hallucination_pct", "low_relevance_pct", "refusal_pct", "repetition_pct",
    "near_duplicate_pct", "negative_tone_pct",
)  # fmt: skip


def _rate(detector: str) -> str:
    """Flag rate (percent) among the records ``detector`` scored, weighted where shedding samples it."""
    if detector in SHED_SIGNALS:
        return weighted_pct(detector, f"{detector} IS NOT NULL")
    return f"round(avgIf(has(flags, '{detector}'), {detector} IS NOT NULL) * 100, 2)"


def _by(board: Board, dimension: str) -> None:
    title = f"Flag rates by {dimension}"
    board.add(
        table.Panel()
        .title(title)
        .description(f"Share of records each detector flagged, per {dimension}, in the time range.")
        .unit("percent")
        .span(12)
        .height(8)
        .with_target(
            board.sql(
                title,
                f"SELECT {dimension}, count() AS records, {RATES} FROM {{db}}.v_records WHERE {RANGE} AND {F} "
                f"GROUP BY {dimension} ORDER BY records DESC",
                (dimension, "records", *RATE_COLUMNS),
            )
        )
    )


def _repetition_and_tone(board: Board) -> None:
    """Degenerate output (loops, the same answer to different prompts) and the tone of responses over time."""
    title = "Repetition and near-duplicates by model"
    board.add(
        series(title, "percent")
        .description(
            "Share of responses flagged repetition (repeated n-grams, a loop at the end) and near_duplicate "
            "(the same answer as a recent response to a different prompt), per model."
        )
        .with_target(
            board.sql(
                title,
                "SELECT $__timeInterval(ts) AS time, model, round(avg(has(flags, 'repetition')) * 100, 2) AS "
                "repetition_pct, round(avg(has(flags, 'near_duplicate')) * 100, 2) AS near_duplicate_pct "
                f"FROM {{db}}.v_records WHERE {RANGE} AND {F} GROUP BY time, model ORDER BY time",
                ("time", "model", "repetition_pct", "near_duplicate_pct"),
                time_series=True,
            )
        )
    )
    title = "Tone and formality by model"
    board.add(
        timeseries.Panel()
        .title(title)
        .description(
            "Mean tone (0 positive, 0.5 neutral, 1 negative) and mean formality (0 chatty, 1 formal) of responses, "
            "per model; a step is a change of register. The Drift dashboard tests these distributions per stream."
        )
        .min(0)
        .max(1)
        .span(12)
        .height(8)
        .with_target(
            board.sql(
                title,
                "SELECT $__timeInterval(ts) AS time, model, round(avg(tone), 3) AS mean_tone, "
                "round(avg(formality), 3) AS mean_formality "
                f"FROM {{db}}.v_records WHERE {RANGE} AND {F} AND (tone IS NOT NULL OR formality IS NOT NULL) "
                "GROUP BY time, model ORDER BY time",
                ("time", "model", "mean_tone", "mean_formality"),
                time_series=True,
            )
        )
    )


def build(database: str, cascade_agreement_min: float) -> Board:
    """The quality overview dashboard; ``cascade_agreement_min`` (``alerts.*``) is drawn on the cascade row."""
    board = Board(UID, "lookout / Quality overview", "Detector flag rates and score distributions.", database)
    board.dimension_variables()

    board.row("Rates")
    title = "Records scored"
    board.add(
        stat.Panel()
        .title(title)
        .unit("short")
        .span(4)
        .height(5)
        .graph_mode(cm.BigValueGraphMode.NONE)
        .with_target(
            board.sql(title, f"SELECT count() AS records FROM {{db}}.v_records WHERE {RANGE} AND {F}", ["records"])
        )
    )
    title = "Flag rates"
    board.add(
        stat.Panel()
        .title(title)
        .description("Share of records flagged per detector in the time range.")
        .unit("percent")
        .span(20)
        .height(5)
        .graph_mode(cm.BigValueGraphMode.NONE)
        .thresholds(thresholds((None, "green"), (2, "yellow"), (5, "red")))
        .with_target(board.sql(title, f"SELECT {RATES} FROM {{db}}.v_records WHERE {RANGE} AND {F}", RATE_COLUMNS))
    )
    title = "Flag rate over time"
    board.add(
        series(title, "percent").with_target(
            board.sql(
                title,
                f"SELECT $__timeInterval(ts) AS time, {RATES} FROM {{db}}.v_records WHERE {RANGE} AND {F} "
                "GROUP BY time ORDER BY time",
                ("time", *RATE_COLUMNS),
                time_series=True,
            )
        )
    )
    title = "Flagged per minute"
    board.add(
        series(title, "short")
        .description("Records with at least one flag, per minute, by detector.")
        .with_target(
            board.sql(
                title,
                "SELECT $__timeInterval(ts) AS time, detector, "
                f"sum(if(detector IN {SHED_SIGNALS}, shed_weight, 1)) * 60 / $__interval_s AS flagged_per_min "
                f"FROM {{db}}.v_records ARRAY JOIN flags AS detector WHERE {RANGE} AND {F} "
                "GROUP BY time, detector ORDER BY time",
                ("time", "detector", "flagged_per_min"),
                time_series=True,
            )
        )
    )
    for detector in ("toxicity", "hallucination"):
        title = f"{detector.capitalize()} rate by model"
        board.add(
            series(title, "percent").with_target(
                board.sql(
                    title,
                    f"SELECT $__timeInterval(ts) AS time, model, {_rate(detector)} AS {detector}_pct "
                    "FROM {db}.v_records "
                    f"WHERE {RANGE} AND {F} AND {detector} IS NOT NULL GROUP BY time, model ORDER BY time",
                    ("time", "model", f"{detector}_pct"),
                    time_series=True,
                )
            )
        )
    _repetition_and_tone(board)
    for dimension in ("model", "tenant", "route"):
        _by(board, dimension)
    title = "Mean relevance by route"
    board.add(
        bargauge.Panel()
        .title(title)
        .unit("percentunit")
        .min(0)
        .max(1)
        .span(12)
        .height(8)
        .thresholds(thresholds((None, "red"), (0.5, "yellow"), (0.7, "green")))
        .with_target(
            board.sql(
                title,
                f"SELECT route, round(avg(relevance), 3) AS mean_relevance FROM {{db}}.v_records WHERE {RANGE} AND {F} "
                "AND relevance IS NOT NULL GROUP BY route ORDER BY mean_relevance",
                ("route", "mean_relevance"),
            )
        )
    )

    board.row("Distributions")
    title = "Score distributions"
    board.add(
        histogram.Panel()
        .title(title)
        .description("Histogram of detector scores (a sample of up to 10,000 records in the range).")
        .span(12)
        .height(8)
        .with_target(
            board.sql(
                title,
                "SELECT toxicity, prompt_toxicity, relevance, hallucination, refusal, repetition, tone, formality "
                f"FROM {{db}}.v_records WHERE {RANGE} AND {F} ORDER BY ts DESC LIMIT 10000",
                (
                    "toxicity",
                    "prompt_toxicity",
                    "relevance",
                    "hallucination",
                    "refusal",
                    "repetition",
                    "tone",
                    "formality",
                ),
            )
        )
    )
    title = "Score quantiles by model"
    board.add(
        table.Panel()
        .title(title)
        .decimals(3)
        .span(12)
        .height(8)
        .with_target(
            board.sql(
                title,
                "SELECT model, round(quantile(0.5)(toxicity), 3) AS toxicity_p50, "
                "round(quantile(0.95)(toxicity), 3) AS toxicity_p95, "
                "round(quantile(0.1)(relevance), 3) AS relevance_p10, "
                "round(quantile(0.5)(relevance), 3) AS relevance_p50, "
                "round(quantile(0.95)(hallucination), 3) AS hallucination_p95 "
                f"FROM {{db}}.v_records WHERE {RANGE} AND {F} GROUP BY model ORDER BY model",
                ("model", "toxicity_p50", "toxicity_p95", "relevance_p10", "relevance_p50", "hallucination_p95"),
            )
        )
    )

    board.row("Records")
    title = "Top flagged records"
    board.add(
        table.Panel()
        .title(title)
        .description("Records with the most flags, then the highest toxicity or hallucination score.")
        .span(24)
        .height(10)
        .with_target(
            board.sql(
                title,
                "SELECT ts, tenant, model, route, id, arrayStringConcat(flags, ', ') AS flags, "
                "round(toxicity, 3) AS toxicity, round(hallucination, 3) AS hallucination, "
                "round(relevance, 3) AS relevance, substring(prompt, 1, 200) AS prompt, "
                f"substring(response, 1, 200) AS response FROM {{db}}.v_records WHERE {RANGE} AND {F} "
                "AND notEmpty(flags) ORDER BY length(v_records.flags) DESC, "
                "greatest(ifNull(v_records.toxicity, 0), ifNull(v_records.hallucination, 0)) DESC LIMIT 50",
                ("ts", "tenant", "model", "route", "id", "flags", "toxicity", "hallucination", "relevance",
                 "prompt", "response"),
            )
        )
    )  # fmt: skip
    return cascade.add_panels(board, cascade_agreement_min)
