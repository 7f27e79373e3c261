"""CLI wiring for ``lookout evaluate ragas``, ``lookout report drift`` and ``lookout rescore``.

Progress goes to stderr (a bar on a terminal, a line per page otherwise); results and summary tables to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import logs
from agent.errors import LookoutError

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.storage.records import ExportFilter

Add = Callable[..., argparse.ArgumentParser]
"""``cli.build_parser``'s ``add(name, handler, config=True)``."""
CONFIG_HELP = "YAML settings file (env vars LOOKOUT_* override it)"


def _settings(args: argparse.Namespace) -> Settings:
    return logs.configured(getattr(args, "config", None))


def _filter(args: argparse.Namespace) -> ExportFilter:
    from agent.export.commands import export_filter

    return export_filter(args, "all")


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress callback ``(done, total)`` on stderr."""
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import Progress

        with Progress(console=Console(stderr=True), transient=True) as bar:
            job = bar.add_task(label, total=None)
            yield lambda done, total: bar.update(job, completed=done, total=total)
    else:
        yield lambda done, total: print(f"{label}: {done}/{total} records", file=sys.stderr)


def _table(title: str, header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    from rich.console import Console
    from rich.table import Table

    from agent.display import shown

    table = Table(*header, title=title)
    for row in rows:
        table.add_row(*(shown(v) for v in row))
    Console(width=max(100, len(title))).print(table)


def _encoder(settings: Settings) -> Any:
    from agent.score import build_encoder

    return build_encoder(settings.encoder.model_copy(update={"precision": "fp32"}))


def cmd_evaluate_ragas(args: argparse.Namespace) -> int:
    """Run ragas metrics over stored records; store per-record values and the run in ClickHouse."""
    from agent.storage.database import open_storage
    from evaluators import ragas_eval

    settings = _settings(args)
    ev = settings.eval
    llm = None
    if ev.llm_base_url:
        key = ev.llm_api_key.get_secret_value() if ev.llm_api_key else "unused"
        llm = ragas_eval.LLMEndpoint(ev.llm_base_url, ev.llm_model, key, ev.llm_timeout_s)
    names = ragas_eval.resolve_metrics(args.metrics, llm)
    needs_encoder = {"semantic_similarity", "answer_relevancy"} & set(names)
    scorers = ragas_eval.build_scorers(
        names, _encoder(settings) if needs_encoder else None, llm, ev.answer_relevancy_strictness
    )
    filt = _filter(args)
    client = open_storage(settings, shared=True)
    try:
        with _progress("evaluate ragas") as progress:
            summary = ragas_eval.evaluate(
                client, settings.clickhouse.database, filt, scorers, llm_model=llm.model if llm else "",
                concurrency=ev.concurrency, page_size=ev.batch_size, progress=progress,
            )  # fmt: skip
    finally:
        client.close()
    _table(
        f"ragas run {summary.run_id}: {summary.records} records",
        ("metric", "scored", "skipped (no input)", "failed", "mean"),
        list(ragas_eval.summary_rows(summary)),
    )
    print(f"per-record values: SELECT * FROM v_eval_scores WHERE run_id = '{summary.run_id}'", file=sys.stderr)
    return 0


def _stream(args: argparse.Namespace) -> ExportFilter:
    """``--tenant/--model/--route``, or the positional ``TENANT/MODEL/ROUTE`` (``*`` or empty: any)."""
    from agent.storage.records import ExportFilter

    picked: dict[str, list[str]] = {n: list(getattr(args, n) or []) for n in ("tenant", "model", "route")}
    if args.stream:
        parts = args.stream.split("/")
        if len(parts) > 3:
            raise LookoutError(f"stream {args.stream!r}: use TENANT/MODEL/ROUTE (* or empty for any)")
        for name, value in zip(("tenant", "model", "route"), parts, strict=False):
            if value and value != "*":
                picked[name].append(value)
    return ExportFilter(tenants=tuple(picked["tenant"]), models=tuple(picked["model"]), routes=tuple(picked["route"]))


def cmd_report_drift(args: argparse.Namespace) -> int:
    """Write an evidently HTML drift report of a stream's reference vs current window, from stored data."""
    from agent.storage.database import open_storage
    from evaluators import drift_report

    settings = _settings(args)
    stream = _stream(args)
    client = open_storage(settings, shared=True)
    db = settings.clickhouse.database
    try:
        windows = drift_report.resolve_windows(client, db, stream, args.until, args.current, args.reference)
        print(
            f"reference {windows.reference_since:%Y-%m-%d %H:%M} .. {windows.current_since:%Y-%m-%d %H:%M}, "
            f"current .. {windows.until:%Y-%m-%d %H:%M} (UTC); building the report",
            file=sys.stderr,
        )
        result = drift_report.build_report(client, db, stream, windows, args.out, tuple(args.fields), args.method)
    finally:
        client.close()
    _table(
        f"drift: reference {result.reference_n} records, current {result.current_n} records",
        ("column", "test", "value", "drifted"),
        [(c.column, c.method, f"{c.value:.4g}", "yes" if c.drifted else "no") for c in result.columns],
    )
    print(f"wrote {result.path}", file=sys.stderr)
    return 0


def cmd_rescore(args: argparse.Namespace) -> int:
    """Re-run a detector over stored records; new scores go beside the old ones (resumable, idempotent)."""
    from agent.storage.database import open_storage
    from agent.storage.records import ExportFilter, parse_time
    from detectors import registry
    from evaluators import rescore

    if args.head is not None:
        extra = [f for f, v in (("--since", args.since), ("--until", args.until), ("--detector", args.detector),
                                ("--max-records", args.max_records), ("--restart", args.restart)) if v]  # fmt: skip
        if extra:
            raise LookoutError(f"--head compares heads on the held-out labels; it takes no {', '.join(extra)}")
        from evaluators.head_commands import cmd_rescore_head

        return cmd_rescore_head(args)
    if not args.since or not args.detector:
        raise LookoutError("rescore needs --since and --detector (or --head FILE to compare a candidate head)")
    settings = _settings(args)
    det = settings.detectors
    options = registry.DetectorOptions(
        toxicity_backend=det.toxicity_backend,
        detoxify_checkpoint=det.detoxify_checkpoint,
        detoxify_config_dir=det.detoxify_config_dir,
        detoxify_model_type=det.detoxify_model_type,
        device=settings.encoder.device,
        heads_dir=det.heads_dir,
    )
    try:
        detector = registry.create(args.detector, options)
    except (KeyError, ValueError) as exc:
        raise LookoutError(str(exc).strip("'\"")) from None
    filt = ExportFilter(
        since=parse_time(args.since),
        until=parse_time(args.until) if args.until else None,
        tenants=tuple(args.tenant or ()),
        models=tuple(args.model or ()),
        routes=tuple(args.route or ()),
    )
    spec = {"since": args.since, "until": args.until, "tenant": sorted(args.tenant or []),
            "model": sorted(args.model or []), "route": sorted(args.route or [])}  # fmt: skip
    threshold = det.thresholds.get(detector.name)
    client = open_storage(settings, shared=True)
    db = settings.clickhouse.database
    try:
        with _progress(f"rescore {detector.name} {detector.version}") as progress:
            outcome = rescore.rescore(
                client, db, detector, _encoder(settings), filt, spec, threshold=threshold,
                page_size=settings.eval.batch_size, max_records=args.max_records, restart=args.restart,
                progress=progress,
            )  # fmt: skip
        scope = ExportFilter(since=outcome.since, until=outcome.until, tenants=filt.tenants, models=filt.models,
                             routes=filt.routes)  # fmt: skip
        cmp = rescore.compare(client, db, detector.name, detector.version, scope)
    finally:
        client.close()
    if args.json:
        print(json.dumps({"n": cmp.n, "outcome": asdict(outcome), "comparison": asdict(cmp)}, default=str))
        return 0
    state = "complete" if outcome.complete else "stopped early (run the same command again to resume)"
    print(
        f"run {outcome.run_id} {'resumed, ' if outcome.resumed else ''}{state}: scored {outcome.scored}, "
        f"skipped (text expired) {outcome.skipped_no_text}, from stored embeddings {outcome.from_stored_embeddings}",
        file=sys.stderr,
    )

    def fmt(v: float | None) -> str:
        return "" if v is None else f"{v:.4f}"

    _table(
        f"{cmp.detector}: stored ({', '.join(cmp.old_versions) or 'no column'}) vs {cmp.new_version}, {cmp.n} records",
        ("", "stored", "re-run"),
        [
            ("mean score", fmt(cmp.old_mean), fmt(cmp.new_mean)),
            ("flag rate", fmt(cmp.old_flag_rate), fmt(cmp.new_flag_rate)),
            ("flag agreement", fmt(cmp.agreement), ""),
            ("mean |new - old|", fmt(cmp.mean_abs_diff), ""),
        ],
    )
    return 0


def register(sub: Any, add: Add) -> None:
    """Add ``evaluate``, ``report`` and ``rescore`` to the CLI."""
    from agent.export.commands import add_filter_options
    from detectors.registry import NAMES
    from evaluators.ragas_eval import METRICS

    p = sub.add_parser("evaluate", help="batch evaluation of stored records (ragas)")
    kinds = p.add_subparsers(dest="evaluate_command", required=True, metavar="KIND")
    r = kinds.add_parser("ragas", help=(cmd_evaluate_ragas.__doc__ or "").strip().rstrip("."))
    r.add_argument("--config", type=Path, help=CONFIG_HELP)
    r.set_defaults(handler=cmd_evaluate_ragas)
    add_filter_options(r, "only records in this review queue (repeatable)")
    r.add_argument(
        "--metrics",
        nargs="+",
        choices=METRICS,
        metavar="NAME",
        help="metrics to run (default: every offline one, plus the LLM ones when eval.llm_base_url is set)",
    )

    p = sub.add_parser("report", help="HTML reports from stored data (evidently)")
    kinds = p.add_subparsers(dest="report_command", required=True, metavar="KIND")
    d = kinds.add_parser("drift", help=(cmd_report_drift.__doc__ or "").strip().rstrip("."))
    d.add_argument("--config", type=Path, help=CONFIG_HELP)
    d.set_defaults(handler=cmd_report_drift)
    d.add_argument("stream", nargs="?", help="TENANT/MODEL/ROUTE (* or empty for any; or use the flags)")
    d.add_argument("--out", type=Path, required=True, metavar="FILE", help="HTML file to write")
    d.add_argument("--tenant", action="append", metavar="NAME", help="only this tenant (repeatable)")
    d.add_argument("--model", action="append", metavar="NAME", help="only this model (repeatable)")
    d.add_argument("--route", action="append", metavar="NAME", help="only this route (repeatable)")
    d.add_argument("--until", metavar="TIME", help="end of the current window (default: the latest record)")
    d.add_argument("--current", default="1d", metavar="SPAN", help="current window length (default 1d)")
    d.add_argument("--reference", default="7d", metavar="SPAN", help="reference window length before it (default 7d)")
    d.add_argument("--fields", nargs="+", default=["prompt", "response"], choices=["prompt", "response"])
    d.add_argument(
        "--method", default="distance", choices=["distance", "mmd", "model", "ratio"], help="embedding drift test"
    )

    s = add("rescore", cmd_rescore)
    s.add_argument(
        "--since", metavar="TIME", help="records at or after: RFC 3339 or an age (7d); required without --head"
    )
    s.add_argument("--until", metavar="TIME", help="records before (default: when the run started)")
    s.add_argument("--detector", choices=NAMES, metavar="NAME", help="detector to re-run; required without --head")
    s.add_argument(
        "--head", type=Path, metavar="FILE",
        help="instead: compare this candidate head with the current one on the held-out review labels",
    )  # fmt: skip
    s.add_argument("--json", action="store_true", help="one JSON document instead of tables")
    s.add_argument("--tenant", action="append", metavar="NAME", help="only this tenant (repeatable)")
    s.add_argument("--model", action="append", metavar="NAME", help="only this model (repeatable)")
    s.add_argument("--route", action="append", metavar="NAME", help="only this route (repeatable)")
    s.add_argument("--max-records", type=int, metavar="N", help="stop after about N records (resume later)")
    s.add_argument("--restart", action="store_true", help="start again instead of resuming an unfinished run")
