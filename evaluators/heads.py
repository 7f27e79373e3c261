"""``lookout train-heads`` and ``lookout eval``: retrain every shipped head, and measure every detector.

Each module in ``evaluators/training`` exposes ``train(data_dir, encoder, seed, cache_dir) -> LogisticHead``
and ``evaluate(data_dir, encoder, cache_dir) -> list[EvalRow]``; this module runs them in order.

With the site's review labels (``--labels``, :mod:`evaluators.site_labels`), a trainer whose ``train`` takes a
``site`` argument (:class:`~evaluators.site_labels.SiteRows`) adds them to its rows; the head is written as a
*candidate* (``<out>/<name>.candidate.json``), never over the shipped one.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from agent.errors import ConfigError
from detectors.encoder import SentenceTransformerEncoder
from detectors.head import HEADS_DIR, LogisticHead
from detectors.types import Encoder
from evaluators.quality import EvalRow

if TYPE_CHECKING:
    from evaluators.site_labels import SiteLabels

HEAD_TRAINERS: tuple[str, ...] = ("toxicity", "hallucination", "relevance")
"""Heads that ship, each trained by ``evaluators.training.<name>``."""

DEFAULT_CACHE = Path.home() / ".cache" / "lookout" / "embeddings"


def _module(name: str) -> ModuleType:
    if name not in HEAD_TRAINERS:
        raise ValueError(f"unknown head {name!r}; valid: {', '.join(HEAD_TRAINERS)}")
    return importlib.import_module(f"evaluators.training.{name}")


def check_data_dir(data_dir: Path) -> None:
    """Fail with one line when ``data_dir`` is not a datasets folder."""
    expected = ("toxicity", "hallucination", "relevance")
    missing = [d for d in expected if not (data_dir / d).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"{data_dir} is not a datasets folder (missing {', '.join(missing)}/); "
            "point --data at the datasets root (the folder holding toxicity/, hallucination/ and relevance/)"
        )


def takes_site_labels(name: str) -> bool:
    """Whether head ``name``'s trainer accepts the site's label rows (its ``train`` has a ``site`` parameter)."""
    return "site" in inspect.signature(_module(name).train).parameters


def site_heads(labels: SiteLabels, names: Sequence[str], explicit: bool, report: Callable[[str], None]) -> list[str]:
    """The heads of ``names`` to train with ``labels``: each needs training rows and a trainer that takes them.

    ``explicit`` (the user named the heads): a head without rows, or whose trainer cannot take them, is an error;
    otherwise it is skipped with a line.
    """
    out = []
    for name in names:
        n = len(labels.for_head(name).rows)
        if n and takes_site_labels(name):
            out.append(name)
            continue
        if not n:
            why = f"no labeled records for the {name} head (verdicts on its detectors, outside the held-out part)"
        else:
            why = f"training the {name} head with site labels is not supported yet (its trainer takes no label rows)"
        if explicit:
            raise ConfigError(why)
        report(f"skipping {name}: {why}")
    if not out:
        raise ConfigError(f"no head to train with site labels ({len(labels.rows)} label rows read)")
    return out


def _check_candidate_dir(out_dir: Path) -> None:
    if out_dir.resolve() == HEADS_DIR.resolve():
        raise ConfigError(
            "a head trained with site labels is a candidate: write it elsewhere (--out DIR), compare it "
            "(`lookout rescore --head FILE`) and promote it (`lookout heads promote FILE`)"
        )


def train_heads(
    data_dir: Path,
    out_dir: Path = HEADS_DIR,
    names: Sequence[str] = HEAD_TRAINERS,
    seed: int = 0,
    cache_dir: Path | None = DEFAULT_CACHE,
    report: Callable[[str], None] = print,
    labels: SiteLabels | None = None,
    encoder: Encoder | None = None,
    card_note: str = "",
) -> list[LogisticHead]:
    """Train the named heads and write ``<out_dir>/<name>.json``; returns them.

    With ``labels``, each head also trains on its site label rows and is written as ``<name>.candidate.json``
    (``names`` must already be :func:`site_heads`'s choice). ``card_note`` goes at the top of each model card.
    """
    check_data_dir(data_dir)
    if labels is not None:
        _check_candidate_dir(out_dir)
    encoder = encoder or SentenceTransformerEncoder()
    out_dir.mkdir(parents=True, exist_ok=True)
    from evaluators import site_labels  # storage and the registry: imported only when a head is trained

    heads = []
    for name in names:
        report(f"training {name} ...")
        module = _module(name)
        site = {} if labels is None else {"site": labels.for_head(name)}
        head: LogisticHead = module.train(data_dir, encoder, seed=seed, cache_dir=cache_dir, **site)
        stem = name if labels is None else f"{name}.candidate"
        if labels is not None:
            head = site_labels.stamp(head, labels)
        head.save(out_dir / f"{stem}.json")
        head = LogisticHead.load(out_dir / f"{stem}.json")  # the card renders what ships (JSON key order)
        card = getattr(module, "model_card", None)
        if callable(card):
            text = card(head) + (site_labels.card_section(head) if labels is not None else "")
            if card_note:
                title, _, rest = text.partition("\n")
                text = f"{title}\n\n{card_note}\n{rest}"
            (out_dir / f"{stem}.md").write_text(text)
        report(f"wrote {out_dir / f'{stem}.json'} ({head.version})")
        heads.append(head)
    return heads


def evaluate_all(
    data_dir: Path,
    names: Sequence[str] = HEAD_TRAINERS,
    cache_dir: Path | None = DEFAULT_CACHE,
    report: Callable[[str], None] = print,
    encoder: Encoder | None = None,
) -> list[EvalRow]:
    """Every named detector's quality rows, baseline beside it; ``encoder`` is MiniLM (a new one by default)."""
    check_data_dir(data_dir)
    encoder = encoder or SentenceTransformerEncoder()
    rows: list[EvalRow] = []
    for name in names:
        report(f"evaluating {name} ...")
        rows.extend(_module(name).evaluate(data_dir, encoder, cache_dir=cache_dir))
    return rows


def markdown_table(rows: Sequence[EvalRow]) -> str:
    """docs/evaluation.md's quality table."""
    lines = [
        "| detector | dev set | metric | lookout | plain baseline | published |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        base = "" if r.baseline is None else f"{r.baseline:.3f}"
        lines.append(f"| {r.detector} | {r.dataset} | {r.metric} | {r.lookout:.3f} | {base} | {r.published} |")
    return "\n".join(lines)
