"""What ``lookout query`` accepts: exactly one statement, reading lookout's own tables only.

ClickHouse's ``readonly=1`` is sent with the query, but through the embedded engine it covers the last of
several ``;``-separated statements only, so the text is checked first: one statement (a trailing ``;`` is
fine), and no table function that reaches files, URLs or other servers, wherever it appears. Quoted strings,
quoted identifiers and comments are skipped; anything the scan is unsure of counts as code, so it refuses
more, never less.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from agent.errors import LookoutError

EXTERNAL_TABLE_FUNCTIONS = frozenset(
    {
        "file", "filecluster", "url", "urlcluster", "remote", "remotesecure", "cluster", "clusterallreplicas",
        "s3", "s3cluster", "gcs", "oss", "cosn", "azureblobstorage", "azureblobstoragecluster", "hdfs",
        "hdfscluster", "hive", "iceberg", "icebergs3", "icebergazure", "iceberghdfs", "deltalake", "hudi",
        "mysql", "postgresql", "mongodb", "redis", "sqlite", "jdbc", "odbc", "executable", "input",
    }
)  # fmt: skip
"""Table functions that read (or write) outside lookout's database: refused by ``lookout query``."""

_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def pieces(sql: str) -> Iterator[tuple[str, bool]]:
    """``sql`` cut into (text, is_code): quoted strings, quoted identifiers and comments are not code."""
    i, n, start = 0, len(sql), 0
    while i < n:
        c = sql[i]
        if c in "'\"`":
            j = i + 1
            while j < n:
                if sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:  # a doubled quote stays inside
                        j += 2
                        continue
                    break
                j += 1
            end = min(j + 1, n)
        elif sql.startswith("--", i):
            found = sql.find("\n", i)
            end = n if found < 0 else found
        elif sql.startswith("/*", i):
            found = sql.find("*/", i + 2)
            end = n if found < 0 else found + 2
        else:
            i += 1
            continue
        if start < i:
            yield sql[start:i], True
        yield sql[i:end], False
        i = start = end
    if start < n:
        yield sql[start:], True


def code_of(sql: str) -> str:
    """``sql`` with quoted strings, quoted identifiers and ``--`` / ``/* */`` comments blanked out."""
    return "".join(text if is_code else " " for text, is_code in pieces(sql))


_BARE_VIEW = re.compile(r"(?<![\w.$])(?<!\bAS )(?<!\bas )(v_[A-Za-z0-9_]+)\b(?!\s*[.(])")


def qualify(sql: str, database: str) -> str:
    """Unqualified ``v_*`` names (lookout's views) read from ``database``: ``v_records`` → ``lookout.v_records``."""
    return "".join(_BARE_VIEW.sub(rf"{database}.\1", text) if is_code else text for text, is_code in pieces(sql))


def check_query(sql: str) -> None:
    """Raise a one-line :class:`LookoutError` unless ``sql`` is one statement that calls no external table function."""
    code = code_of(sql)
    statements = [part for part in code.split(";") if part.strip()]
    if len(statements) > 1:
        raise LookoutError("lookout query runs exactly one statement; remove the ';' and what follows it")
    if not statements:
        raise LookoutError("lookout query needs a statement, e.g. SELECT count() FROM lookout.v_records")
    for match in _CALL.finditer(code):
        if match.group(1).lower() in EXTERNAL_TABLE_FUNCTIONS:
            raise LookoutError(
                f"lookout query refuses {match.group(1)}(): it reaches files, URLs or other servers; "
                "query lookout's tables and views (lookout.v_*)"
            )
