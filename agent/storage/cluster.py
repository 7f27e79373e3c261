"""ClickHouse cluster mode: each migration statement rewritten ``ON CLUSTER`` (Replicated*MergeTree + Distributed)."""

from __future__ import annotations

import re

LOCAL_SUFFIX = "_local"
"""On a cluster, ``T`` is a Distributed table over the replicated ``T_local`` on every shard."""

_CREATE_TABLE = re.compile(
    r"^\s*CREATE TABLE IF NOT EXISTS (?P<table>\w+\.\w+)\s*(?P<body>.*?)"
    r"ENGINE = (?P<kind>\w*)MergeTree(?:\((?P<args>[^)]*)\))?(?P<rest>.*)$",
    re.DOTALL,
)
_ORDER_BY = re.compile(r"ORDER BY \(?(?P<key>[\w, ]+?)\)?\s*$")
_INSERT = re.compile(r"^\s*INSERT INTO \w+\.\w+ ")
_ALTER_TABLE = re.compile(r"^\s*ALTER TABLE (?P<table>\w+\.\w+) (?P<rest>.*)$", re.DOTALL)
_CREATE_VIEW = re.compile(
    r"^\s*(?P<head>CREATE (?:OR REPLACE )?VIEW (?:IF NOT EXISTS )?\w+\.\w+) (?P<rest>AS .*)$", re.DOTALL
)


def on_cluster(statement: str, cluster: str | None) -> list[str]:
    """The statements that apply one migration statement on ``cluster`` (unchanged when None).

    - ``CREATE TABLE db.T ... ENGINE = XMergeTree(args)`` becomes ``db.T_local ON CLUSTER`` with
      ``ReplicatedXMergeTree('/clickhouse/tables/{shard}/db/T_local', '{replica}', args)`` (the servers'
      ``shard``/``replica`` macros), plus ``db.T ON CLUSTER`` as a Distributed table over it, sharded by a hash
      of ``T``'s sort key: every copy of a row lands on one shard, so ``FINAL`` views still collapse them.
    - ``ALTER TABLE db.T`` runs ``ON CLUSTER`` on ``T_local`` and on ``T`` (both carry the columns).
    - ``CREATE [OR REPLACE] VIEW`` gains ``ON CLUSTER``; views read the Distributed tables.
    - ``INSERT INTO db.T ... SELECT`` (data, not DDL) runs once, unchanged, through the Distributed tables.
    """
    if cluster is None or _INSERT.match(statement):
        return [statement]
    if match := _CREATE_TABLE.match(statement):
        table, body, kind, args, rest = match.group("table", "body", "kind", "args", "rest")
        db, name = table.split(".")
        local = f"{name}{LOCAL_SUFFIX}"
        order = _ORDER_BY.search(rest.strip())
        if order is None:
            raise ValueError(f"cannot shard {table}: no ORDER BY key in its DDL")
        engine_args = ", ".join(a for a in (f"'/clickhouse/tables/{{shard}}/{db}/{local}'", "'{replica}'", args) if a)
        return [
            f"CREATE TABLE IF NOT EXISTS {db}.{local} ON CLUSTER {cluster} {body}"
            f"ENGINE = Replicated{kind}MergeTree({engine_args}){rest}",
            f"CREATE TABLE IF NOT EXISTS {table} ON CLUSTER {cluster} AS {db}.{local} "
            f"ENGINE = Distributed('{cluster}', '{db}', '{local}', cityHash64({order.group('key')}))",
        ]
    if match := _ALTER_TABLE.match(statement):
        table, rest = match.group("table", "rest")
        return [
            f"ALTER TABLE {table}{LOCAL_SUFFIX} ON CLUSTER {cluster} {rest}",
            f"ALTER TABLE {table} ON CLUSTER {cluster} {rest}",
        ]
    if match := _CREATE_VIEW.match(statement):
        return [f"{match.group('head')} ON CLUSTER {cluster} {match.group('rest')}"]
    raise ValueError(f"no ON CLUSTER form for statement: {' '.join(statement.split())[:80]}")
