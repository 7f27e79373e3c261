"""The ``lookout`` command. Expected failures print one line (``lookout: error: ...``) and exit 1."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import logs
from agent.config import Settings
from agent.errors import LookoutError

if TYPE_CHECKING:
    from detectors.types import Encoder
    from evaluators.cascade_eval import CascadeDetector

Handler = Callable[[argparse.Namespace], int]


def _settings(args: argparse.Namespace) -> Settings:
    return logs.configured(getattr(args, "config", None))


def cmd_run(args: argparse.Namespace) -> int:
    """Consume, score, store, commit, until stopped (or idle)."""
    import signal

    from agent.app import build_agent

    # SIGTERM while models load or the group is joined: remember it, start nothing, exit 0 (a clean drain)
    early: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: early.append(signum))
    running = build_agent(_settings(args))
    running.agent.install_signal_handlers()
    if early:
        running.agent.request_stop()
    counters = running.agent.run(exit_when_idle=args.exit_when_idle)
    running.close()
    print(
        f"consumed {counters.consumed}, stored {counters.stored}, dead-lettered {counters.dead_lettered}",
        file=sys.stderr,
    )
    return 0


DEFAULT_OTLP_LISTEN = "127.0.0.1:4318"
"""Where ``lookout receive`` listens when neither ``--listen`` nor ``otlp.listen`` says (OTLP/HTTP's port)."""


def _listen(value: str) -> str:
    from agent.config_otel import OtlpSettings

    try:
        OtlpSettings(listen=value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:4318, [::1]:4318)") from None
    return value


def cmd_receive(args: argparse.Namespace) -> int:
    """Receive OTLP/HTTP trace exports into the Kafka topic (no storage, no scoring), until stopped."""
    import signal
    import threading

    from agent.app import listen_address, serve_receiver
    from agent.metrics import Health
    from agent.otel.receiver import TRACES_PATH, OtlpReceiver

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    settings = _settings(args)
    listen = args.listen or settings.otlp.listen or DEFAULT_OTLP_LISTEN
    receiver = OtlpReceiver(settings.otlp, settings.kafka)
    receiver.connect()  # an unreachable broker is a one-line error now, not a 503 on every export
    try:
        server = serve_receiver(receiver, listen, Health(warmed_up=True, assigned=lambda: True))
    except LookoutError:
        receiver.close()
        raise
    host = listen_address(listen)[0]
    url = f"http://{f'[{host}]' if ':' in host else host}:{server.port}{TRACES_PATH}"
    print(
        f"OTLP/HTTP receiver on {url} → topic {receiver.topic} at {settings.kafka.bootstrap_servers}; "
        f"point OTEL_EXPORTER_OTLP_TRACES_ENDPOINT at it; Ctrl-C stops it",
        file=sys.stderr,
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        receiver.close()
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    """Score a JSONL file offline."""
    from agent.redact import redactor_from_settings
    from agent.score import Scorer
    from agent.score_file import score_file

    settings = _settings(args)
    scorer = Scorer.from_settings(settings)
    redactor = redactor_from_settings(settings.redact)
    counts = score_file(scorer, args.input, args.output, args.dlq, settings.limits.max_record_bytes, redactor)
    print(f"scored {counts.scored}, rejected {counts.rejected}", file=sys.stderr)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Measure scoring against the bare encoder, a naive loop and the whole agent; last line is JSON."""
    import json

    from agent import bench

    settings = _settings(args)
    quick = bench.BenchConfig(samples=256, naive_samples=24)
    samples = args.samples or (quick.samples if args.quick else bench.BenchConfig.samples)
    naive = quick.naive_samples if args.quick else bench.BenchConfig.naive_samples
    config = bench.BenchConfig(
        samples=samples,
        naive_samples=max(2, min(naive, samples // 4)),  # the naive loop is slow: a quarter of the records at most
        device=args.device,
        precision=args.precision,
        runtime=args.runtime,
        encoder_batch=args.encoder_batch,
        end_to_end=not args.no_e2e,
        data=args.data,
        rounds=args.rounds or (2 if args.quick else 3),
        cascade=not args.no_cascade,
    )
    result = bench.run(config, settings, progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(bench.table(result))
    print(json.dumps(result.as_json(), sort_keys=True))
    return 0


def cmd_broker(args: argparse.Namespace) -> int:
    """Run the bundled broker in the foreground."""
    import signal

    from agent.broker import Broker

    broker = Broker(port=args.port, storage_engine=args.storage_engine, data_dir=args.data)
    broker.start()
    print(
        f"tansu broker on {broker.bootstrap} (storage {args.storage_engine}); Ctrl-C stops it",
        file=sys.stderr,
    )

    def _interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = broker.wait()
        print(f"tansu broker exited with code {code}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        broker.stop()


def cmd_replay(args: argparse.Namespace) -> int:
    """Produce a JSONL file to a topic."""
    from agent.replay import replay

    settings = _settings(args)
    bootstrap = args.bootstrap or settings.kafka.bootstrap_servers
    n = replay(args.file, args.topic, bootstrap, args.rate, args.partitions, show_progress=sys.stderr.isatty())
    print(f"produced {n} messages to {args.topic} at {bootstrap}", file=sys.stderr)
    return 0


def _client(settings: Settings) -> Any:
    from agent.storage.database import open_storage

    return open_storage(settings, shared=True)  # through the store's owner when another process holds it


def cmd_stats(args: argparse.Namespace) -> int:
    """What is stored."""
    from rich.console import Console

    from agent import stats
    from agent.demo import print_summary

    settings = _settings(args)
    client = _client(settings)
    summary = stats.collect(client, settings.clickhouse.database)
    client.close()
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print_summary(summary, Console())
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply pending migrations."""
    from agent.storage import client as ch
    from agent.storage import migrations

    settings = _settings(args)
    client = ch.connect(settings.clickhouse)
    cfg = settings.clickhouse
    applied = migrations.migrate(client, cfg.database, cfg.raw_text_ttl_days, cluster=cfg.cluster)
    current = max(migrations.applied_versions(client, settings.clickhouse.database), default=0)
    client.close()
    names = ", ".join(f"{m.version} ({m.name})" for m in applied) or "none"
    print(f"applied: {names}; schema version {current}", file=sys.stderr)
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    """Run one read-only SQL statement and print the result."""
    from rich.console import Console
    from rich.table import Table

    from agent.storage.query import check_query, qualify

    check_query(args.sql)
    settings = _settings(args)
    db = settings.clickhouse.database
    client = _client(settings)
    try:
        result = client.query(qualify(args.sql, db), settings={"readonly": "1"})
    except Exception as exc:
        from agent.storage.client import reason

        why = reason(exc)
        if "Unknown table" in why or "UNKNOWN_TABLE" in str(exc):
            views = [r[0] for r in client.query(f"SHOW TABLES FROM {db} LIKE 'v\\_%'").result_rows]
            why += f"; lookout's views (in {db}): {', '.join(views)}"
        raise LookoutError(f"query failed: {why}") from None
    finally:
        client.close()
    if args.json:
        for row in result.result_rows:
            print(json.dumps(dict(zip(result.column_names, row, strict=True)), default=str, ensure_ascii=False))
        return 0
    from agent.display import shown

    table = Table()
    for name in result.column_names:
        table.add_column(shown(name))
    for row in result.result_rows:
        table.add_row(*(shown(v, none="NULL") for v in row))
    Console().print(table)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Broker + sample + agent + summary."""
    from rich.console import Console

    from agent.demo import run_demo

    run_demo(_settings(args), Console(), fresh=args.fresh)
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    """Print the effective settings (secrets masked)."""
    import yaml

    from agent.storage.client import mask_dsn

    data = _settings(args).model_dump(mode="json")  # SecretStr fields dump as "**********"
    data["clickhouse"]["dsn"] = mask_dsn(data["clickhouse"]["dsn"])  # a password may sit in the DSN itself
    print(yaml.safe_dump(data, sort_keys=False), end="")
    return 0


FAST_CARD_NOTE = (
    "**Fast tier (cascade scoring, docs/cascade.md).** The same trainer over the static encoder's embeddings "
    "(`detectors/static/`, distilled from all-MiniLM-L6-v2): where this card says MiniLM embeddings, read the "
    "static encoder's. Retrain with `lookout train-heads --tier fast --data DIR`, then refit the bands with "
    "`lookout fit-bands --data DIR`."
)


def cmd_train_heads(args: argparse.Namespace) -> int:
    """Retrain the shipped detector heads from a datasets folder."""
    from evaluators import heads

    if args.labels:
        from evaluators.head_commands import cmd_train_with_labels

        return cmd_train_with_labels(args)
    _settings(args)
    names: list[str] = [args.head] if args.head else list(args.only or heads.HEAD_TRAINERS)
    try:
        out: dict[str, Any] = {"out_dir": args.out} if args.out else {}
        if args.tier == "fast":  # the cascade's fast tier: the same trainers over the static encoder's embeddings
            from detectors.cascade import FAST_DIR
            from detectors.static_encoder import StaticEncoder

            out = {"out_dir": args.out or FAST_DIR, "encoder": StaticEncoder(), "card_note": FAST_CARD_NOTE}
        heads.train_heads(args.data, names=names, seed=args.seed, report=_err, **out)
    except (FileNotFoundError, ValueError) as exc:
        raise LookoutError(str(exc)) from None
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Measure every detector (and a plain baseline) on the dev sets."""
    from dataclasses import asdict

    from detectors.encoder import SentenceTransformerEncoder
    from evaluators import backend_eval, heads

    settings = _settings(args)
    names = list(args.only or heads.HEAD_TRAINERS)
    encoder = SentenceTransformerEncoder()  # one MiniLM for the heads, the backends' negatives and the cascade
    lines: list[str] = []
    try:
        backends = backend_eval.load_backends(args.backend or [])  # checks every DIR before the long run
        heads.check_data_dir(args.data)
        cascaded = _cascaded(names, settings, encoder) if args.cascade else None  # fast tier and bands load first
        rows = heads.evaluate_all(args.data, names, report=_err, encoder=encoder)
        rows = backend_eval.with_backend_rows(rows, backends, args.data, report=_err, encoder=encoder)
        if cascaded is not None:
            from evaluators import cascade_eval

            extra = cascade_eval.cascade_rows(cascaded, args.data, encoder, report=_err)
            lines = cascade_eval.summary(cascade_eval.gaps(rows, extra), cascaded)
            rows = backend_eval.merge(rows, extra)
    except (FileNotFoundError, ValueError) as exc:
        raise LookoutError(str(exc)) from None
    if args.json:
        for row in rows:
            print(json.dumps(asdict(row)))
    else:
        print(heads.markdown_table(rows))
    for line in lines:
        _err(line)
    return 0


def _cascaded(names: list[str], settings: Settings, encoder: Encoder) -> dict[str, CascadeDetector]:
    """``lookout eval --cascade``: the cascaded detectors among ``names``, as the settings' cascade scores them."""
    from evaluators import cascade_eval

    picked = [n for n in names if n in cascade_eval.CASCADED]
    return cascade_eval.build_detectors(picked, settings.scoring, encoder)


def cmd_dashboards_build(args: argparse.Namespace) -> int:
    """Write the Grafana dashboards, provisioning files and alert rules."""
    from dashboards.build import generate, stale, write

    files = generate(_settings(args))
    if args.check:
        changed = stale(args.out, files)
        if changed:
            raise LookoutError(f"{len(changed)} generated files in {args.out} are stale ({', '.join(changed[:3])}); "
                               f"run `lookout dashboards build --out {args.out}`")  # fmt: skip
        print(f"{len(files)} files in {args.out} are current", file=sys.stderr)
        return 0
    written = write(args.out, files)
    print(f"wrote {len(written)} files to {args.out}", file=sys.stderr)
    return 0


def cmd_dashboards_push(args: argparse.Namespace) -> int:
    """Upsert data sources, folder, dashboards and alert rules into a Grafana."""
    from dashboards.build import bundle
    from dashboards.push import connect, push

    settings = _settings(args)
    url = args.url.rstrip("/")
    report = push(connect(url, args.token), url, bundle(settings, with_secrets=True))
    print(f"pushed to {url}: {report.line()}", file=sys.stderr)
    return 0


def _err(line: str) -> None:
    print(line, file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to document the CLI)."""
    from importlib import metadata

    parser = argparse.ArgumentParser(prog="lookout", description="LLM quality sidecar")
    try:
        installed = metadata.version("llm-lookout")
    except metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
        installed = "unknown (not installed; pip install -e .)"
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed}")
    parser.add_argument(
        "--config", dest="global_config", type=Path, metavar="CONFIG",
        help="YAML settings file, before or after the command (env vars LOOKOUT_* override it)",
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler, config: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=(handler.__doc__ or "").strip().rstrip("."))
        if config:
            p.add_argument("--config", type=Path, help="YAML settings file (env vars LOOKOUT_* override it)")
        p.set_defaults(handler=handler)
        return p

    p = add("run", cmd_run)
    p.add_argument(
        "--exit-when-idle",
        type=float,
        metavar="SECONDS",
        help="exit 0 after this long with nothing to consume",
    )
    p = add("receive", cmd_receive)
    p.add_argument(
        "--listen", type=_listen, metavar="HOST:PORT",
        help=f"where POST /v1/traces listens (default: otlp.listen, else {DEFAULT_OTLP_LISTEN}; port 0 picks one)",
    )  # fmt: skip
    p = add("score", cmd_score)
    p.add_argument("--in", dest="input", required=True, metavar="FILE", help="JSONL of v1 records, - for stdin")
    p.add_argument("--out", dest="output", required=True, metavar="FILE", help="scored JSONL, - for stdout")
    p.add_argument("--dlq", metavar="FILE", help="rejected lines (default <out>.dlq.jsonl)")
    p = add("bench", cmd_bench)
    p.add_argument("--quick", action="store_true", help="256 records (a few minutes on 2 CPU cores)")
    p.add_argument("--no-cascade", action="store_true", help="skip timing scoring.mode cascade against full")
    p.add_argument("--device", default="cpu", help="torch device of the encoder: cpu (default), cuda, cuda:1")
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16", "int8"),
        default="fp32",
        help="encoder precision; other than fp32 also reports the score drift against fp32",
    )
    p.add_argument(
        "--runtime", choices=("torch", "onnx"), help="encoder runtime (default: the settings'; onnx: cpu fp32)"
    )
    p.add_argument("--encoder-batch", type=int, metavar="N", help="texts per forward pass (default 16 cpu, 128 gpu)")
    p.add_argument("--samples", type=int, metavar="N", help="records to score (default 1024, --quick 256)")
    p.add_argument("--data", type=Path, metavar="FILE", help="JSONL of v1 records (default: HH-RLHF or the demo)")
    p.add_argument("--no-e2e", action="store_true", help="skip the broker → agent → chDB measurement")
    p.add_argument("--rounds", type=int, help="scoring/ceiling alternations; the best counts (default 3, --quick 2)")
    p = add("broker", cmd_broker, config=False)
    p.add_argument("--port", type=int, default=9092, help="port on 127.0.0.1 (default 9092)")
    p.add_argument("--data", type=Path, metavar="DIR", help="write broker.log and broker.json (address, pid) here")
    p.add_argument(
        "--storage-engine",
        default="memory://tansu/",
        help="memory://tansu/ (default, lost on exit) or s3://BUCKET/",
    )
    p = add("replay", cmd_replay)
    p.add_argument("file", help="JSONL file, - for stdin; lines are produced unchanged")
    p.add_argument("--topic", required=True)
    p.add_argument("--bootstrap", metavar="HOST:PORT", help="default: kafka.bootstrap_servers")
    p.add_argument("--rate", type=float, metavar="N", help="messages per second (default: as fast as possible)")
    p.add_argument("--partitions", type=int, default=3, help="partitions if the topic is created (default 3)")
    p = add("stats", cmd_stats)
    p.add_argument("--json", action="store_true", help="one JSON object instead of tables")
    add("migrate", cmd_migrate)
    p = add("query", cmd_query)
    p.add_argument("sql", help="one read-only statement; read v_records / v_dead_letters / v_agent_runs")
    p.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    p = add("demo", cmd_demo)
    p.add_argument("--fresh", action="store_true", help="drop the stored demo data first (embedded chdb:// store only)")
    from evaluators.heads import HEAD_TRAINERS  # light: no model imports

    p = add("train-heads", cmd_train_heads)
    p.add_argument("--data", type=Path, required=True, metavar="DIR", help="datasets root (see docs/evaluation.md)")
    p.add_argument("--out", type=Path, metavar="DIR", help="where to write <name>.json (default: the shipped heads)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", nargs="+", choices=HEAD_TRAINERS, metavar="NAME", help="train only these heads")
    p.add_argument("--head", choices=HEAD_TRAINERS, metavar="NAME", help="train only this head")
    p.add_argument(
        "--labels", action="store_true",
        help="also train on the stored review labels; writes <out>/<name>.candidate.json (default out: .)",
    )  # fmt: skip
    p.add_argument("--labels-weight", type=float, default=5.0, metavar="W", help="weight of a label row (default 5)")
    p.add_argument(
        "--tier", choices=("full", "fast"), default="full",
        help="fast: the cascade's heads over the static encoder (written to detectors/heads/fast by default)",
    )  # fmt: skip
    p = add("eval", cmd_eval)
    p.add_argument("--data", type=Path, required=True, metavar="DIR", help="datasets root (see docs/evaluation.md)")
    p.add_argument("--json", action="store_true", help="JSON lines instead of a markdown table")
    p.add_argument("--only", nargs="+", choices=HEAD_TRAINERS, metavar="NAME", help="evaluate only these detectors")
    p.add_argument(
        "--backend", action="append", metavar="NAME=DIR",
        help="also measure a local model on the same dev sets: relevance=DIR (cross-encoder), "
        "hallucination=DIR (NLI) or toxicity=PATH (a detoxify .ckpt, or its directory, beside the base model's "
        "config and tokenizer); repeatable",
    )  # fmt: skip
    p.add_argument(
        "--cascade", action="store_true",
        help="also measure cascade scoring (scoring.mode: cascade, as the settings configure it): its AUC/MAP rows "
        "after the full tier's, and how far each lies from it",
    )  # fmt: skip
    from agent.export import commands as export_commands  # light: no pyarrow, ClickHouse or HTTP imports

    export_commands.register(sub, add)
    from evaluators import commands as evaluator_commands  # light: ragas, evidently, torch load lazily

    evaluator_commands.register(sub, add)
    from agent.review import commands as review_commands  # light: no FastAPI or ClickHouse imports

    review_commands.register(sub)
    from evaluators import agreement_commands  # light: storage and rich load when the command runs

    agreement_commands.register(sub)
    from evaluators import head_commands  # light: storage and models load in the handlers

    head_commands.register(sub)
    p = sub.add_parser("dashboards", help="Grafana dashboards and alert rules as code")
    boards = p.add_subparsers(dest="dashboards_command", required=True, metavar="ACTION")
    b = boards.add_parser("build", help=(cmd_dashboards_build.__doc__ or "").strip().rstrip("."))
    b.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder (e.g. dashboards/generated)")
    b.add_argument("--check", action="store_true", help="do not write; exit 1 if the files in DIR are stale")
    b.add_argument("--config", type=Path, help="YAML settings file (env vars LOOKOUT_* override it)")
    b.set_defaults(handler=cmd_dashboards_build)
    b = boards.add_parser("push", help=(cmd_dashboards_push.__doc__ or "").strip().rstrip("."))
    b.add_argument("--url", required=True, help="Grafana base URL, e.g. http://grafana:3000")
    b.add_argument("--token", help="service-account token (or put user:password in the URL)")
    b.add_argument("--config", type=Path, help="YAML settings file (env vars LOOKOUT_* override it)")
    b.set_defaults(handler=cmd_dashboards_push)
    from evaluators import (
        cascade_commands,  # light: torch loads when a command runs
        quality_commands,  # light: storage and rich load when a command runs
    )

    quality_commands.register(sub, add)
    cascade_commands.register(add)
    add("config", cmd_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lookout`` console script."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:  # bare `lookout`: what it can do, not a usage error
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    if getattr(args, "config", None) is None and args.global_config is not None:
        args.config = args.global_config  # `lookout --config FILE CMD` is `lookout CMD --config FILE`
    try:
        code: int = args.handler(args)
    except LookoutError as exc:
        print(f"lookout: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
