"""Cost at ingest from a YAML price table (USD per 1M input and output tokens per model)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from agent.errors import ConfigError
from agent.types import Usage

_SEPARATORS = ("-", ":", "@", "/")


@dataclass(frozen=True, slots=True)
class Price:
    """USD per one million tokens."""

    input: float
    """Price of prompt tokens."""
    output: float
    """Price of completion tokens."""


def _parse(data: Any, source: str) -> dict[str, Price]:
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise ConfigError(f"price table {source}: expected a mapping with a 'models' mapping")
    out = {}
    for model, entry in data["models"].items():
        if not isinstance(entry, dict) or set(entry) != {"input", "output"}:
            raise ConfigError(f"price table {source}: model {model!r} needs exactly 'input' and 'output'")
        values = []
        for key in ("input", "output"):
            value = entry[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ConfigError(f"price table {source}: {model}.{key} must be a number")
            if value < 0:
                raise ConfigError(f"price table {source}: {model}.{key} must not be negative")
            values.append(float(value))
        out[str(model)] = Price(*values)
    return out


class PriceTable:
    """Model → price, with exact then longest-prefix matching."""

    def __init__(self, prices: Mapping[str, Price]) -> None:
        self._prices = dict(prices)
        self._by_length = sorted(self._prices, key=len, reverse=True)

    @classmethod
    def load(cls, override: Path | None = None) -> PriceTable:
        """The bundled table, with ``override``'s entries merged over it."""
        bundled = resources.files("agent").joinpath("prices.yaml").read_text(encoding="utf-8")
        prices = _parse(yaml.safe_load(bundled), "bundled prices.yaml")
        if override is not None:
            try:
                text = override.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"price table {override}: {exc.strerror}") from None
            except UnicodeDecodeError as exc:
                raise ConfigError(f"price table {override}: not UTF-8 text (byte {exc.start})") from None
            try:
                prices.update(_parse(yaml.safe_load(text), str(override)))
            except yaml.YAMLError as exc:  # str(exc) spans several lines; the message must be one
                mark = getattr(exc, "problem_mark", None)
                where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
                problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
                raise ConfigError(f"price table {override}: not valid YAML ({problem}{where})") from None
        return cls(prices)

    def __contains__(self, model: str) -> bool:
        return self.lookup(model) is not None

    def lookup(self, model: str) -> Price | None:
        """The price of ``model``: exact name, else the longest entry it extends with a separator."""
        if model in self._prices:
            return self._prices[model]
        for name in self._by_length:
            if model.startswith(name) and model[len(name)] in _SEPARATORS:
                return self._prices[name]
        return None

    def cost(self, model: str, usage: Usage | None) -> float | None:
        """USD for one call; None when the model has no price or usage is missing."""
        price = self.lookup(model)
        if price is None or usage is None:
            return None
        if usage.prompt_tokens is None and usage.completion_tokens is None:
            return None
        tokens_in = usage.prompt_tokens or 0
        tokens_out = usage.completion_tokens or 0
        return (tokens_in * price.input + tokens_out * price.output) / 1_000_000
