"""CLI wiring for heads trained with the site's labels: ``train-heads --labels``, ``rescore --head`` and ``heads``.

Messages go to stderr; results (tables, ``--json`` documents) to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import logs
from agent.errors import ConfigError

if TYPE_CHECKING:
    from agent.config import Settings

CONFIG_HELP = "YAML settings file (env vars LOOKOUT_* override it)"


def _settings(args: argparse.Namespace) -> Settings:
    return logs.configured(getattr(args, "config", None))


def _err(line: str) -> None:
    print(line, file=sys.stderr)


def _heads_dir(args: argparse.Namespace, settings: Settings) -> Path:
    folder: Path | None = getattr(args, "dir", None) or settings.detectors.heads_dir
    if folder is None:
        raise ConfigError("no heads folder: set detectors.heads_dir (LOOKOUT_DETECTORS__HEADS_DIR) or pass --dir")
    return folder


def cmd_train_with_labels(args: argparse.Namespace) -> int:
    """``train-heads --labels``: each head also trains on the site's labeled records; written as a candidate."""
    from agent.storage.database import open_storage
    from agent.storage.records import ExportFilter
    from evaluators import heads, site_labels

    settings = _settings(args)
    if args.labels_weight <= 0:
        raise ConfigError(f"--labels-weight must be above 0, got {args.labels_weight}")
    try:
        heads.check_data_dir(args.data)
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from None
    client = open_storage(settings, shared=True)
    try:
        rows = site_labels.read_label_rows(client, settings.clickhouse.database, ExportFilter())
    finally:
        client.close()
    labels = site_labels.SiteLabels(tuple(rows), args.labels_weight)
    names = [args.head] if args.head else list(args.only or heads.HEAD_TRAINERS)
    for name in names:
        s = labels.summary(name)
        _err(f"{name}: {s['train_rows']} label rows to train on, {s['held_out_rows']} held out")
    _err(f"split: {site_labels.SPLIT_RULE}")
    chosen = heads.site_heads(labels, names, explicit=bool(args.head or args.only), report=_err)
    try:
        heads.train_heads(args.data, out_dir=args.out or Path.cwd(), names=chosen, seed=args.seed, report=_err,
                          labels=labels)  # fmt: skip
    except (FileNotFoundError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    return 0


def cmd_rescore_head(args: argparse.Namespace) -> int:
    """``rescore --head FILE``: the candidate against the current head on the held-out labels."""
    from agent.score import build_encoder
    from agent.storage.database import open_storage
    from agent.storage.records import ExportFilter
    from evaluators import rescore_head, site_labels

    settings = _settings(args)
    det = settings.detectors
    candidate = rescore_head.load_candidate(args.head)
    current, source = rescore_head.current_head(candidate.name, det.heads_dir)
    defaults, tenants = dict(det.thresholds), {}
    if det.thresholds_file is not None:
        from agent.thresholds import load_thresholds

        file = load_thresholds(det.thresholds_file)
        defaults.update(file.thresholds)
        tenants = file.tenants
    filt = ExportFilter(
        tenants=tuple(args.tenant or ()), models=tuple(args.model or ()), routes=tuple(args.route or ())
    )
    client = open_storage(settings, shared=True)
    try:
        rows = site_labels.read_label_rows(client, settings.clickhouse.database, filt)
    finally:
        client.close()
    mine = [r for r in rows if r.head == candidate.name]
    encoder = build_encoder(settings.encoder.model_copy(update={"precision": "fp32"})) if mine else None
    compared = (
        rescore_head.compare_heads(mine, candidate, current, encoder, rescore_head.threshold_lookup(defaults, tenants))
        if encoder is not None
        else []
    )
    result = rescore_head.HeadComparison(
        head=candidate.name, candidate_file=str(args.head), candidate_version=candidate.version,
        current_version=current.version, current_source=source, split=str(
            (candidate.meta.get("site_labels") or {}).get("split", site_labels.SPLIT_RULE)),
        labels=len(mine), detectors=tuple(compared),
    )  # fmt: skip
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
        return 0
    _print_comparison(result)
    return 0


def _print_comparison(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from evaluators.rescore_head import table_rows

    console = Console(width=100)
    console.print(
        f"{result.head}: candidate {result.candidate_version} vs current {result.current_version} "
        f"({result.current_source}); {result.n} held-out label rows of {result.labels} ({result.split})"
    )
    for cmp in result.detectors:
        limits = ", ".join(f"{t:g}" for t in cmp.thresholds)
        table = Table("", "current", "candidate", title=f"{cmp.detector}: n={cmp.n}, should flag {cmp.should_flag}, "
                      f"threshold {limits}")  # fmt: skip
        for row in table_rows(cmp):
            table.add_row(*row)
        console.print(table)


def cmd_heads_promote(args: argparse.Namespace) -> int:
    """Copy a head file into the heads folder as a new version and make it active."""
    from evaluators import head_store

    settings = _settings(args)
    folder = _heads_dir(args, settings)
    entry = head_store.promote(folder, args.file)
    _err(f"promoted {args.file} as {entry['name']} ({entry['head_version']}) in {folder}; restart the agent to use it")
    if settings.detectors.heads_dir is None:
        _err(f"the agent loads it once detectors.heads_dir is {folder}")
    return 0


def cmd_heads_list(args: argparse.Namespace) -> int:
    """Promoted head versions and which one each head uses."""
    from evaluators import head_store

    settings = _settings(args)
    folder = _heads_dir(args, settings)
    states = head_store.states(folder)
    if args.json:
        print(json.dumps({"heads_dir": str(folder), "heads": [s.to_json() for s in states]}, ensure_ascii=False))
        return 0
    for s in states:
        print(f"{s.head}: {s.active or 'shipped'} active")
        for v in s.versions:
            mark = "*" if v["name"] == s.active else " "
            site = f", {v['site_label_rows']} site label rows" if v.get("site_label_rows") else ""
            print(f"  {mark} {v['name']}  {v['head_version']}  promoted {v['promoted_at']}{site}")
    return 0


def cmd_heads_rollback(args: argparse.Namespace) -> int:
    """Make the version active before the latest promotion active again (or the shipped head)."""
    from evaluators import head_store

    settings = _settings(args)
    folder = _heads_dir(args, settings)
    before, after = head_store.rollback(folder, args.head)
    _err(f"rolled back {before} → {after or 'the shipped head'}; restart the agent to use it")
    return 0


def register(sub: Any) -> None:
    """Add ``heads promote | list | rollback`` to the CLI."""
    p = sub.add_parser("heads", help="promoted detector heads: versions, promotion, rollback")
    actions = p.add_subparsers(dest="heads_command", required=True, metavar="ACTION")
    a = actions.add_parser("promote", help=(cmd_heads_promote.__doc__ or "").strip().rstrip("."))
    a.add_argument("file", type=Path, metavar="FILE", help="head JSON (e.g. from `train-heads --labels`)")
    a.set_defaults(handler=cmd_heads_promote)
    b = actions.add_parser("list", help=(cmd_heads_list.__doc__ or "").strip().rstrip("."))
    b.add_argument("--json", action="store_true", help="one JSON document")
    b.set_defaults(handler=cmd_heads_list)
    c = actions.add_parser("rollback", help=(cmd_heads_rollback.__doc__ or "").strip().rstrip("."))
    c.add_argument("head", nargs="?", metavar="NAME", help="head to roll back (optional when only one is promoted)")
    c.set_defaults(handler=cmd_heads_rollback)
    for q in (a, b, c):
        q.add_argument("--dir", type=Path, metavar="DIR", help="heads folder (default: detectors.heads_dir)")
        q.add_argument("--config", type=Path, help=CONFIG_HELP)
