"""Faults with real processes: ``lookout run`` as a subprocess, a real tansu broker, real chDB.

kill -9 at seeded random moments, and ClickHouse failing every write for a while (the chDB directory made
immutable with ``chattr +i``, so even root cannot create a part in it). Afterwards every produced record is
stored exactly once as seen by every read path. The long variants are marked ``slow``.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypedDict

import pytest
from conftest import AgentEnv, Topic, http_get, record
from prometheus_client.parser import text_string_to_metric_families

from agent import metrics
from agent.broker import Broker, ensure_topic, free_port
from agent.config import KafkaSettings, Settings
from agent.source import CommitDeferred, CommitFailed, KafkaSource
from agent.types import RawMessage
from dashboards.build import bundle
from dashboards.macros import ALL, QueryContext, expand


class _Fast(TypedDict):
    """Environment overrides for a fast agent."""

    LOOKOUT_BATCH__MAX_RECORDS: str
    LOOKOUT_REVIEW__RULES: str
    LOOKOUT_DETECTORS__TOXICITY_BACKEND: str
    LOOKOUT_DETECTORS__ENABLED: str


FAST = _Fast(
    LOOKOUT_BATCH__MAX_RECORDS="20",
    LOOKOUT_REVIEW__RULES=str(Path(__file__).resolve().parents[1] / "data" / "review_every_record.yaml"),
    LOOKOUT_DETECTORS__TOXICITY_BACKEND="lexical",
    LOOKOUT_DETECTORS__ENABLED='["toxicity", "prompt_toxicity", "relevance", "hallucination", "refusal"]',
)
"""Small batches (more write/commit boundaries to be killed at), every record queued for review (so the export is
a read path over all of them), the fastest toxicity backend, fixed detectors."""


def _gauge(base: str, name: str) -> float | None:
    status, body = http_get(f"{base}/metrics")
    if status != 200:
        return None
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            if s.name == name:
                return float(s.value)
    return None


def _wait(condition: object, what: str, timeout_s: float, proc: subprocess.Popen[str] | None = None) -> None:
    """Poll ``condition()`` until true; fail naming ``what`` (and the agent's stderr if it died)."""
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"agent exited ({proc.returncode}) while waiting for {what}: {proc.communicate()[1][-2000:]}")
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def assert_exactly_once(env: AgentEnv, n: int) -> None:
    """Records r-00000..r-<n-1> are each seen once by every read path: SQL views, stats, query, dashboards, export."""
    expected = {f"r-{i:05d}" for i in range(n)}
    assert {r[0] for r in env.query("SELECT id FROM lookout.v_records")} == expected
    assert env.query("SELECT count(), uniqExact(id) FROM lookout.v_records") == [(n, n)]

    stats = env.run("stats", "--json")
    assert stats.returncode == 0, stats.stderr[-2000:]
    assert json.loads(stats.stdout)["samples"] == n
    top = env.run("query", "SELECT count() AS n, uniqExact(id) AS ids FROM lookout.v_records", "--json")
    assert json.loads(top.stdout) == {"n": n, "ids": n}

    q = next(q for board in bundle(Settings()).boards for q in board.queries if q.panel == "Flag rates by model")
    ctx = QueryContext(
        datetime(2025, 1, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
        300,
        {"tenant": [ALL], "model": [ALL], "route": [ALL], "stream": [ALL], "queue": [ALL]},
    )
    by_model = env.query(expand(q.sql, ctx))
    assert sum(int(r[1]) for r in by_model) == n, by_model

    queued = [r[0] for r in env.query("SELECT record_id FROM lookout.v_review_items")]
    assert sorted(queued) == sorted(expected), "every record is queued once (review_every_record.yaml)"
    out = env.data_dir.parent / f"export-{time.monotonic_ns()}"
    done = env.run("export", "--out", str(out), "--format", "jsonl", "--include-unlabeled")
    assert done.returncode == 0, done.stderr[-2000:]
    exported = [json.loads(line)["id"] for line in (out / "records.jsonl").read_text().splitlines()]
    assert sorted(exported) == sorted(expected)


def _kill_trials(env: AgentEnv, trials: int, seed: int) -> None:
    """Produce in chunks; start the agent, SIGKILL it after a seeded random delay; repeat; then drain."""
    rng = random.Random(seed)  # noqa: S311  # seeded test timing, not cryptography
    per_trial = 60
    kills = 0
    for t in range(trials):
        env.topic.produce_records([record(i) for i in range(t * per_trial, (t + 1) * per_trial)])
        proc = env.start("run", **FAST)
        time.sleep(rng.uniform(3.0, 14.0))  # spans model load, group join, and mid-stream batches
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
    assert kills == trials, "every trial should kill a running agent"
    done = env.run("run", "--exit-when-idle", "5", timeout=600, **FAST)  # up to 1,200 records on 2 busy cores
    assert done.returncode == 0, done.stderr[-2000:]
    assert_exactly_once(env, trials * per_trial)


class TestKill9:
    """SIGKILL at random moments never loses or duplicates a record on any read path."""

    def test_three_random_kills_then_exactly_once(self, agent_env: AgentEnv) -> None:
        """3 kill -9 at seeded random moments, restart: every record once in views, stats, dashboards, export."""
        _kill_trials(agent_env, trials=3, seed=1)

    @pytest.mark.slow
    def test_twenty_random_kills_then_exactly_once(self, agent_env: AgentEnv) -> None:
        """20 kill -9 at seeded random moments, restart: every record once on every read path."""
        _kill_trials(agent_env, trials=20, seed=20)


def _set_immutable(data_dir: Path, on: bool) -> None:
    """``chattr ±i`` on every directory of the chDB store: no part can be created while on (root included)."""
    dirs = [str(p) for p in (data_dir / "store").rglob("*") if p.is_dir() and not p.is_symlink()]
    subprocess.run(["chattr", "+i" if on else "-i", str(data_dir / "store"), *dirs], check=True, capture_output=True)


def _chattr_works(where: Path) -> bool:
    probe = where / "chattr-probe"
    probe.mkdir()
    if shutil.which("chattr") is None:
        return False
    ok = subprocess.run(["chattr", "+i", str(probe)], capture_output=True).returncode == 0
    if ok:
        subprocess.run(["chattr", "-i", str(probe)], check=True, capture_output=True)
    return ok


@contextmanager
def storage_outage(data_dir: Path) -> Iterator[None]:
    """Writes to the chDB directory fail inside the block; always undone (the temp dir must stay removable)."""
    _set_immutable(data_dir, True)
    try:
        yield
    finally:
        _set_immutable(data_dir, False)


def _outage(env: AgentEnv, outage_s: float) -> None:
    if not _chattr_works(env.data_dir.parent):
        pytest.skip("chattr +i is not supported on this filesystem (needed to make chDB writes fail)")
    first, second = 40, 80
    env.topic.produce_records([record(i) for i in range(first)])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = env.start(
        "run",
        LOOKOUT_METRICS__PORT=str(port),
        LOOKOUT_CLICKHOUSE__RETRY_BACKOFF_MAX_S="2",
        LOOKOUT_CLICKHOUSE__WRITE_RETRIES="1000",
        **FAST,
    )
    try:
        _wait(lambda: sum(env.topic.committed(env.group).values()) == first, "the first records committed", 150, proc)
        _wait(lambda: http_get(f"{base}/readyz")[0] == 200, "ready", 30, proc)
        assert _gauge(base, metrics.STORAGE_UP) == 1
        with storage_outage(env.data_dir):
            ends = env.topic.produce_records([record(i) for i in range(first, first + second)])
            _wait(lambda: http_get(f"{base}/readyz")[0] == 503, "/readyz 503 while writes fail", 60, proc)
            _, body = http_get(f"{base}/readyz")
            assert any(r.startswith("storage unreachable:") for r in json.loads(body)["reasons"]), body
            assert _gauge(base, metrics.STORAGE_UP) == 0
            failures = _gauge(base, metrics.SINK_WRITE_FAILURES)
            deadline = time.monotonic() + outage_s
            while time.monotonic() < deadline:
                assert proc.poll() is None, proc.communicate()[1][-2000:]
                assert sum(env.topic.committed(env.group).values()) == first, "committed during the outage"
                time.sleep(1)
            assert (_gauge(base, metrics.SINK_WRITE_FAILURES) or 0) > (failures or 0), "retries should go on"
        _wait(lambda: env.topic.committed(env.group) == ends, "everything committed after the outage", 120, proc)
        _wait(lambda: http_get(f"{base}/readyz")[0] == 200, "ready again", 30, proc)
        assert _gauge(base, metrics.STORAGE_UP) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert "write failed, retrying" in err
    assert_exactly_once(env, first + second)


class TestStorageOutage:
    """ClickHouse failing every write: no commit, paused partitions, 503 + metrics, everything written after."""

    def test_ten_second_outage(self, agent_env: AgentEnv) -> None:
        """A 10 s write outage: nothing committed, /readyz 503, storage_up 0; afterwards all records once."""
        _outage(agent_env, 10)

    @pytest.mark.slow
    def test_sixty_second_outage(self, agent_env: AgentEnv) -> None:
        """A 60 s write outage (longer than the session timeout): the agent stays in the group and catches up."""
        _outage(agent_env, 60)

    def test_unreachable_server_dsn_exits_without_committing(self, agent_env: AgentEnv) -> None:
        """An http:// DSN on a refused port: one line naming the DSN (password masked), exit 1, nothing committed.

        No ClickHouse server runs here, so the HTTP path can only be checked for refusing to start; the retry
        loop itself is the same code the chDB outage test drives.
        """
        agent_env.topic.produce_records([record(i) for i in range(5)])
        dsn = f"http://lookout:hunter2@127.0.0.1:{free_port()}"
        done = agent_env.run("run", "--exit-when-idle", "3", LOOKOUT_CLICKHOUSE__DSN=dsn)
        assert done.returncode == 1
        assert "ClickHouse unreachable at http://lookout:***@127.0.0.1" in done.stderr
        assert "hunter2" not in done.stderr + done.stdout
        assert agent_env.topic.committed(agent_env.group) == {}


@pytest.fixture
def s3_broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    """A tansu broker on the ``s3://`` engine (a local moto S3 server): its topics and offsets survive a restart."""
    moto = shutil.which("moto_server")
    if moto is None:
        pytest.skip("moto_server (the moto[server] dev dependency) is not installed")
    port = free_port()
    server = subprocess.Popen(
        [moto, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        _wait(lambda: _put(f"{endpoint}/tansu"), "the S3 bucket created", 30)
        for key, value in {
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT": endpoint, "AWS_ALLOW_HTTP": "true",
        }.items():  # fmt: skip
            monkeypatch.setenv(key, value)  # tansu reads them; the agent ignores them
        broker = Broker(storage_engine="s3://tansu/", data_dir=tmp_path / "broker").start()
        try:
            yield broker
        finally:
            broker.stop()
    finally:
        server.terminate()
        server.wait(timeout=10)


def _put(url: str) -> bool:
    request = urllib.request.Request(url, method="PUT")  # noqa: S310  # a local test URL
    try:
        with urllib.request.urlopen(request, timeout=5):  # noqa: S310  # a local test URL
            return True
    except OSError:
        return False


class TestBrokerRestart:
    """The broker goes away mid-stream and comes back: the agent reconnects; no duplicates, no loss."""

    def test_agent_rides_out_a_broker_restart(self, s3_broker: Broker, tmp_path: Path) -> None:
        """Restart tansu (s3 engine) while the agent consumes; produce more after; every record once."""
        name = f"logs-{uuid.uuid4().hex[:8]}"
        ensure_topic(s3_broker.bootstrap, name, 3)
        env = AgentEnv(Topic(s3_broker, name, 3), tmp_path / "lookout-data", f"g-{uuid.uuid4().hex[:8]}")
        first, second = 120, 60
        env.topic.produce_records([record(i) for i in range(first)])
        proc = env.start("run", **FAST)
        try:
            _wait(lambda: sum(env.topic.committed(env.group).values()) > 0, "a first commit", 150, proc)
            s3_broker.stop()
            time.sleep(3)  # the agent sees the broker gone: fetches, heartbeats and commits fail
            s3_broker.start()
            ends = env.topic.produce_records([record(i) for i in range(first, first + second)])
            _wait(lambda: _committed_or_empty(env) == ends, "everything committed after the restart", 240, proc)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-3000:]
        assert_exactly_once(env, first + second)

    def test_commit_while_the_broker_is_down_is_deferred(self, s3_broker: Broker) -> None:
        """With the broker stopped, the source's commit raises ``CommitDeferred``.

        The agent keeps those offsets and retries; kafka-python's own connection or timeout error stopped the
        agent (exit 1) when a commit fell into the outage of the restart test above. After the restart the same
        offsets commit.
        """
        name, group = f"logs-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
        ensure_topic(s3_broker.bootstrap, name, 1)
        topic = Topic(s3_broker, name, 1)
        ends = topic.produce_records([record(i) for i in range(5)])
        source = KafkaSource(KafkaSettings(bootstrap_servers=s3_broker.bootstrap, topic=name, group_id=group))
        try:
            assert len(_poll_until(source, 5)) == 5
            s3_broker.stop()
            with pytest.raises(CommitDeferred):
                source.commit({(name, 0): 5})
            s3_broker.start()
            deadline = time.monotonic() + 120
            while topic.committed(group) != ends and time.monotonic() < deadline:
                source.poll(500, 10)  # reconnects, rejoins the group if the broker forgot it
                with contextlib.suppress(CommitDeferred, CommitFailed):
                    source.commit({(name, 0): 5})
            assert topic.committed(group) == ends == {0: 5}
        finally:
            source.close()


def _poll_until(source: KafkaSource, n: int, timeout_s: float = 60) -> list[RawMessage]:
    """Poll ``source`` until it handed out ``n`` messages or ``timeout_s`` passed; what it handed out."""
    got: list[RawMessage] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < deadline:
        got += source.poll(500, 10)
    return got


def _committed_or_empty(env: AgentEnv) -> dict[int, int]:
    """The committed offsets, or {} while the broker is not answering the admin client yet."""
    try:
        return env.topic.committed(env.group)
    except Exception:  # a broker that is still starting: try again
        return {}


def _stored_covers_committed(env: AgentEnv) -> None:
    """Every committed offset is covered by a stored row: what a clean drain leaves behind."""
    committed = env.topic.committed(env.group)
    stored = dict(env.query("SELECT src_partition, max(src_offset) + 1 FROM lookout.v_records GROUP BY src_partition"))
    for partition, offset in committed.items():
        assert stored.get(partition, 0) >= offset, (partition, offset, stored)


class TestSigterm:
    """SIGTERM at any moment (loading models, joining, mid-batch) exits 0 after a clean drain."""

    def test_sigterm_while_models_load_exits_cleanly(self, agent_env: AgentEnv) -> None:
        """SIGTERM after the migrations (models still loading): exit 0, nothing committed; a restart stores all."""
        n = 50
        agent_env.topic.produce_records([record(i) for i in range(n)])
        proc = agent_env.start("run", **FAST)
        assert proc.stderr is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line or "migration applied" in line:
                break
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        assert "consumed 0, stored 0" in err
        assert agent_env.topic.committed(agent_env.group) == {}
        again = agent_env.run("run", "--exit-when-idle", "4", **FAST)
        assert again.returncode == 0, again.stderr[-2000:]
        assert agent_env.query("SELECT count(), uniqExact(id) FROM lookout.v_records") == [(n, n)]

    @pytest.mark.slow
    def test_sigterm_at_ten_random_moments(self, agent_env: AgentEnv) -> None:
        """10 SIGTERMs at seeded random moments: each exit is 0 with stored rows covering every commit; all once."""
        rng = random.Random(10)  # noqa: S311  # seeded test timing, not cryptography
        per_trial, trials = 60, 10
        for t in range(trials):
            agent_env.topic.produce_records([record(i) for i in range(t * per_trial, (t + 1) * per_trial)])
            proc = agent_env.start("run", **FAST)
            time.sleep(rng.uniform(1.0, 14.0))
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, (t, err[-2000:])
            _stored_covers_committed(agent_env)
        done = agent_env.run("run", "--exit-when-idle", "5", **FAST)
        assert done.returncode == 0, done.stderr[-2000:]
        assert_exactly_once(agent_env, trials * per_trial)


class TestLeaveDuringJoin:
    """A consumer closed in the middle of its join does not leave the group stuck."""

    def test_next_consumer_is_assigned_after_a_close_mid_join(self, topic: Topic) -> None:
        """Close right after the JoinGroup went out; the next consumer of the group reads every record.

        Before ``KafkaSource.close`` let the join finish, tansu kept the departed member as the group's leader
        and the next consumer waited forever (none assigned in 90 s; ``make slow``'s SIGTERM test stored nothing).
        Records the first consumer was handed while finishing its join were never committed, so none is skipped.
        """
        ends = topic.produce_records([record(i) for i in range(6)])
        group = f"g-{uuid.uuid4().hex[:8]}"
        settings = KafkaSettings(bootstrap_servers=topic.broker.bootstrap, topic=topic.name, group_id=group)
        first = KafkaSource(settings)
        first.poll(200, 10)  # sends JoinGroup; tansu holds the answer for seconds
        first.close()
        second = KafkaSource(settings)
        try:
            got = _poll_until(second, 6)
            assert second.last_assigned_at() is not None, "the group stayed stuck after a close mid-join"
            assert sorted(m.origin.partition for m in got) == sorted(p for p, end in ends.items() for _ in range(end))
        finally:
            second.close()


class TestRebalanceUnderLoad:
    """A second agent joins while the first consumes, then the first leaves mid-stream; every record stored."""

    @pytest.mark.slow
    def test_join_and_leave_mid_stream(self, agent_env: AgentEnv) -> None:
        """Each directory holds each id once; together they hold every id; overlap only from refused commits.

        chDB allows one process per directory, so the two agents write two databases and a record handed over
        after a refused commit can be in both (one shared ClickHouse server would hide it behind FINAL).
        """
        batch = 20
        agent_env.topic.produce_records([record(i) for i in range(300)])
        a = agent_env.start("run", **FAST)
        second = AgentEnv(agent_env.topic, agent_env.data_dir.parent / "second-data", agent_env.group)
        b: subprocess.Popen[str] | None = None
        try:
            _wait(lambda: sum(agent_env.topic.committed(agent_env.group).values()) > 0, "a's first commit", 150, a)
            b = agent_env.start("run", LOOKOUT_CLICKHOUSE__DSN=second.dsn, **FAST)  # joins under load
            agent_env.topic.produce_records([record(i) for i in range(300, 600)])
            time.sleep(10)  # the rebalance: b takes partitions from a while both consume
            a.send_signal(signal.SIGTERM)  # a leaves mid-stream: another rebalance, b takes everything
            _, err_a = a.communicate(timeout=120)
            assert a.returncode == 0, err_a[-2000:]
            ends = agent_env.topic.produce_records([record(i) for i in range(600, 700)])
            _wait(lambda: agent_env.topic.committed(agent_env.group) == ends, "b committed everything", 240, b)
        finally:
            for proc in (a, b):
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    proc.communicate(timeout=120)
        assert b is not None and b.returncode == 0
        counts_a = agent_env.query("SELECT count(), uniqExact(id) FROM lookout.v_records")[0]
        counts_b = second.query("SELECT count(), uniqExact(id) FROM lookout.v_records")[0]
        assert counts_a[0] == counts_a[1] and counts_b[0] == counts_b[1], "a directory shows an id twice"
        ids_a = {r[0] for r in agent_env.query("SELECT id FROM lookout.v_records")}
        ids_b = {r[0] for r in second.query("SELECT id FROM lookout.v_records")}
        assert ids_a and ids_b, "both agents should have stored part of the topic"
        assert ids_a | ids_b == {f"r-{i:05d}" for i in range(700)}
        refused = sum(
            int(env.query("SELECT sum(commit_failures) FROM lookout.v_agent_runs")[0][0]) for env in (agent_env, second)
        )
        assert len(ids_a & ids_b) <= batch * refused
