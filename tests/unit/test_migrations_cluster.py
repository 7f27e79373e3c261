"""ClickHouse cluster mode: each migration statement rewritten ON CLUSTER (Replicated*MergeTree + Distributed)."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest

from agent.config import ClickHouseSettings
from agent.storage import migrations
from agent.storage.cluster import on_cluster
from agent.storage.migrations import MIGRATIONS

DB = "lookout"
CLUSTER = "lookout_cluster"


class FakeClient:
    """Records commands; reports no migration applied yet."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> None:
        self.commands.append(" ".join(sql.split()))

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        return SimpleNamespace(result_rows=[])


def all_statements() -> list[str]:
    """Every migration statement, formatted for DB."""
    return [s.format(db=DB) for m in MIGRATIONS for s in m.statements]


class TestOnCluster:
    """on_cluster rewrites DDL for a cluster and leaves it alone without one."""

    def test_without_cluster_the_statement_is_unchanged(self) -> None:
        """Without a cluster the single-node (and chDB) DDL is exactly what it was."""
        for statement in all_statements():
            assert on_cluster(statement, None) == [statement]

    def test_table_becomes_replicated_local_plus_distributed(self) -> None:
        """A MergeTree table becomes T_local (replicated, shard/replica macros) and T (Distributed by its key)."""
        create = (
            f"CREATE TABLE IF NOT EXISTS {DB}.schema_migrations (version UInt32, name String) "
            "ENGINE = ReplacingMergeTree ORDER BY version"
        )
        assert on_cluster(create, CLUSTER) == [
            f"CREATE TABLE IF NOT EXISTS {DB}.schema_migrations_local ON CLUSTER {CLUSTER} "
            "(version UInt32, name String) ENGINE = ReplicatedReplacingMergeTree("
            f"'/clickhouse/tables/{{shard}}/{DB}/schema_migrations_local', '{{replica}}') ORDER BY version",
            f"CREATE TABLE IF NOT EXISTS {DB}.schema_migrations ON CLUSTER {CLUSTER} AS {DB}.schema_migrations_local "
            f"ENGINE = Distributed('{CLUSTER}', '{DB}', 'schema_migrations_local', cityHash64(version))",
        ]

    def test_engine_arguments_and_sort_key_are_kept(self) -> None:
        """The version column stays the engine's last argument; records shard by their whole sort key."""
        records = next(s for s in all_statements() if f"{DB}.records (" in s)
        local, distributed = (" ".join(s.split()) for s in on_cluster(records, CLUSTER))
        assert (
            "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/lookout/records_local', "
            "'{replica}', ingested_at) PARTITION BY toDate(ts) ORDER BY (tenant, model, ts, id)"
        ) in local
        assert distributed.endswith("cityHash64(tenant, model, ts, id))")

    def test_alter_runs_on_local_and_distributed(self) -> None:
        """A column added to records is added to records_local and to the Distributed records."""
        alter = f"ALTER TABLE {DB}.records ADD COLUMN IF NOT EXISTS x Nullable(Float32)"
        assert on_cluster(alter, CLUSTER) == [
            f"ALTER TABLE {DB}.records_local ON CLUSTER {CLUSTER} ADD COLUMN IF NOT EXISTS x Nullable(Float32)",
            f"ALTER TABLE {DB}.records ON CLUSTER {CLUSTER} ADD COLUMN IF NOT EXISTS x Nullable(Float32)",
        ]

    @pytest.mark.parametrize("head", ["CREATE VIEW IF NOT EXISTS", "CREATE OR REPLACE VIEW"])
    def test_views_are_created_on_the_cluster(self, head: str) -> None:
        """Views gain ON CLUSTER and keep reading the Distributed table with FINAL."""
        view = f"{head} {DB}.v_records AS SELECT * FROM {DB}.records FINAL"  # noqa: S608 - DDL from test constants
        expected = f"{head} {DB}.v_records ON CLUSTER {CLUSTER} AS SELECT * FROM {DB}.records FINAL"  # noqa: S608 - same
        assert on_cluster(view, CLUSTER) == [expected]

    def test_data_statements_run_once_through_the_distributed_tables(self) -> None:
        """A migration's INSERT ... SELECT is data, not DDL: sent once, unchanged, never to a _local table."""
        inserts = [s for s in all_statements() if s.lstrip().startswith("INSERT")]
        assert inserts
        for statement in inserts:
            assert on_cluster(statement, CLUSTER) == [statement]
            assert "_local" not in statement

    def test_unknown_statement_is_refused(self) -> None:
        """A statement with no known cluster form fails loudly instead of running on one node."""
        with pytest.raises(ValueError, match="no ON CLUSTER form"):
            on_cluster(f"DROP TABLE {DB}.records", CLUSTER)

    def test_every_migration_has_a_cluster_form(self) -> None:
        """Every shipped statement rewrites: all ON CLUSTER, no unreplicated MergeTree, a Distributed per table."""
        ddl = [s for s in all_statements() if not s.lstrip().startswith("INSERT")]
        out = [" ".join(s.split()) for statement in ddl for s in on_cluster(statement, CLUSTER)]
        assert all(f" ON CLUSTER {CLUSTER} " in s for s in out)
        engines = re.findall(r"ENGINE = (\w+)", " ".join(out))
        assert all(e.startswith("Replicated") or e == "Distributed" for e in engines)
        locals_ = set(re.findall(rf"CREATE TABLE IF NOT EXISTS {DB}\.(\w+)_local ", " ".join(out)))
        distributed = set(re.findall(rf"CREATE TABLE IF NOT EXISTS {DB}\.(\w+) ON CLUSTER \S+ AS ", " ".join(out)))
        assert locals_ == distributed
        assert {"records", "dead_letters", "review_items", "annotators"} <= locals_


class TestMigrateOnCluster:
    """migrate(cluster=...) sends only cluster DDL, TTL included."""

    def test_all_ddl_is_on_cluster(self) -> None:
        """Every DDL command names the cluster; the text TTL goes on records_local only."""
        client = FakeClient()
        applied = migrations.migrate(client, DB, raw_text_ttl_days=30, cluster=CLUSTER)
        assert [m.version for m in applied] == sorted(m.version for m in MIGRATIONS)  # applied in version order
        ddl = [c for c in client.commands if not c.startswith(("INSERT", "SELECT"))]
        assert all(f"ON CLUSTER {CLUSTER}" in c for c in ddl)
        ttl = [c for c in ddl if " TTL " in c]
        assert len(ttl) == len(migrations.TEXT_COLUMNS)
        assert all(c.startswith(f"ALTER TABLE {DB}.records_local ON CLUSTER {CLUSTER} MODIFY COLUMN") for c in ttl)

    def test_default_has_no_cluster_ddl(self) -> None:
        """Without a cluster (the default, chDB included) nothing says ON CLUSTER."""
        client = FakeClient()
        migrations.migrate(client, DB, raw_text_ttl_days=30)
        assert not any("ON CLUSTER" in c or "Replicated" in c or "Distributed" in c for c in client.commands)


class TestClusterSetting:
    """clickhouse.cluster is off by default and must be a plain cluster name."""

    def test_default_is_single_node(self) -> None:
        """No cluster unless set."""
        assert ClickHouseSettings().cluster is None

    @pytest.mark.parametrize("name", ["lookout", "prod_cluster-1"])
    def test_valid_names(self, name: str) -> None:
        """Identifiers with dashes are accepted."""
        assert ClickHouseSettings(cluster=name).cluster == name

    @pytest.mark.parametrize("name", ["", "a b", "x; DROP TABLE y", "1abc"])
    def test_invalid_names_rejected(self, name: str) -> None:
        """Anything that is not a plain name is refused (it is spliced into DDL)."""
        with pytest.raises(ValueError, match="cluster"):
            ClickHouseSettings(cluster=name)
