"""Cost: spend and tokens per tenant → user → model, and the burn rate against the daily budget."""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, stat, table
from grafana_foundation_sdk.models import common as cm

from dashboards.common import DASHED, Board, prop, series, thresholds, where

UID = "lookout-cost"

F = where("tenant", "model", "route")
RANGE = "$__timeFilter(ts)"
RANGE_S = "greatest(1, dateDiff('second', $__fromTime, $__toTime))"
"""Length of the dashboard time range in seconds."""


def build(database: str, budget_usd_per_day: float) -> Board:
    """The cost dashboard; ``budget_usd_per_day`` is the per-tenant budget (``alerts.cost_budget_usd_per_day``)."""
    board = Board(UID, "lookout / Cost", "LLM spend and tokens, and the burn rate against the budget.", database)
    board.dimension_variables()
    budget = f"toFloat64({budget_usd_per_day!r})"

    title = "Spend and burn rate"
    board.add(
        stat.Panel()
        .title(title)
        .description("Spend in the range, tokens, and the daily burn rate the range's spend extrapolates to.")
        .span(24)
        .height(5)
        .graph_mode(cm.BigValueGraphMode.NONE)
        .override_by_name("spend_usd", [prop("unit", "currencyUSD")])
        .override_by_name("burn_usd_per_day", [prop("unit", "currencyUSD")])
        .override_by_name("budget_usd_per_day", [prop("unit", "currencyUSD")])
        .with_target(
            board.sql(
                title,
                "SELECT round(sum(cost_usd), 4) AS spend_usd, sum(prompt_tokens) AS input_tokens, "
                "sum(completion_tokens) AS output_tokens, "
                f"round(sum(cost_usd) * 86400 / {RANGE_S}, 4) AS burn_usd_per_day, "
                f"{budget} * greatest(1, uniqExact(tenant)) AS budget_usd_per_day "
                f"FROM {{db}}.v_records WHERE {RANGE} AND {F}",
                ("spend_usd", "input_tokens", "output_tokens", "burn_usd_per_day", "budget_usd_per_day"),
            )
        )
    )
    title = "Burn rate vs budget by tenant"
    board.add(
        series(title, "currencyUSD")
        .description("Spend per interval extrapolated to USD per day, per tenant; the dashed line is the budget.")
        .override_by_name("budget_usd_per_day", [DASHED])
        .with_target(
            board.sql(
                title,
                "SELECT $__timeInterval(ts) AS time, tenant, sum(cost_usd) * 86400 / $__interval_s AS burn_usd_per_day "
                f"FROM {{db}}.v_records WHERE {RANGE} AND {F} GROUP BY time, tenant ORDER BY time",
                ("time", "tenant", "burn_usd_per_day"),
                time_series=True,
            )
        )
        .with_target(
            board.sql(
                title,
                f"SELECT $__timeInterval(ts) AS time, {budget} AS budget_usd_per_day FROM {{db}}.v_records "
                f"WHERE {RANGE} GROUP BY time ORDER BY time",
                ("time", "budget_usd_per_day"),
                ref_id="B",
                time_series=True,
            )
        )
    )
    title = "Burn rate by tenant (share of budget)"
    board.add(
        bargauge.Panel()
        .title(title)
        .description("Each tenant's spend in the range, extrapolated to a day, against the daily budget.")
        .unit("currencyUSD")
        .min(0)
        .max(budget_usd_per_day)
        .span(12)
        .height(8)
        .thresholds(thresholds((None, "green"), (0.8 * budget_usd_per_day, "yellow"), (budget_usd_per_day, "red")))
        .with_target(
            board.sql(
                title,
                f"SELECT tenant, round(sum(cost_usd) * 86400 / {RANGE_S}, 4) AS burn_usd_per_day "
                f"FROM {{db}}.v_records WHERE {RANGE} AND {F} GROUP BY tenant ORDER BY burn_usd_per_day DESC",
                ("tenant", "burn_usd_per_day"),
            )
        )
    )
    title = "Tokens by model"
    board.add(
        series(title, "short").with_target(
            board.sql(
                title,
                "SELECT $__timeInterval(ts) AS time, model, "
                "sum(ifNull(prompt_tokens, 0) + ifNull(completion_tokens, 0)) "
                f"AS tokens FROM {{db}}.v_records WHERE {RANGE} AND {F} GROUP BY time, model ORDER BY time",
                ("time", "model", "tokens"),
                time_series=True,
            )
        )
    )
    title = "Spend by tenant"
    board.add(
        series(title, "currencyUSD")
        .draw_style(cm.GraphDrawStyle.BARS)
        .with_target(
            board.sql(
                title,
                "SELECT $__timeInterval(ts) AS time, tenant, sum(cost_usd) AS spend_usd "
                f"FROM {{db}}.v_records WHERE {RANGE} AND {F} GROUP BY time, tenant ORDER BY time",
                ("time", "tenant", "spend_usd"),
                time_series=True,
            )
        )
    )
    title = "Spend per tenant, user and model"
    board.add(
        table.Panel()
        .title(title)
        .description("Calls without a price (unknown model or no usage) count in 'unpriced'.")
        .span(24)
        .height(10)
        .override_by_name("spend_usd", [prop("unit", "currencyUSD")])
        .with_target(
            board.sql(
                title,
                "SELECT tenant, user_id, model, count() AS calls, sum(prompt_tokens) AS prompt_tokens, "
                "sum(completion_tokens) AS completion_tokens, round(sum(cost_usd), 4) AS spend_usd, "
                f"countIf(cost_usd IS NULL) AS unpriced FROM {{db}}.v_records WHERE {RANGE} AND {F} "
                "GROUP BY tenant, user_id, model ORDER BY spend_usd DESC LIMIT 200",
                ("tenant", "user_id", "model", "calls", "prompt_tokens", "completion_tokens", "spend_usd", "unpriced"),
            )
        )
    )
    return board
