"""``lookout demo``: bundled broker + bundled sample → agent → embedded ClickHouse → summary."""

from __future__ import annotations

from importlib import resources
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from agent import stats
from agent.app import build_agent
from agent.broker import Broker
from agent.config import Settings
from agent.display import shown
from agent.drift import NOVELTY, SIGNAL_FLAGS
from agent.errors import ConfigError
from agent.replay import produce, read_lines, tenant_key
from agent.storage.client import chdb_path, connect, mask_dsn
from agent.storage.runs import RunCounters

DEMO_TOPIC = "lookout-demo"
DEMO_PARTITIONS = 3
IDLE_EXIT_S = 3.0
DRIFT_REFERENCE = 60
"""Records of ``demo_drift.jsonl``'s one stream replayed with the sample: they fill its drift reference."""
DEMO_DRIFT = {"reference_size": DRIFT_REFERENCE, "window_size": 30, "restore": False}
"""A reference of 60 records and windows of 30 (defaults 1,000 and 200), so the demo's one long stream is tested:
its next 30 records are a window like its reference, its last 30 (red-team chat on a RAG route) one that drifts.
No restore: a rerun scores every record as the first run did (a restored reference would score the reference's
own records for novelty)."""


def run_demo(settings: Settings, console: Console, fresh: bool = False) -> dict[str, Any]:
    """Run the whole demo; returns the stats it printed. ``fresh`` drops the stored data first."""
    if fresh:
        clear_embedded(settings)
    data = resources.files("agent").joinpath("data")
    with (
        Broker() as broker,
        resources.as_file(data.joinpath("demo_sample.jsonl")) as sample,
        resources.as_file(data.joinpath("demo_drift.jsonl")) as drift,
    ):
        console.print(f"[bold]1/3[/] bundled Kafka broker (tansu) on {broker.bootstrap}")
        shifted = read_lines(str(drift))
        # keyed by tenant, each stream stays on one partition, in order: the same scores on every run
        first = read_lines(str(sample)) + shifted[:DRIFT_REFERENCE]
        later = shifted[DRIFT_REFERENCE:]
        produced = produce(first, DEMO_TOPIC, broker.bootstrap, partitions=DEMO_PARTITIONS, key=tenant_key)
        demo = settings.with_overrides(
            kafka={
                "bootstrap_servers": broker.bootstrap, "topic": DEMO_TOPIC, "group_id": "lookout-demo",
                "session_timeout_ms": 6_000, "heartbeat_interval_ms": 1_000,
            },
            drift=DEMO_DRIFT,
        )  # fmt: skip
        console.print(
            f"[bold]2/3[/] scoring {produced} messages, then {len(later)} more of one stream, into "
            f"{mask_dsn(demo.clickhouse.dsn)} (detectors: {', '.join(demo.detectors.enabled)})"
        )
        running = build_agent(demo)
        earlier = stats.runs(running.client, demo.clickhouse.database)
        running.agent.install_signal_handlers()
        with Progress(TextColumn("agent"), BarColumn(), MofNCompleteColumn(), console=console) as bar:
            task = bar.add_task("agent", total=produced + len(later))
            pending = [later]

            def on_batch(c: RunCounters) -> None:
                bar.update(task, completed=c.consumed)
                if pending and c.consumed >= produced:  # the reference is full before the rest arrives
                    produce(pending.pop(), DEMO_TOPIC, broker.bootstrap, show_progress=False, key=tenant_key)

            running.agent.on_batch = on_batch
            counters = running.agent.run(exit_when_idle=IDLE_EXIT_S)
        summary = stats.collect(running.client, demo.clickhouse.database)
        running.client.close()
    console.print(
        f"[bold]3/3[/] this run: {counters.stored} scored, {counters.dead_lettered} to the DLQ; stored in total:"
    )
    print_summary(summary, console)
    if earlier:
        console.print(
            f"(the store already held {earlier} earlier run(s): their records were scored again by this version "
            "and replaced, but a review queue keeps each record's first routing; `lookout demo --fresh` starts "
            "from an empty store)"
        )
    console.print(
        "next: label the queued records — `.venv/bin/lookout review add-annotator me` prints a token, "
        "`.venv/bin/lookout review serve` opens http://127.0.0.1:8700/review/ — then "
        "`.venv/bin/lookout export --out failures --format jsonl`"
    )
    return summary


def clear_embedded(settings: Settings) -> None:
    """Drop lookout's database in the embedded ``chdb://`` directory (never on a server: that is the user's data)."""
    ch = settings.clickhouse
    if chdb_path(ch.dsn) is None:
        raise ConfigError(
            f"--fresh only clears an embedded chdb:// store, not {mask_dsn(ch.dsn)}; drop database {ch.database} there "
            "yourself"
        )
    client = connect(ch)  # fails with a one-line StorageBusyError while another process holds the directory
    try:
        client.command(f"DROP DATABASE IF EXISTS {ch.database} SYNC")
    finally:
        client.close()


def print_summary(summary: dict[str, Any], console: Console) -> None:
    """The stats as tables."""
    head = Table(title="lookout: what is stored", show_header=False)
    head.add_row("records (distinct)", str(summary["samples"]))
    head.add_row("dead letters", str(summary["dead_letters"]))
    head.add_row("cost (USD)", f"{summary['cost_usd']:.4f}")
    head.add_row("records without cost", str(summary["records_without_cost"]))
    console.print(head)
    det = Table(title="detectors")
    for col in ("detector", "mean", "flagged", "scored"):
        det.add_column(col, justify="left" if col == "detector" else "right")
    for name, d in summary["detectors"].items():
        det.add_row(name, "-" if d["mean"] is None else f"{d['mean']:.3f}", str(d["flagged"]), str(d["scored"]))
    console.print(det)
    queues = summary.get("review_queues", {})
    if queues:
        line = ", ".join(f"{q} {v['items']} ({v['labeled']} labeled)" for q, v in queues.items())
        console.print(shown(f"review queues: {line}"))
    drift = summary.get("drift")
    if drift:
        where = "; ".join(
            f"{d['tenant']}/{d['model']}/{d['route']}: {', '.join(d['signals'])}"
            for d in drift.get("drifted_streams", [])
        )
        novel = summary["detectors"].get(NOVELTY, {}).get("flagged", 0)
        line = f"drift: {drift['windows']} windows tested, {drift['drifted']} drifted"
        line += f" ({where}); {novel} novel prompts" if where else f"; {novel} novel prompts"
        if not drift["windows"]:
            line += "; a stream is tested once its reference (drift.reference_size records) is full"
        console.print(shown(line))
    top = Table(title=f"{len(summary['most_flagged'])} most flagged")
    top.add_column("id", no_wrap=True, min_width=8)
    top.add_column("flagged by (score)", no_wrap=True)
    top.add_column("response", overflow="ellipsis", no_wrap=True, max_width=40)
    for r in summary["most_flagged"]:
        scores = {SIGNAL_FLAGS.get(k, k): v for k, v in r["scores"].items()}  # the novel flag's score is novelty
        flags = ", ".join(f"{f} {scores.get(f) or 0:.2f}" for f in r["flags"])
        top.add_row(shown(r["id"]), flags, shown(r["response"].replace("\n", " ")))
    console.print(top)
