"""CLI wiring for the cascade's artefacts: ``lookout distill-static`` and ``lookout fit-bands``.

``train-heads --tier fast`` (in ``agent/cli.py``) trains the fast heads; this module builds the static table and
fits the bands. What was written goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from agent.errors import LookoutError

Add = Callable[..., argparse.ArgumentParser]
"""``cli.build_parser``'s ``add(name, handler, config=True)``."""


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def cmd_distill_static(args: argparse.Namespace) -> int:
    """Build the fast tier's static token table from the shipped MiniLM (one pass per vocabulary token)."""
    from detectors.static_encoder import STATIC_DIR
    from evaluators.distill import distill
    from evaluators.heads import check_data_dir

    try:
        if args.fit_data is not None:
            check_data_dir(args.fit_data)
        distill(
            args.out or STATIC_DIR,
            model_path=args.model,
            dims=args.dims,
            fit_data=args.fit_data,
            fit_texts=args.fit_texts,
            epochs=args.epochs,
            seed=args.seed,
            report=_err,
        )
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise LookoutError(str(exc)) from None
    return 0


def cmd_fit_bands(args: argparse.Namespace) -> int:
    """Fit the cascade's uncertainty bands on the heads' held-out records; writes bands.json."""
    from detectors.cascade import BANDS_FILE, FAST_DIR
    from evaluators.bands import DEFAULT_TARGET, fit_bands
    from evaluators.heads import check_data_dir

    folder: Path = args.fast_dir or FAST_DIR
    try:
        check_data_dir(args.data)
        bands = fit_bands(
            args.data,
            seed=args.seed,
            target=args.target or DEFAULT_TARGET,
            per_detector=args.n,
            fast_dir=folder,
            report=_err,
        )
    except (FileNotFoundError, ValueError) as exc:
        raise LookoutError(str(exc)) from None
    out = args.out or folder / BANDS_FILE
    bands.save(out)
    _err(f"wrote {out}")
    return 0


def _share(value: str) -> float:
    try:
        share = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0.5 < share < 1:
        raise argparse.ArgumentTypeError(f"{value} is not between 0.5 and 1 (e.g. 0.99)")
    return share


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return number


def register(add: Add) -> None:
    """Add ``distill-static`` and ``fit-bands`` to the CLI."""
    p = add("distill-static", cmd_distill_static, config=False)
    p.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: the shipped detectors/static)")
    p.add_argument("--model", type=Path, metavar="DIR", help="sentence-transformers folder (default: shipped MiniLM)")
    p.add_argument("--dims", type=int, default=256, help="PCA dimensions (default 256)")
    p.add_argument(
        "--fit-data",
        type=Path,
        metavar="DIR",
        help="datasets root: then fit the table to MiniLM's sentence vectors of the heads' training texts",
    )
    p.add_argument("--fit-texts", type=_positive, default=20_000, metavar="N", help="texts fitted on (default 20000)")
    p.add_argument("--epochs", type=_positive, default=12, metavar="E", help="passes over them (default 12)")
    p.add_argument("--seed", type=int, default=0)
    p = add("fit-bands", cmd_fit_bands, config=False)
    p.add_argument("--data", type=Path, required=True, metavar="DIR", help="datasets root (see docs/evaluation.md)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target", type=_share, metavar="A", help="agreement to fit for (default 0.995)")
    p.add_argument("--n", type=int, default=3000, metavar="N", help="records per detector (default 3000)")
    p.add_argument("--fast-dir", type=Path, metavar="DIR", help="fast heads folder (default: the shipped one)")
    p.add_argument("--out", type=Path, metavar="FILE", help="bands file (default: <fast-dir>/bands.json)")
