"""Storage on the real embedded ClickHouse engine (chDB) in a temp directory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.config import ClickHouseSettings
from agent.errors import StorageError
from agent.sinks.clickhouse import DeadLetterTableSink, RecordSink
from agent.storage import migrations
from agent.storage.client import connect, mask_dsn
from agent.types import DecodeFailure, Message, Origin, Sample, ScoredSample, Usage

DB = "lookout"


def scored(
    record_id: str,
    toxicity: float,
    offset: int = 0,
    ts: datetime = datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
    model: str = "gpt-4o",
    tenant: str = "acme",
) -> ScoredSample:
    sample = Sample(
        id=record_id,
        ts=ts,
        prompt="p",
        response="r",
        history=(Message("system", "be nice"),),
        model=model,
        tenant=tenant,
        context=("passage",),
        usage=Usage(3, 4),
        latency_ms=812.5,
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        span_id="00f067aa0ba902b7",
        parent_span_id="b7ad6b7169203331",
        session_id="conv-7",
        error="RateLimitError: 429",
        metadata={"k": "v", "n": 3.0},
        origin=Origin("t", 1, offset),
    )
    return ScoredSample(
        sample=sample,
        scores={"toxicity": toxicity, "prompt_toxicity": None, "relevance": 0.7},
        versions={"toxicity": "v1"},
        flags=("toxicity",) if toxicity >= 0.5 else (),
        cost_usd=0.001,
    )


class TestMigrations:
    """Versioned, idempotent, recorded."""

    def test_migrate_twice_applies_nothing_the_second_time(self, client: Any) -> None:
        """The second run finds every version recorded and changes nothing."""
        assert migrations.migrate(client, DB) == []
        assert migrations.applied_versions(client, DB) == {m.version for m in migrations.MIGRATIONS}
        tables = {r[0] for r in client.query("SELECT name FROM system.tables WHERE database = 'lookout'").result_rows}
        assert {"records", "dead_letters", "agent_runs", "v_records", "v_dead_letters", "v_agent_runs"} <= tables

    def test_text_ttl_applies_to_raw_text_only(self, client: Any) -> None:
        """raw_text_ttl_days puts a TTL on prompt/response/history/context and nothing else."""
        migrations.migrate(client, DB, raw_text_ttl_days=30)
        ddl = client.query("SHOW CREATE TABLE lookout.records").result_rows[0][0]
        for column in migrations.TEXT_COLUMNS:
            assert f"`{column}`" in ddl
        assert ddl.count("TTL toDateTime(ts) + toIntervalDay(30)") == len(migrations.TEXT_COLUMNS)


class TestRecordSink:
    """Idempotent writes."""

    def test_same_record_written_twice_is_seen_once_with_latest_scores(self, client: Any) -> None:
        """A re-delivered record collapses to one row in v_records; the later write wins."""
        sink = RecordSink(client, DB, ["toxicity", "prompt_toxicity", "relevance"])
        sink.write([scored("a", 0.9), scored("b", 0.1, offset=1)])
        sink.write([scored("a", 0.2)])
        assert client.query("SELECT count() FROM lookout.records").result_rows[0][0] == 3
        rows = client.query("SELECT id, toxicity, flags FROM lookout.v_records ORDER BY id").result_rows
        assert [(r[0], round(r[1], 3), list(r[2])) for r in rows] == [("a", 0.2, []), ("b", 0.1, [])]

    def test_resent_id_under_another_ts_or_model_is_one_record(self, client: Any) -> None:
        """A (tenant, id) re-sent under another month, model or within one batch: one row, the latest written."""
        sink = RecordSink(client, DB, ["toxicity", "prompt_toxicity", "relevance"])
        later = datetime(2027, 1, 3, 9, 30, 0, 123456, tzinfo=UTC)  # another month, sub-millisecond part
        sink.write([scored("a", 0.9), scored("b", 0.1), scored("c", 0.1), scored("a", 0.1, tenant="beta")])
        sink.write([scored("a", 0.3, ts=later), scored("b", 0.4, model="gpt-4o-mini")])
        sink.write([scored("c", 0.5, ts=later), scored("c", 0.6, ts=later, model="o1"), scored("c", 0.7)])
        rows = client.query(
            "SELECT tenant, id, toString(ts), model, toxicity FROM lookout.v_records ORDER BY tenant, id"
        ).result_rows
        assert [(t, i, ts, m, round(x, 3)) for t, i, ts, m, x in rows] == [
            ("acme", "a", "2027-01-03 09:30:00.123", "gpt-4o", 0.3),
            ("acme", "b", "2026-11-25 10:00:00.000", "gpt-4o-mini", 0.4),
            ("acme", "c", "2026-11-25 10:00:00.000", "gpt-4o", 0.7),  # back to its first key: the last copy wins
            ("beta", "a", "2026-11-25 10:00:00.000", "gpt-4o", 0.1),  # another tenant's "a" is another record
        ]
        sink.write([scored("a", 0.3, ts=later)])  # a re-delivery of the latest copy supersedes nothing
        client.command("OPTIMIZE TABLE lookout.records FINAL")
        assert client.query("SELECT count() FROM lookout.v_records").result_rows == [(4,)]

    def test_every_column_round_trips(self, client: Any) -> None:
        """What the sample held is what the row holds."""
        RecordSink(client, DB, ["toxicity", "prompt_toxicity", "relevance"]).write([scored("a", 0.9)])
        row = client.query(
            "SELECT tenant, model, history, context, prompt_tokens, completion_tokens, cost_usd, metadata, "
            "prompt_toxicity, detector_versions, flags, src_topic, src_partition, ts FROM lookout.v_records"
        ).result_rows[0]
        assert row[:8] == (
            "acme",
            "gpt-4o",
            [{"role": "system", "content": "be nice"}],
            ["passage"],
            3,
            4,
            0.001,
            {"k": "v", "n": "3"},
        )
        assert row[8] is None
        assert row[9:13] == ({"toxicity": "v1"}, ["toxicity"], "t", 1)
        assert row[13].replace(tzinfo=UTC) == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

    def test_span_session_latency_and_error_round_trip(self, client: Any) -> None:
        """Trace and span ids, session_id, latency_ms and error reach v_records as the sample held them."""
        RecordSink(client, DB, ["toxicity"]).write([scored("a", 0.9)])
        row = client.query(
            "SELECT trace_id, span_id, parent_span_id, session_id, latency_ms, error FROM lookout.v_records"
        ).result_rows
        assert row == [
            ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "b7ad6b7169203331", "conv-7", 812.5,
             "RateLimitError: 429")
        ]  # fmt: skip

    def test_dead_letters_are_idempotent_on_source_offset(self, client: Any) -> None:
        """The same failed message written twice counts once."""
        sink = DeadLetterTableSink(client, DB, "t.dlq")
        failure = DecodeFailure(raw=b"x", reason="not JSON", origin=Origin("t", 0, 5), timestamp_ms=1_764_000_000_000)
        sink.write([failure])
        sink.write([failure])
        assert client.query("SELECT count(), any(reason) FROM lookout.v_dead_letters").result_rows == [(1, "not JSON")]


class TestConnect:
    """Errors that say what to do."""

    def test_unreachable_server_is_one_line(self) -> None:
        """A refused port names the DSN (password masked) and the env var to set."""
        from agent.broker import free_port

        dsn = f"http://user:secret@127.0.0.1:{free_port()}"
        with pytest.raises(StorageError) as err:
            connect(ClickHouseSettings(dsn=dsn))
        message = str(err.value)
        assert "\n" not in message and "secret" not in message
        assert message.startswith(f"ClickHouse unreachable at {mask_dsn(dsn)} (connection refused)")
        assert "LOOKOUT_CLICKHOUSE__DSN" in message

    def test_unsupported_scheme(self) -> None:
        """Only chdb:// and http(s):// are accepted."""
        with pytest.raises(StorageError, match="use chdb://PATH or http"):
            connect(ClickHouseSettings(dsn="postgres://x"))


class TestUpgrade:
    """A database created by an older lookout gains the new columns and keeps its rows."""

    def test_v1_database_migrates_to_current(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Rows written under schema 1 survive; the view exposes columns added later as NULL."""
        c = connect(ClickHouseSettings(dsn=f"chdb://{tmp_path / 'data'}"))
        try:
            monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:1])
            migrations.migrate(c, DB)
            c.command(
                "INSERT INTO lookout.records (id, ts, ingested_at, relevance) VALUES ('old', now64(), now64(), 0.5)"
            )
            monkeypatch.undo()
            applied = migrations.migrate(c, DB)
            assert [m.version for m in applied] == sorted(m.version for m in migrations.MIGRATIONS[1:])
            rows = c.query("SELECT id, relevance, hallucination, refusal FROM lookout.v_records").result_rows
            assert rows == [("old", 0.5, None, None)]
        finally:
            c.close()

    def test_v12_database_gains_span_session_and_error_columns(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Rows stored under schema 12 keep every value and read '' for the new columns; new rows carry them."""
        c = connect(ClickHouseSettings(dsn=f"chdb://{tmp_path / 'data'}"))
        try:
            monkeypatch.setattr(migrations, "MIGRATIONS", tuple(m for m in migrations.MIGRATIONS if m.version < 13))
            migrations.migrate(c, DB)
            assert "session_id" not in migrations.record_columns(c, DB)
            c.insert(
                "lookout.records",
                [["old", datetime(2026, 11, 1, tzinfo=UTC), datetime.now(UTC), "acme", "t-1", 250.0, 0.5]],
                column_names=["id", "ts", "ingested_at", "tenant", "trace_id", "latency_ms", "relevance"],
            )
            monkeypatch.undo()
            assert [m.version for m in migrations.migrate(c, DB)][:1] == [13]  # then the later ones
            assert {"span_id", "parent_span_id", "session_id", "error"} <= migrations.record_columns(c, DB)
            RecordSink(c, DB, ["toxicity"]).write([scored("new", 0.1)])
            rows = c.query(
                "SELECT id, trace_id, span_id, parent_span_id, session_id, error, latency_ms, relevance "
                "FROM lookout.v_records ORDER BY id"
            ).result_rows
            assert rows == [
                ("new", "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "b7ad6b7169203331", "conv-7",
                 "RateLimitError: 429", 812.5, None),
                ("old", "t-1", "", "", "", "", 250.0, 0.5),
            ]  # fmt: skip
        finally:
            c.close()

    def test_copies_under_other_keys_collapse_on_upgrade(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Copies of one (tenant, id) stored before version 12 under other ts (days apart) become the latest one."""
        c = connect(ClickHouseSettings(dsn=f"chdb://{tmp_path / 'data'}"))
        try:
            monkeypatch.setattr(migrations, "MIGRATIONS", tuple(m for m in migrations.MIGRATIONS if m.version < 12))
            migrations.migrate(c, DB)
            now = datetime.now(UTC)
            copies = [  # ingested in this order, so day 30 is the latest copy; "y" has one copy
                [
                    "x",
                    datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day),
                    now - timedelta(seconds=3 - k),
                    "acme",
                    rel,
                ]
                for k, (day, rel) in enumerate(((1, 0.1), (90, 0.2), (30, 0.3)))
            ] + [["y", now, now, "acme", None]]
            c.insert("lookout.records", copies, column_names=["id", "ts", "ingested_at", "tenant", "relevance"])
            monkeypatch.undo()
            assert 12 in {m.version for m in migrations.migrate(c, DB)}
            rows = c.query("SELECT id, toDate(ts), relevance FROM lookout.v_records ORDER BY id").result_rows
            assert [(i, r if r is None else round(r, 3)) for i, _, r in rows] == [("x", 0.3), ("y", None)]
            assert str(rows[0][1]) == "2026-01-31"
        finally:
            c.close()
