"""Expand a panel's SQL the way Grafana and the ClickHouse plugin (grafana-clickhouse-datasource v4) do.

No Grafana runs in lookout's tests, so this reproduces, in order:

1. the plugin frontend's ``$__conditionalAll(condition, $var)``: ``1=1`` when ``var`` is All or empty;
2. Grafana's template variables: ``${var:singlequote}`` (``'a','b'``), ``${var:csv}``, ``${var}``, ``$var``
   (the plugin formats a multi-value as ``'a','b'``);
3. the plugin backend's macros (``pkg/macros/macros.go``): ``$__timeFilter(col)``, ``$__timeFilter_ms(col)``,
   ``$__dateFilter(col)``, ``$__timeInterval(col)``, ``$__timeInterval_ms(col)``, ``$__interval_s``,
   ``$__fromTime``, ``$__toTime``, ``$__fromTime_ms``, ``$__toTime_ms``.

Anything left that still looks like ``$__name`` or ``$var`` is an error, so a typo fails a test instead of
reaching ClickHouse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

ALL = "$__all"
"""The value Grafana stores when a variable's "All" option is selected."""


class MacroError(ValueError):
    """A query uses a macro or variable wrongly, or one that is not defined."""


@dataclass(frozen=True)
class QueryContext:
    """What Grafana knows when it runs a panel query: the time range, the interval, the variables."""

    time_from: datetime
    """Start of the dashboard time range (timezone-aware)."""
    time_to: datetime
    """End of the dashboard time range (timezone-aware)."""
    interval_s: int = 60
    """The panel's computed interval (``$__interval``) in seconds."""
    variables: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Selected values per variable; ``[ALL]`` for All."""


def _time(t: datetime) -> str:
    return f"toDateTime({int(t.timestamp())})"


def _time_ms(t: datetime) -> str:
    return f"fromUnixTimestamp64Milli({int(t.timestamp() * 1000)})"


def _date(t: datetime) -> str:
    return f"toDate('{t.strftime('%Y-%m-%d')}')"


def _split_args(text: str, open_at: int) -> tuple[list[str], int]:
    """Arguments of the call whose ``(`` is at ``open_at`` (commas at depth 1), and the index after ``)``."""
    depth, start, args = 0, open_at + 1, []
    for i in range(open_at, len(text)):
        ch = text[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append(text[start:i])
                return args, i + 1
        elif ch == "," and depth == 1:
            args.append(text[start:i])
            start = i + 1
    raise MacroError(f"unbalanced parentheses after position {open_at}: {text[open_at : open_at + 60]!r}")


def _is_all(values: Sequence[str] | None) -> bool:
    return values is None or len(values) == 0 or ALL in values or values == [""]


def conditional_all(sql: str, variables: Mapping[str, Sequence[str]]) -> str:
    """``$__conditionalAll(cond, $var)`` → ``cond``, or ``1=1`` when ``var`` is All or empty."""
    macro = "$__conditionalAll("
    while (at := sql.rfind(macro)) != -1:
        args, end = _split_args(sql, at + len(macro) - 1)
        if len(args) != 2:
            raise MacroError(f"$__conditionalAll takes 2 arguments, got {len(args)}")
        name = args[1].strip().lstrip("$").strip("{}")
        if name not in variables:
            raise MacroError(f"$__conditionalAll refers to undefined variable {name!r}")
        phrase = "1=1" if _is_all(variables[name]) else args[0]
        sql = sql[:at] + phrase + sql[end:]
    return sql


_VAR = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(?!__)(\w+)")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def interpolate(sql: str, variables: Mapping[str, Sequence[str]]) -> str:
    """Replace template variables; All must not reach here (wrap such filters in ``$__conditionalAll``)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        fmt = match.group(2)
        if name not in variables:
            raise MacroError(f"undefined template variable ${name}")
        values = list(variables[name])
        if ALL in values:
            raise MacroError(f"variable ${name} is All outside $__conditionalAll")
        if fmt == "singlequote" or (fmt is None and len(values) != 1):
            return ",".join(_quote(v) for v in values)
        if fmt in (None, "raw", "csv"):
            return ",".join(values)
        raise MacroError(f"unsupported variable format {fmt!r} in ${{{name}:{fmt}}}")

    return _VAR.sub(replace, sql)


def _one_arg(name: str, args: list[str]) -> str:
    if len(args) != 1 or not args[0].strip():
        raise MacroError(f"$__{name} takes 1 argument, got {len(args)}")
    return args[0].strip()


def expand_macros(sql: str, ctx: QueryContext) -> str:
    """The plugin backend's macros, with its exact output."""
    seconds = max(ctx.interval_s, 1)
    plain = {
        "fromTime_ms": _time_ms(ctx.time_from),
        "toTime_ms": _time_ms(ctx.time_to),
        "fromTime": _time(ctx.time_from),
        "toTime": _time(ctx.time_to),
        "interval_s": str(seconds),
    }
    out: list[str] = []
    pos = 0
    for match in re.finditer(r"\$__(\w+)", sql):
        if match.start() < pos:
            continue
        name = match.group(1)
        out.append(sql[pos : match.start()])
        pos = match.end()
        if name in plain:
            out.append(plain[name])
            continue
        if pos >= len(sql) or sql[pos] != "(":
            raise MacroError(f"unknown macro $__{name}")
        args, pos = _split_args(sql, pos)
        column = _one_arg(name, args)
        f, t = ctx.time_from, ctx.time_to
        if name == "timeFilter":
            out.append(f"{column} >= {_time(f)} AND {column} <= {_time(t)}")
        elif name == "timeFilter_ms":
            out.append(f"{column} >= {_time_ms(f)} AND {column} <= {_time_ms(t)}")
        elif name == "dateFilter":
            out.append(f"{column} >= {_date(f)} AND {column} <= {_date(t)}")
        elif name == "timeInterval":
            out.append(f"toStartOfInterval(toDateTime({column}), INTERVAL {seconds} second)")
        elif name == "timeInterval_ms":
            out.append(f"toStartOfInterval(toDateTime64({column}, 3), INTERVAL {seconds * 1000} millisecond)")
        else:
            raise MacroError(f"unknown macro $__{name}")
    out.append(sql[pos:])
    return "".join(out)


def expand(sql: str, ctx: QueryContext) -> str:
    """The SQL ClickHouse receives for ``sql`` under ``ctx``."""
    return expand_macros(interpolate(conditional_all(sql, ctx.variables), ctx.variables), ctx)
