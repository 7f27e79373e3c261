"""Prometheus alerting rules for the agent's own health, from its ``/metrics``: for Alertmanager users.

The same labels as the Grafana rules (``service: lookout``, ``severity``, ``team`` = ``notify.platform_team``), so
one Alertmanager route (``service="lookout"``) catches them. Metric names come from :mod:`agent.metrics`;
thresholds shared with the Grafana rules (consumer lag, dead-letter rate) come from ``alerts.*``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent import metrics as m
from agent.config import AlertSettings, AlertSeverity, NotifySettings
from dashboards.notify import SERVICE

GROUP = "lookout-agent"
"""Rule group name."""
INTERVAL = "1m"
"""Evaluation interval of the group."""
RESTARTS_PER_HOUR = 3
"""Restarts in an hour that count as a crash loop."""
SHEDDING_FOR = "30m"
"""Load shedding this long means the agents are under-provisioned, not riding out a burst."""


@dataclass(frozen=True, slots=True)
class PromRule:
    """One Prometheus alerting rule."""

    alert: str
    """Alert name."""
    expr: str
    """PromQL; every series it returns is a firing alert."""
    pending: str
    """``for``: how long the expression must hold."""
    severity: AlertSeverity
    """``severity`` label."""
    summary: str
    """One line, templated with ``$labels`` and ``$value``."""
    runbook: str
    """What to do."""


def rules(alerts: AlertSettings) -> list[PromRule]:
    """Every agent-health rule."""
    consumed = f"sum by (topic) (rate({m.RECORDS_CONSUMED}[10m]))"
    lag = f"sum by (topic) ({m.CONSUMER_LAG})"
    return [
        PromRule(
            alert="LookoutAgentAbsent",
            expr=f"absent({m.READY})",
            pending="5m",
            severity="critical",
            summary="no lookout agent reports metrics: nothing is scoring the LLM logs",
            runbook=(
                "Check the agent Deployment or sidecars (kubectl get pods -l app.kubernetes.io/name=lookout) and "
                "the Prometheus scrape target. A pod that crashes at start prints one line saying why (settings, "
                "ClickHouse or Kafka unreachable): fix that and it starts."
            ),
        ),
        PromRule(
            alert="LookoutAgentNotReady",
            expr=f"{m.READY} == 0",
            pending="10m",
            severity="warning",
            summary="lookout agent {{ $labels.instance }} has not been ready for 10 minutes",
            runbook=(
                "Ask the agent why: curl http://<pod>:9464/readyz lists the reasons (models still loading, no "
                "partitions assigned, storage unreachable). More agents than topic partitions leave some without "
                "partitions: scale down or add partitions."
            ),
        ),
        PromRule(
            alert="LookoutNoProgress",
            expr=f"({consumed} == 0) and on (topic) ({lag} > 0)",
            pending="10m",
            severity="critical",
            summary="{{ $labels.topic }}: records are waiting but no agent consumed any for 10 minutes",
            runbook=(
                "The agents are stuck or stopped while the topic has records: look for a storage outage "
                "(LookoutStorageDown), a crash loop (LookoutRestarting) or a consumer group with no members. "
                "Restarting a stuck agent is safe: offsets are committed only after the write."
            ),
        ),
        PromRule(
            alert="LookoutConsumerLagHigh",
            expr=f"{lag} > {alerts.consumer_lag_records}",
            pending="10m",
            severity="warning",
            summary="{{ $labels.topic }}: consumers are {{ $value }} records behind",
            runbook=(
                "If throughput fell, find the slow step on the Agent health dashboard (batch, inference, sink "
                "latency); if traffic grew, add agent replicas (up to the topic's partition count) or raise "
                "batch.max_records. Load shedding (LookoutShedding) keeps cheap detectors at 100 % meanwhile."
            ),
        ),
        PromRule(
            alert="LookoutDeadLetterRateHigh",
            expr=(f"100 * sum by (topic) (rate({m.RECORDS_DEAD_LETTERED}[10m])) / {consumed} > {alerts.dlq_rate_pct}"),
            pending="5m",
            severity="warning",
            summary="{{ $labels.topic }}: {{ $value }}% of consumed records went to the dead-letter topic",
            runbook=(
                "Read the lookout.reason header of the <topic>.dlq messages (or 'Top dead-letter reasons' on the "
                "Agent health dashboard). Decode failures mean a producer broke the record schema: fix it, then "
                "replay the DLQ with `lookout replay`. 'scoring failed' means a detector raised: check the logs."
            ),
        ),
        PromRule(
            alert="LookoutStorageDown",
            expr=f"{m.STORAGE_UP} == 0",
            pending="5m",
            severity="critical",
            summary="lookout agent {{ $labels.instance }} cannot write to ClickHouse; it holds its partitions paused",
            runbook=(
                "Nothing is lost yet: the agent commits nothing while writes fail and retries with backoff "
                "(clickhouse.write_retries), then exits 1 without committing. Check the ClickHouse server, disk "
                "space and the DSN's credentials; /readyz on the agent says the last error."
            ),
        ),
        PromRule(
            alert="LookoutSinkWriteFailures",
            expr=f"sum by (sink) (rate({m.SINK_WRITE_FAILURES}[5m])) > 0",
            pending="10m",
            severity="warning",
            summary="sink {{ $labels.sink }} keeps failing writes (each is retried)",
            runbook=(
                "A sink failing for 10 minutes is an outage of what it writes to: ClickHouse for the record, "
                "embedding and dead-letter sinks, Kafka for the DLQ and review topics. Check that service; the "
                "agent's logs name the error."
            ),
        ),
        PromRule(
            alert="LookoutCommitsDeferred",
            expr=f"sum by (topic) (rate({m.COMMITS_DEFERRED}[10m])) > 0",
            pending="15m",
            severity="warning",
            summary="{{ $labels.topic }}: offset commits keep failing to reach the broker",
            runbook=(
                "The broker is unreachable or slow for commits: the agent keeps its offsets and retries, but a "
                "restart now re-reads (and deduplicates) everything since the last commit. Check the Kafka brokers "
                "and the network between them and the agents."
            ),
        ),
        PromRule(
            alert="LookoutShedding",
            expr=f"max by (instance) ({m.SHEDDING}) == 1",
            pending=SHEDDING_FOR,
            severity="warning",
            summary="lookout agent {{ $labels.instance }} has been shedding expensive signals for 30 minutes",
            runbook=(
                "Load shedding samples hallucination and drift while the agent is behind; for this long it means "
                "too few agents. Add replicas (up to the partition count) or faster hardware; rates stay unbiased "
                "(shed_weight), but fewer records get the expensive signals."
            ),
        ),
        PromRule(
            alert="LookoutRestarting",
            expr=(f"changes({m.PROCESS_START}[1h]) > {RESTARTS_PER_HOUR} and on (job, instance) {m.READY}"),
            pending="0s",
            severity="warning",
            summary="lookout agent {{ $labels.instance }} restarted {{ $value }} times in the last hour",
            runbook=(
                "A crash loop: read the last lines the agent printed before exiting (kubectl logs --previous). "
                "Exit 1 after storage retries means ClickHouse was down too long; an OOM kill means raise the "
                "memory limit or lower batch.max_records."
            ),
        ),
    ]


def document(alerts: AlertSettings, notify: NotifySettings) -> dict[str, Any]:
    """The rules file (``prometheus/lookout-rules.yaml``): one group, each rule labelled and annotated."""
    labels = {"service": SERVICE, "team": notify.platform_team}
    return {
        "groups": [
            {
                "name": GROUP,
                "interval": INTERVAL,
                "rules": [
                    {
                        "alert": r.alert,
                        "expr": r.expr,
                        "for": r.pending,
                        "labels": {**labels, "severity": r.severity},
                        "annotations": {"summary": r.summary, "description": r.runbook, "runbook": r.runbook},
                    }
                    for r in rules(alerts)
                ],
            }
        ]
    }
