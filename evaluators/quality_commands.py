"""CLI wiring for ``lookout detectors [list|report]`` and ``lookout calibrate``.

``report`` and ``calibrate`` read the review labels and the stored records; tables go to stdout (or one JSON
document with ``--json``), what was written and what to do next to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import logs
from agent.errors import ConfigError, LookoutError

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.storage.client import Client
    from agent.thresholds import ThresholdsFile
    from evaluators.calibrate import Proposal
    from evaluators.detector_quality import Estimate, QualityReport
    from evaluators.labeled import Window

Add = Callable[..., argparse.ArgumentParser]
"""``cli.build_parser``'s ``add(name, handler, config=True)``."""
CONFIG_HELP = "YAML settings file (env vars LOOKOUT_* override it)"
DEFAULT_SINCE = "30d"


def _settings(args: argparse.Namespace) -> Settings:
    return logs.configured(getattr(args, "config", None))


def _window(args: argparse.Namespace) -> Window:
    from agent.storage.records import parse_time
    from evaluators.labeled import Window

    until = parse_time(args.until) if args.until else None
    return Window(since=parse_time(args.since), until=until, tenants=tuple(args.tenant or ()))


def _client(settings: Settings) -> Client:
    from agent.storage.database import open_storage

    return open_storage(settings, shared=True)


def _table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    from agent.display import shown

    table = Table(*header, title=title)
    for row in rows:
        table.add_row(*(shown(v) for v in row))
    Console(width=max(160, len(title))).print(table)


def _pct(value: float | None, interval: tuple[float, float] | None = None) -> str:
    if value is None:
        return ""
    text = f"{value:.1%}"
    return f"{text} ({interval[0]:.1%}-{interval[1]:.1%})" if interval else text


def cmd_detectors_list(args: argparse.Namespace) -> int:
    """List registered detectors."""
    from detectors import registry

    for name in registry.NAMES:
        d = registry.create(name)
        direction = "higher is worse" if d.higher_is_worse else "lower is worse"
        print(f"{name}\t{d.version}\t{direction}\tthreshold {d.default_threshold}")
    return 0


def _estimate_row(e: Estimate) -> tuple[Any, ...]:
    c = e.counts
    missed = "" if e.missed_estimate is None else f"{e.missed_estimate:.0f}"
    return (
        e.detector, "/".join((e.tenant, e.model, e.route)), _pct(e.precision, e.precision_ci), c.labeled_flags,
        _pct(e.miss_rate, e.miss_rate_ci), c.control, missed, _pct(e.recall, e.recall_ci), c.flagged,
    )  # fmt: skip


def print_report(result: QualityReport, window: Window) -> None:
    """The report as tables: every detector over all streams, then per stream."""
    header = ("detector", "stream", "precision (95% CI)", "n", "miss rate (95% CI)", "n control", "est. missed",
              "recall (CI)", "flagged")  # fmt: skip
    since = f"since {window.since:%Y-%m-%d %H:%M} UTC" if window.since else "all time"
    _table(f"detector quality from review labels ({since})", header, [_estimate_row(e) for e in result.overall])
    if len({(e.tenant, e.model, e.route) for e in result.streams}) > 1:
        rows = [_estimate_row(e) for e in result.streams if e.counts.labeled_flags or e.counts.missed]
        _table("per stream (tenant/model/route; detectors with labeled flags or misses)", header, rows)
    rates = [e.control_rate for e in result.overall if e.control_rate is not None]
    rule = result.control_rule_rate
    if rates:
        line = f"control sample labeled at {max(rates):.3%} of unflagged records"
        print(line + (f" (rules sample {rule:.3%})" if rule is not None else ""), file=sys.stderr)


def cmd_detectors_report(args: argparse.Namespace) -> int:
    """Measured precision, miss rate and recall per detector and stream, from the review labels."""
    from agent.review.rules import load_rules
    from evaluators.detector_quality import read_report

    settings = _settings(args)
    window = _window(args)
    rules = load_rules(settings.review.rules)
    client = _client(settings)
    try:
        result = read_report(client, settings.clickhouse.database, settings.detectors.enabled, window, rules)
    finally:
        client.close()
    if args.json:
        doc = {
            "since": window.since.isoformat() if window.since else None,
            "until": window.until.isoformat() if window.until else None,
            "tenants": list(window.tenants), "labels": result.labels, "control_rule_rate": result.control_rule_rate,
            "detectors": [e.as_json() for e in result.overall], "streams": [e.as_json() for e in result.streams],
        }  # fmt: skip
        print(json.dumps(doc))
        return 0
    if not result.labels:
        print("nothing to report: no labeled records in the window (label some in `lookout review serve`)")
        return 0
    print_report(result, window)
    return 0


def _current(settings: Settings) -> tuple[Any, ThresholdsFile | None]:
    from agent.thresholds import load_thresholds
    from evaluators.calibrate import Current

    det = settings.detectors
    file = load_thresholds(det.thresholds_file) if det.thresholds_file is not None else None
    thresholds = {**det.thresholds, **(file.thresholds if file else {})}
    return Current(thresholds, file.tenants if file else {}), file


def _target(value: str) -> float:
    try:
        p = float(value)
    except ValueError:
        p = -1.0
    if not 0 < p < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a precision between 0 and 1 (e.g. 0.9)")
    return p


def _write(file: ThresholdsFile, out: Path | None, settings: Settings) -> tuple[Path, str]:
    """Write ``file`` without replacing anything silently; (path, what happened)."""
    from agent.thresholds import load_thresholds

    if out is None:
        current = settings.detectors.thresholds_file
        folder = current.parent if current is not None else Path.cwd()
        path = folder / f"thresholds-{file.version}.yaml"
        if path.exists():  # the version hashes the content: the same version holds the same thresholds
            return path, f"{path} already holds version {file.version}; not rewritten"
        happened = f"wrote {path}"
    else:
        path = out
        happened = f"wrote {path}"
        if path.exists():
            try:
                happened = f"replaced {path} (was version {load_thresholds(path).version})"
            except ConfigError:
                happened = f"replaced {path} (was not a thresholds file)"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(file.to_yaml(), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise LookoutError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path, f"{happened} (version {file.version})"


def _proposal_row(p: Proposal) -> tuple[Any, ...]:
    proposed = "" if p.proposed is None else f"{p.proposed:g}"
    cost = "" if p.recall_cost is None else f"{p.recall_cost:.1%}"
    return (
        p.detector, p.tenant, p.n, f"{p.current:g}", proposed, p.status, _pct(p.precision_now),
        _pct(p.precision, p.precision_ci), _pct(p.recall_now), _pct(p.recall), cost,
    )  # fmt: skip


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Propose per-detector (and per-tenant) thresholds that meet a target precision on the review labels."""
    from evaluators import calibrate as cal
    from evaluators.labeled import read_labeled, read_traffic

    settings = _settings(args)
    window = _window(args)
    detectors = settings.detectors.enabled
    current, base = _current(settings)
    client = _client(settings)
    db = settings.clickhouse.database
    try:
        records = read_labeled(client, db, window, detectors)
        traffic = read_traffic(client, db, window)
    finally:
        client.close()
    proposals = cal.calibrate(detectors, records, traffic, current, args.target_precision, args.min_n,
                              tuple(args.tenant or ()))  # fmt: skip
    labels = cal.label_set(records)
    written: dict[str, Any] | None = None
    if any(p.proposed is not None for p in proposals):
        new = cal.thresholds_file(proposals, base, labels, args.target_precision, datetime.now(UTC))
        path, happened = _write(new, args.out, settings)
        written = {"path": str(path), "version": new.version}
        print(f"{happened}; to use it set detectors.thresholds_file (LOOKOUT_DETECTORS__THRESHOLDS_FILE={path}) "
              "and restart the agent", file=sys.stderr)  # fmt: skip
    elif records:
        print("no threshold changed: nothing written", file=sys.stderr)
    if args.json:
        doc = {
            "target_precision": args.target_precision,
            "min_n": args.min_n,
            "labels": labels.model_dump(),
            "written": written,
            "detectors": [p.as_json() for p in proposals if p.n or p.proposed is not None],
        }
        print(json.dumps(doc))  # fmt: skip
        return 0
    if not records:
        print("nothing to calibrate: no labeled records in the window")
        return 0
    header = ("detector", "tenant", "n", "current", "proposed", "status", "precision now", "precision at proposed",
              "recall now", "recall at proposed", "confirmed flags lost")  # fmt: skip
    shown = [p for p in proposals if p.n or p.proposed is not None]
    _table(f"thresholds for precision >= {args.target_precision:g} (95% lower bound, min n {args.min_n})", header,
           [_proposal_row(p) for p in shown])  # fmt: skip
    unlabeled = sorted({p.detector for p in proposals if p not in shown})
    if unlabeled:
        print(f"kept (no labeled flags): {', '.join(unlabeled)}", file=sys.stderr)
    return 0


def _window_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help=CONFIG_HELP)
    p.add_argument("--json", action="store_true", help="one JSON document instead of tables")
    p.add_argument("--tenant", action="append", metavar="NAME", help="only this tenant (repeatable)")
    p.add_argument("--since", default=DEFAULT_SINCE, metavar="TIME",
                   help=f"records at or after: RFC 3339 or an age (default {DEFAULT_SINCE})")  # fmt: skip
    p.add_argument("--until", metavar="TIME", help="records before (default: now)")


def register(sub: Any, add: Add) -> None:
    """Add ``detectors`` (``list``, the default, and ``report``) and ``calibrate`` to the CLI."""
    p = sub.add_parser("detectors", help="registered detectors (list, the default) and their measured quality")
    p.set_defaults(handler=cmd_detectors_list)
    actions = p.add_subparsers(dest="detectors_command", metavar="ACTION")
    actions.add_parser("list", help="registered detectors, versions, directions, default thresholds").set_defaults(
        handler=cmd_detectors_list
    )
    r = actions.add_parser("report", help=(cmd_detectors_report.__doc__ or "").strip().rstrip("."))
    r.set_defaults(handler=cmd_detectors_report)
    _window_options(r)

    c = add("calibrate", cmd_calibrate, config=False)
    _window_options(c)
    c.add_argument(
        "--target-precision",
        type=_target,
        required=True,
        metavar="P",
        help="precision each detector's flags must reach on the labels (a 95 percent lower bound), e.g. 0.9",
    )
    c.add_argument(
        "--min-n",
        type=int,
        default=30,
        metavar="N",
        help="labeled flags a detector (or a tenant) needs to be calibrated (default 30)",
    )
    c.add_argument(
        "--out", type=Path, metavar="FILE",
        help="thresholds file to write (default: thresholds-<version>.yaml beside the current one)",
    )  # fmt: skip
