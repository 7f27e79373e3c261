"""CLI wiring for ``lookout export`` and ``lookout review push-labelstudio`` / ``pull-labelstudio``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import logs
from agent.config import Settings
from agent.errors import LookoutError
from agent.export.formats import NAMES
from agent.export.writer import GROUP_BYS, SFT_HISTORIES, ExportOptions, GroupBy

if TYPE_CHECKING:
    from agent.storage.records import ExportFilter, LabelState

Add = Callable[..., argparse.ArgumentParser]
"""``cli.build_parser``'s ``add(name, handler, config=True)``."""
LINE_EVERY = 10_000


def _settings(args: argparse.Namespace) -> Settings:
    return logs.configured(getattr(args, "config", None))


def export_filter(args: argparse.Namespace, label_state: LabelState) -> ExportFilter:
    """The export filter the filter options (``add_filter_options``) describe."""
    from agent.storage.records import ExportFilter, parse_time

    return ExportFilter(
        since=parse_time(args.since) if args.since else None,
        until=parse_time(args.until) if args.until else None,
        tenants=tuple(args.tenant or ()),
        models=tuple(args.model or ()),
        routes=tuple(args.route or ()),
        detectors=tuple(args.detector or ()),
        queues=tuple(args.queue or ()),
        label_state=label_state,
        feedback_kinds=tuple(getattr(args, "feedback", None) or ()),
    )


def _check_options(args: argparse.Namespace) -> ExportOptions:
    """The export options, or a one-line error for a combination that does not apply."""
    if args.sft_history is not None and args.format != "sft":
        raise LookoutError(f"--sft-history applies to --format sft only, not {args.format}")
    group_by: GroupBy = "session" if args.group_by == "session" else "record"
    if group_by == "session" and args.format not in ("jsonl", "parquet"):
        raise LookoutError(f"--group-by session applies to --format jsonl or parquet, not {args.format}")
    return ExportOptions(sft_history=args.sft_history or "none", group_by=group_by)


def cmd_export(args: argparse.Namespace) -> int:
    """Write reviewed records as training or labeling data, with a manifest."""
    from agent.export.run import Manifest, Progress, export, summary
    from agent.export.sessions import export_sessions
    from agent.storage.database import open_storage
    from agent.storage.records import count_rows

    options = _check_options(args)
    settings = _settings(args)
    filt = export_filter(args, "all" if args.include_unlabeled else "labeled")
    client = open_storage(settings, shared=True)
    db = settings.clickhouse.database

    def run(progress: Progress) -> Manifest:
        if options.group_by == "session":
            return export_sessions(client, db, args.out, args.format, filt, progress)
        return export(client, db, args.out, args.format, filt, progress, options)

    try:
        if sys.stderr.isatty():
            from rich.progress import Progress as Bar

            with Bar(transient=True) as bar:
                job = bar.add_task(f"export {args.format}", total=count_rows(client, db, filt))
                manifest = run(lambda n: bar.update(job, completed=n))
        else:

            def line(n: int) -> None:
                if n % LINE_EVERY == 0:
                    print(f"exported {n} rows", file=sys.stderr)

            manifest = run(line)
    finally:
        client.close()
    no_session = manifest.skipped.get("no_session", 0)
    if no_session:
        noun = "record has" if no_session == 1 else "records have"
        print(f"{no_session} matched {noun} no session_id; left out", file=sys.stderr)
    print(summary(manifest, args.out), file=sys.stderr)
    return 0


def _labelstudio(args: argparse.Namespace, settings: Settings) -> Any:
    from agent.review.labelstudio import LabelStudio

    ls = settings.labelstudio
    token = args.token or (ls.token.get_secret_value() if ls.token else None)
    if not token:
        raise LookoutError("no Label Studio token; pass --token or set LOOKOUT_LABELSTUDIO__TOKEN")
    return LabelStudio(args.url or ls.url, token, timeout_s=ls.timeout_s)


def cmd_push_labelstudio(args: argparse.Namespace) -> int:
    """Send queued records to a Label Studio project (created or updated; records already there are skipped)."""
    from agent.review.labelstudio import push
    from agent.storage.database import open_storage

    settings = _settings(args)
    filt = export_filter(args, "all" if args.include_labeled else "unlabeled")
    project = args.project or settings.labelstudio.project
    client = open_storage(settings, shared=True)
    try:
        with _labelstudio(args, settings) as ls:
            result = push(client, settings.clickhouse.database, ls, project, filt)
    finally:
        client.close()
    skipped = ", ".join(f"{k} {v}" for k, v in sorted(result.skipped.items())) or "none"
    verb = "created" if result.created_project else "updated"
    print(
        f"project {project!r} (id {result.project_id}, {verb}): sent {result.sent}, "
        f"already there {result.already}, skipped: {skipped}",
        file=sys.stderr,
    )
    return 0


def cmd_pull_labelstudio(args: argparse.Namespace) -> int:
    """Store a Label Studio project's annotations as review labels (source labelstudio; repeats add nothing)."""
    from agent.review.labelstudio import pull
    from agent.storage.database import open_storage

    settings = _settings(args)
    project = args.project or settings.labelstudio.project
    client = open_storage(settings, shared=True)
    try:
        with _labelstudio(args, settings) as ls:
            result = pull(client, settings.clickhouse.database, ls, project)
    finally:
        client.close()
    skipped = ", ".join(f"{k} {v}" for k, v in sorted(result.skipped.items())) or "none"
    print(
        f"project {project!r} (id {result.project_id}): new labels {result.new}, "
        f"already stored {result.already}, skipped: {skipped}",
        file=sys.stderr,
    )
    return 0


def add_filter_options(p: argparse.ArgumentParser, queue_help: str) -> None:
    """The record filter options of ``export`` and ``evaluate`` (``queue_help`` describes ``--queue``)."""
    p.add_argument("--since", metavar="TIME", help="records at or after: RFC 3339 or an age such as 7d, 12h")
    p.add_argument("--until", metavar="TIME", help="records before: RFC 3339 or an age")
    p.add_argument("--tenant", action="append", metavar="NAME", help="only this tenant (repeatable)")
    p.add_argument("--model", action="append", metavar="NAME", help="only this model (repeatable)")
    p.add_argument("--route", action="append", metavar="NAME", help="only this route (repeatable)")
    p.add_argument(
        "--detector",
        action="append",
        metavar="NAME",
        help="only records flagged by, queued for or labeled on this detector (repeatable)",
    )
    p.add_argument("--queue", action="append", metavar="NAME", help=queue_help)
    p.add_argument(
        "--feedback",
        action="append",
        metavar="KIND",
        help="only records with user feedback of this kind: thumbs_up, thumbs_down, report, rating (repeatable)",
    )


def _connection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="Label Studio base URL (default: labelstudio.url)")
    p.add_argument("--token", help="API token (default: LOOKOUT_LABELSTUDIO__TOKEN)")
    p.add_argument("--project", metavar="NAME", help="project title (default: labelstudio.project)")


def register(sub: Any, add: Add) -> None:
    """Add ``export`` and the ``review`` Label Studio commands to the CLI."""
    p = add("export", cmd_export)
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory for the files and manifest.json")
    p.add_argument("--format", required=True, choices=NAMES, help="what to write")
    add_filter_options(p, "only labels and items of this review queue (repeatable)")
    p.add_argument("--include-unlabeled", action="store_true", help="also flagged records still waiting for a label")
    p.add_argument(
        "--sft-history",
        choices=SFT_HISTORIES,
        help="sft only: earlier turns dropped (none, the default), as the prompt of a prompt-completion row "
        "(context), or kept with weight 0 on earlier assistant turns (weighted); never trained on",
    )
    p.add_argument(
        "--group-by",
        choices=GROUP_BYS,
        help="jsonl and parquet: one row per record (the default) or per session, holding every stored turn of "
        "each session the filters match (records without a session_id are left out)",
    )
    from agent.review.commands import review_subcommands

    review = review_subcommands(sub)
    for name, handler in (("push-labelstudio", cmd_push_labelstudio), ("pull-labelstudio", cmd_pull_labelstudio)):
        p = review.add_parser(name, help=(handler.__doc__ or "").strip().rstrip("."))
        p.add_argument("--config", type=Path, help="YAML settings file (env vars LOOKOUT_* override it)")
        p.set_defaults(handler=handler)
        _connection(p)
        if handler is cmd_push_labelstudio:
            add_filter_options(p, "only items of this review queue (repeatable)")
            p.add_argument("--include-labeled", action="store_true", help="also records that already have a label")
