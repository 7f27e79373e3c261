"""CLI wiring for ``lookout review agreement``: annotator agreement and gold accuracy, as tables or one JSON."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import logs
from agent.errors import ConfigError
from agent.review.commands import review_subcommands

if TYPE_CHECKING:
    from evaluators.agreement import AgreementReport

CONFIG_HELP = "YAML settings file (env vars LOOKOUT_* override it)"


def _table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    from agent.display import shown

    table = Table(*header, title=title)
    for row in rows:
        table.add_row(*(shown(v) for v in row))
    Console(width=max(100, len(title))).print(table)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def print_report(result: AgreementReport) -> None:
    """Agreement per queue and detector, then gold accuracy per annotator."""
    if result.agreement:
        _table(
            "agreement per queue and detector (each annotator's latest label)",
            ("queue", "detector", "items (≥2 verdicts)", "alpha", "pairs", "kappa"),
            [(a.queue, a.detector, a.items, _num(a.alpha), a.pairs, _num(a.kappa)) for a in result.agreement],
        )
    if result.gold:
        _table(
            "gold accuracy per annotator",
            ("annotator", "gold items", "verdicts", "correct", "accuracy", "unanswered", "severity correct"),
            [
                (g.annotator, g.items, g.verdicts, g.correct, "" if g.accuracy is None else f"{g.accuracy:.1%}",
                 g.unanswered, f"{g.severity_correct}/{g.severities}" if g.severities else "")
                for g in result.gold
            ],
        )  # fmt: skip


def cmd_review_agreement(args: argparse.Namespace) -> int:
    """Annotator agreement (Cohen's kappa, Krippendorff's alpha) per queue and detector, and gold accuracy."""
    from agent.storage.database import open_storage
    from evaluators.agreement import known_queues, report

    settings = logs.configured(getattr(args, "config", None))
    client = open_storage(settings, shared=True)
    db = settings.clickhouse.database
    try:
        if args.queue is not None:
            queues = known_queues(client, db)
            if args.queue not in queues:
                raise ConfigError(f"unknown queue {args.queue!r} (queues: {', '.join(sorted(queues)) or 'none yet'})")
        result = report(client, db, args.queue)
    finally:
        client.close()
    if args.json:
        print(json.dumps({"queue": args.queue, **result.to_json()}))
    elif result.empty:
        print("nothing to report: no item has two annotators' verdicts and no gold item is labeled")
    else:
        print_report(result)
    return 0


def register(sub: Any) -> None:
    """Add ``review agreement`` to the CLI."""
    review = review_subcommands(sub)
    p = review.add_parser("agreement", help=(cmd_review_agreement.__doc__ or "").strip().rstrip("."))
    p.add_argument("--json", action="store_true", help="one JSON document instead of tables")
    p.add_argument("--queue", metavar="NAME", help="only this queue")
    p.add_argument("--config", type=Path, help=CONFIG_HELP)
    p.set_defaults(handler=cmd_review_agreement)
