"""The ON CLUSTER DDL of cluster mode parses in the real ClickHouse parser (chDB has no cluster to run it on)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config import ClickHouseSettings
from agent.storage.client import connect
from agent.storage.cluster import on_cluster
from agent.storage.migrations import MIGRATIONS

DB = "lookout"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Any]:
    """An embedded ClickHouse, closed after the test so the next test can open another directory."""
    c = connect(ClickHouseSettings(dsn=f"chdb://{tmp_path / 'data'}"))
    yield c
    c.close()


class TestClusterDdl:
    """Every statement cluster mode would send is valid ClickHouse SQL."""

    def test_every_cluster_statement_parses(self, client: Any) -> None:
        """EXPLAIN AST accepts each rewritten statement (Replicated*MergeTree, Distributed, ON CLUSTER views, data)."""
        statements = [c for m in MIGRATIONS for s in m.statements for c in on_cluster(s.format(db=DB), "lc")]
        assert len(statements) > len([s for m in MIGRATIONS for s in m.statements])
        for statement in statements:
            ast = client.query(f"EXPLAIN AST {statement}").result_rows
            assert ast and str(ast[0][0]).startswith(("CreateQuery", "AlterQuery", "InsertQuery")), statement
