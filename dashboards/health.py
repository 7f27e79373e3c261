"""Agent health: lag, throughput, latencies, DLQ rate, errors, restarts; stored runs and dead letters.

Prometheus panels read the agent's own metrics, ClickHouse panels the stored runs and dead letters. Metric
names come from :mod:`agent.metrics`, so they cannot drift.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.models import common as cm

from agent import metrics as m
from dashboards.common import Board, promql, series, thresholds

UID = "lookout-health"

T = '{topic=~"$topic", job=~"$job"}'
J = '{job=~"$job"}'


def _rate(name: str, by: str = "topic", selector: str = T) -> str:
    return f"sum by ({by}) (rate({name}{selector}[$__rate_interval]))"


def _quantile(q: float, name: str, by: str, selector: str) -> str:
    return f"histogram_quantile({q}, sum by (le, {by}) (rate({name}_bucket{selector}[$__rate_interval])))"


def build(database: str, lag_threshold: int, dlq_rate_pct: float) -> Board:
    """The agent health dashboard; thresholds are the alert settings, drawn as colors."""
    board = Board(UID, "lookout / Agent health", "The agent itself: lag, throughput, latency, errors.", database)
    board.prometheus_variable("job", f"label_values({m.READY}, job)")
    board.prometheus_variable("topic", f"label_values({m.RECORDS_CONSUMED}, topic)")

    board.row("Now")
    board.add(
        stat.Panel()
        .title("Agents ready")
        .description("Agents whose /readyz answers ready, of those scraped.")
        .span(4)
        .height(5)
        .graph_mode(cm.BigValueGraphMode.NONE)
        .with_target(promql(f"sum({m.READY}{J})", "ready", "A", instant=True))
        .with_target(promql(f"count({m.READY}{J})", "scraped", "B", instant=True))
    )
    board.add(
        stat.Panel()
        .title("Restarts")
        .description("Process restarts of the agents in the time range.")
        .span(4)
        .height(5)
        .graph_mode(cm.BigValueGraphMode.NONE)
        .thresholds(thresholds((None, "green"), (1, "yellow"), (3, "red")))
        .with_target(promql(f"sum(changes({m.PROCESS_START}{J}[$__range]))", "restarts", instant=True))
    )
    board.add(
        stat.Panel()
        .title("Consumer lag")
        .unit("short")
        .span(4)
        .height(5)
        .thresholds(thresholds((None, "green"), (lag_threshold / 2, "yellow"), (lag_threshold, "red")))
        .with_target(promql(f"sum({m.CONSUMER_LAG}{T})", "lag", instant=True))
    )
    board.add(
        stat.Panel()
        .title("DLQ rate")
        .unit("percent")
        .span(4)
        .height(5)
        .thresholds(thresholds((None, "green"), (dlq_rate_pct / 2, "yellow"), (dlq_rate_pct, "red")))
        .with_target(
            promql(
                f"100 * sum(rate({m.RECORDS_DEAD_LETTERED}{T}[$__range])) / "
                f"sum(rate({m.RECORDS_CONSUMED}{T}[$__range]))",
                "dlq %",
                instant=True,
            )
        )
    )
    board.add(
        stat.Panel()
        .title("Throughput")
        .unit("ops")
        .span(4)
        .height(5)
        .with_target(promql(f"sum(rate({m.RECORDS_CONSUMED}{T}[$__rate_interval]))", "records/s"))
    )
    board.add(
        stat.Panel()
        .title("Storage writing")
        .description(
            "Agents whose latest ClickHouse write or probe succeeded, of those scraped. Below the count, an agent "
            "holds its partitions paused and commits nothing while it retries (see the Errors panel)."
        )
        .span(4)
        .height(5)
        .graph_mode(cm.BigValueGraphMode.NONE)
        .with_target(promql(f"sum({m.STORAGE_UP}{J})", "writing", "A", instant=True))
        .with_target(promql(f"count({m.STORAGE_UP}{J})", "scraped", "B", instant=True))
    )

    board.row("Kafka")
    board.add(
        series("Consumer lag per partition", "short")
        .description("High watermark minus position, per partition.")
        .with_target(promql(f"sum by (topic, partition) ({m.CONSUMER_LAG}{T})", "{{topic}}/{{partition}}"))
    )
    board.add(
        series("Throughput", "ops")
        .with_target(promql(_rate(m.RECORDS_CONSUMED), "consumed {{topic}}", "A"))
        .with_target(promql(_rate(m.RECORDS_SCORED), "scored {{topic}}", "B"))
        .with_target(promql(_rate(m.RECORDS_DEAD_LETTERED), "dead-lettered {{topic}}", "C"))
    )
    board.add(
        series("Flagged per detector", "ops").with_target(promql(_rate(m.RECORDS_FLAGGED, "detector"), "{{detector}}"))
    )
    board.add(
        series("DLQ rate", "percent").with_target(
            promql(
                f"100 * {_rate(m.RECORDS_DEAD_LETTERED)} / {_rate(m.RECORDS_CONSUMED)}",
                "{{topic}}",
            )
        )
    )

    board.row("Latency and errors")
    board.add(
        timeseries.Panel()
        .title("Batch latency")
        .unit("s")
        .min(0)
        .span(8)
        .height(8)
        .with_target(promql(_quantile(0.5, m.BATCH_DURATION, "topic", T), "p50 {{topic}}", "A"))
        .with_target(promql(_quantile(0.95, m.BATCH_DURATION, "topic", T), "p95 {{topic}}", "B"))
        .with_target(promql(_quantile(0.99, m.BATCH_DURATION, "topic", T), "p99 {{topic}}", "C"))
    )
    board.add(
        timeseries.Panel()
        .title("Model inference time (p95)")
        .unit("s")
        .min(0)
        .span(8)
        .height(8)
        .with_target(promql(_quantile(0.95, m.DETECTOR_INFERENCE, "detector", J), "{{detector}}"))
    )
    board.add(
        timeseries.Panel()
        .title("Sink write latency (p95)")
        .unit("s")
        .min(0)
        .span(8)
        .height(8)
        .with_target(promql(_quantile(0.95, m.SINK_WRITE_DURATION, "sink", J), "{{sink}}"))
    )
    board.add(
        series("Errors", "ops")
        .description("Failed sink writes (each retried) and commits refused after a rebalance, per second.")
        .with_target(promql(_rate(m.SINK_WRITE_FAILURES, "sink", J), "write failures {{sink}}", "A"))
        .with_target(promql(_rate(m.COMMIT_FAILURES), "commit failures {{topic}}", "B"))
    )
    board.add(
        series("Restarts", "short")
        .draw_style(cm.GraphDrawStyle.BARS)
        .with_target(promql(f"sum by (instance) (changes({m.PROCESS_START}{J}[$__rate_interval]))", "{{instance}}"))
    )

    board.row("Stored runs and dead letters")
    title = "Dead letters by reason"
    board.add(
        series(title, "short")
        .draw_style(cm.GraphDrawStyle.BARS)
        .with_target(
            board.sql(
                title,
                "SELECT $__timeInterval(received_at) AS time, splitByString(':', reason)[1] AS reason_kind, "
                "count() AS n "
                "FROM {db}.v_dead_letters WHERE $__timeFilter(received_at) GROUP BY time, reason_kind ORDER BY time",
                ("time", "reason_kind", "n"),
                time_series=True,
            )
        )
    )
    title = "Top dead-letter reasons"
    board.add(
        table.Panel()
        .title(title)
        .span(12)
        .height(8)
        .with_target(
            board.sql(
                title,
                "SELECT src_topic, reason, count() AS n, max(received_at) AS last_seen FROM {db}.v_dead_letters "
                "WHERE $__timeFilter(received_at) GROUP BY src_topic, reason ORDER BY n DESC LIMIT 20",
                ("src_topic", "reason", "n", "last_seen"),
            )
        )
    )
    title = "Agent runs"
    board.add(
        table.Panel()
        .title(title)
        .description("One row per `lookout run`, with its counters as last recorded.")
        .span(24)
        .height(8)
        .with_target(
            board.sql(
                title,
                "SELECT run_id, host, topic, group_id, status, started_at, updated_at, consumed, stored, "
                "dead_lettered, unpriced, batches, commit_failures, write_retries FROM {db}.v_agent_runs "
                "WHERE $__timeFilter(updated_at) ORDER BY started_at DESC LIMIT 50",
                ("run_id", "host", "topic", "group_id", "status", "started_at", "updated_at", "consumed", "stored",
                 "dead_lettered", "unpriced", "batches", "commit_failures", "write_retries"),
            )
        )
    )  # fmt: skip
    return board
