"""``lookout fit-bands``: fit the cascade's uncertainty bands on the heads' held-out records.

Per detector, both tiers score the same records (the held-out parts the heads were not trained on: Davidson's and
the wiki comments' for toxicity, HaluEval questions with right, hallucinated and other questions' answers for
relevance, HaluEval and BEGIN for hallucination). The records are split by a seeded hash into a fitting half and a
checking half. The band is the smallest half-width (log-odds around the default threshold) for which the fitting
half's fast flags outside the band disagree with the full tier's on at most ``1 - target`` of its records; the
checking half then reports the agreement and the share of records the full tier had to score. Deterministic: the
same data, seed and models give the same bands.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from agent.types import Message
from detectors.cascade import FAST_DIR, Bands, build_fast, log_odds
from detectors.encoder import SentenceTransformerEncoder, build_batch
from detectors.registry import build
from detectors.static_encoder import StaticEncoder
from detectors.types import Detector, Encoder, Turn

DEFAULT_TARGET = 0.995
"""Agreement the fitting half must reach (above the issue's 0.98, so the held-out half clears it)."""
DEFAULT_PER_DETECTOR = 3000


@dataclass(frozen=True)
class Rec:
    """A record for band fitting (satisfies :class:`detectors.types.Scorable`)."""

    prompt: str
    response: str
    context: tuple[str, ...] = ()
    history: tuple[Turn, ...] = ()
    label: int | None = None
    """The dataset's label where it has one (1: toxic / relevant / unsupported), for the AUC check."""


def _sample(records: list[Rec], n: int, seed: int) -> list[Rec]:
    if len(records) <= n:
        return records
    picked = np.random.default_rng(seed).choice(len(records), size=n, replace=False)
    return [records[i] for i in sorted(picked)]


def toxicity_records(data_dir: Path, n: int, seed: int) -> list[Rec]:
    """Toxicity records, each text as a response: half labelled sets, half chat.

    Held-out tweets and wiki comments, and held-out HH-RLHF user turns and replies (chat traffic, where a band
    fitted on tweets alone is too narrow). Fitting needs no labels, only texts both tiers score.
    """
    from evaluators.training import relevance, toxicity

    rows = [e for e in (*toxicity.load_davidson(data_dir), *toxicity.load_wiki(data_dir)) if e.held_out]
    labelled = _sample([Rec("", e.text, label=e.label) for e in rows if e.text.strip()], n // 2, seed)
    hh_path = data_dir / relevance.HH_FILE
    exchanges = [e for e in relevance.load_hh(hh_path) if relevance.held_out(e.group)] if hh_path.is_file() else []
    chat = [Rec("", text) for e in exchanges for text in (e.prompt, e.reply)]
    return labelled + _sample(chat, n - len(labelled), seed)


def relevance_records(data_dir: Path, n: int, seed: int) -> list[Rec]:
    """Held-out relevance records: HaluEval and HH-RLHF.

    HaluEval questions with their answers (right, hallucinated) and another question's answer; HH-RLHF chat turns
    (with the turns before them) with their reply and another conversation's reply.
    """
    from evaluators.training import relevance

    folder = data_dir / "hallucination" / "halueval_qa"
    questions = [q for q in relevance.load_halueval(folder) if relevance.held_out(q.group)]
    rng = np.random.default_rng(seed)
    out: list[Rec] = []
    for q, o in zip(questions, rng.integers(0, len(questions), size=len(questions)), strict=True):
        out.extend(Rec(q.question, a, label=1) for a in q.answers[:2])
        other = questions[int(o)]
        if other is not q:
            out.append(Rec(q.question, other.answers[0], label=0))
    hh_path = data_dir / relevance.HH_FILE
    exchanges = [e for e in relevance.load_hh(hh_path) if relevance.held_out(e.group)] if hh_path.is_file() else []
    for e, o in zip(exchanges, rng.integers(0, max(len(exchanges), 1), size=len(exchanges)), strict=True):
        history = tuple(Message(role, text) for role, text in (("user", e.user), ("assistant", e.assistant)) if text)
        out.append(Rec(e.prompt, e.reply, (), history, label=1))
        if exchanges[int(o)].group != e.group:
            out.append(Rec(e.prompt, exchanges[int(o)].reply, (), history, label=0))
    return _sample(out, n, seed)


def hallucination_records(data_dir: Path, n: int, seed: int) -> list[Rec]:
    """Held-out HaluEval and BEGIN records with their knowledge as context."""
    from evaluators.training import hallucination

    sets = hallucination.load_all(data_dir)
    rows = [e for examples in sets.values() for e in examples if hallucination.held_out(e.group)]
    return _sample([Rec(e.prompt, e.response, e.context, label=e.label) for e in rows], n, seed)


SETS: dict[str, Callable[[Path, int, int], list[Rec]]] = {
    "toxicity": toxicity_records,
    "relevance": relevance_records,
    "hallucination": hallucination_records,
}
SHARED_WIDTH = {"prompt_toxicity": "toxicity"}
"""Detectors that read another's fast head, and so take its band."""


def scores(detector: Detector, records: Sequence[Rec], encoder: Encoder) -> list[float | None]:
    """``detector``'s scores of ``records`` with embeddings from ``encoder``."""
    batch = build_batch(records, encoder, detector.needs)
    return [s.value for s in detector.score(batch)]


def _half(i: int, seed: int) -> int:
    return hashlib.sha256(f"{seed}:{i}".encode()).digest()[0] & 1


def choose_width(
    fast: Sequence[float | None], full: Sequence[float | None], threshold: float, higher_is_worse: bool, target: float
) -> float:
    """Smallest half-width (log-odds) leaving at most ``(1 - target) * n`` disagreeing flags outside the band."""
    t = log_odds(threshold)
    margins = []
    for f, g in zip(fast, full, strict=True):
        if f is None or g is None:
            continue  # both tiers share the rules that give None; a None is decided by the fast tier
        if _flag(f, threshold, higher_is_worse) != _flag(g, threshold, higher_is_worse):
            margins.append(abs(log_odds(f) - t))
    allowed = math.floor((1.0 - target) * len(fast) + 1e-9)
    if len(margins) <= allowed:
        return 0.0
    margins.sort(reverse=True)
    return float(np.nextafter(margins[allowed], math.inf))


def _flag(value: float, threshold: float, higher_is_worse: bool) -> bool:
    return value >= threshold if higher_is_worse else value < threshold


@dataclass(frozen=True)
class Check:
    """What one detector's band does on the checking half."""

    agreement: float
    """Share of records whose cascade flag equals the full tier's."""
    full_fraction: float
    """Share of records the full tier scored (inside the band)."""
    n: int
    decided: list[float | None]
    """The cascade's score per record (the full tier's inside the band, the fast tier's outside)."""


def check(
    fast: Sequence[float | None],
    full: Sequence[float | None],
    threshold: float,
    higher_is_worse: bool,
    width: float,
) -> Check:
    """The cascade's agreement with the full tier and its full-tier share, at ``width``."""
    agree = escalated = 0
    out: list[float | None] = []
    for f, g in zip(fast, full, strict=True):
        if f is None or g is None:
            agree += (f is None) == (g is None)
            out.append(f)
            continue
        inside = abs(log_odds(f) - log_odds(threshold)) < width
        escalated += inside
        decided = g if inside else f
        out.append(decided)
        agree += _flag(decided, threshold, higher_is_worse) == _flag(g, threshold, higher_is_worse)
    n = len(fast)
    return Check(agree / n if n else 1.0, escalated / n if n else 0.0, n, out)


def auc(labels: Sequence[int | None], values: Sequence[float | None]) -> float | None:
    """ROC AUC of ``values`` for the labelled records with a score (None: fewer than two classes)."""
    pairs = [(y, v) for y, v in zip(labels, values, strict=True) if y is not None and v is not None]
    if len({y for y, _ in pairs}) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score([y for y, _ in pairs], [v for _, v in pairs]))


def fit_bands(
    data_dir: Path,
    seed: int = 0,
    target: float = DEFAULT_TARGET,
    per_detector: int = DEFAULT_PER_DETECTOR,
    fast_dir: Path = FAST_DIR,
    report: Callable[[str], None] = print,
    full_encoder: Encoder | None = None,
    names: Sequence[str] = tuple(SETS),
) -> Bands:
    """Fit the named fast detectors' bands (default: every one); returns them (the caller writes the file)."""
    full_encoder = full_encoder or SentenceTransformerEncoder()
    fast_encoder = StaticEncoder()
    widths: dict[str, float] = {}
    checks: dict[str, dict[str, Any]] = {}
    for name in names:
        records = SETS[name](data_dir, per_detector, seed)
        if not records:
            raise ValueError(f"no held-out records for {name} under {data_dir}")
        report(f"fitting the {name} band on {len(records)} records ...")
        fast_det = build_fast([name], fast_dir)[name]
        full_det = build([name])[0]
        fast_scores = scores(fast_det, records, fast_encoder)
        full_scores = scores(full_det, records, full_encoder)
        threshold, worse = float(full_det.default_threshold), bool(full_det.higher_is_worse)
        halves = np.asarray([_half(i, seed) for i in range(len(records))])
        fit_ix: NDArray[np.intp] = np.flatnonzero(halves == 0)
        check_ix: NDArray[np.intp] = np.flatnonzero(halves == 1)

        def pick(values: list[float | None], ix: NDArray[np.intp]) -> list[float | None]:
            return [values[i] for i in ix]

        width = choose_width(pick(fast_scores, fit_ix), pick(full_scores, fit_ix), threshold, worse, target)
        result = check(pick(fast_scores, check_ix), pick(full_scores, check_ix), threshold, worse, width)
        fast_only = check(pick(fast_scores, check_ix), pick(full_scores, check_ix), threshold, worse, 0.0)
        widths[name] = round(width, 6)
        labels = [records[i].label for i in check_ix]
        auc_full, auc_cascade = auc(labels, pick(full_scores, check_ix)), auc(labels, result.decided)
        checks[name] = {
            "held_out_auc_full": None if auc_full is None else round(auc_full, 4),
            "held_out_auc_cascade": None if auc_cascade is None else round(auc_cascade, 4),
            "held_out_agreement": round(result.agreement, 4),
            "held_out_full_fraction": round(result.full_fraction, 4),
            "fast_only_agreement": round(fast_only.agreement, 4),
            "threshold": threshold,
            "n_fit": len(fit_ix),
            "n_check": result.n,
        }
        report(
            f"  {name}: width {width:.3f} log-odds, held-out agreement {result.agreement:.4f} "
            f"(fast alone {fast_only.agreement:.4f}), full tier on {result.full_fraction:.1%}; AUC on the labelled "
            f"records: full {auc_full}, cascade {auc_cascade}"
        )
    for name, source in SHARED_WIDTH.items():
        if source in widths:
            widths[name] = widths[source]
    meta = {
        "seed": seed,
        "target": target,
        "per_detector": per_detector,
        "fitted": datetime.now(UTC).date().isoformat(),
        "fast_heads": {n: build_fast([n], fast_dir)[n].version for n in names},
        "full_encoder": full_encoder.name,
        "fast_encoder": fast_encoder.name,
        "checks": checks,
        "command": f"lookout fit-bands --data DIR --seed {seed} --target {target}",
    }
    return Bands(widths, meta)
