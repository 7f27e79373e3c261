"""Dashboards as code: the macro expander, the committed generated files, Grafana's schema, provisioning shapes."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from prometheus_client import REGISTRY

from agent import metrics
from agent.config import Settings, load_settings
from dashboards.build import bundle, generate, stale
from dashboards.common import CLICKHOUSE_PLUGIN, CLICKHOUSE_UID, PROMETHEUS_UID, TAG
from dashboards.macros import ALL, MacroError, QueryContext, expand

REPO = Path(__file__).resolve().parents[2]
GENERATED = REPO / "dashboards" / "generated"
SCHEMA = REPO / "dashboards" / "vendor" / "grafana-schema-11.6.16-dashboard.schema.json"
FROM = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
TO = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No LOOKOUT_* variable from the outer environment changes what is generated."""
    for name in list(os.environ):
        if name.upper().startswith("LOOKOUT_"):
            monkeypatch.delenv(name)


def _files(clean_env: None) -> dict[str, str]:
    return generate(load_settings())


def _walk(node: Any) -> list[dict[str, Any]]:
    out = []
    if isinstance(node, dict):
        out.append(node)
        for v in node.values():
            out.extend(_walk(v))
    elif isinstance(node, list):
        for v in node:
            out.extend(_walk(v))
    return out


class TestMacros:
    """The expander reproduces the ClickHouse plugin's macros and Grafana's variable formatting."""

    def ctx(self, **variables: list[str]) -> QueryContext:
        return QueryContext(FROM, TO, 300, variables)

    def test_time_filter_and_range(self) -> None:
        """$__timeFilter(col) becomes the plugin's seconds-precision range; $__fromTime/$__toTime too."""
        out = expand("WHERE $__timeFilter(ts) AND x < $__toTime AND y > $__fromTime", self.ctx())
        assert out == (
            "WHERE ts >= toDateTime(1767225600) AND ts <= toDateTime(1767247200) "
            "AND x < toDateTime(1767247200) AND y > toDateTime(1767225600)"
        )

    def test_ms_variants_and_date_filter(self) -> None:
        """The _ms macros use fromUnixTimestamp64Milli; $__dateFilter compares dates."""
        out = expand("$__timeFilter_ms(ts) / $__dateFilter(d) / $__toTime_ms", self.ctx())
        assert out == (
            "ts >= fromUnixTimestamp64Milli(1767225600000) AND ts <= fromUnixTimestamp64Milli(1767247200000) / "
            "d >= toDate('2026-01-01') AND d <= toDate('2026-01-01') / fromUnixTimestamp64Milli(1767247200000)"
        )

    def test_time_interval_and_interval_seconds(self) -> None:
        """$__timeInterval(col) buckets by the panel interval; $__interval_s is that interval in seconds."""
        out = expand("SELECT $__timeInterval(ts) AS time, count() / $__interval_s", self.ctx())
        assert out == "SELECT toStartOfInterval(toDateTime(ts), INTERVAL 300 second) AS time, count() / 300"

    def test_conditional_all_drops_filter_for_all(self) -> None:
        """$__conditionalAll(cond, $v) is 1=1 when v is All, the condition otherwise."""
        sql = "WHERE $__conditionalAll(tenant IN (${tenant:singlequote}), $tenant)"
        assert expand(sql, self.ctx(tenant=[ALL])) == "WHERE 1=1"
        assert expand(sql, self.ctx(tenant=["acme", "o'neil"])) == "WHERE tenant IN ('acme','o\\'neil')"

    def test_plain_variable_formats(self) -> None:
        """A multi-value $var is quoted like the plugin formats arrays; a single value is raw."""
        assert expand("IN ($m)", self.ctx(m=["a", "b"])) == "IN ('a','b')"
        assert expand("= ${m}", self.ctx(m=["a"])) == "= a"

    def test_unknown_macro_and_variable_are_errors(self) -> None:
        """A typo in a macro or variable name fails instead of reaching ClickHouse."""
        with pytest.raises(MacroError, match="unknown macro"):
            expand("$__timeFilterr(ts)", self.ctx())
        with pytest.raises(MacroError, match="undefined template variable"):
            expand("IN (${tenat:singlequote})", self.ctx(tenant=["a"]))

    def test_all_outside_conditional_all_is_an_error(self) -> None:
        """A variable on All used outside $__conditionalAll is reported (it would filter on every value)."""
        with pytest.raises(MacroError, match="outside"):
            expand("IN (${tenant:singlequote})", self.ctx(tenant=[ALL]))


class TestGeneratedFiles:
    """The committed files are what the code builds, and valid Grafana 11.6 dashboards."""

    def test_committed_files_are_current(self, clean_env: None) -> None:
        """dashboards/generated matches a fresh build (run `lookout dashboards build --out dashboards/generated`)."""
        files = _files(clean_env)
        assert stale(GENERATED, files) == []
        on_disk = {p.relative_to(GENERATED).as_posix() for p in GENERATED.rglob("*") if p.is_file()}
        assert on_disk == set(files)

    def test_dashboards_validate_against_grafana_schema(self, clean_env: None) -> None:
        """Every dashboard validates against the vendored @grafana/schema 11.6.16 Dashboard JSON schema."""
        validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
        for rel, text in _files(clean_env).items():
            if rel.endswith(".json"):
                errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(json.loads(text))]
                assert errors == [], rel

    def test_schema_rejects_a_broken_dashboard(self) -> None:
        """The vendored schema is strict enough to catch a misspelled panel field."""
        validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
        board = json.loads((GENERATED / "dashboards" / "lookout-cost.json").read_text())
        board["panels"][0]["titel"] = board["panels"][0].pop("title")
        assert list(validator.iter_errors(board))

    def test_every_clickhouse_target_is_tested(self, clean_env: None) -> None:
        """Each ClickHouse target and variable in the JSON is a recorded query that the chDB tests run."""
        b = bundle(load_settings())
        recorded = {q.sql for board in b.boards for q in board.queries}
        for rel, text in _files(clean_env).items():
            if not rel.endswith(".json"):
                continue
            for node in _walk(json.loads(text)):
                if "rawSql" in node:
                    assert node["rawSql"] in recorded
                    assert node["datasource"] == {"type": CLICKHOUSE_PLUGIN, "uid": CLICKHOUSE_UID}
                if node.get("type") == "query" and node.get("datasource", {}).get("uid") == CLICKHOUSE_UID:
                    assert node["query"] in recorded

    def test_prometheus_queries_use_defined_metrics(self, clean_env: None) -> None:
        """Every lookout_* metric a panel or alert reads is one agent/metrics.py exposes."""
        suffixes = {"counter": ("_total",), "histogram": metrics.HISTOGRAM_SUFFIXES, "gauge": ("",)}
        exposed = {f.name + sfx for f in REGISTRY.collect() for sfx in suffixes.get(f.type, ("",))}
        exprs = [n["expr"] for text in _files(clean_env).values() for n in _walk(yaml.safe_load(text)) if "expr" in n]
        assert len(exprs) > 15
        used = {name for e in exprs for name in re.findall(r"\b(lookout_\w+|process_start_time_seconds)\b", e)}
        assert used <= exposed, used - exposed
        assert metrics.CONSUMER_LAG in used and metrics.BATCH_DURATION + "_bucket" in used

    def test_dashboards_link_to_each_other_with_variables(self, clean_env: None) -> None:
        """Each dashboard is tagged and links to the others by tag, keeping time and variables; uids are stable."""
        uids = []
        for rel, text in _files(clean_env).items():
            if rel.endswith(".json"):
                board = json.loads(text)
                uids.append(board["uid"])
                assert TAG in board["tags"]
                assert board["links"] == [
                    {"asDropdown": True, "icon": "external link", "includeVars": True, "keepTime": True, "tags": [TAG],
                     "targetBlank": False, "title": "lookout dashboards", "tooltip": "", "type": "dashboards"}
                ]  # fmt: skip
        assert sorted(uids) == ["lookout-cost", "lookout-drift", "lookout-health", "lookout-quality", "lookout-review"]

    def test_quality_dashboard_has_dimension_variables(self, clean_env: None) -> None:
        """tenant, model, route are multi-value variables with All on the quality dashboard."""
        board = json.loads(_files(clean_env)["dashboards/lookout-quality.json"])
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert set(variables) == {"tenant", "model", "route"}
        assert all(v["multi"] and v["includeAll"] for v in variables.values())


class TestProvisioning:
    """Provisioning files have the shapes Grafana's file provisioning reads."""

    def test_datasources(self, clean_env: None) -> None:
        """Two data sources with fixed uids; the ClickHouse password is an env reference, never a value."""
        doc = yaml.safe_load(_files(clean_env)["provisioning/datasources/lookout.yaml"])
        assert doc["apiVersion"] == 1
        by_uid = {d["uid"]: d for d in doc["datasources"]}
        assert set(by_uid) == {CLICKHOUSE_UID, PROMETHEUS_UID}
        ch = by_uid[CLICKHOUSE_UID]
        assert ch["type"] == CLICKHOUSE_PLUGIN
        assert {"host", "port", "protocol", "username", "defaultDatabase"} <= set(ch["jsonData"])
        assert ch["secureJsonData"]["password"] == "$LOOKOUT_GRAFANA__CLICKHOUSE_PASSWORD"  # noqa: S105  # an env reference
        assert by_uid[PROMETHEUS_UID]["type"] == "prometheus" and by_uid[PROMETHEUS_UID]["url"].startswith("http")
        for d in doc["datasources"]:
            assert {"name", "type", "access", "uid"} <= set(d)

    def test_dashboard_provider(self, clean_env: None) -> None:
        """One file provider into the lookout folder."""
        doc = yaml.safe_load(_files(clean_env)["provisioning/dashboards/lookout.yaml"])
        (provider,) = doc["providers"]
        assert doc["apiVersion"] == 1
        assert provider["type"] == "file" and provider["folder"] == "lookout" and provider["options"]["path"]

    def test_alert_rules(self, clean_env: None) -> None:
        """Fourteen rules, each with a query on a provisioned source, a threshold condition, summary and runbook."""
        doc = yaml.safe_load(_files(clean_env)["provisioning/alerting/lookout.yaml"])
        (group,) = doc["groups"]
        assert doc["apiVersion"] == 1 and group["folder"] == "lookout" and group["interval"] == "1m"
        assert {"orgId", "name", "folder", "interval", "rules"} <= set(group)
        assert len(group["rules"]) == 14
        for rule in group["rules"]:
            assert {"uid", "title", "condition", "data", "for", "noDataState", "execErrState"} <= set(rule)
            refs = {d["refId"]: d for d in rule["data"]}
            assert rule["condition"] in refs
            assert refs["A"]["datasourceUid"] in {CLICKHOUSE_UID, PROMETHEUS_UID}
            assert refs["C"]["model"]["type"] == "threshold" and refs["C"]["model"]["expression"] == "A"
            assert rule["annotations"]["summary"] and len(rule["annotations"]["runbook"]) > 80
            assert re.fullmatch(r"\d+[smh]", rule["for"])

    def test_thresholds_follow_settings(self, clean_env: None) -> None:
        """alerts.* settings set the rule thresholds and the dashboards' budget line."""
        settings = Settings().with_overrides(alerts={"toxicity_rate_pct": 7.5, "cost_budget_usd_per_day": 42.0})
        files = generate(settings)
        rules = {r["uid"]: r for r in yaml.safe_load(files["provisioning/alerting/lookout.yaml"])["groups"][0]["rules"]}
        assert rules["lookout-toxicity-rate"]["data"][1]["model"]["conditions"][0]["evaluator"]["params"] == [7.5]
        assert rules["lookout-cost-burn"]["data"][1]["model"]["conditions"][0]["evaluator"]["params"] == [42.0]
        assert "toFloat64(42.0)" in files["dashboards/lookout-cost.json"]

    def test_call_alerts_and_their_lines_follow_settings(self, clean_env: None) -> None:
        """alerts.latency_* and error_rate_pct set the two call rules and the dashed lines on the latency panels."""
        alerts = {"latency_p95_ms": 2500.0, "latency_window_minutes": 30, "error_rate_pct": 7.0,
                  "latency_min_records": 50}  # fmt: skip
        files = generate(Settings().with_overrides(alerts=alerts))
        doc = yaml.safe_load(files["provisioning/alerting/lookout.yaml"])
        rules = {r["uid"]: r for r in doc["groups"][0]["rules"]}
        for uid, threshold in (("lookout-latency-p95", 2500.0), ("lookout-error-rate", 7.0)):
            rule = rules[uid]
            assert rule["data"][1]["model"]["conditions"][0]["evaluator"]["params"] == [threshold]
            assert rule["data"][0]["relativeTimeRange"] == {"from": 1800, "to": 0} and rule["for"] == "30m"
            assert "HAVING count() >= 50" in rule["data"][0]["model"]["rawSql"]
        board = json.loads(files["dashboards/lookout-quality.json"])
        lines = {
            p["title"]: [step["value"] for step in p["fieldConfig"]["defaults"]["thresholds"]["steps"]]
            for p in board["panels"]
            if p["title"].startswith(("Call latency by", "Error rate by"))
        }
        assert lines == {
            "Call latency by model (p50, p95, p99)": [None, 2500.0],
            "Call latency by route (p50, p95, p99)": [None, 2500.0],
            "Error rate by model": [None, 7.0],
            "Error rate by route": [None, 7.0],
        }
