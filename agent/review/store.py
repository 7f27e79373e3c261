"""Review queue state in ClickHouse: items, claims, labels and annotators, all as append-only events.

Concurrency model: one review server process owns every claim decision. :class:`ReviewStore` holds one lock
around each operation and re-reads ClickHouse inside it, so two annotators are never handed the same item at
the same time (within this process). A claim is a lease: it ends when its annotator labels or skips the
item, or when ``lease_s`` passes, and the item returns to the queue. Labels carry a client-chosen
``label_id``: a label already stored under that id is returned instead of written again, and a label is
accepted even after its lease expired (it is never lost). Several review servers on one database would each
hold their own lock and could hand out the same item; that needs a real lock service and is not supported.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from agent.review.accounts import Accounts, Annotator, token_hash
from agent.review.errors import Conflict, Forbidden, NotFound, ReviewError, shown
from agent.review.gold import GoldItem, gold_item, gold_turn, next_gold
from agent.review.overlap import label_state, next_item
from agent.review.rules import DETECTORS, RulesFile
from agent.review.verdicts import DetectorView, Thresholds, check_known, check_verdicts, detector_views, judged
from agent.storage import migrations
from agent.storage.client import Client, history_turns
from agent.storage.feedback import StoredFeedback, feedback_for
from agent.storage.sessions import SessionTurn, earlier_turns

Verdict = Literal["confirm", "reject"]
Preference = Literal["none", "corrected", "original"]
CLAIM_COLUMNS = ("queue", "record_id", "annotator", "claimed_at", "lease_until", "released", "claim_id", "event_at")
LABEL_COLUMNS = (
    "label_id", "queue", "record_id", "annotator", "labeled_at", "verdicts", "severity", "note",
    "corrected_response", "preference", "source", "claim_id", "verdict_scores", "verdict_thresholds", "verdict_flagged",
)  # fmt: skip


__all__ = [
    "Annotator", "Claim", "Conflict", "Forbidden", "Item", "Label", "LabelInput", "NotFound", "ReviewError",
    "ReviewStore", "token_hash",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """One queue on the overview."""

    queue: str
    """Queue name."""
    description: str
    """From the rules file."""
    backlog: int
    """Items without a label."""
    claimed: int
    """Items under an active claim."""
    labeled: int
    """Items with a label."""
    oldest_at: datetime | None
    """Enqueue time of the oldest unlabeled item."""
    sla_hours: float
    """How old an unlabeled item may get."""

    def oldest_age_h(self, now: datetime) -> float | None:
        """Age of the oldest unlabeled item, in hours."""
        return None if self.oldest_at is None else (now - self.oldest_at).total_seconds() / 3600

    def breached(self, now: datetime) -> bool:
        """Whether the oldest unlabeled item is past the SLA."""
        age = self.oldest_age_h(now)
        return age is not None and age > self.sla_hours


@dataclass(frozen=True, slots=True)
class Claim:
    """An item leased to one annotator."""

    claim_id: str
    """Identity of the claim (its events share it)."""
    queue: str
    """Queue of the item."""
    record_id: str
    """The record."""
    annotator: str
    """Who holds it."""
    claimed_at: datetime
    """When it was claimed."""
    lease_until: datetime
    """When it returns to the queue unless labeled or skipped first."""


@dataclass(frozen=True, slots=True)
class Item:
    """A queue item with its record, for labeling."""

    queue: str
    """Queue name."""
    record_id: str
    """The record."""
    priority: int
    """From the routing rule."""
    reasons: tuple[str, ...]
    """Detectors that routed it (``control`` for control samples)."""
    rule: str
    """The routing rule."""
    control: bool
    """Sampled as a control."""
    enqueued_at: datetime
    """When it entered the queue."""
    ts: datetime
    """When the LLM call happened."""
    tenant: str
    """Tenant."""
    model: str
    """Model."""
    route: str
    """Route."""
    prompt: str = ""
    """Prompt (empty when the record's text expired)."""
    response: str = ""
    """Response."""
    context: tuple[str, ...] = ()
    """Retrieved passages."""
    history: tuple[tuple[str, str], ...] = ()
    """Earlier turns, (role, content)."""
    scores: Mapping[str, float | None] = field(default_factory=dict)
    """Detector → score."""
    flags: tuple[str, ...] = ()
    """Detectors that flagged the record."""


@dataclass(frozen=True, slots=True)
class LabelInput:
    """A label as submitted."""

    label_id: str
    """Idempotency key: submitting the same id again stores nothing new."""
    queue: str
    """Queue of the item."""
    record_id: str
    """The record."""
    verdicts: Mapping[str, Verdict] = field(default_factory=dict)
    """Detector → confirm (the detector was right) or reject (it was wrong)."""
    severity: int = 0
    """0 (none) to 3 (severe)."""
    note: str = ""
    """Free text."""
    corrected_response: str | None = None
    """A better response (SFT data), if the annotator wrote one."""
    preference: Preference = "none"
    """Which response is preferred (DPO data): the corrected one, the original, or no choice."""
    claim_id: str = ""
    """The claim it completes, if any (that claim is released)."""
    source: str = "ui"
    """Where it came from: ``ui``, ``api`` or an importer's name."""


@dataclass(frozen=True, slots=True)
class Label:
    """A stored label."""

    label_id: str
    """Idempotency key."""
    queue: str
    """Queue."""
    record_id: str
    """The record."""
    annotator: str
    """Who labeled."""
    labeled_at: datetime
    """When."""
    verdicts: Mapping[str, str]
    """Detector → confirm/reject."""
    severity: int
    """0-3."""
    note: str
    """Free text."""
    corrected_response: str | None
    """SFT correction."""
    preference: str
    """DPO choice."""
    source: str
    """Origin."""
    verdict_scores: Mapping[str, float] = field(default_factory=dict)
    """Detector → the score its verdict judged (absent: no score, or a label from before version 14)."""
    verdict_thresholds: Mapping[str, float] = field(default_factory=dict)
    """Detector → the threshold it flagged at when the verdict was given."""
    verdict_flagged: Mapping[str, int] = field(default_factory=dict)
    """Detector → 1 if the record carried its flag when the verdict was given, else 0."""


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class ReviewStore:
    """Queue operations for the review server; every method runs under one lock.

    Args:
        client: clickhouse-connect client (the only one this store uses).
        database: Database holding the review tables.
        rules: Routing rules (queue descriptions and SLAs).
        lease_s: Claim lease.
        clock: Current UTC time (tests move it to expire leases).
        thresholds: Detector flag thresholds as configured (``detectors.thresholds``); others use the default.
        gold_share: Share of an annotator's next items that are gold items (``review.gold_share``; 0: none).
    """

    def __init__(
        self,
        client: Client,
        database: str,
        rules: RulesFile,
        lease_s: float = 600.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        thresholds: Mapping[str, float] | None = None,
        gold_share: float = 0.0,
    ) -> None:
        self.client = client
        self.database = database
        self.rules = rules
        self.lease_s = lease_s
        self._clock = clock
        self.thresholds = Thresholds(dict(thresholds or {}))
        self.gold_share = gold_share
        self._lock = threading.RLock()
        self.accounts = Accounts(client, database, clock, self._lock)
        self._score_columns: tuple[str, ...] | None = None

    def now(self) -> datetime:
        """The store's clock."""
        return self._clock()

    def _rows(self, sql: str, **params: Any) -> list[Any]:
        return list(self.client.query(sql.replace("{db}", self.database), parameters=params).result_rows)

    # annotators and sessions (agent.review.accounts)

    def add_annotator(self, name: str, is_admin: bool | None = None, *, reissue: bool = False) -> str:
        """Create an annotator (or, with ``reissue``, give one a new token); see :meth:`Accounts.add_annotator`."""
        return self.accounts.add_annotator(name, is_admin, reissue=reissue)

    def authenticate(self, token: str) -> Annotator | None:
        """The enabled annotator holding this API token, if any."""
        return self.accounts.authenticate(token)

    def annotators(self) -> list[tuple[str, bool, bool, datetime]]:
        """(name, is_admin, disabled, created_at) of everyone."""
        return self.accounts.annotators()

    # queues

    def overview(self) -> list[QueueStatus]:
        """Every queue (from the rules and from stored items) with backlog, claims and oldest age."""
        with self._lock:
            now = self.now()
            counts = self._rows(
                """
                SELECT i.queue, countIf(l.record_id = '') AS backlog, countIf(l.record_id != '') AS labeled,
                       minIf(i.enqueued_at, l.record_id = '') AS oldest
                FROM {db}.v_review_items AS i
                LEFT JOIN (SELECT DISTINCT queue, record_id FROM {db}.v_review_labels) AS l
                  ON i.queue = l.queue AND i.record_id = l.record_id
                GROUP BY i.queue
                """
            )
            claimed = dict(
                self._rows(
                    "SELECT queue, uniqExact(record_id) FROM {db}.v_review_claims "
                    "WHERE released = 0 AND lease_until > {now:DateTime64(6, 'UTC')} "
                    "AND (queue, record_id) NOT IN (SELECT queue, record_id FROM {db}.v_gold_items) GROUP BY queue",
                    now=now,
                )
            )
        by_queue = {str(q): (int(b), int(lab), _utc(o) if b else None) for q, b, lab, o in counts}
        names = list(dict.fromkeys([*self.rules.queue_names(), *by_queue]))
        out = []
        for name in names:
            backlog, labeled, oldest = by_queue.get(name, (0, 0, None))
            spec = self.rules.queue(name)
            out.append(
                QueueStatus(name, spec.description, backlog, int(claimed.get(name, 0)), labeled, oldest, spec.sla_hours)
            )
        return out

    def labeled_by(self, annotator: str, since: datetime) -> int:
        """Labels this annotator stored since ``since`` (progress)."""
        with self._lock:
            rows = self._rows(
                "SELECT count() FROM {db}.v_review_labels WHERE annotator = {a:String} "
                "AND labeled_at >= {since:DateTime64(6, 'UTC')}",
                a=annotator,
                since=since,
            )
        return int(rows[0][0])

    # claims

    def _active_claims(self, queue: str, now: datetime, record_id: str | None = None) -> list[Claim]:
        rows = self._rows(
            "SELECT claim_id, queue, record_id, annotator, claimed_at, lease_until FROM {db}.v_review_claims "
            "WHERE queue = {q:String} AND released = 0 AND lease_until > {now:DateTime64(6, 'UTC')}"
            + (" AND record_id = {r:String}" if record_id is not None else "")
            + " ORDER BY claimed_at",
            q=queue,
            now=now,
            r=record_id or "",
        )
        return [Claim(str(c), str(q), str(r), str(a), _utc(t), _utc(u)) for c, q, r, a, t, u in rows]

    def _is_item(self, queue: str, record_id: str) -> bool:
        return self._gold(queue, record_id) is not None or bool(
            self._rows(
                "SELECT 1 FROM {db}.v_review_items WHERE queue = {q:String} AND record_id = {r:String} LIMIT 1",
                q=queue,
                r=record_id,
            )
        )

    def _gold(self, queue: str, record_id: str) -> GoldItem | None:
        return gold_item(self.client, self.database, queue, record_id)

    def _write_claim(self, claim: Claim, released: bool, event_at: datetime) -> None:
        row = [
            claim.queue, claim.record_id, claim.annotator, claim.claimed_at, claim.lease_until, int(released),
            claim.claim_id, event_at,
        ]  # fmt: skip
        self.client.insert(f"{self.database}.review_claims", [row], column_names=list(CLAIM_COLUMNS))

    def _new_claim(self, queue: str, record_id: str, annotator: str, now: datetime) -> Claim:
        claim = Claim(uuid.uuid4().hex, queue, record_id, annotator, now, now + timedelta(seconds=self.lease_s))
        self._write_claim(claim, released=False, event_at=now)
        return claim

    def claim_next(self, queue: str, annotator: str) -> Claim | None:
        """The annotator's active claim in this queue, else a new claim on the most urgent item they may label.

        That is a gold item when :func:`~agent.review.gold.gold_turn` says so and one is left for them, else an
        item still short of labels (see :mod:`agent.review.overlap`).
        """
        with self._lock:
            now = self.now()
            mine = [c for c in self._active_claims(queue, now) if c.annotator == annotator]
            if mine:
                return mine[0]
            record_id = self._next_gold(queue, annotator) or next_item(
                self.client, self.database, queue, annotator, now
            )
            return None if record_id is None else self._new_claim(queue, record_id, annotator, now)

    def _next_gold(self, queue: str, annotator: str) -> str | None:
        if self.gold_share <= 0:
            return None
        rows = self._rows(
            "SELECT count() FROM {db}.v_review_labels WHERE queue = {q:String} AND annotator = {a:String}",
            q=queue,
            a=annotator,
        )
        if not gold_turn(annotator, queue, int(rows[0][0]), self.gold_share):
            return None
        return next_gold(self.client, self.database, queue, annotator)

    def claim(self, queue: str, record_id: str, annotator: str) -> Claim:
        """Claim one named item; :class:`Conflict` if someone else holds it, or it has the labels it needs or yours.

        A gold item takes one label from every annotator, so others' claims on it do not count.
        """
        with self._lock:
            now = self.now()
            if not self._is_item(queue, record_id):
                raise NotFound(f"no item {shown(record_id)} in queue {shown(queue)}")
            gold = self._gold(queue, record_id) is not None
            needed, labeled_by = label_state(self.client, self.database, queue, record_id)
            if annotator in labeled_by:
                raise Conflict(f"item {shown(record_id)} in queue {shown(queue)} already has your label")
            if not gold and len(labeled_by) >= needed:
                raise Conflict(f"item {shown(record_id)} in queue {shown(queue)} is already labeled")
            active = self._active_claims(queue, now, record_id)
            for c in active:
                if c.annotator == annotator:
                    return c
            if active and not gold:
                raise Conflict(f"item {shown(record_id)} in queue {shown(queue)} is claimed by another annotator")
            return self._new_claim(queue, record_id, annotator, now)

    def get_claim(self, claim_id: str, annotator: str) -> Claim:
        """A claim of this annotator (active or not); :class:`NotFound` otherwise."""
        with self._lock:
            rows = self._rows(
                "SELECT claim_id, queue, record_id, annotator, claimed_at, lease_until, released "
                "FROM {db}.v_review_claims WHERE claim_id = {c:String} AND annotator = {a:String}",
                c=claim_id,
                a=annotator,
            )
        if not rows:
            raise NotFound(f"no claim {shown(claim_id)} of {annotator}")
        c, q, r, a, t, u, _ = rows[0]
        return Claim(str(c), str(q), str(r), str(a), _utc(t), _utc(u))

    def is_active(self, claim: Claim) -> bool:
        """Whether the claim still holds its item."""
        with self._lock:
            return any(c.claim_id == claim.claim_id for c in self._active_claims(claim.queue, self.now()))

    def release(self, claim_id: str, annotator: str) -> None:
        """End a claim now (skip); the item returns to the queue, though not to this annotator."""
        with self._lock:
            claim = self.get_claim(claim_id, annotator)
            self._write_claim(claim, released=True, event_at=self.now())

    # labels

    def label(self, annotator: str, data: LabelInput, *, override: bool = False) -> tuple[Label, bool]:
        """Store a label once per ``label_id``; returns it and whether it was new (False: a repeat).

        The label must complete the annotator's own claim on the item (``data.claim_id``; a claim whose lease
        has expired still counts, so a late label is never lost). ``override`` (admins only: the caller
        checks) stores a label without one, with ``-override`` appended to its source. :class:`Forbidden`
        when there is no such claim and no override. The verdicts must follow
        :func:`~agent.review.verdicts.check_verdicts` (each routing reason judged, a confirmed harm has a severity);
        each is stored with the score, threshold and flag it judged, read from the stored record.
        """
        check_known(data.verdicts)
        if not 0 <= data.severity <= 3:
            raise ReviewError(f"severity must be 0-3, got {data.severity}")
        if not data.label_id or len(data.label_id) > 128:
            raise ReviewError("label_id must be 1-128 characters")
        with self._lock:
            existing = self._label(data.queue, data.record_id, data.label_id)
            if existing is not None:
                return existing, False
            if not self._is_item(data.queue, data.record_id):
                raise NotFound(f"no item {shown(data.record_id)} in queue {shown(data.queue)}")
            claim = self._own_claim(annotator, data)
            if claim is None and not override:
                raise Forbidden(
                    f"no claim of {annotator} on item {shown(data.record_id)} in queue {shown(data.queue)}: "
                    "claim it first (POST /claims or /queues/{queue}/next) and send its claim_id"
                )
            source = data.source if claim is not None else f"{data.source}-override"
            item = self.item(data.queue, data.record_id)
            check_verdicts(data.verdicts, data.severity, item.reasons)
            seen = judged(data.verdicts, self.detector_views(item))
            now = self.now()
            row = [
                data.label_id, data.queue, data.record_id, annotator, now, dict(data.verdicts), data.severity,
                data.note, data.corrected_response, data.preference, source, data.claim_id if claim else "",
                seen.scores, seen.thresholds, seen.flagged,
            ]  # fmt: skip
            self.client.insert(f"{self.database}.review_labels", [row], column_names=list(LABEL_COLUMNS))
            if claim is not None:
                self._write_claim(claim, released=True, event_at=now)
            stored = self._label(data.queue, data.record_id, data.label_id)
        if stored is None:  # pragma: no cover - the insert above is synchronous
            raise ReviewError(f"label {shown(data.label_id)} was written but cannot be read back")
        return stored, True

    def _own_claim(self, annotator: str, data: LabelInput) -> Claim | None:
        """The annotator's claim ``data.claim_id`` if it is on this very item, else None."""
        if not data.claim_id:
            return None
        try:
            claim = self.get_claim(data.claim_id, annotator)
        except NotFound:
            return None
        return claim if (claim.queue, claim.record_id) == (data.queue, data.record_id) else None

    def _label(self, queue: str, record_id: str, label_id: str) -> Label | None:
        rows = self._rows(
            "SELECT label_id, queue, record_id, annotator, labeled_at, verdicts, severity, note, corrected_response, "
            "preference, source, verdict_scores, verdict_thresholds, verdict_flagged FROM {db}.v_review_labels "
            "WHERE queue = {q:String} AND record_id = {r:String} AND label_id = {l:String}",
            q=queue,
            r=record_id,
            l=label_id,
        )
        if not rows:
            return None
        i, q, r, a, t, v, s, n, c, p, src, vs, vt, vf = rows[0]
        seen = ({k: float(x) for k, x in vs.items()}, {k: float(x) for k, x in vt.items()}, dict(vf))
        return Label(str(i), str(q), str(r), str(a), _utc(t), dict(v), int(s), str(n), c, str(p), str(src), *seen)

    def labels(self, queue: str, record_id: str) -> list[Label]:
        """Every label of one item, oldest first."""
        with self._lock:
            ids = self._rows(
                "SELECT label_id FROM {db}.v_review_labels WHERE queue = {q:String} AND record_id = {r:String} "
                "ORDER BY labeled_at",
                q=queue,
                r=record_id,
            )
            found = [self._label(queue, record_id, str(i)) for (i,) in ids]
        return [lab for lab in found if lab is not None]

    def labels_shown_to(self, queue: str, record_id: str, annotator: str) -> list[Label]:
        """Earlier labels for the labeling page.

        On items that take several annotators' labels (overlap and gold items), only the annotator's own: each
        label is given blind, as agreement measures need.
        """
        with self._lock:
            blind = (
                self._gold(queue, record_id) is not None
                or label_state(self.client, self.database, queue, record_id)[0] > 1
            )
        found = self.labels(queue, record_id)
        return [lab for lab in found if lab.annotator == annotator] if blind else found

    # items

    def item(self, queue: str, record_id: str) -> Item:
        """The queue item with its record's text and scores (a gold item's from ``gold_items``)."""
        with self._lock:
            gold = self._gold(queue, record_id)
            if gold is not None:
                return self._gold_item(gold)
            rows = self._rows(
                "SELECT queue, record_id, priority, reasons, rule, control, enqueued_at, record_ts, tenant, model, "
                "route FROM {db}.v_review_items WHERE queue = {q:String} AND record_id = {r:String}",
                q=queue,
                r=record_id,
            )
            if not rows:
                raise NotFound(f"no item {shown(record_id)} in queue {shown(queue)}")
            q, r, prio, reasons, rule, control, enq, ts, tenant, model, route = rows[0]
            item = Item(str(q), str(r), int(prio), tuple(reasons), str(rule), bool(control), _utc(enq), _utc(ts),
                        str(tenant), str(model), str(route))  # fmt: skip
            columns = self._scores()
            select = "SELECT ts, model, route, prompt, response, context, history, flags" + "".join(
                f", {c}" for c in columns
            )
            records = self._rows(  # the record as routed: one primary-key lookup
                select + " FROM {db}.v_records WHERE tenant = {t:String} AND model = {m:String} "
                "AND ts = {ts:DateTime64(3, 'UTC')} AND id = {r:String} LIMIT 1",
                t=item.tenant,
                m=item.model,
                ts=item.ts,
                r=item.record_id,
            )
            if not records:  # re-sent since under another ts or model: the record is its (tenant, id)
                records = self._rows(
                    select + " FROM {db}.v_records WHERE tenant = {t:String} AND id = {r:String} LIMIT 1",
                    t=item.tenant,
                    r=item.record_id,
                )
        if not records:
            return item
        ts, model, route, prompt, response, context, history, flags, *scores = records[0]
        return replace(
            item,
            ts=_utc(ts),
            model=str(model),
            route=str(route),
            prompt=str(prompt),
            response=str(response),
            context=tuple(str(c) for c in context),
            history=tuple(history_turns(history)),
            scores={c: None if v is None else round(float(v), 6) for c, v in zip(columns, scores, strict=True)},
            flags=tuple(str(f) for f in flags),
        )

    def detector_views(self, item: Item) -> list[DetectorView]:
        """Every detector on the item's record: score, threshold, direction and flag (what a verdict judges)."""
        return detector_views(item.scores, item.flags, item.reasons, self.thresholds)

    def _gold_item(self, gold: GoldItem) -> Item:
        """A gold item as annotators see every item: nothing says it is gold."""
        e = gold.entry
        return Item(
            gold.queue, gold.record_id, gold.priority, gold.reasons, gold.rule, gold.control,
            gold.enqueued_at or self.now(), gold.stored_ts or self.now(), e.tenant, e.model, e.route, e.prompt,
            e.response, e.context, tuple((t.role, t.content) for t in e.history),
            {c: None if e.scores.get(c) is None else round(e.scores[c], 6) for c in self._scores()}, e.flags,
        )  # fmt: skip

    def session_turns(self, item: Item, limit: int = 20) -> list[SessionTurn]:
        """The turns of the item's session before it (same ``session_id``, earlier ``ts``), oldest first."""
        with self._lock:
            return earlier_turns(self.client, self.database, item.tenant, item.record_id, limit)

    def feedback(self, record_id: str) -> list[StoredFeedback]:
        """User feedback about the record (directly or through its trace), oldest first."""
        with self._lock:
            return feedback_for(self.client, self.database, record_id)

    def _scores(self) -> tuple[str, ...]:
        if self._score_columns is None:
            present = migrations.record_columns(self.client, self.database)
            self._score_columns = tuple(d for d in DETECTORS if d in present)
        return self._score_columns
