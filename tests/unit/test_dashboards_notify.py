"""Alerts reach people: Grafana contact points and policies, the Prometheus rules file, both validated offline.

Grafana's alerting provisioning format and Prometheus's rule file format are checked against schemas written
from their Go types (``dashboards/vendor``); PromQL is parsed by ``promql-parser`` (the Rust parser Greptime
uses); routing is checked by walking the generated policy tree the way Alertmanager does.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import promql_parser as pq
import pytest
import yaml
from prometheus_client import REGISTRY

from agent import metrics
from agent.config import Settings, load_settings
from agent.errors import ConfigError
from dashboards import notify
from dashboards.build import generate

REPO = Path(__file__).resolve().parents[2]
VENDOR = REPO / "dashboards" / "vendor"
GRAFANA_SCHEMA = json.loads((VENDOR / "grafana-11.6-alerting-provisioning.schema.json").read_text(encoding="utf-8"))
RULES_SCHEMA = json.loads((VENDOR / "prometheus-rules.schema.json").read_text(encoding="utf-8"))
CONTACTS = [
    {"name": "ml-oncall", "teams": ["ml"], "severities": ["critical"], "pagerduty": True},
    {"name": "ml-chat", "teams": ["ml"], "slack": True, "email": ["ml@example.com", "lead@example.com"]},
    {"name": "platform", "teams": ["platform"], "webhook": True, "pagerduty": True},
]
"""A typical setup: the ML team paged on critical and told in chat of everything; platform by webhook and pager."""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No LOOKOUT_* variable from the outer environment changes what is generated."""
    for name in list(os.environ):
        if name.upper().startswith("LOOKOUT_"):
            monkeypatch.delenv(name)


def configured(**notify_overrides: Any) -> Settings:
    """Default settings with the example contact points (and any other notify.* overrides)."""
    return Settings().with_overrides(notify={"contact_points": CONTACTS, **notify_overrides})


def errors(schema: dict[str, Any], doc: Any) -> list[str]:
    """Every schema violation, as ``path: message``."""
    return [f"{list(e.absolute_path)}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]


def delivered(tree: dict[str, Any], labels: dict[str, str]) -> list[str]:
    """The receivers an alert with ``labels`` reaches through a policy tree, as Alertmanager routes it."""

    def matches(route: dict[str, Any]) -> bool:
        for label, op, value in route.get("object_matchers", []):
            hit = re.fullmatch(value, labels.get(label, "")) is not None if "~" in op else labels.get(label) == value
            if hit != (op in ("=", "=~")):
                return False
        return True

    def walk(route: dict[str, Any]) -> list[str]:
        out: list[str] = []
        for child in route.get("routes", []):
            if matches(child):
                out.extend(walk(child))
                if not child.get("continue", False):
                    break
        return out or [route["receiver"]]

    return walk(tree)


def rule_labels(files: dict[str, str]) -> list[dict[str, str]]:
    """The labels of every generated rule: Grafana's and Prometheus's."""
    grafana = yaml.safe_load(files["provisioning/alerting/lookout.yaml"])["groups"][0]["rules"]
    prometheus = yaml.safe_load(files["prometheus/lookout-rules.yaml"])["groups"][0]["rules"]
    return [r["labels"] for r in [*grafana, *prometheus]]


class TestContactPointsAndPolicies:
    """provisioning/alerting/notifications.yaml: what Grafana's provisioning accepts, routed by team and severity."""

    def test_no_contact_points_means_no_file(self) -> None:
        """By default nothing is written that could replace an org's policy tree or point at an unset address."""
        assert "provisioning/alerting/notifications.yaml" not in generate(load_settings())

    def test_file_validates_against_grafanas_provisioning_format(self) -> None:
        """Contact points (email, Slack, PagerDuty, webhook) and the policy tree match the 11.6 file format."""
        doc = yaml.safe_load(generate(configured())["provisioning/alerting/notifications.yaml"])
        assert errors(GRAFANA_SCHEMA, doc) == []
        types = {r["type"] for cp in doc["contactPoints"] for r in cp["receivers"]}
        assert types == {"email", "slack", "pagerduty", "webhook"}
        (root,) = doc["policies"]
        assert root["receiver"] == "grafana-default-email"

    def test_the_existing_rules_file_validates_too(self) -> None:
        """provisioning/alerting/lookout.yaml (the rule groups) passes the same top-level schema."""
        assert (
            errors(GRAFANA_SCHEMA, yaml.safe_load(generate(configured())["provisioning/alerting/lookout.yaml"])) == []
        )

    @pytest.mark.parametrize(
        ("breakage", "message"),
        [
            (lambda d: d["contactPoints"][0].update(recievers=d["contactPoints"][0].pop("receivers")), "recievers"),
            (lambda d: d["contactPoints"][0]["receivers"][0]["settings"].pop("integrationKey"), "integrationKey"),
            (lambda d: d["contactPoints"][0]["receivers"][0].update(uid="x" * 41), "x" * 41),
            (lambda d: d["contactPoints"][0]["receivers"][0].update(type="pager-duty"), "pager-duty"),
            (lambda d: d["policies"][0]["routes"][0].update(repeat_interval="4 hours"), "4 hours"),
            (lambda d: d["policies"][0]["routes"][0]["object_matchers"][0].__setitem__(1, "=="), "=="),
            (lambda d: d["policies"][0].update(object_matchers=[["a", "=", "b"]]), "should not be valid"),
        ],
        ids=[
            "misspelt-key",
            "pagerduty-without-key",
            "uid-too-long",
            "unknown-type",
            "bad-duration",
            "bad-operator",
            "root-with-matchers",
        ],
    )
    def test_schema_rejects_what_grafana_rejects(self, breakage: Any, message: str) -> None:
        """The schema is strict enough to catch each mistake (so the validation above means something)."""
        doc = yaml.safe_load(generate(configured())["provisioning/alerting/notifications.yaml"])
        breakage(doc)
        found = errors(GRAFANA_SCHEMA, doc)
        assert found and any(message in e for e in found), found

    def test_routes_by_team_and_severity(self) -> None:
        """A critical ML alert pages and posts; a warning only posts; platform alerts reach platform; others root."""
        doc = yaml.safe_load(generate(configured())["provisioning/alerting/notifications.yaml"])
        (tree,) = doc["policies"]
        lookout = {"service": "lookout"}
        assert delivered(tree, {**lookout, "team": "ml", "severity": "critical"}) == ["ml-oncall", "ml-chat"]
        assert delivered(tree, {**lookout, "team": "ml", "severity": "warning"}) == ["ml-chat"]
        assert delivered(tree, {**lookout, "team": "platform", "severity": "warning"}) == ["platform"]
        assert delivered(tree, {"team": "ml", "severity": "critical"}) == ["grafana-default-email"]
        assert delivered(tree, {**lookout, "team": "nobody", "severity": "warning"}) == ["ml-oncall"]

    def test_every_generated_rule_reaches_its_team(self) -> None:
        """Each Grafana and Prometheus rule's labels route to a contact point of its own team, not the fallback."""
        settings = configured()
        files = generate(settings)
        (tree,) = yaml.safe_load(files["provisioning/alerting/notifications.yaml"])["policies"]
        teams = {c.name: set(c.teams) for c in settings.notify.contact_points}
        labels = rule_labels(files)
        assert len(labels) == 24 and {lab["team"] for lab in labels} == {"ml", "platform"}
        for lab in labels:
            assert lab["service"] == "lookout" and lab["severity"] in {"critical", "warning"}
            reached = delivered(tree, lab)
            assert reached and all(lab["team"] in teams[name] for name in reached), (lab, reached)

    def test_team_labels_follow_settings(self) -> None:
        """notify.quality_team and platform_team set the team label of the rules."""
        files = generate(configured(quality_team="data-science", platform_team="sre"))
        assert {lab["team"] for lab in rule_labels(files)} == {"data-science", "sre"}

    def test_receivers_of_the_tree_exist(self) -> None:
        """Every receiver the policy tree names is a provisioned contact point or the root receiver."""
        doc = yaml.safe_load(generate(configured())["provisioning/alerting/notifications.yaml"])
        names = {cp["name"] for cp in doc["contactPoints"]} | {"grafana-default-email"}

        def receivers(route: dict[str, Any]) -> set[str]:
            return {route["receiver"], *(r for child in route.get("routes", []) for r in receivers(child))}

        assert receivers(doc["policies"][0]) <= names

    def test_credentials_are_grafana_environment_references(self) -> None:
        """Slack, PagerDuty and webhook addresses are ${LOOKOUT_CONTACT_...} references, listed in the header."""
        text = generate(configured())["provisioning/alerting/notifications.yaml"]
        doc = yaml.safe_load(text)
        secrets = [
            value
            for cp in doc["contactPoints"]
            for r in cp["receivers"]
            if r["type"] != "email"
            for key, value in r["settings"].items()
            if key in {"url", "integrationKey"}
        ]
        assert len(secrets) == 4 and all(re.fullmatch(r"\$\{LOOKOUT_CONTACT_[A-Z0-9_]+\}", s) for s in secrets)
        envs = notify.secret_envs(configured().notify)
        assert envs == [
            "LOOKOUT_CONTACT_ML_CHAT_SLACK_URL", "LOOKOUT_CONTACT_ML_ONCALL_PAGERDUTY_KEY",
            "LOOKOUT_CONTACT_PLATFORM_PAGERDUTY_KEY", "LOOKOUT_CONTACT_PLATFORM_WEBHOOK_URL",
        ]  # fmt: skip
        assert all(f"#   {e}\n" in text.split("apiVersion")[0] for e in envs)

    def test_policies_can_be_left_to_whoever_owns_the_tree(self) -> None:
        """notify.policies false writes the contact points only."""
        doc = yaml.safe_load(generate(configured(policies=False))["provisioning/alerting/notifications.yaml"])
        assert "policies" not in doc and len(doc["contactPoints"]) == 3

    @pytest.mark.parametrize(
        ("contacts", "message"),
        [
            ([{"name": "quiet"}], "contact point 'quiet' has no channel"),
            ([{"name": "a", "slack": True}, {"name": "a", "webhook": True}], "contact point names repeat"),
            ([{"name": "Has Spaces", "slack": True}], "notify.contact_points.0.name"),
        ],
        ids=["no-channel", "duplicate", "bad-name"],
    )
    def test_bad_contact_points_are_one_line_errors(self, contacts: list[dict[str, Any]], message: str) -> None:
        """Settings Grafana would refuse are refused at load, naming the setting."""
        env = {"LOOKOUT_NOTIFY__CONTACT_POINTS": json.dumps(contacts)}
        with pytest.MonkeyPatch.context() as mp:
            for k, v in env.items():
                mp.setenv(k, v)
            with pytest.raises(ConfigError, match=re.escape(message)):
                load_settings()


def _selected_metrics(expr: Any) -> list[str]:
    """The metric names an expression selects."""
    names: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, pq.VectorSelector) and node.name:
            names.append(node.name)

    pq.walk(expr, pre_visit=visit)
    return names


def _kept_labels(expr: Any) -> set[str] | None:
    """Labels the expression's result series keep; None when they keep the scraped series' labels."""
    if isinstance(expr, pq.ParenExpr):
        return _kept_labels(expr.expr)
    if isinstance(expr, pq.BinaryExpr):
        side = expr.rhs if isinstance(expr.lhs, pq.NumberLiteral) else expr.lhs
        return _kept_labels(side)
    if isinstance(expr, pq.AggregateExpr):
        if expr.modifier is None:
            return set()
        return set(expr.modifier.labels) if expr.modifier.type == pq.AggModifierType.By else None
    if isinstance(expr, pq.Call) and expr.func.name == "absent":
        return set()
    return None


class TestPrometheusRules:
    """prometheus/lookout-rules.yaml: a valid rule file whose every expression parses and reads real metrics."""

    def rules(self) -> list[dict[str, Any]]:
        doc = yaml.safe_load(generate(load_settings())["prometheus/lookout-rules.yaml"])
        assert errors(RULES_SCHEMA, doc) == []
        rules: list[dict[str, Any]] = doc["groups"][0]["rules"]
        return rules

    def test_file_validates_against_the_rule_file_format(self) -> None:
        """One group of alerting rules, each with for, severity/team/service labels, a summary and a runbook."""
        rules = self.rules()
        assert len(rules) == 10
        assert {r["alert"] for r in rules} >= {
            "LookoutAgentAbsent", "LookoutNoProgress", "LookoutConsumerLagHigh", "LookoutDeadLetterRateHigh",
            "LookoutStorageDown", "LookoutShedding",
        }  # fmt: skip
        for r in rules:
            assert set(r["labels"]) == {"service", "team", "severity"}
            assert r["annotations"]["summary"] and len(r["annotations"]["runbook"]) > 80
            assert r["for"] == "0s" or pq.parse_duration(r["for"]).total_seconds() > 0

    def test_schema_rejects_a_misspelt_field(self) -> None:
        """The rule schema catches a typo (``exp``) and a bad duration (so the validation means something)."""
        doc = yaml.safe_load(generate(load_settings())["prometheus/lookout-rules.yaml"])
        doc["groups"][0]["rules"][0]["exp"] = doc["groups"][0]["rules"][0].pop("expr")
        doc["groups"][0]["rules"][1]["for"] = "ten minutes"
        found = errors(RULES_SCHEMA, doc)
        assert any("exp" in e for e in found) and any("ten minutes" in e for e in found)

    def test_every_expression_parses_and_reads_exposed_metrics(self) -> None:
        """Each expr parses as PromQL; each metric it selects is one agent/metrics.py exposes (a rename breaks this)."""
        suffixes = {"counter": ("_total",), "histogram": metrics.HISTOGRAM_SUFFIXES, "gauge": ("",)}
        exposed = {f.name + sfx for f in REGISTRY.collect() for sfx in suffixes.get(f.type, ("",))}
        used: set[str] = set()
        for r in self.rules():
            names = _selected_metrics(pq.parse(r["expr"]))
            assert names, r["alert"]
            used.update(names)
        assert used <= exposed, used - exposed
        assert {metrics.READY, metrics.STORAGE_UP, metrics.CONSUMER_LAG, metrics.RECORDS_DEAD_LETTERED} <= used

    def test_a_broken_expression_is_caught(self) -> None:
        """The parser rejects what promtool would (so the parse above means something)."""
        with pytest.raises(ValueError, match="unclosed left parenthesis"):
            pq.parse("sum by (topic) (rate(lookout_records_consumed_total[10m])")

    def test_summaries_only_use_labels_the_expression_keeps(self) -> None:
        """{{ $labels.X }} in a summary names a label the result still has (e.g. topic after sum by (topic))."""
        for r in self.rules():
            kept = _kept_labels(pq.parse(r["expr"]))
            for label in re.findall(r"\$labels\.(\w+)", r["annotations"]["summary"]):
                assert kept is None or label in kept, (r["alert"], label, kept)

    def test_thresholds_follow_settings(self) -> None:
        """alerts.consumer_lag_records and alerts.dlq_rate_pct set the shared thresholds."""
        settings = Settings().with_overrides(alerts={"consumer_lag_records": 777, "dlq_rate_pct": 2.5})
        rules = {
            r["alert"]: r
            for r in yaml.safe_load(generate(settings)["prometheus/lookout-rules.yaml"])["groups"][0]["rules"]
        }
        assert rules["LookoutConsumerLagHigh"]["expr"].endswith("> 777")
        assert rules["LookoutDeadLetterRateHigh"]["expr"].endswith("> 2.5")
