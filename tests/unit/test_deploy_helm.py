"""deploy/helm/lookout: the chart's structure and values, and its output rendered by Helm.

The chart is rendered by Helm's own Go engine through ``helm-python-sdk`` (it bundles libhelm_c, Helm v4; no
helm binary is installable here), and every rendered built-in object is validated against the same Kubernetes
schemas as deploy/k8s (``kubernetes-validate``). Structural checks (blocks, ``.Values`` defaults) run too.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import helm_python
import jsonschema
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "lookout"
K8S_VERSION = "1.30.0"
CONFIGMAP_LIMIT_BYTES = 1_048_576
"""Largest ConfigMap Kubernetes stores."""
ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.DOTALL)
BLOCK_OPENERS = ("if ", "range ", "with ", "define ")


def values() -> dict[str, Any]:
    """The chart's default values."""
    loaded = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def templates() -> list[Path]:
    """Every template file of the chart."""
    return sorted(p for p in (CHART / "templates").iterdir() if p.suffix in {".yaml", ".tpl", ".txt"})


class TestChartStructure:
    """Chart.yaml, values.yaml and the templates agree with each other and with the package."""

    def test_chart_metadata(self) -> None:
        """Chart: apiVersion v2, semver version, appVersion = package version, a minimum Kubernetes."""
        chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
        project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        assert chart["apiVersion"] == "v2"
        assert chart["name"] == "lookout"
        assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"])
        assert chart["appVersion"] == project["version"]
        assert chart["kubeVersion"].startswith(">=")

    @pytest.mark.parametrize("path", templates(), ids=lambda p: p.name)
    def test_template_blocks_balance(self, path: Path) -> None:
        """Every if/range/with/define in a template has its end."""
        actions = [a.strip() for a in ACTION.findall(path.read_text(encoding="utf-8"))]
        actions = [a for a in actions if not a.startswith("/*")]
        opened = sum(1 for a in actions if a.startswith(BLOCK_OPENERS))
        closed = sum(1 for a in actions if a == "end")
        assert opened == closed, f"{path.name}: {opened} blocks opened, {closed} closed"

    @pytest.mark.parametrize("path", templates(), ids=lambda p: p.name)
    def test_every_values_reference_has_a_default(self, path: Path) -> None:
        """Each ``.Values.a.b`` a template reads exists in values.yaml (no silent empty renders)."""
        defaults = values()
        for ref in re.findall(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", path.read_text(encoding="utf-8")):
            node: Any = defaults
            for key in ref.strip(".").split("."):
                assert isinstance(node, dict) and key in node, f"{path.name}: .Values{ref} has no default"
                node = node[key]

    def test_default_values(self) -> None:
        """A known mode, a pinned image, KEDA capped at the partitions, and valid lookout settings."""
        v = values()
        assert v["mode"] in {"standalone", "sidecar"}
        assert v["image"]["tag"] != "latest"
        assert v["keda"]["minReplicaCount"] <= v["keda"]["maxReplicaCount"] <= v["keda"]["partitions"]
        from agent.config import setting_rows

        envs = {row[1] for row in setting_rows()}
        assert set(v["config"]) | set(v["secretConfig"]) <= envs
        for name in v["config"]:
            assert "PASSWORD" not in name and "DSN" not in name, f"{name} belongs in secretConfig"

    def test_probes_and_modes_in_the_container_template(self) -> None:
        """The lookout container probes /healthz (liveness, startup) and /readyz only in standalone mode."""
        helpers = (CHART / "templates" / "_helpers.tpl").read_text(encoding="utf-8")
        assert helpers.count("path: /healthz") == 2
        readiness = helpers.index("readinessProbe:")
        guard = helpers.rfind('{{- if eq .Values.mode "standalone" }}', 0, readiness)
        assert guard != -1 and helpers.find("{{- end }}", guard) > readiness
        assert 'value: "0.0.0.0"' in helpers

    def test_grafana_files_are_the_generated_provisioning(self) -> None:
        """``files`` is the generated Grafana folder, and the ConfigMaps built from it fit Kubernetes' limit."""
        files = CHART / "files"
        assert files.resolve() == (REPO / "dashboards" / "generated").resolve()
        template = (CHART / "templates" / "grafana-provisioning.yaml").read_text(encoding="utf-8")
        globbed = re.findall(r'Files\.Glob "([^"]+)"', template)
        fetched = re.findall(r'Files\.Get "([^"]+)"', template)
        for pattern in globbed:
            dashboards = list(CHART.glob(pattern))
            assert dashboards
            assert sum(p.stat().st_size for p in dashboards) < CONFIGMAP_LIMIT_BYTES
        for name in fetched:
            assert (CHART / name).is_file(), name


def render(overrides: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every object ``helm template`` would print for these value overrides (Helm's Go engine, in-process)."""
    chart = helm_python.Chart.load(str(CHART))
    out = chart.render(overrides, name="lookout", namespace="lookout")
    return [
        doc for path, text in sorted(out.items()) if path.endswith(".yaml") for doc in yaml.safe_load_all(text) if doc
    ]


class TestHelmRender:
    """The chart rendered by Helm (v4, via helm-python-sdk) gives schema-valid, correctly wired objects."""

    @pytest.mark.parametrize(
        ("overrides", "kinds"),
        [
            (None, ["ConfigMap", "Deployment", "PodDisruptionBudget", "Secret", "Service"]),
            (
                {"keda": {"enabled": True}, "grafana": {"provisioning": {"enabled": True}}},
                [
                    "ConfigMap",
                    "Deployment",
                    "ConfigMap",
                    "ConfigMap",
                    "ConfigMap",
                    "PodDisruptionBudget",
                    "ScaledObject",
                    "Secret",
                    "Service",
                ],
            ),
            ({"mode": "sidecar"}, ["ConfigMap", "Deployment", "PodDisruptionBudget", "Secret", "Service"]),
            ({"existingSecret": "mine", "pdb": {"enabled": False}}, ["ConfigMap", "Deployment", "Service"]),
        ],
        ids=["standalone", "keda+grafana", "sidecar", "existing-secret"],
    )
    def test_renders_schema_valid_objects(self, overrides: dict[str, Any] | None, kinds: list[str]) -> None:
        """Each mode renders the expected kinds; built-in ones validate (strict) against the Kubernetes schemas."""
        docs = render(overrides)
        assert [d["kind"] for d in docs] == kinds
        for doc in docs:
            if doc["apiVersion"].startswith("keda.sh/"):
                continue
            try:
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{doc['kind']}: {'.'.join(str(p) for p in exc.path)}: {exc.message}")

    def test_standalone_deployment_wiring(self) -> None:
        """One lookout container: settings from the release's ConfigMap/Secret, probes, 0.0.0.0, pinned image."""
        docs = render()
        (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["image"] == f"{values()['image']['repository']}:0.1.0"
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env == {"LOOKOUT_METRICS__HOST": "0.0.0.0", "LOOKOUT_METRICS__PORT": "9464"}  # noqa: S104
        names = {d["kind"]: d["metadata"]["name"] for d in docs if d["kind"] in {"ConfigMap", "Secret"}}
        assert container["envFrom"] == [
            {"configMapRef": {"name": names["ConfigMap"]}},
            {"secretRef": {"name": names["Secret"]}},
        ]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert deployment["spec"]["replicas"] == values()["replicaCount"]
        (pdb,) = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()

    def test_sidecar_mode_puts_lookout_beside_the_app(self) -> None:
        """Sidecar: the app's Deployment with app + lookout containers; lookout does not gate the pod's readiness."""
        (deployment,) = [d for d in render({"mode": "sidecar"}) if d["kind"] == "Deployment"]
        assert deployment["metadata"]["name"] == values()["app"]["name"]
        containers = {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}
        assert list(containers) == ["app", "lookout"]
        assert "readinessProbe" not in containers["lookout"]

    def test_keda_scales_the_deployment_on_lag(self) -> None:
        """The ScaledObject targets the Deployment (which then has no fixed replicas) with the settings' topic."""
        docs = render({"keda": {"enabled": True}})
        (scaled,) = [d for d in docs if d["kind"] == "ScaledObject"]
        (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
        assert "replicas" not in deployment["spec"]
        assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        assert scaled["spec"]["maxReplicaCount"] <= values()["keda"]["partitions"]
        meta = scaled["spec"]["triggers"][0]["metadata"]
        assert all(isinstance(v, str) for v in meta.values())
        assert (meta["topic"], meta["consumerGroup"]) == (
            values()["config"]["LOOKOUT_KAFKA__TOPIC"],
            values()["config"]["LOOKOUT_KAFKA__GROUP_ID"],
        )

    @pytest.mark.parametrize(
        ("overrides", "reason"),
        [
            ({"keda": {"enabled": True, "maxReplicaCount": 9}}, "must not exceed keda.partitions"),
            ({"keda": {"enabled": True}, "mode": "sidecar"}, "keda.enabled needs mode: standalone"),
            ({"mode": "daemon"}, "mode must be standalone or sidecar"),
            ({"image": {"tag": "latest"}}, "not latest"),
        ],
        ids=["replicas>partitions", "keda+sidecar", "bad-mode", "latest"],
    )
    def test_refuses_bad_values(self, overrides: dict[str, Any], reason: str) -> None:
        """Values that would deploy something wrong fail the render with the reason."""
        with pytest.raises(helm_python.HelmRenderError, match=re.escape(reason)):
            render(overrides)

    def test_grafana_configmaps_carry_the_generated_files(self) -> None:
        """The dashboards ConfigMap holds every generated dashboard, byte for byte, labelled for Grafana's sidecar."""
        docs = render({"grafana": {"provisioning": {"enabled": True}}})
        (boards,) = [d for d in docs if d["metadata"]["name"].endswith("-grafana-dashboards")]
        assert boards["metadata"]["labels"][values()["grafana"]["provisioning"]["dashboardLabel"]] == "1"
        generated = REPO / "dashboards" / "generated" / "dashboards"
        assert boards["data"] == {p.name: p.read_text(encoding="utf-8").rstrip("\n") for p in generated.glob("*.json")}


HELM_EXAMPLE_CONTACTS = [
    {"name": "lookout-page", "severities": ["critical"], "pagerduty": True},
    {"name": "lookout-ml", "teams": ["ml"], "slack": True},
    {"name": "lookout-platform", "teams": ["platform"], "slack": True},
]
"""The notify.contact_points the chart's example notifications are generated from (see values.yaml)."""


def _schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((REPO / "dashboards" / "vendor" / name).read_text(encoding="utf-8"))
    return loaded


def _valid_k8s(doc: dict[str, Any]) -> None:
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{doc['kind']}: {'.'.join(str(p) for p in exc.path)}: {exc.message}")


class TestAlertingObjects:
    """grafana.notifications (contact points + policies for Grafana's sidecar) and prometheusRule."""

    def notifications(self, overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The rendered notifications object and the provisioning document it carries."""
        (obj,) = [d for d in render(overrides) if d["metadata"]["name"].endswith("-grafana-notifications")]
        payload = obj.get("data") or obj["stringData"]
        return obj, json.loads(payload["lookout-notifications.json"])

    def test_notifications_are_a_valid_grafana_provisioning_file(self) -> None:
        """Enabled: a ConfigMap labelled for the sidecar whose file passes Grafana's alerting provisioning schema."""
        obj, doc = self.notifications({"grafana": {"notifications": {"enabled": True}}})
        _valid_k8s(obj)
        assert obj["kind"] == "ConfigMap"
        assert obj["metadata"]["labels"][values()["grafana"]["provisioning"]["alertLabel"]] == "1"
        found = list(
            jsonschema.Draft7Validator(_schema("grafana-11.6-alerting-provisioning.schema.json")).iter_errors(doc)
        )
        assert found == []

    def test_example_is_what_lookout_dashboards_build_writes(self) -> None:
        """The chart's example equals the generated file for the contact points values.yaml names."""
        from agent.config import Settings
        from dashboards import notify

        _, doc = self.notifications({"grafana": {"notifications": {"enabled": True}}})
        settings = Settings().with_overrides(notify={"contact_points": HELM_EXAMPLE_CONTACTS})
        assert doc == json.loads(json.dumps(notify.provisioning(settings.notify)))

    def test_credentials_can_go_into_a_secret(self) -> None:
        """asSecret: the same file in a Secret (stringData), still labelled for the sidecar."""
        obj, doc = self.notifications({"grafana": {"notifications": {"enabled": True, "asSecret": True}}})
        _valid_k8s(obj)
        assert obj["kind"] == "Secret" and "contactPoints" in doc

    def test_policies_can_be_left_to_whoever_owns_the_tree(self) -> None:
        """policies: [] writes the contact points only (the org's tree is left alone)."""
        _, doc = self.notifications({"grafana": {"notifications": {"enabled": True, "policies": []}}})
        assert "policies" not in doc and len(doc["contactPoints"]) == 3

    def test_notifications_need_a_contact_point(self) -> None:
        """Enabled without contact points is refused with the reason."""
        with pytest.raises(helm_python.HelmRenderError, match="needs at least one contact point"):
            render({"grafana": {"notifications": {"enabled": True, "contactPoints": []}}})

    def test_prometheus_rule_carries_the_generated_rules(self) -> None:
        """prometheusRule: a PrometheusRule whose spec is files/prometheus/lookout-rules.yaml, with extra labels."""
        docs = render({"prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}}})
        (rule,) = [d for d in docs if d["kind"] == "PrometheusRule"]
        assert rule["apiVersion"] == "monitoring.coreos.com/v1"
        assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        generated = yaml.safe_load((CHART / "files" / "prometheus" / "lookout-rules.yaml").read_text(encoding="utf-8"))
        assert rule["spec"] == generated
        assert list(jsonschema.Draft7Validator(_schema("prometheus-rules.schema.json")).iter_errors(rule["spec"])) == []
