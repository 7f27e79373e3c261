"""Migration 17 and the record sink's cascade columns, on the real embedded ClickHouse engine (chDB)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import open_chdb

from agent.sinks.clickhouse import RecordSink
from agent.storage import migrations
from agent.storage.cluster import on_cluster
from agent.storage.migrations_cascade import CASCADE_MIGRATIONS
from agent.types import Sample, ScoredSample

DB = "lookout"
COLUMNS = {"score_tiers", "audited", "audit_disagree"}


def scored(record_id: str, **cascade: Any) -> ScoredSample:
    """A scored record; ``cascade`` sets tiers / audited / audit_disagree."""
    sample = Sample(id=record_id, ts=datetime(2026, 11, 25, 10, 0, tzinfo=UTC), prompt="p", response="r",
                    tenant="acme", model="gpt-4o")  # fmt: skip
    item = ScoredSample(sample, {"toxicity": 0.7, "refusal": 0.1}, {"toxicity": "v1"}, ("toxicity",), None)
    return dataclasses.replace(item, **cascade)


class TestMigration17:
    """Version 17 adds the cascade columns to records and v_records; older rows read the defaults."""

    def test_column_types(self, client: Any) -> None:
        """The three columns exist with their types, and v_records (recreated) exposes them."""
        rows = client.query(
            "SELECT table, name, type FROM system.columns WHERE database = 'lookout' "
            "AND table IN ('records', 'v_records') AND name IN ('score_tiers', 'audited', 'audit_disagree') "
            "ORDER BY table, name"
        ).result_rows
        types = {
            "audit_disagree": "Array(LowCardinality(String))",
            "audited": "UInt8",
            "score_tiers": "Map(LowCardinality(String), LowCardinality(String))",
        }
        assert rows == [(t, n, types[n]) for t in ("records", "v_records") for n in sorted(types)]
        assert 17 in migrations.applied_versions(client, DB)

    def test_v16_database_upgrades(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A record stored under schema 16 reads an empty map, 0 and []; the sink then writes the new columns."""
        with open_chdb(tmp_path / "data") as c:
            monkeypatch.setattr(migrations, "MIGRATIONS", tuple(m for m in migrations.MIGRATIONS if m.version < 17))
            migrations.migrate(c, DB)
            assert not COLUMNS & migrations.record_columns(c, DB)
            c.insert(
                "lookout.records",
                [["old", datetime(2026, 11, 1, tzinfo=UTC), datetime.now(UTC), "acme", 0.7]],
                column_names=["id", "ts", "ingested_at", "tenant", "toxicity"],
            )
            monkeypatch.undo()
            assert [m.version for m in migrations.migrate(c, DB)] == [17]
            assert migrations.record_columns(c, DB) >= COLUMNS
            RecordSink(c, DB, ["toxicity"]).write([scored("new", tiers={"toxicity": "full"}, audited=True)])
            rows = c.query(
                "SELECT id, score_tiers, audited, audit_disagree, toxicity FROM lookout.v_records ORDER BY id"
            ).result_rows
            assert [(i, t, a, d, round(x, 3)) for i, t, a, d, x in rows] == [
                ("new", {"toxicity": "full"}, 1, [], 0.7),
                ("old", {}, 0, [], 0.7),
            ]

    def test_v_records_matches_the_main_definition(self) -> None:
        """Migration 17 recreates v_records exactly as version 12 defines it (the copy is not a fork)."""
        assert migrations.V_RECORDS in CASCADE_MIGRATIONS[0].statements

    def test_cluster_form(self) -> None:
        """On a cluster each new column goes on records_local and the Distributed records."""
        alters = [s.format(db=DB) for s in CASCADE_MIGRATIONS[0].statements if s.startswith("ALTER")]
        rewritten = [c for s in alters for c in on_cluster(s, "lc")]
        assert len(rewritten) == 2 * len(COLUMNS)
        assert {c.split(" ON CLUSTER ")[0] for c in rewritten} == {"ALTER TABLE lookout.records_local",
                                                                  "ALTER TABLE lookout.records"}  # fmt: skip


class TestRecordSinkCascade:
    """RecordSink writes what the cascade decided per record."""

    def test_tiers_audit_and_disagreement_round_trip(self, client: Any) -> None:
        """Tiers, the audit mark and the disagreeing detectors reach v_records as the ScoredSample held them."""
        sink = RecordSink(client, DB, ["toxicity", "refusal"])
        sink.write([
            scored("audited", tiers={"toxicity": "full", "refusal": "fast", "hallucination": "expensive"},
                   audited=True, audit_disagree=("toxicity",)),
            scored("fast", tiers={"toxicity": "fast", "refusal": "fast"}),
            scored("full-mode"),
        ])  # fmt: skip
        rows = client.query(
            "SELECT id, score_tiers, audited, audit_disagree FROM lookout.v_records ORDER BY id"
        ).result_rows
        assert rows == [
            ("audited", {"hallucination": "expensive", "refusal": "fast", "toxicity": "full"}, 1, ["toxicity"]),
            ("fast", {"refusal": "fast", "toxicity": "fast"}, 0, []),
            ("full-mode", {}, 0, []),
        ]
