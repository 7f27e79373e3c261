"""CLI wiring for ``lookout review serve`` and ``lookout review add-annotator``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from agent import logs
from agent.config import Settings


def _settings(args: argparse.Namespace) -> Settings:
    return logs.configured(getattr(args, "config", None))


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the annotator UI and JSON API."""
    from agent.review.app import serve

    settings = _settings(args)
    host = args.host or settings.review.host
    port = settings.review.port if args.port is None else args.port
    print(f"review UI on http://{host}:{port}/review/ (Ctrl-C stops it)", file=sys.stderr)
    serve(settings, host, port)
    return 0


def cmd_add_annotator(args: argparse.Namespace) -> int:
    """Create an annotator (or with --reissue give one a new token) and print the token once."""
    from agent.review.app import open_store
    from agent.storage.database import open_storage

    settings = _settings(args)
    client = open_storage(settings, shared=True)
    try:
        store = open_store(settings, client)
        token = store.add_annotator(args.name, is_admin=True if args.admin else None, reissue=args.reissue)
        found = store.accounts.find(args.name)
    finally:
        client.close()
    name, is_admin = (found[0], found[1]) if found else (args.name, args.admin)
    done = "re-issued (the old token and its sessions no longer work)" if args.reissue else "added"
    role = "admin" if is_admin else "annotator"
    print(f"{role} {name} {done}; token (shown once, only its sha256 is stored):", file=sys.stderr)
    print(token)
    return 0


def review_subcommands(sub: Any) -> Any:
    """The ``review`` command's sub-command action, created unless another module already added ``review``."""
    parser = sub.choices.get("review")
    if parser is None:
        parser = sub.add_parser("review", help="human review of flagged records")
    for action in parser._actions:  # argparse keeps a parser's sub-commands only in this list
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest="review_command", required=True, metavar="REVIEW_COMMAND")


def register(sub: Any) -> None:
    """Add ``review serve`` and ``review add-annotator`` to the CLI."""
    review = review_subcommands(sub)
    p = review.add_parser("serve", help=(cmd_serve.__doc__ or "").strip().rstrip("."))
    p.add_argument("--host", help="interface to listen on (default: review.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: review.port, 8700)")
    p.add_argument("--config", type=Path, help="YAML settings file (env vars LOOKOUT_* override it)")
    p.set_defaults(handler=cmd_serve)
    p = review.add_parser("add-annotator", help=(cmd_add_annotator.__doc__ or "").strip().rstrip("."))
    p.add_argument("name", help="annotator name (letters, digits, _.@-)")
    p.add_argument("--admin", action="store_true", help="may add annotators in the UI and label without a claim")
    p.add_argument(
        "--reissue", action="store_true",
        help="give an existing annotator a new token (the old one and its sessions stop working); keeps the role "
        "unless --admin",
    )  # fmt: skip
    p.add_argument("--config", type=Path, help="YAML settings file (env vars LOOKOUT_* override it)")
    p.set_defaults(handler=cmd_add_annotator)
