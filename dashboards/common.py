"""Shared pieces of every dashboard: data sources, the ClickHouse query type, variables, the :class:`Board`.

A :class:`Board` wraps a grafana-foundation-sdk dashboard builder and records every SQL query it adds
(panel title, refId, SQL, the columns the panel reads), so tests can run each one against the real schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard as model

GRAFANA_VERSION = "11.6"
"""Grafana version the dashboards, provisioning and alert files target."""
CLICKHOUSE_PLUGIN = "grafana-clickhouse-datasource"
"""Type id of the official ClickHouse data source plugin."""
CLICKHOUSE_PLUGIN_VERSION = "4.10.1"
"""Plugin version the queries are written for (v4 SQL editor: ``editorType: sql``, macros, format)."""
CLICKHOUSE_UID = "lookout-clickhouse"
"""Uid of the provisioned ClickHouse data source."""
PROMETHEUS_UID = "lookout-prometheus"
"""Uid of the provisioned Prometheus data source."""
TAG = "lookout"
"""Tag on every lookout dashboard; the dashboard links list dashboards by it."""

CLICKHOUSE = model.DataSourceRef(type_val=CLICKHOUSE_PLUGIN, uid=CLICKHOUSE_UID)
PROMETHEUS = model.DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)

FORMAT_TIME_SERIES = 0
FORMAT_TABLE = 1

DIMENSIONS = ("tenant", "model", "route")
"""Template variables of the ClickHouse dashboards, each a column of ``v_records``."""


def where(*dimensions: str) -> str:
    """``AND``-joined filters on the template variables; a variable set to All filters nothing."""
    return " AND ".join(f"$__conditionalAll({d} IN (${{{d}:singlequote}}), ${d})" for d in dimensions)


@dataclass(frozen=True, slots=True)
class SqlQuery:
    """One SQL query of a dashboard, as the tests run it."""

    board: str
    """Dashboard uid."""
    panel: str
    """Panel title (or ``variable NAME``)."""
    ref_id: str
    """Query refId within the panel."""
    sql: str
    """The raw SQL with macros and variables, as stored in the dashboard."""
    columns: tuple[str, ...]
    """Columns the panel reads, in order."""
    time_series: bool
    """True when the first column is the time axis (``time``)."""


class ClickHouseTarget(cogvariants.Dataquery):
    """A grafana-clickhouse-datasource v4 SQL-editor query."""

    def __init__(self, ref_id: str, sql: str, time_series: bool) -> None:
        self.ref_id = ref_id
        self.sql = sql
        self.time_series = time_series

    def to_json(self) -> dict[str, Any]:
        """The target as the plugin stores it."""
        return {
            "refId": self.ref_id,
            "datasource": CLICKHOUSE.to_json(),
            "editorType": "sql",
            "format": FORMAT_TIME_SERIES if self.time_series else FORMAT_TABLE,
            "queryType": "timeseries" if self.time_series else "table",
            "rawSql": self.sql,
            "pluginVersion": CLICKHOUSE_PLUGIN_VERSION,
        }


class ClickHouseQuery(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder handing a :class:`ClickHouseTarget` to a panel."""

    def __init__(self, target: ClickHouseTarget) -> None:
        self._target = target

    def build(self) -> cogvariants.Dataquery:
        """The target."""
        return self._target


def promql(expr: str, legend: str = "", ref_id: str = "A", instant: bool = False) -> prometheus.Dataquery:
    """A Prometheus query on the provisioned data source."""
    q = prometheus.Dataquery().expr(expr).ref_id(ref_id).datasource(PROMETHEUS)
    if legend:
        q = q.legend_format(legend)
    return q.instant() if instant else q.range()


def prop(id_val: str, value: object) -> model.DynamicConfigValue:
    """A field-override property (``unit``, ``custom.lineStyle``...)."""
    return model.DynamicConfigValue(id_val=id_val, value=value)


DASHED = prop("custom.lineStyle", {"fill": "dash", "dash": [10, 10]})
"""Override property: a dashed line (thresholds and budgets)."""


def thresholds(*steps: tuple[float | None, str]) -> dash.ThresholdsConfig:
    """Absolute thresholds; the first step's value is None (the base color)."""
    return (
        dash.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=v, color=c) for v, c in steps])
    )


class Board:
    """A dashboard under construction plus the SQL queries it holds.

    Args:
        uid: Dashboard uid (stable: links and pushes use it).
        title: Dashboard title.
        description: One line on what it answers.
        database: ClickHouse database holding lookout's views.
    """

    def __init__(self, uid: str, title: str, description: str, database: str) -> None:
        self.uid = uid
        self.title = title
        self.database = database
        self.queries: list[SqlQuery] = []
        self.builder = (
            dash.Dashboard(title)
            .uid(uid)
            .description(description)
            .tags([TAG])
            .time("now-6h", "now")
            .timezone("utc")
            .refresh("1m")
            .editable()
            .link(
                dash.DashboardLink("lookout dashboards")
                .type(model.DashboardLinkType.DASHBOARDS)
                .tags([TAG])
                .icon("external link")
                .as_dropdown(True)
                .include_vars(True)
                .keep_time(True)
            )
        )

    def sql(
        self, panel: str, sql: str, columns: Sequence[str], ref_id: str = "A", time_series: bool = False
    ) -> ClickHouseQuery:
        """A ClickHouse target for ``panel``, recorded with the columns the panel reads."""
        text = " ".join(sql.replace("{db}", self.database).split())
        self.queries.append(SqlQuery(self.uid, panel, ref_id, text, tuple(columns), time_series))
        return ClickHouseQuery(ClickHouseTarget(ref_id, text, time_series))

    def dimension_variables(self, source: str = "v_records", time_column: str = "ts") -> None:
        """Tenant / model / route: multi-value, with All, from the stored values in the time range."""
        for name in DIMENSIONS:
            self.query_variable(
                name, f"SELECT DISTINCT {name} FROM {{db}}.{source} WHERE $__timeFilter({time_column}) ORDER BY {name}"
            )

    def query_variable(self, name: str, sql: str) -> None:
        """A multi-value ClickHouse query variable with All, refreshed with the time range."""
        text = " ".join(sql.replace("{db}", self.database).split())
        self.queries.append(SqlQuery(self.uid, f"variable {name}", "", text, (name,), False))
        self.builder.with_variable(
            dash.QueryVariable(name)
            .label(name)
            .datasource(CLICKHOUSE)
            .query(text)
            .multi(True)
            .include_all(True)
            .current(model.VariableOption(selected=True, text="All", value="$__all"))
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(model.VariableSort.ALPHABETICAL_ASC)
        )

    def prometheus_variable(self, name: str, query: str) -> None:
        """A multi-value Prometheus label variable with All (``label_values(...)``)."""
        self.builder.with_variable(
            dash.QueryVariable(name)
            .label(name)
            .datasource(PROMETHEUS)
            .query({"query": query, "refId": f"var-{name}", "qryType": 1})
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .current(model.VariableOption(selected=True, text="All", value="$__all"))
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(model.VariableSort.ALPHABETICAL_ASC)
        )

    def row(self, title: str) -> None:
        """Start a row."""
        self.builder.with_row(dash.Row(title))

    def add(self, panel: cogbuilder.Builder[model.Panel]) -> None:
        """Add a panel (laid out left to right, top to bottom, by its span and height)."""
        self.builder.with_panel(panel)

    def build(self) -> model.Dashboard:
        """The dashboard model."""
        return self.builder.build()


def series(title: str, unit: str) -> timeseries.Panel:
    """A half-width (12 of 24 columns, 8 rows high) time series panel in ``unit``, its axis starting at 0."""
    return timeseries.Panel().title(title).unit(unit).min(0).span(12).height(8)
