"""The thresholds file (``detectors.thresholds_file``): flag thresholds per detector and per tenant, versioned.

``lookout calibrate`` writes it (:mod:`evaluators.calibrate`); the agent reads it once at start. A detector's
threshold for a record is, first found: the file's entry for the record's tenant, the file's ``thresholds``,
``detectors.thresholds``, the detector's default. The file's ``version`` is stored with every record the agent
writes (``records.thresholds_version``), so a flag can always be traced to the thresholds that made it::

    version: cal-20261201-3f2a9c1e
    created_at: '2026-12-01T09:30:00Z'
    target_precision: 0.9
    labels: {count: 412, label_ids_sha256: 9c1e..., since: '2026-11-01T00:00:00Z', until: '2026-12-01T09:00:00Z'}
    thresholds: {toxicity: 0.62, relevance: 0.24}
    tenants:
      acme: {toxicity: 0.71}
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.errors import ConfigError
from detectors.registry import flag_rule

VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
"""A version: letters, digits, ``.``, ``_``, ``-``; at most 64 characters (it is stored with every record)."""


class LabelSet(BaseModel):
    """The review labels a calibration used."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(ge=0)
    """Labels read."""
    label_ids_sha256: str = ""
    """SHA-256 of the sorted ``label_id`` values, one per line: the same labels give the same hash."""
    since: str | None = None
    """Earliest labeled record's time (RFC 3339), or None when no label was read."""
    until: str | None = None
    """Latest labeled record's time (RFC 3339)."""


def _check_thresholds(values: Mapping[str, float], tenant: str = "") -> dict[str, float]:
    out = {}
    at = f"{tenant}: " if tenant else ""
    for name, value in values.items():
        try:
            flag_rule(name)
        except ValueError as exc:
            raise ValueError(f"{at}{exc}") from None
        if not math.isfinite(value):
            raise ValueError(f"{at}{name}: {value} is not a finite number")
        out[name] = float(value)
    return out


class ThresholdsFile(BaseModel):
    """A versioned set of flag thresholds: global and per tenant."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    """Stored with every record scored under this file."""
    thresholds: dict[str, float] = Field(default_factory=dict)
    """Detector → threshold for every tenant (overrides ``detectors.thresholds``)."""
    tenants: dict[str, dict[str, float]] = Field(default_factory=dict)
    """Tenant → detector → threshold, for that tenant's records only."""
    created_at: str | None = None
    """When it was written (RFC 3339)."""
    target_precision: float | None = Field(default=None, gt=0, le=1)
    """The precision the calibration aimed at."""
    labels: LabelSet | None = None
    """The labels it was calibrated on."""

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not VERSION_PATTERN.match(value):
            raise ValueError(f"version {value!r}: use letters, digits, '.', '_' or '-' (at most 64)")
        return value

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, value: dict[str, float]) -> dict[str, float]:
        return _check_thresholds(value)

    @field_validator("tenants")
    @classmethod
    def _tenants(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        return {tenant: _check_thresholds(v, tenant) for tenant, v in value.items()}

    def detectors(self) -> set[str]:
        """Every detector the file names, globally or for a tenant."""
        return set(self.thresholds).union(*self.tenants.values())

    def to_yaml(self) -> str:
        """The file's text (what :func:`load_thresholds` reads back as an equal object)."""
        data = self.model_dump(mode="json", exclude_none=True)
        order = ("version", "created_at", "target_precision", "labels", "thresholds", "tenants")
        return yaml.safe_dump({k: data[k] for k in order if k in data}, sort_keys=False, allow_unicode=True)


def parse_thresholds(raw: Any, origin: str) -> ThresholdsFile:
    """``raw`` (a parsed YAML/JSON document) as a :class:`ThresholdsFile`; :class:`ConfigError` names the field."""
    if not isinstance(raw, dict):
        raise ConfigError(f"thresholds file {origin}: expected a mapping with 'version' and 'thresholds'")
    try:
        return ThresholdsFile.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "file"
        message = str(error["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"thresholds file {origin}: {where}: {message}") from None


def load_thresholds(path: Path) -> ThresholdsFile:
    """Read and validate a thresholds file (YAML or JSON); every failure is one :class:`ConfigError` line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"thresholds file {path}: cannot read it ({exc.strerror or exc}); "
                          "fix detectors.thresholds_file") from None  # fmt: skip
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"thresholds file {path}: not valid YAML or JSON{at}") from None
    return parse_thresholds(raw, str(path))
