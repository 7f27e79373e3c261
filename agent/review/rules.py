"""Routing rules: which scored records enter which review queue, validated from YAML.

A rule matches a record when its filters (tenants, models, routes) match, its condition holds, and the
record falls inside its sample rate. Sampling hashes ``rule name + record id``, so a replayed record gets
the same decision. A ``control`` rule samples only *unflagged* records (a baseline of traffic the detectors
passed). Each queue takes a record at most once: among the rules of one queue, the highest priority wins.

Conditions, nested freely::

    flagged: toxicity                        # the detector crossed its configured threshold
    {detector: relevance, below: 0.3}        # raw score comparisons: above (>=) and/or below (<)
    flagged: novel                           # also the drift step's flags (novel, near_duplicate) and scores
    any: [COND, ...]    all: [COND, ...]    not: COND
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agent.drift import SIGNAL_FLAGS, STREAM_SIGNALS
from agent.errors import ConfigError
from agent.types import ScoredSample
from detectors.registry import DetectorName

DEFAULT_RULES = Path(__file__).with_name("default_rules.yaml")
"""The rules used when ``review.rules`` is not set."""

DETECTORS: tuple[str, ...] = get_args(DetectorName)
SCORES: tuple[str, ...] = (*DETECTORS, *STREAM_SIGNALS)
"""Scores a condition may compare: detectors' and the drift step's (``novelty``, ``near_duplicate``)."""
FLAGS: tuple[str, ...] = (*DETECTORS, *SIGNAL_FLAGS.values())
"""Flags a condition may test: detectors' and the drift step's (``novel``, ``near_duplicate``)."""


@dataclass(frozen=True, slots=True)
class Flagged:
    """True when the record's flags include ``detector``."""

    detector: str

    def evaluate(self, item: ScoredSample) -> tuple[bool, frozenset[str]]:
        """Whether it holds, and the detectors that made it hold."""
        hit = self.detector in item.flags
        return hit, frozenset({self.detector}) if hit else frozenset()


@dataclass(frozen=True, slots=True)
class Threshold:
    """True when the score is ``>= above`` and/or ``< below``; never true for a missing score."""

    detector: str
    above: float | None
    below: float | None

    def evaluate(self, item: ScoredSample) -> tuple[bool, frozenset[str]]:
        """Whether it holds, and the detectors that made it hold."""
        score = item.scores.get(self.detector)
        if score is None:
            return False, frozenset()
        hit = (self.above is None or score >= self.above) and (self.below is None or score < self.below)
        return hit, frozenset({self.detector}) if hit else frozenset()


@dataclass(frozen=True, slots=True)
class AnyOf:
    """True when one of the parts is."""

    parts: tuple[Condition, ...]

    def evaluate(self, item: ScoredSample) -> tuple[bool, frozenset[str]]:
        """Whether it holds, and the detectors that made it hold."""
        results = [p.evaluate(item) for p in self.parts]
        reasons = frozenset().union(*(r for ok, r in results if ok))
        return any(ok for ok, _ in results), reasons


@dataclass(frozen=True, slots=True)
class AllOf:
    """True when every part is."""

    parts: tuple[Condition, ...]

    def evaluate(self, item: ScoredSample) -> tuple[bool, frozenset[str]]:
        """Whether it holds, and the detectors that made it hold."""
        results = [p.evaluate(item) for p in self.parts]
        ok = all(hit for hit, _ in results)
        return ok, frozenset().union(*(r for _, r in results)) if ok else frozenset()


@dataclass(frozen=True, slots=True)
class Not:
    """True when the part is not (adds no reasons)."""

    part: Condition

    def evaluate(self, item: ScoredSample) -> tuple[bool, frozenset[str]]:
        """Whether it holds, and the detectors that made it hold."""
        return not self.part.evaluate(item)[0], frozenset()


Condition = Flagged | Threshold | AnyOf | AllOf | Not


def parse_condition(raw: Any, where: str = "when") -> Condition:
    """Build a condition from its YAML form; errors name the field path (``when.all[1].detector``)."""
    if not isinstance(raw, Mapping) or not raw:
        raise ValueError(f"{where}: expected a mapping with flagged, detector, any, all or not")
    keys = set(raw)
    if keys == {"flagged"}:
        return Flagged(_detector(raw["flagged"], f"{where}.flagged", FLAGS))
    if keys == {"not"}:
        return Not(parse_condition(raw["not"], f"{where}.not"))
    if keys in ({"any"}, {"all"}):
        (key,) = keys
        parts = raw[key]
        if not isinstance(parts, list) or not parts:
            raise ValueError(f"{where}.{key}: expected a non-empty list of conditions")
        built = tuple(parse_condition(p, f"{where}.{key}[{i}]") for i, p in enumerate(parts))
        return AnyOf(built) if key == "any" else AllOf(built)
    if "detector" in keys and keys <= {"detector", "above", "below"}:
        detector = _detector(raw["detector"], f"{where}.detector", SCORES)
        bounds = {k: _number(raw[k], f"{where}.{k}") for k in ("above", "below") if k in raw}
        if not bounds:
            raise ValueError(f"{where}: a detector condition needs above and/or below")
        return Threshold(detector, bounds.get("above"), bounds.get("below"))
    raise ValueError(f"{where}: unexpected keys {sorted(keys)}; use flagged, detector+above/below, any, all or not")


def _detector(value: Any, where: str, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise ValueError(f"{where}: unknown detector {value!r} (valid: {', '.join(valid)})")
    return str(value)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    return float(value)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class QueueSpec(_Model):
    """One review queue."""

    description: str = ""
    """Shown on the queue overview."""
    sla_hours: float = Field(default=24.0, gt=0)
    """An item older than this and still unlabeled breaches the SLA."""
    hourly_budget: int | None = Field(default=None, ge=0)
    """Most items enqueued per clock hour (higher priority first within a batch); None is unlimited."""


class Rule(_Model):
    """One routing rule."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    """Unique name; stored with each item it routes and salts its sampling hash."""
    queue: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    """Queue the record enters."""
    when: Any = None
    """Condition (see the module docstring); None always holds."""
    control: bool = False
    """Sample unflagged records only (a control group); items get ``control = 1``."""
    sample_rate: float = Field(default=1.0, ge=0, le=1)
    """Fraction of matching records routed, decided by a hash of the record id."""
    priority: int = 0
    """Higher is labeled first."""
    tenants: tuple[str, ...] = ()
    """Only these tenants (empty: all)."""
    models: tuple[str, ...] = ()
    """Only these models (empty: all)."""
    routes: tuple[str, ...] = ()
    """Only these routes (empty: all)."""

    @field_validator("when")
    @classmethod
    def _condition(cls, value: Any) -> Condition | None:
        return None if value is None else parse_condition(value)

    @property
    def condition(self) -> Condition | None:
        """The parsed condition."""
        return self.when  # type: ignore[no-any-return]  # parsed by the validator above

    def sampled(self, record_id: str) -> bool:
        """Deterministic: the same record id always gets the same answer."""
        if self.sample_rate >= 1.0:
            return True
        digest = hashlib.sha256(f"{self.name}\0{record_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.sample_rate


class RulesFile(_Model):
    """The whole rules file."""

    queues: dict[str, QueueSpec] = Field(default_factory=dict)
    """Queue name → settings; a queue named by a rule but not listed gets the defaults."""
    rules: tuple[Rule, ...] = ()
    """Routing rules, any order."""

    @model_validator(mode="after")
    def _unique_names(self) -> RulesFile:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"rule {rule.name!r} is defined twice")
            seen.add(rule.name)
        return self

    def queue(self, name: str) -> QueueSpec:
        """Settings of a queue (defaults for queues only named by rules)."""
        return self.queues.get(name, QueueSpec())

    def queue_names(self) -> list[str]:
        """Every queue, listed or named by a rule."""
        return list(dict.fromkeys([*self.queues, *(r.queue for r in self.rules)]))


@dataclass(frozen=True, slots=True)
class Decision:
    """A record routed to one queue."""

    queue: str
    """Queue it enters."""
    rule: str
    """The winning rule."""
    priority: int
    """The winning rule's priority."""
    reasons: tuple[str, ...]
    """Detectors whose conditions held (``control`` for control samples), sorted."""
    control: bool
    """Sampled as a control."""
    item: ScoredSample
    """The record."""


def route(rules: RulesFile, item: ScoredSample) -> list[Decision]:
    """Every queue this record enters, at most one decision per queue."""
    best: dict[str, Decision] = {}
    sample = item.sample
    for rule in rules.rules:
        if rule.tenants and sample.tenant not in rule.tenants:
            continue
        if rule.models and sample.model not in rule.models:
            continue
        if rule.routes and sample.route not in rule.routes:
            continue
        if rule.control and item.flags:
            continue
        reasons: frozenset[str] = frozenset()
        if rule.condition is not None:
            ok, reasons = rule.condition.evaluate(item)
            if not ok:
                continue
        if not rule.sampled(sample.id):
            continue
        if rule.control:
            reasons = reasons | {"control"}
        current = best.get(rule.queue)
        if current is None or rule.priority > current.priority:
            reasons_sorted = tuple(sorted(reasons))
            best[rule.queue] = Decision(rule.queue, rule.name, rule.priority, reasons_sorted, rule.control, item)
    return list(best.values())


def load_rules(path: Path | None = None) -> RulesFile:
    """Read and validate a rules file (the bundled default when None); errors are one line naming the rule."""
    path = path or DEFAULT_RULES
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"review rules file {path} is not readable: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"review rules file {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    return parse_rules(raw, str(path))


def parse_rules(raw: Any, origin: str = "rules") -> RulesFile:
    """Validate the YAML structure of a rules file."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"review rules file {origin} must be a mapping with queues and rules")
    try:
        return RulesFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"review rules file {origin}: {_describe(exc, raw)}") from None


def _describe(exc: ValidationError, raw: Mapping[str, Any]) -> str:
    parts = []
    rules = raw.get("rules")
    for err in exc.errors():
        loc = list(err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            index = loc[1]
            entry = rules[index] if isinstance(rules, Sequence) and index < len(rules) else None
            name = entry.get("name") if isinstance(entry, Mapping) else None
            label = f"rule {name!r}" if name else f"rule #{index + 1}"
            field = ".".join(str(p) for p in loc[2:]) or "rule"
            parts.append(f"{label} {msg}" if msg.startswith(f"{field}.") else f"{label} field {field}: {msg}")
        elif len(loc) >= 2 and loc[0] == "queues":
            field = ".".join(str(p) for p in loc[2:]) or "queue"
            parts.append(f"queue {loc[1]!r} field {field}: {msg}")
        else:
            parts.append(f"{'.'.join(str(p) for p in loc) or 'file'}: {msg}")
    return "; ".join(parts)
