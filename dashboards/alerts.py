"""Grafana unified-alerting rules as code, with thresholds from ``alerts.*`` settings.

Each rule is one query (ClickHouse SQL returning label columns and ONE numeric column, or an instant PromQL
vector) and a threshold expression on it; every rule carries a summary and a runbook saying what to do.
The same rules are written as a provisioning file and pushed through the provisioning API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from agent import metrics as m
from agent.config import AlertSettings, AlertSeverity, NotifySettings
from dashboards import cascade
from dashboards.common import CLICKHOUSE, CLICKHOUSE_PLUGIN_VERSION, PROMETHEUS

GROUP = "lookout"
"""Rule group name."""
GROUP_INTERVAL = "1m"
"""Evaluation interval of the group."""
MIN_RECORDS = 20
"""Records a model needs in the window before its toxicity rate can alert (tiny samples are noise)."""

UNLABELED = (
    "{db}.v_review_items AS i LEFT ANTI JOIN {db}.v_review_labels AS l "
    "ON l.queue = i.queue AND l.record_id = i.record_id"
)


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One alert rule: a query, a threshold on its single value column, and what to do when it fires."""

    uid: str
    """Stable uid (pushes update by it)."""
    title: str
    """Rule title."""
    source: Literal["clickhouse", "prometheus"]
    """Which data source runs ``query``."""
    query: str
    """SQL (plugin macros allowed, ``{db}`` already filled) or PromQL."""
    value: str
    """The numeric column (SQL) or series meaning (PromQL) compared with the threshold."""
    labels: tuple[str, ...]
    """Label columns of the SQL result (one alert instance per row); PromQL carries its own labels."""
    threshold: float
    """The rule fires when the value is above this."""
    range_s: int
    """Relative time range the query runs over (``$__timeFilter`` uses it), seconds."""
    pending: str
    """How long the condition must hold before firing (Grafana ``for``)."""
    severity: AlertSeverity
    """``severity`` label for routing."""
    team: str
    """``team`` label for routing (``notify.quality_team`` or ``notify.platform_team``)."""
    summary: str
    """One line, templated with the instance's labels and value."""
    runbook: str
    """What to do."""


def rules(alerts: AlertSettings, database: str, notify: NotifySettings | None = None) -> list[AlertRule]:
    """Every lookout alert rule, labelled with its ``severity`` and owning ``team``."""
    db = database
    teams = notify or NotifySettings()
    quality, platform = teams.quality_team, teams.platform_team
    return [
        AlertRule(
            uid="lookout-toxicity-rate",
            title="Toxicity rate high",
            source="clickhouse",
            query=(
                "SELECT model, round(avg(has(flags, 'toxicity')) * 100, 2) AS toxicity_pct "
                f"FROM {db}.v_records WHERE $__timeFilter(ts) GROUP BY model HAVING count() >= {MIN_RECORDS}"
            ),
            value="toxicity_pct",
            labels=("model",),
            threshold=alerts.toxicity_rate_pct,
            range_s=300,
            pending=f"{alerts.toxicity_window_minutes}m",
            severity="critical",
            team=quality,
            summary=(
                "{{ $labels.model }}: {{ $values.A }}% of responses flagged toxic, above "
                f"{alerts.toxicity_rate_pct}% for {alerts.toxicity_window_minutes} min"
            ),
            runbook=(
                "Open the Quality overview dashboard filtered to the model and read 'Top flagged records'. If the "
                "responses really are toxic, roll back the last prompt/model change or enable the provider's "
                "moderation; if they are false positives, route them to review and raise "
                "detectors.thresholds.toxicity."
            ),
        ),
        AlertRule(
            uid="lookout-hallucination-spike",
            title="Hallucination rate spike",
            source="clickhouse",
            query=(
                # rates weighted by shed_weight: load shedding samples hallucination (see agent/shedding.py)
                "SELECT model, round(sumIf(shed_weight * has(flags, 'hallucination'), "
                "ts > $__toTime - INTERVAL 1 HOUR) / greatest(sumIf(shed_weight, ts > $__toTime - INTERVAL 1 HOUR), 1) "
                "/ greatest(sumIf(shed_weight * has(flags, 'hallucination'), ts <= $__fromTime + INTERVAL 1 HOUR) "
                "/ greatest(sumIf(shed_weight, ts <= $__fromTime + INTERVAL 1 HOUR), 1), 0.01), 2) "
                f"AS spike_ratio FROM {db}.v_records WHERE $__timeFilter(ts) AND hallucination IS NOT NULL "
                f"GROUP BY model HAVING countIf(ts > $__toTime - INTERVAL 1 HOUR) >= {alerts.hallucination_min_records}"
            ),
            value="spike_ratio",
            labels=("model",),
            threshold=alerts.hallucination_spike_ratio,
            range_s=25 * 3600,
            pending="15m",
            severity="warning",
            team=quality,
            summary=(
                "{{ $labels.model }}: hallucination flag rate in the last hour is {{ $values.A }}x the same hour "
                "yesterday"
            ),
            runbook=(
                "Compare the model's hallucination rate by route on the Quality overview dashboard. A spike on one "
                "route usually means its retrieval broke (empty or stale context): check the retriever and index. "
                "A spike on every route points at a model or prompt change: roll it back."
            ),
        ),
        AlertRule(
            uid="lookout-drift",
            title="Stream drifted",
            source="clickhouse",
            query=(
                "SELECT stream, kind, toFloat64(max(drifted)) AS any_drifted "
                f"FROM {db}.v_drift_windows WHERE $__timeFilter(window_end) GROUP BY stream, kind"
            ),
            value="any_drifted",
            labels=("stream", "kind"),
            threshold=0.5,
            range_s=alerts.drift_lookback_minutes * 60,
            pending="0s",
            severity="warning",
            team=quality,
            summary="{{ $labels.kind }} stream {{ $labels.stream }} drifted past its threshold",
            runbook=(
                "Open the Drift dashboard for the stream: see when the score crossed the threshold and which score "
                "quantiles moved. New traffic (a tenant, route or language) is expected drift: refresh the "
                "reference window. Otherwise look for an upstream change (prompt template, model version, retriever)."
            ),
        ),
        *_signal_rules(alerts, db, quality),
        *_call_rules(alerts, db, quality),
        _cascade_rule(alerts, db, quality),
        AlertRule(
            uid="lookout-consumer-lag",
            title="Consumer lag high",
            source="prometheus",
            query=f"sum by (topic) ({m.CONSUMER_LAG})",
            value="records behind",
            labels=(),
            threshold=float(alerts.consumer_lag_records),
            range_s=600,
            pending="10m",
            severity="warning",
            team=platform,
            summary="{{ $labels.topic }}: consumers are {{ $values.A }} records behind",
            runbook=(
                "Check the Agent health dashboard: if throughput fell, look at batch latency, model inference time "
                "and sink write latency for the slow step; if traffic grew, add agent replicas (up to the topic's "
                "partition count) or raise batch.max_records. Restarts in a loop show up in 'Restarts'."
            ),
        ),
        AlertRule(
            uid="lookout-dlq-rate",
            title="Dead-letter rate high",
            source="prometheus",
            query=(
                f"100 * sum by (topic) (rate({m.RECORDS_DEAD_LETTERED}[10m])) / "
                f"sum by (topic) (rate({m.RECORDS_CONSUMED}[10m]))"
            ),
            value="percent dead-lettered",
            labels=(),
            threshold=alerts.dlq_rate_pct,
            range_s=600,
            pending="5m",
            severity="warning",
            team=platform,
            summary="{{ $labels.topic }}: {{ $values.A }}% of consumed records went to the dead-letter topic",
            runbook=(
                "Read 'Top dead-letter reasons' on the Agent health dashboard (or the lookout.reason header on the "
                "<topic>.dlq messages). Decode failures mean a producer broke the record schema: fix the producer, "
                "then replay the DLQ with `lookout replay`. 'scoring failed' means a detector raised: check the logs."
            ),
        ),
        AlertRule(
            uid="lookout-review-backlog",
            title="Review backlog past SLA",
            source="clickhouse",
            query=(
                "SELECT i.queue AS queue, toFloat64(dateDiff('minute', min(i.enqueued_at), $__toTime)) "
                f"AS oldest_age_min FROM {UNLABELED.format(db=db)} GROUP BY queue"
            ),
            value="oldest_age_min",
            labels=("queue",),
            threshold=float(alerts.review_sla_minutes),
            range_s=600,
            pending="0s",
            severity="warning",
            team=quality,
            summary=(
                "review queue {{ $labels.queue }}: oldest unlabeled item waited {{ $values.A }} min "
                f"(SLA {alerts.review_sla_minutes} min)"
            ),
            runbook=(
                "Open the Review dashboard: if labels per hour dropped, ask annotators to pick the queue up; if "
                "enqueued grew, tighten the routing rules' sampling or budgets so the queue only gets what people "
                "can label."
            ),
        ),
        AlertRule(
            uid="lookout-thumbs-down-rate",
            title="Thumbs-down rate high",
            source="clickhouse",
            query=(
                "SELECT model, round(countIf(kind = 'thumbs_down') * 100 / count(), 2) AS thumbs_down_pct "
                f"FROM {db}.v_record_feedback WHERE $__timeFilter(ts) AND kind IN ('thumbs_up', 'thumbs_down') "
                f"GROUP BY model HAVING count() >= {alerts.feedback_min_events}"
            ),
            value="thumbs_down_pct",
            labels=("model",),
            threshold=alerts.thumbs_down_rate_pct,
            range_s=alerts.feedback_window_minutes * 60,
            pending="5m",
            severity="warning",
            team=quality,
            summary=(
                "{{ $labels.model }}: {{ $values.A }}% of thumbs feedback is thumbs-down, above "
                f"{alerts.thumbs_down_rate_pct}% over {alerts.feedback_window_minutes} min"
            ),
            runbook=(
                "Open the Quality overview dashboard's 'User feedback' row filtered to the model: find the route "
                "and tenant with the most thumbs-down, then label the 'missed' review queue (negative feedback no "
                "detector flagged) to see what users dislike. Roll back a recent prompt/model change if it lines up; "
                "raise alerts.thumbs_down_rate_pct if this level is normal for the product."
            ),
        ),
        AlertRule(
            uid="lookout-cost-burn",
            title="Cost burn rate over budget",
            source="clickhouse",
            query=(
                "SELECT tenant, round(sum(cost_usd) * 24, 4) AS burn_usd_per_day "
                f"FROM {db}.v_records WHERE $__timeFilter(ts) GROUP BY tenant"
            ),
            value="burn_usd_per_day",
            labels=("tenant",),
            threshold=alerts.cost_budget_usd_per_day,
            range_s=3600,
            pending="15m",
            severity="warning",
            team=quality,
            summary=(
                "tenant {{ $labels.tenant }} spends at {{ $values.A }} USD/day, over the "
                f"{alerts.cost_budget_usd_per_day} USD/day budget"
            ),
            runbook=(
                "Open the Cost dashboard filtered to the tenant and read 'Spend per tenant, user and model': a single "
                "user or a model switch usually explains it. Rate-limit the user or move the route to a cheaper "
                "model; raise alerts.cost_budget_usd_per_day if the spend is intended."
            ),
        ),
    ]


def _signal_rules(alerts: AlertSettings, db: str, quality: str) -> list[AlertRule]:
    """Repetition, negative tone and novel prompts: flag rates above ``alerts.*`` thresholds."""
    return [
        AlertRule(
            uid="lookout-repetition-rate",
            title="Repetitive responses",
            source="clickhouse",
            query=(
                "SELECT model, round(avg(has(flags, 'repetition') OR has(flags, 'near_duplicate')) * 100, 2) "
                f"AS repetitive_pct FROM {db}.v_records WHERE $__timeFilter(ts) GROUP BY model "
                f"HAVING count() >= {MIN_RECORDS}"
            ),
            value="repetitive_pct",
            labels=("model",),
            threshold=alerts.repetition_rate_pct,
            range_s=900,
            pending="5m",
            severity="warning",
            team=quality,
            summary=(
                "{{ $labels.model }}: {{ $values.A }}% of responses loop or repeat an answer given to other prompts "
                f"(above {alerts.repetition_rate_pct}%)"
            ),
            runbook=(
                "Open the Quality overview dashboard's 'Repetition and near-duplicates by model' panel and the "
                "'degenerate' review queue. Loops point at decoding settings (temperature, repetition penalty, max "
                "tokens) or a broken model build; one answer to many prompts points at a cache keyed too coarsely or a "
                "stuck template. Roll back the last change to the model or its serving config."
            ),
        ),
        AlertRule(
            uid="lookout-negative-tone",
            title="Negative tone rate high",
            source="clickhouse",
            query=(
                "SELECT model, round(avgIf(has(flags, 'tone'), tone IS NOT NULL) * 100, 2) AS negative_tone_pct "
                f"FROM {db}.v_records WHERE $__timeFilter(ts) GROUP BY model "
                f"HAVING countIf(tone IS NOT NULL) >= {MIN_RECORDS}"
            ),
            value="negative_tone_pct",
            labels=("model",),
            threshold=alerts.negative_tone_rate_pct,
            range_s=1800,
            pending="10m",
            severity="warning",
            team=quality,
            summary=(
                "{{ $labels.model }}: {{ $values.A }}% of responses read negative in tone "
                f"(above {alerts.negative_tone_rate_pct}%)"
            ),
            runbook=(
                "Compare 'Tone and formality by model' on the Quality overview dashboard with the score:tone drift "
                "windows on the Drift dashboard: a step that lines up with a deploy is a prompt or model change; "
                "traffic about bad news (outages, complaints) raises negative tone legitimately. Read a few flagged "
                "responses before acting; raise alerts.negative_tone_rate_pct if this level is normal."
            ),
        ),
        AlertRule(
            uid="lookout-novelty-rate",
            title="Novel prompt rate high",
            source="clickhouse",
            query=(
                "SELECT tenant, model, route, round(avg(has(flags, 'novel')) * 100, 2) AS novel_pct "
                f"FROM {db}.v_records WHERE $__timeFilter(ts) AND novelty IS NOT NULL GROUP BY tenant, model, route "
                f"HAVING count() >= {MIN_RECORDS}"
            ),
            value="novel_pct",
            labels=("tenant", "model", "route"),
            threshold=alerts.novelty_rate_pct,
            range_s=1800,
            pending="10m",
            severity="warning",
            team=quality,
            summary=(
                "stream {{ $labels.tenant }}/{{ $labels.model }}/{{ $labels.route }}: {{ $values.A }}% of prompts "
                f"are novel (above {alerts.novelty_rate_pct}%; about 1% is expected)"
            ),
            runbook=(
                "Read 'Most novel prompts' on the Drift dashboard: a new use case, language or tenant is expected "
                "novelty (refresh the stream's reference: restart the agent or pin drift.reference_file), abuse or "
                "a broken client sending garbage is not. Label the novel records a detector also flagged first: the "
                "detectors are least tested on new traffic."
            ),
        ),
    ]


def _call_rules(alerts: AlertSettings, db: str, quality: str) -> list[AlertRule]:
    """The LLM calls themselves: p95 latency and error rate per model over ``alerts.latency_window_minutes``."""
    window = alerts.latency_window_minutes
    enough = f"HAVING count() >= {alerts.latency_min_records}"
    return [
        AlertRule(
            uid="lookout-latency-p95",
            title="LLM call latency high",
            source="clickhouse",
            query=(
                "SELECT model, round(toFloat64(quantile(0.95)(latency_ms)), 1) AS p95_latency_ms "
                f"FROM {db}.v_records WHERE $__timeFilter(ts) AND latency_ms IS NOT NULL GROUP BY model {enough}"
            ),
            value="p95_latency_ms",
            labels=("model",),
            threshold=alerts.latency_p95_ms,
            range_s=window * 60,
            pending=f"{window}m",
            severity="warning",
            team=quality,
            summary=(
                "{{ $labels.model }}: p95 call latency is {{ $values.A }} ms, above "
                f"{alerts.latency_p95_ms:g} ms over {window} min"
            ),
            runbook=(
                "Open the Quality overview dashboard's 'Latency and errors' row filtered to the model: latency up on "
                "every route points at the provider (check its status page, rate limits, a region change) or a model "
                "switch; one route slow points at longer prompts or contexts there (token counts on the Cost "
                "dashboard). Move traffic to a fallback model, or raise alerts.latency_p95_ms if this is normal."
            ),
        ),
        AlertRule(
            uid="lookout-error-rate",
            title="LLM call error rate high",
            source="clickhouse",
            query=(
                "SELECT model, round(countIf(error != '') * 100 / count(), 2) AS error_pct "
                f"FROM {db}.v_records WHERE $__timeFilter(ts) GROUP BY model {enough}"
            ),
            value="error_pct",
            labels=("model",),
            threshold=alerts.error_rate_pct,
            range_s=window * 60,
            pending=f"{window}m",
            severity="warning",
            team=quality,
            summary=(
                "{{ $labels.model }}: {{ $values.A }}% of calls ended in an error, above "
                f"{alerts.error_rate_pct:g}% over {window} min"
            ),
            runbook=(
                "Read 'Top call errors' on the Quality overview dashboard: rate limits and quota errors need a higher "
                "limit or less traffic, timeouts go with high latency (see 'Call latency by model'), authentication "
                "errors mean a rotated key, invalid-request errors a client or prompt change (roll it back). Raise "
                "alerts.error_rate_pct if this level is normal."
            ),
        ),
    ]


def _cascade_rule(alerts: AlertSettings, db: str, quality: str) -> AlertRule:
    """A detector's fast tier disagreeing with its escalation tier on the audit sample, over ``cascade_window_minutes``.

    Rules fire above their threshold, so the value is the disagreement (``100 - agreement``, percent) and the
    threshold ``(1 - cascade_agreement_min) * 100``.
    """
    window = alerts.cascade_window_minutes
    agreement_pct = round(alerts.cascade_agreement_min * 100, 6)
    return AlertRule(
        uid="lookout-cascade-agreement",
        title="Cascade fast tier disagrees with the escalation tier",
        source="clickhouse",
        query=(
            f"SELECT detector, round({cascade.DISAGREEMENTS} * 100 / {cascade.AUDITS}, 2) AS disagree_pct "
            f"FROM {db}.v_records {cascade.PER_DETECTOR} WHERE $__timeFilter(ts) AND audited = 1 "
            f"AND {cascade.cascaded('$__timeFilter(ts)').format(db=db)} "
            f"GROUP BY detector HAVING {cascade.AUDITS} >= {alerts.cascade_min_audited}"
        ),
        value="disagree_pct",
        labels=("detector",),
        threshold=round(100 - agreement_pct, 6),
        range_s=window * 60,
        pending="10m",
        severity="warning",
        team=quality,
        summary=(
            "{{ $labels.detector }}: the fast tier's flag differs from the escalation tier's on {{ $values.A }}% of "
            f"audited records, so agreement is below {agreement_pct:g}% over {window} min"
        ),
        runbook=(
            "Open the Quality overview dashboard's 'Cascade' row: the fast head no longer tracks the full (or "
            "expensive) tier for this detector, so records it decides alone may get wrong flags. A step that lines "
            "up with a deploy or new traffic (see the Drift dashboard) means the fast head and its band need "
            "refitting on current data (`lookout fit-bands`, scoring.fast_dir); meanwhile set scoring.mode: full, "
            "or lower alerts.cascade_agreement_min if this level is expected."
        ),
    )


def _query_model(rule: AlertRule) -> dict[str, Any]:
    base: dict[str, Any] = {"refId": "A", "intervalMs": 1000, "maxDataPoints": 43200}
    if rule.source == "clickhouse":
        return base | {
            "datasource": CLICKHOUSE.to_json(),
            "editorType": "sql",
            "format": 1,
            "queryType": "table",
            "rawSql": rule.query,
            "pluginVersion": CLICKHOUSE_PLUGIN_VERSION,
        }
    return base | {"datasource": PROMETHEUS.to_json(), "expr": rule.query, "instant": True, "range": False}


def rule_data(rule: AlertRule) -> list[dict[str, Any]]:
    """The rule's ``data``: query A, and threshold C (``A > threshold``)."""
    ds = CLICKHOUSE if rule.source == "clickhouse" else PROMETHEUS
    return [
        {
            "refId": "A",
            "relativeTimeRange": {"from": rule.range_s, "to": 0},
            "datasourceUid": ds.uid,
            "model": _query_model(rule),
        },
        {
            "refId": "C",
            "relativeTimeRange": {"from": 0, "to": 0},
            "datasourceUid": "__expr__",
            "model": {
                "refId": "C",
                "type": "threshold",
                "datasource": {"type": "__expr__", "uid": "__expr__"},
                "expression": "A",
                "conditions": [{"evaluator": {"type": "gt", "params": [rule.threshold]}}],
            },
        },
    ]


def _common(rule: AlertRule) -> dict[str, Any]:
    return {
        "uid": rule.uid,
        "title": rule.title,
        "condition": "C",
        "data": rule_data(rule),
        "noDataState": "OK",
        "execErrState": "Error",
        "for": rule.pending,
        "annotations": {"summary": rule.summary, "description": rule.runbook, "runbook": rule.runbook},
        "labels": {"severity": rule.severity, "team": rule.team, "service": "lookout"},
        "isPaused": False,
    }


def api_rule(rule: AlertRule, folder_uid: str) -> dict[str, Any]:
    """The rule as ``/api/v1/provisioning/alert-rules`` takes it."""
    return _common(rule) | {"folderUID": folder_uid, "ruleGroup": GROUP, "orgID": 1}


def provisioning(all_rules: list[AlertRule], folder: str) -> dict[str, Any]:
    """The alerting provisioning file (``provisioning/alerting/*.yaml``)."""
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": GROUP,
                "folder": folder,
                "interval": GROUP_INTERVAL,
                "rules": [_common(r) for r in all_rules],
            }
        ],
    }
