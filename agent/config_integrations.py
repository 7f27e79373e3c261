"""Settings sections for what lookout hands to other systems: Grafana alerts and who gets them, Label Studio.

Part of the one settings model (:class:`agent.config.Settings` holds these sections; only ``agent.config`` reads
the environment); kept apart so neither file grows past what a reader takes in at once.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class Section(BaseModel):
    """A settings section: frozen, unknown keys refused, each field's docstring is its documentation."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class AlertSettings(Section):
    """Thresholds of the Grafana alert rules (``lookout dashboards build``) and the cost budget."""

    toxicity_rate_pct: float = Field(default=5.0, gt=0, le=100)
    """Alert when more than this percentage of responses is flagged toxic over ``toxicity_window_minutes``."""
    toxicity_window_minutes: int = Field(default=10, ge=1)
    """Window (and pending time) of the toxicity-rate alert."""
    hallucination_spike_ratio: float = Field(default=2.0, gt=1)
    """Alert when the last hour's hallucination flag rate is this many times the same hour of the previous day."""
    hallucination_min_records: int = Field(default=50, ge=1)
    """Records needed in the last hour before the hallucination spike alert may fire."""
    drift_lookback_minutes: int = Field(default=60, ge=1)
    """Alert on any drift window that ended this recently and drifted."""
    consumer_lag_records: int = Field(default=10_000, ge=1)
    """Alert when the summed consumer lag of a topic stays above this many records for 10 minutes."""
    dlq_rate_pct: float = Field(default=1.0, gt=0, le=100)
    """Alert when more than this percentage of consumed records is dead-lettered over 10 minutes."""
    review_sla_minutes: int = Field(default=240, ge=1)
    """Oldest unlabeled review item age allowed per queue; older fires the review-backlog alert."""
    cost_budget_usd_per_day: float = Field(default=100.0, gt=0)
    """Daily LLM spend budget (USD) per tenant; the cost dashboard draws it and the burn-rate alert uses it."""
    repetition_rate_pct: float = Field(default=5.0, gt=0, le=100)
    """Alert when more than this percentage of a model's responses is flagged repetition or near_duplicate (15 min)."""
    negative_tone_rate_pct: float = Field(default=10.0, gt=0, le=100)
    """Alert when more than this percentage of a model's responses is flagged negative ``tone`` (30 min)."""
    novelty_rate_pct: float = Field(default=5.0, gt=0, le=100)
    """Alert when more than this percentage of a stream's prompts is ``novel`` over 30 min (expected: about 1%)."""
    thumbs_down_rate_pct: float = Field(default=20.0, gt=0, le=100)
    """Alert when more than this percentage of thumbs feedback is thumbs-down over ``feedback_window_minutes``."""
    feedback_window_minutes: int = Field(default=60, ge=1)
    """Window of the thumbs-down-rate alert."""
    feedback_min_events: int = Field(default=20, ge=1)
    """Thumbs events needed in the window before the thumbs-down-rate alert may fire."""
    latency_p95_ms: float = Field(default=10_000.0, gt=0)
    """Alert when a model's p95 call latency (``latency_ms``) stays above this over ``latency_window_minutes``."""
    latency_window_minutes: int = Field(default=15, ge=1)
    """Window (and pending time) of the latency and error-rate alerts."""
    error_rate_pct: float = Field(default=5.0, gt=0, le=100)
    """Alert when more than this percentage of a model's calls ended in an error over ``latency_window_minutes``."""
    latency_min_records: int = Field(default=20, ge=1)
    """Records needed in the window before the latency and error-rate alerts may fire."""
    cascade_agreement_min: float = Field(default=0.98, gt=0, le=1)
    """Alert when a detector's fast-tier flag matches the full tier's on less than this share of audited records."""
    cascade_min_audited: int = Field(default=50, ge=1)
    """Audited records a detector needs in the window before the cascade agreement alert may fire."""
    cascade_window_minutes: int = Field(default=60, ge=1)
    """Window of the cascade agreement alert (audited records: ``scoring.audit_rate`` of the traffic)."""


class GrafanaSettings(Section):
    """Where ``lookout dashboards`` points Grafana's data sources, and the folder it files them in."""

    folder: str = "lookout"
    """Grafana folder (title; the uid is derived from it) for dashboards and alert rules."""
    clickhouse_host: str = "clickhouse"
    """ClickHouse server host as Grafana's ClickHouse data source reaches it."""
    clickhouse_port: int = Field(default=9000, ge=1, le=65535)
    """ClickHouse port for the data source (9000 native, 8123 HTTP)."""
    clickhouse_protocol: Literal["native", "http"] = "native"
    """Protocol of Grafana's ClickHouse data source."""
    clickhouse_username: str = "default"
    """ClickHouse user of the data source (give it read-only rights)."""
    clickhouse_password: SecretStr | None = None
    """Its password; provisioning files reference ``$LOOKOUT_GRAFANA__CLICKHOUSE_PASSWORD`` instead."""
    prometheus_url: str = "http://prometheus:9090"
    """Prometheus that scrapes the agents' ``/metrics``, as Grafana reaches it."""


AlertSeverity = Literal["critical", "warning"]
"""The ``severity`` label of lookout's alert rules."""


class ContactPointSettings(Section):
    """One Grafana contact point for lookout's alerts, and which alerts it gets (an item of ``notify.contact_points``).

    Addresses that carry credentials are never settings and never written: the generated file references
    ``${LOOKOUT_CONTACT_<NAME>_SLACK_URL}``, ``..._PAGERDUTY_KEY`` and ``..._WEBHOOK_URL`` (NAME upper-cased, ``-``
    as ``_``), which Grafana expands from its own environment.
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,29}$")
    """Contact point name in Grafana (lower-case letters, digits and ``-``; at most 30)."""
    teams: tuple[str, ...] = ()
    """Alerts whose ``team`` label is one of these; empty: every team."""
    severities: tuple[AlertSeverity, ...] = ("critical", "warning")
    """Alerts of these ``severity`` labels."""
    email: tuple[str, ...] = ()
    """Email addresses (sent through Grafana's SMTP settings)."""
    slack: bool = False
    """Post to a Slack incoming webhook, URL from ``$LOOKOUT_CONTACT_<NAME>_SLACK_URL``."""
    pagerduty: bool = False
    """Open PagerDuty incidents, integration key from ``$LOOKOUT_CONTACT_<NAME>_PAGERDUTY_KEY``."""
    webhook: bool = False
    """POST Grafana's webhook JSON to ``$LOOKOUT_CONTACT_<NAME>_WEBHOOK_URL``."""

    @model_validator(mode="after")
    def _has_a_channel(self) -> ContactPointSettings:
        if not (self.email or self.slack or self.pagerduty or self.webhook):
            raise ValueError(f"contact point {self.name!r} has no channel; set email, slack, pagerduty or webhook")
        if not self.severities:
            raise ValueError(f"contact point {self.name!r} has no severities; use critical and/or warning")
        return self


class NotifySettings(Section):
    """Who gets lookout's alerts: Grafana contact points and notification policies (``lookout dashboards build``)."""

    contact_points: tuple[ContactPointSettings, ...] = ()
    """Contact points and the alerts each gets by ``team`` and ``severity`` label; none: no notifications file."""
    policies: bool = True
    """Also write the policy tree; it replaces the org's tree, so turn it off where the tree is managed elsewhere."""
    root_receiver: str = "grafana-default-email"
    """Receiver of the tree's root, for alerts that are not lookout's (Grafana's built-in contact point)."""
    quality_team: str = Field(default="ml", pattern=r"^[A-Za-z0-9_.-]+$")
    """``team`` label of the quality, drift, feedback, review and cost alerts."""
    platform_team: str = Field(default="platform", pattern=r"^[A-Za-z0-9_.-]+$")
    """``team`` label of the agent-health alerts (lag, dead letters, and every Prometheus rule)."""
    repeat_interval: str = Field(default="4h", pattern=r"^[0-9]+[smhd]$")
    """How often a still-firing alert is sent again."""

    @model_validator(mode="after")
    def _unique_names(self) -> NotifySettings:
        names = [c.name for c in self.contact_points]
        if len(set(names)) != len(names):
            raise ValueError(f"contact point names repeat: {', '.join(sorted(names))}")
        return self


class LabelStudioSettings(Section):
    """Label Studio for ``lookout review push-labelstudio`` / ``pull-labelstudio`` (their flags override these)."""

    url: str = "http://127.0.0.1:8080"
    """Label Studio base URL."""
    token: SecretStr | None = None
    """API token: legacy (needs ``LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true``) or a personal access token."""
    project: str = "lookout"
    """Project title that push creates or updates and pull reads."""
    timeout_s: float = Field(default=60.0, gt=0)
    """Per-request timeout in seconds."""
