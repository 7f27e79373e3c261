r"""The site's review labels as training rows for the heads (``lookout train-heads --labels``).

A verdict says whether a detector's flag (or its silence) was right for a record. Joined with whether the
detector flagged the record at ingest, it gives the record's true label in the detector's direction:

============  =========  ==========================
flagged       verdict    the record should be flagged
============  =========  ==========================
yes           confirm    yes (a true alarm)
yes           reject     no (a false alarm)
no            confirm    no (rightly silent)
no            reject     yes (a miss)
============  =========  ==========================

The row's label is in the *head's* direction: toxic (toxicity, prompt_toxicity) and unsupported
(hallucination) heads predict "should be flagged"; the relevance head predicts relevance, and relevance flags
low scores, so its label is the opposite. The text a row carries is what the detector reads: the response
(toxicity), the prompt (prompt_toxicity), prompt and response with the turns before (relevance), context and
response (hallucination). Records whose text that detector needs is blank (expired by the raw-text TTL, no
context) give no row.

Split: SHA-256 of ``site\n<record id>``, modulo 10, below :data:`HELD_OUT_BUCKETS` is held out (≈30 %):
never trained on, only measured by ``lookout rescore --head``. Labels are the site's own data: a head trained
with them says so in its metadata and stays with the deployment (never commit it or the labels).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from agent.storage.client import Client
from agent.storage.records import ExportFilter, Row, iter_rows
from detectors.head import LogisticHead
from detectors.promoted import HEAD_OF
from detectors.registry import flag_rule
from evaluators.stored import utc

HELD_OUT_BUCKETS = 3
"""Records whose ``sha256('site\\n' + id) % 10`` is below this are held out (≈30 %)."""
DEFAULT_WEIGHT = 5.0
"""Training weight of one label row (a public training row weighs about 1)."""
SPLIT_RULE = f"sha256('site\\n' + record_id) % 10 < {HELD_OUT_BUCKETS} held out (evaluation only)"
LICENCE = "the site's own review labels: private to this deployment; do not commit this head or the labels"


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier turn of a labeled record."""

    role: str
    """Speaker role."""
    content: str
    """Text."""


@dataclass(frozen=True, slots=True)
class LabelRow:
    """One verdict on one detector for one stored record, as a training or evaluation row of that detector's head.

    It is a :class:`~detectors.types.Scorable`, so a detector scores it like the record it came from.
    """

    record_id: str
    """The record."""
    detector: str
    """The detector the verdict is about."""
    head: str
    """The head that detector scores with."""
    verdict: str
    """``confirm`` or ``reject``."""
    flagged: bool
    """Whether the detector flagged the record at ingest."""
    labeled_at: datetime
    """When the label was given (UTC)."""
    prompt: str
    """The record's prompt."""
    response: str
    """The record's response."""
    context: tuple[str, ...] = ()
    """Retrieved passages."""
    history: tuple[Turn, ...] = ()
    """Earlier turns."""
    tenant: str = ""
    """Tenant of the record."""

    @property
    def should_flag(self) -> bool:
        """The truth in the detector's direction: flagged and confirmed, or unflagged and rejected (a miss)."""
        return self.flagged == (self.verdict == "confirm")

    @property
    def label(self) -> int:
        """The truth in the head's direction (1 = toxic / unsupported / relevant)."""
        return int(self.should_flag if flag_rule(self.detector).higher_is_worse else not self.should_flag)

    @property
    def held_out(self) -> bool:
        """Whether the record is in the held-out part (see :func:`held_out`)."""
        return held_out(self.record_id)


def held_out(record_id: str, buckets: int = HELD_OUT_BUCKETS) -> bool:
    """Whether ``record_id`` is held out for evaluation (deterministic SHA-256 bucket)."""
    digest = hashlib.sha256(("site\n" + record_id).encode("utf-8", "surrogatepass")).hexdigest()
    return int(digest, 16) % 10 < buckets


def usable(detector: str, prompt: str, response: str, context: Sequence[str]) -> bool:
    """Whether the record has the text ``detector`` reads (a blank one would teach the head nothing)."""
    if detector == "prompt_toxicity":
        return bool(prompt.strip())
    if detector == "relevance":
        return bool(prompt.strip() and response.strip())
    if detector == "hallucination":
        return bool(response.strip() and any(p.strip() for p in context))
    return bool(response.strip())


def rows_of(row: Row) -> list[LabelRow]:
    """The label rows of one exported record: one per verdict on a detector that has a head."""
    rec, label = row.record, row.label
    if rec is None or label is None:
        return []
    out = []
    for detector, verdict in sorted(label.verdicts.items()):
        if detector not in HEAD_OF or not usable(detector, rec["prompt"], rec["response"], rec["context"]):
            continue
        out.append(
            LabelRow(
                record_id=row.record_id,
                detector=detector,
                head=HEAD_OF[detector],
                verdict=str(verdict),
                flagged=detector in rec["flags"],
                labeled_at=utc(label.labeled_at),
                prompt=rec["prompt"],
                response=rec["response"],
                context=tuple(rec["context"]),
                history=tuple(Turn(t["role"], t["content"]) for t in rec["history"]),
                tenant=rec["tenant"],
            )
        )
    return out


def read_label_rows(client: Client, db: str, filt: ExportFilter | None = None) -> list[LabelRow]:
    """Every label row of the labeled records ``filt`` selects (each record's latest label), in record order."""
    scope = dataclasses.replace(filt or ExportFilter(), label_state="labeled")
    return [r for row in iter_rows(client, db, scope) for r in rows_of(row)]


@dataclass(frozen=True, slots=True)
class SiteRows:
    """The label rows one head trains on (the held-out part removed), with their weight."""

    head: str
    """The head."""
    rows: tuple[LabelRow, ...]
    """Training rows (none held out)."""
    weight: float
    """Sample weight of each row."""


@dataclass(frozen=True, slots=True)
class SiteLabels:
    """Every label row read from storage, and the weight a training row gets."""

    rows: tuple[LabelRow, ...]
    """All rows, held-out ones included."""
    weight: float = DEFAULT_WEIGHT
    """Sample weight of a training row."""

    def heads(self) -> list[str]:
        """Heads that have at least one training row."""
        return sorted({r.head for r in self.rows if not r.held_out})

    def for_head(self, head: str) -> SiteRows:
        """The training rows of ``head``."""
        return SiteRows(head, tuple(r for r in self.rows if r.head == head and not r.held_out), self.weight)

    def summary(self, head: str) -> dict[str, Any]:
        """What a head trained with these labels records in its metadata (counts, split, label set)."""
        rows = [r for r in self.rows if r.head == head]
        train = [r for r in rows if not r.held_out]
        detectors: dict[str, dict[str, int]] = {}
        for r in rows:
            d = detectors.setdefault(r.detector, {"train": 0, "held_out": 0, "train_positive": 0})
            d["held_out" if r.held_out else "train"] += 1
            d["train_positive"] += 0 if r.held_out else r.label
        return {
            "train_rows": len(train),
            "held_out_rows": len(rows) - len(train),
            "weight": self.weight,
            "by_detector": detectors,
            "split": SPLIT_RULE,
            "held_out_buckets": HELD_OUT_BUCKETS,
            "label_set_sha256": label_set_digest(train),
            "labeled_until": max((r.labeled_at for r in rows), default=None),
            "labels": "flagged+confirm and unflagged+reject (a miss) = should flag; relevance's head label is the "
            "opposite (it predicts relevance)",
        }


def label_set_digest(rows: Iterable[LabelRow]) -> str:
    """SHA-256 of the sorted (record id, detector, verdict, flagged) of ``rows``: names the label set used."""
    keys = sorted((r.record_id, r.detector, r.verdict, r.flagged) for r in rows)
    return hashlib.sha256(json.dumps(keys).encode("utf-8", "surrogatepass")).hexdigest()


def stamp(head: LogisticHead, labels: SiteLabels, today: date | None = None) -> LogisticHead:
    """``head`` as a site candidate: version ``site-<date>-<hash>``, its metadata saying which labels it used."""
    summary = labels.summary(head.name)
    until = summary["labeled_until"]
    summary["labeled_until"] = until.isoformat() if until is not None else None
    weights = [head.coef.tolist(), head.intercept, head.mean.tolist(), summary["label_set_sha256"]]
    digest = hashlib.sha256(json.dumps(weights, sort_keys=True).encode()).hexdigest()[:8]
    meta = dict(head.meta)
    meta["licenses"] = {**dict(meta.get("licenses", {})), "site_labels": LICENCE}
    meta["site_labels"] = {**summary, "public_version": head.version}
    meta["retrain"] = "lookout train-heads --data DIR --labels"
    when = today or datetime.now(UTC).date()
    return dataclasses.replace(head, version=f"site-{when.isoformat()}-{digest}", meta=meta)


def card_section(head: LogisticHead) -> str:
    """The model card's section on the site labels a candidate head was trained with."""
    site = head.meta.get("site_labels") or {}
    per = "\n".join(
        f"| {name} | {d['train']} | {d['train_positive']} | {d['held_out']} |"
        for name, d in sorted(site.get("by_detector", {}).items())
    )
    return f"""
## Site labels
Trained with this deployment's review labels as well (version `{head.version}`, public-data fit
`{site.get("public_version", "")}`): {site.get("train_rows", 0)} label rows at weight {site.get("weight")} each
(labels given up to {site.get("labeled_until")}; label set SHA-256 `{site.get("label_set_sha256", "")}`).
Split: {site.get("split", SPLIT_RULE)}; held-out rows: {site.get("held_out_rows", 0)}. Compare it with the
current head on them: `lookout rescore --head FILE`; promote it with `lookout heads promote FILE`.
Licence: {LICENCE}.

| detector | train rows | of them should-flag / relevant | held out |
|---|---|---|---|
{per}
"""
