"""The agent end to end: real tansu broker, real chDB, ``lookout run`` as a subprocess, real models."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from conftest import MALFORMED, AgentEnv, record

from agent.sinks.kafka import OFFSET_HEADER, PARTITION_HEADER, REASON_HEADER, STEP_HEADER, TOPIC_HEADER

IDLE = "4"


def _distinct(env: AgentEnv) -> int:
    return int(env.query("SELECT count() FROM lookout.v_records")[0][0])


def _raw(env: AgentEnv) -> int:
    return int(env.query("SELECT count() FROM lookout.records")[0][0])


class TestAgentPipeline:
    """Produce → consume → decode → score → ClickHouse → commit."""

    def test_valid_rows_stored_malformed_dead_lettered_offsets_committed(self, agent_env: AgentEnv) -> None:
        """N valid records become N rows, M malformed go to the DLQ topic and table, commits reach the end."""
        n = 120
        payloads = [json.dumps(record(i)).encode() for i in range(n)] + list(MALFORMED)
        ends = agent_env.topic.produce(payloads)

        done = agent_env.run("run", "--exit-when-idle", IDLE)
        assert done.returncode == 0, done.stderr[-2000:]
        assert f"consumed {n + len(MALFORMED)}, stored {n}, dead-lettered {len(MALFORMED)}" in done.stderr

        assert _distinct(agent_env) == n
        assert agent_env.topic.committed(agent_env.group) == ends
        rows = agent_env.query(
            "SELECT id, toxicity, prompt_toxicity, relevance, cost_usd, flags, detector_versions['relevance'] "
            "FROM lookout.v_records ORDER BY id"
        )
        assert [r[0] for r in rows] == [f"r-{i:05d}" for i in range(n)]
        for _, tox, ptox, rel, cost, _flags, version in rows:
            assert 0.0 <= tox <= 1.0 and 0.0 <= ptox <= 1.0
            assert rel > 0.5  # each response restates its question: relevant
            assert cost == pytest.approx((10 * 0.15 + 20 * 0.60) / 1e6)
            assert version.startswith("head-")

        reasons = dict(
            agent_env.query("SELECT src_offset, reason FROM lookout.v_dead_letters ORDER BY src_partition, src_offset")
        )
        assert len(reasons) == len(MALFORMED)
        dlq = agent_env.topic.dead_letters(len(MALFORMED))
        assert sorted(m.value for m in dlq) == sorted(MALFORMED)
        for m in dlq:
            headers = dict(m.headers)
            assert headers[TOPIC_HEADER].decode() == agent_env.topic.name
            assert int(headers[PARTITION_HEADER]) in range(agent_env.topic.partitions)
            assert int(headers[OFFSET_HEADER]) >= 0
            assert headers[REASON_HEADER]
            assert headers[STEP_HEADER] == b"decode"
        all_reasons = " | ".join(m.headers[0][1].decode() for m in dlq)
        for expected in ("not JSON", "must be a JSON object", "missing required field 'response'", "invalid UTF-8"):
            assert expected in all_reasons

    def test_agent_run_counters_recorded(self, agent_env: AgentEnv) -> None:
        """Each run leaves one agent_runs row with its final counters and status."""
        agent_env.topic.produce_records([record(i) for i in range(10)])
        assert agent_env.run("run", "--exit-when-idle", IDLE).returncode == 0
        rows = agent_env.query("SELECT status, consumed, stored, dead_lettered FROM lookout.v_agent_runs")
        assert rows == [("idle-exit", 10, 10, 0)]


class TestCrashRecovery:
    """A crash between write and commit re-delivers the batch; nobody sees it twice."""

    def test_kill_between_write_and_commit_then_restart_shows_no_duplicates(self, agent_env: AgentEnv) -> None:
        """SIGKILL after the first write, before its commit; restart; every read path counts each record once."""
        n = 100
        agent_env.topic.produce_records([record(i) for i in range(n)])
        crashed = agent_env.run_crashing(1)
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
        written_before_crash = _raw(agent_env)
        assert written_before_crash > 0
        assert agent_env.topic.committed(agent_env.group) == {}

        again = agent_env.run("run", "--exit-when-idle", IDLE)
        assert again.returncode == 0, again.stderr[-2000:]
        assert f"consumed {n}, stored {n}" in again.stderr  # nothing was committed: all re-delivered
        assert _distinct(agent_env) == n
        stats = agent_env.run("stats", "--json")
        assert json.loads(stats.stdout)["samples"] == n
        top = agent_env.run("query", "SELECT count() AS n, uniqExact(id) AS ids FROM lookout.v_records", "--json")
        assert json.loads(top.stdout) == {"n": n, "ids": n}


class TestConsumerGroup:
    """Two agents in one group share partitions; every record lands exactly once."""

    def test_two_agents_in_one_group_store_every_record_once(self, agent_env: AgentEnv) -> None:
        """Both agents consume (records keep arriving while they join), each record appears once."""
        first = [record(i) for i in range(150)]
        agent_env.topic.produce_records(first)
        # chDB allows one process per directory: the second agent writes to its own directory, and both
        # directories are read back together (the HTTP-server deployment shares one database instead).
        second_dir = agent_env.data_dir.parent / "second-data"
        a = agent_env.start("run", "--exit-when-idle", "6")
        b = agent_env.start("run", "--exit-when-idle", "6", LOOKOUT_CLICKHOUSE__DSN=f"chdb://{second_dir}")
        time.sleep(8)
        agent_env.topic.produce_records([record(i) for i in range(150, 300)])
        out_a = a.communicate(timeout=180)
        out_b = b.communicate(timeout=180)
        assert a.returncode == 0, out_a[1][-2000:]
        assert b.returncode == 0, out_b[1][-2000:]
        ids_a = {r[0] for r in agent_env.query("SELECT id FROM lookout.v_records")}
        failures_a = agent_env.query("SELECT sum(commit_failures) FROM lookout.v_agent_runs")[0][0]
        second = AgentEnv(agent_env.topic, second_dir, agent_env.group)
        ids_b = {r[0] for r in second.query("SELECT id FROM lookout.v_records")}
        failures_b = second.query("SELECT sum(commit_failures) FROM lookout.v_agent_runs")[0][0]
        assert ids_a and ids_b, "both agents should have consumed part of the topic"
        assert ids_a | ids_b == {f"r-{i:05d}" for i in range(300)}
        # A record is handed to a second agent only when a commit was refused mid-rebalance; then at most
        # one batch per refused commit is re-read (and, on a shared database, deduplicated).
        assert len(ids_a & ids_b) <= 40 * (failures_a + failures_b)


class TestShutdown:
    """SIGTERM finishes the batch, flushes, commits and exits 0."""

    def test_sigterm_drains_cleanly_and_restart_completes(self, agent_env: AgentEnv) -> None:
        """After SIGTERM every committed offset is covered by stored rows; a restart stores the rest once."""
        n = 400
        ends = agent_env.topic.produce_records([record(i) for i in range(n)])
        proc = agent_env.start("run", LOOKOUT_BATCH__MAX_RECORDS="20", LOOKOUT_LOG__LEVEL="debug")
        assert proc.stderr is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line or "batch committed" in line:
                break
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
        committed = agent_env.topic.committed(agent_env.group)
        stored = dict(
            agent_env.query("SELECT src_partition, max(src_offset) + 1 FROM lookout.v_records GROUP BY src_partition")
        )
        assert committed, "the agent should have committed something before SIGTERM"
        for partition, offset in committed.items():
            assert stored[partition] >= offset
        assert sum(committed.values()) < n, "SIGTERM came too late to test a mid-stream stop"

        again = agent_env.run("run", "--exit-when-idle", IDLE)
        assert again.returncode == 0
        assert _distinct(agent_env) == n
        assert agent_env.topic.committed(agent_env.group) == ends


class TestCompressedInput:
    """Producers compress: every codec Kafka has must be readable, and a missing one must be a clear stop."""

    def test_every_codec_is_stored_and_a_missing_one_stops_with_one_line(
        self, agent_env: AgentEnv, tmp_path: Path
    ) -> None:
        """gzip, lz4, snappy and zstd batches are all stored once.

        With zstandard made unimportable (``sys.modules["zstandard"] = None`` from a sitecustomize on PYTHONPATH:
        the mock for an install that dropped it) the agent exits 1 with one line naming the cure and stores
        nothing of that batch; a normal run afterwards stores every record. Values are long and repetitive and
        batched (kafka-python sends a batch uncompressed when compressing would not make it smaller).
        """
        from kafka import KafkaProducer

        codecs = ("gzip", "lz4", "snappy", "zstd")
        filler = " all work and no play makes a dull response" * 40
        for n, codec in enumerate(codecs):
            producer = KafkaProducer(
                bootstrap_servers=agent_env.topic.broker.bootstrap, compression_type=codec, linger_ms=50
            )
            for i in range(3):
                value = json.dumps(record(10 * n + i, response=f"{filler} {codec}")).encode()
                producer.send(agent_env.topic.name, value=value, key=codec.encode())
            producer.flush(timeout=30)
            producer.close()
        blocked = tmp_path / "no-zstd"
        blocked.mkdir()
        (blocked / "sitecustomize.py").write_text('import sys\nsys.modules["zstandard"] = None\n')
        failed = agent_env.run("run", "--exit-when-idle", IDLE, PYTHONPATH=str(blocked))
        assert failed.returncode == 1, failed.stderr[-2000:]
        last = failed.stderr.strip().splitlines()[-1]
        assert last.startswith("lookout: error: cannot read a fetched batch ("), last
        assert "zstd" in last and "kafka-python[crc32c,lz4,snappy,zstd]" in last
        stored = {r[0] for r in agent_env.query("SELECT id FROM lookout.v_records")}
        assert not stored & {f"r-{30 + i:05d}" for i in range(3)}  # nothing of the zstd batch
        done = agent_env.run("run", "--exit-when-idle", IDLE)
        assert done.returncode == 0, done.stderr[-2000:]
        rows = agent_env.query("SELECT id, response FROM lookout.v_records ORDER BY id")
        assert len(rows) == 12
        assert sorted(response.rsplit(" ", 1)[-1] for _, response in rows) == sorted(codecs * 3)
