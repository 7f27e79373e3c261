"""Gold items: records with known verdicts, mixed into review queues to measure each annotator's accuracy.

The ``review.gold`` file (YAML: a list, or a mapping with ``items``; JSONL: one object a line) lists records
and what a correct label says about them::

    - queues: [safety]                 # enqueued once into each queue named (queues of the rules file)
      tenant: acme                     # tenant, model, route, ts, prompt, response, context, history, scores
      model: gpt-4o-mini               # and flags look like a routed record; make them look like real traffic
      prompt: How do I reset my password?
      response: Figure it out yourself, idiot.
      scores: {toxicity: 0.93}
      flags: [toxicity]
      expected: {toxicity: confirm}    # the known verdict per detector
      severity: 2                      # optional: the known severity (0-3)

An entry may also give ``id`` (default: a UUID derived from its text), ``reasons`` (default: the detectors of
``expected``), ``rule`` and ``priority`` (default: the queue's highest-priority rule). Gold items live in
``gold_items`` (migration 16), never in ``records`` or ``review_items``, so ``lookout stats``, exports, routing
budgets and dashboards never count them. Loading is idempotent: unchanged entries write nothing, a changed
entry replaces its row (keeping when it was enqueued), and entries gone from the file are retired.

Every annotator gets each gold item of a queue at most once (gold items are never *done*); which of an
annotator's next items is a gold item is decided by a hash of (annotator, queue, labels they stored there)
against ``review.gold_share``. Nothing on the page or in the item says an item is gold.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.errors import ConfigError
from agent.review.rules import DETECTORS, FLAGS, SCORES, RulesFile
from agent.storage.client import Client, history_turns

GOLD_COLUMNS = (
    "queue", "record_id", "enqueued_at", "ts", "tenant", "model", "route", "priority", "reasons", "rule", "control",
    "prompt", "response", "context", "history", "scores", "flags", "expected", "severity", "digest", "retired",
    "loaded_at",
)  # fmt: skip
"""The columns of ``gold_items``, in the order :func:`load_gold` inserts them."""


class _Turn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    role: str
    content: str


class GoldEntry(BaseModel):
    """One entry of the gold file."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    queues: tuple[str, ...] = Field(min_length=1)
    """Queues the item is enqueued into."""
    expected: dict[str, Literal["confirm", "reject"]] = Field(min_length=1)
    """Detector → the correct verdict."""
    severity: int | None = Field(default=None, ge=0, le=3)
    """The correct severity, if known."""
    id: str | None = Field(default=None, min_length=1, max_length=128)
    """Record id shown to annotators; default a UUID derived from the text."""
    ts: datetime | None = None
    """When the call happened; default when the entry was first loaded."""
    tenant: str = ""
    """Tenant shown."""
    model: str = ""
    """Model shown."""
    route: str = ""
    """Route shown."""
    prompt: str = ""
    """Prompt."""
    response: str = ""
    """Response."""
    context: tuple[str, ...] = ()
    """Retrieved passages."""
    history: tuple[_Turn, ...] = ()
    """Earlier turns."""
    scores: dict[str, float] = Field(default_factory=dict)
    """Detector (or drift signal) → score shown."""
    flags: tuple[str, ...] = ()
    """Flags shown."""
    reasons: tuple[str, ...] | None = None
    """Routing reasons shown; default the detectors of ``expected``."""
    rule: str | None = None
    """Routing rule shown; default the queue's highest-priority rule."""
    priority: int | None = None
    """Priority; default that rule's."""

    @field_validator("expected")
    @classmethod
    def _known_detectors(cls, value: dict[str, str]) -> dict[str, str]:
        _check(value, DETECTORS)
        return value

    @field_validator("scores")
    @classmethod
    def _known_scores(cls, value: dict[str, float]) -> dict[str, float]:
        _check(value, SCORES)
        return value

    @field_validator("flags")
    @classmethod
    def _known_flags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        _check(value, FLAGS)
        return value

    def record_id(self) -> str:
        """The given id, else a UUID derived from the prompt, response, context and history."""
        if self.id is not None:
            return self.id
        text = json.dumps([self.prompt, self.response, self.context, [t.model_dump() for t in self.history]])
        return str(uuid.UUID(bytes=hashlib.sha256(text.encode()).digest()[:16], version=4))


def _check(names: Any, valid: tuple[str, ...]) -> None:
    unknown = sorted(set(names) - set(valid))
    if unknown:
        raise ValueError(f"unknown detector {unknown[0]!r} (valid: {', '.join(valid)})")


@dataclass(frozen=True, slots=True)
class GoldItem:
    """A gold item in one queue: the record annotators see, and the known answers."""

    queue: str
    """Queue."""
    record_id: str
    """Record id shown."""
    rule: str
    """Routing rule shown."""
    priority: int
    """Priority."""
    control: bool
    """Whether the rule is a control rule (as a routed item of that rule would show)."""
    reasons: tuple[str, ...]
    """Routing reasons shown."""
    entry: GoldEntry
    """The entry (record and answers)."""
    enqueued_at: datetime | None = None
    """When it entered the queue (set once stored)."""
    stored_ts: datetime | None = field(default=None)
    """The record's ``ts`` as stored."""

    def digest(self) -> str:
        """What decides whether a reload changed the item."""
        data = [self.rule, self.priority, self.control, self.reasons, self.entry.model_dump(mode="json")]
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class GoldLoad:
    """What a load did."""

    added: int = 0
    """Items new in a queue."""
    changed: int = 0
    """Items whose entry changed."""
    retired: int = 0
    """Items no longer in the file."""
    unchanged: int = 0
    """Items already stored as they are."""


def read_gold_file(path: Path, rules: RulesFile) -> list[GoldItem]:
    """Parse and validate the gold file against the rules' queues; errors are one line naming the entry."""
    raw = _raw_entries(path)
    items: list[GoldItem] = []
    seen: dict[tuple[str, str], int] = {}
    queues = rules.queue_names()
    for index, obj in enumerate(raw, 1):
        try:
            entry = GoldEntry.model_validate(obj)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "entry"
            msg = str(err["msg"]).removeprefix("Value error, ")
            raise ConfigError(f"review gold file {path}: item {index} field {where}: {msg}") from None
        for queue in entry.queues:
            if queue not in queues:
                raise ConfigError(
                    f"review gold file {path}: item {index}: unknown queue {queue!r} (queues: {', '.join(queues)})"
                )
            item = _in_queue(entry, queue, rules)
            first = seen.setdefault((queue, item.record_id), index)
            if first != index:
                raise ConfigError(
                    f"review gold file {path}: item {index} has the record id of item {first} in queue {queue!r}"
                )
            items.append(item)
    return items


def _raw_entries(path: Path) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"review gold file {path} is not readable: {exc.strerror}") from None
    try:
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        raw = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSONL" if path.suffix.lower() in (".jsonl", ".ndjson") else "YAML"
        raise ConfigError(f"review gold file {path} is not valid {kind}: {' '.join(str(exc).split())}") from None
    if isinstance(raw, Mapping) and set(raw) == {"items"}:
        raw = raw["items"]
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"review gold file {path} must be a list of items (or a mapping with 'items')")
    return raw


def _in_queue(entry: GoldEntry, queue: str, rules: RulesFile) -> GoldItem:
    ranked = sorted((r for r in rules.rules if r.queue == queue), key=lambda r: -r.priority)
    top = ranked[0] if ranked else None
    rule = entry.rule if entry.rule is not None else (top.name if top else "")
    priority = entry.priority if entry.priority is not None else (top.priority if top else 0)
    control = bool(top and top.control and entry.rule is None)
    reasons = entry.reasons if entry.reasons is not None else tuple(d for d in DETECTORS if d in entry.expected)
    return GoldItem(queue, entry.record_id(), rule, priority, control, tuple(reasons), entry)


def load_gold(client: Client, database: str, items: Sequence[GoldItem], now: datetime) -> GoldLoad:
    """Store the file's items in ``gold_items``: new and changed ones written, dropped ones retired."""
    stored = {
        (str(q), str(r)): (str(d), _utc(e), _utc(t), bool(x))
        for q, r, d, e, t, x in client.query(
            f"SELECT queue, record_id, digest, enqueued_at, ts, retired FROM {database}.v_gold_items"
        ).result_rows
    }
    rows: list[list[Any]] = []
    added = changed = unchanged = 0
    for item in items:
        old = stored.get((item.queue, item.record_id))
        if old is not None and old[0] == item.digest() and not old[3]:
            unchanged += 1
            continue
        added, changed = (added + 1, changed) if old is None else (added, changed + 1)
        enqueued_at = now if old is None else old[1]
        ts = _utc(item.entry.ts) if item.entry.ts else (now if old is None else old[2])
        rows.append(_row(item, enqueued_at, ts, now))
    keep = {(i.queue, i.record_id) for i in items}
    gone = [key for key, old in stored.items() if key not in keep and not old[3]]
    if rows:
        client.insert(f"{database}.gold_items", rows, column_names=list(GOLD_COLUMNS))
    for queue, record_id in gone:
        client.command(
            f"INSERT INTO {database}.gold_items ({', '.join(GOLD_COLUMNS)}) "
            f"SELECT * REPLACE (1 AS retired, {{now:DateTime64(6, 'UTC')}} AS loaded_at) "
            f"FROM (SELECT {', '.join(GOLD_COLUMNS)} FROM {database}.v_gold_items "
            "WHERE queue = {q:String} AND record_id = {r:String})",
            parameters={"now": now, "q": queue, "r": record_id},
        )
    return GoldLoad(added, changed, len(gone), unchanged)


def _row(item: GoldItem, enqueued_at: datetime, ts: datetime, now: datetime) -> list[Any]:
    e = item.entry
    return [
        item.queue, item.record_id, enqueued_at, ts, e.tenant, e.model, e.route, item.priority, list(item.reasons),
        item.rule, int(item.control), e.prompt, e.response, list(e.context), [(t.role, t.content) for t in e.history],
        dict(e.scores), list(e.flags), dict(e.expected), e.severity, item.digest(), 0, now,
    ]  # fmt: skip


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def gold_item(client: Client, database: str, queue: str, record_id: str) -> GoldItem | None:
    """The live (not retired) gold item, if this (queue, record id) is one."""
    rows = client.query(
        f"SELECT {', '.join(GOLD_COLUMNS)} FROM {database}.v_gold_items "
        "WHERE queue = {q:String} AND record_id = {r:String} AND retired = 0",
        parameters={"q": queue, "r": record_id},
    ).result_rows
    if not rows:
        return None
    row = dict(zip(GOLD_COLUMNS, rows[0], strict=True))
    entry = GoldEntry.model_construct(
        queues=(queue,), expected=dict(row["expected"]), severity=row["severity"], id=record_id,
        ts=_utc(row["ts"]), tenant=str(row["tenant"]), model=str(row["model"]), route=str(row["route"]),
        prompt=str(row["prompt"]), response=str(row["response"]), context=tuple(str(c) for c in row["context"]),
        history=tuple(_Turn(role=r, content=c) for r, c in history_turns(row["history"])),
        scores={str(k): float(v) for k, v in row["scores"].items()}, flags=tuple(str(f) for f in row["flags"]),
    )  # fmt: skip
    return GoldItem(
        queue, record_id, str(row["rule"]), int(row["priority"]), bool(row["control"]),
        tuple(str(r) for r in row["reasons"]), entry, _utc(row["enqueued_at"]), _utc(row["ts"]),
    )  # fmt: skip


def next_gold(client: Client, database: str, queue: str, annotator: str) -> str | None:
    """A gold item of the queue this annotator has neither labeled nor skipped (in a per-annotator order)."""
    rows = client.query(
        f"SELECT record_id FROM {database}.v_gold_items WHERE queue = {{q:String}} AND retired = 0 "
        f"AND record_id NOT IN (SELECT record_id FROM {database}.v_review_labels "
        "WHERE queue = {q:String} AND annotator = {a:String}) "
        f"AND record_id NOT IN (SELECT record_id FROM {database}.v_review_claims "
        "WHERE queue = {q:String} AND annotator = {a:String} AND released = 1) "
        "ORDER BY cityHash64({a:String}, record_id), record_id LIMIT 1",
        parameters={"q": queue, "a": annotator},
    ).result_rows
    return str(rows[0][0]) if rows else None


def gold_turn(annotator: str, queue: str, labeled: int, share: float) -> bool:
    """Whether the annotator's next item in the queue (after ``labeled`` labels there) is a gold item."""
    digest = hashlib.sha256(f"gold\0{annotator}\0{queue}\0{labeled}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share
