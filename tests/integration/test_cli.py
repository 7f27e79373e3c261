"""The ``lookout`` commands as a user runs them (subprocesses; real broker, chDB and models)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, AgentEnv, open_chdb, record

from agent.broker import free_port

FIXTURE = REPO / "tests" / "data" / "score_fixture.jsonl"
DEMO_COLUMNS = 120
"""Terminal width of the demo output shown in README.md and docs/demo.md (as scripts/demo_output.py writes it)."""


def lookout(*args: str, cwd: Path, stdin: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def demo_summary(stdout: str) -> str:
    """What ``lookout demo`` printed from its summary line on, each line without trailing spaces."""
    lines = [line.rstrip() for line in stdout.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("3/3 this run"))
    return "\n".join(lines[start:]).rstrip()


def fenced_block(doc: Path, first_line: str) -> str:
    """The fenced code block of ``doc`` that starts with ``first_line``, each line without trailing spaces."""
    blocks = doc.read_text(encoding="utf-8").split("```")[1::2]
    block = next(b for b in blocks if b.lstrip("\n").startswith(first_line))
    return "\n".join(line.rstrip() for line in block.strip("\n").splitlines()).rstrip()


class TestScoreCommand:
    """``lookout score``: files in, scores out, no Kafka, no ClickHouse."""

    def test_scores_fixture_file_and_rejects_bad_lines(self, tmp_path: Path) -> None:
        """Valid records get scores and flags; bad lines go to the DLQ file with reasons; exit 0 with counts."""
        out = tmp_path / "scored.jsonl"
        done = lookout("score", "--in", str(FIXTURE), "--out", str(out), cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stderr.strip().splitlines()[-1] == "scored 4, rejected 2"
        scored = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
        assert list(scored) == ["fine", "toxic", "offtopic", "rag"]
        for r in scored.values():
            assert set(r["scores"]) == {
                "toxicity", "prompt_toxicity", "relevance", "hallucination", "refusal", "repetition", "tone",
                "formality",
            }  # fmt: skip
        assert scored["fine"]["flags"] == []
        assert "toxicity" in scored["toxic"]["flags"]
        assert scored["offtopic"]["flags"] == ["relevance"]
        assert scored["rag"]["metadata"] == {"source": "test", "n": 3}  # the input record is passed through
        dlq = [json.loads(line) for line in (tmp_path / "scored.jsonl.dlq.jsonl").read_text().splitlines()]
        assert [(d["line"], d["raw"]) for d in dlq] == [(4, "not json"), (5, dlq[1]["raw"])]
        assert dlq[0]["reason"].startswith("not JSON")
        assert dlq[1]["reason"] == "missing required field 'response'"

    def test_stdin_to_stdout(self, tmp_path: Path) -> None:
        """``-`` reads stdin and writes stdout; the count line goes to stderr."""
        line = json.dumps(record(1))
        done = lookout("score", "--in", "-", "--out", "-", "--dlq", str(tmp_path / "d.jsonl"), cwd=tmp_path, stdin=line)
        assert done.returncode == 0, done.stderr[-2000:]
        assert json.loads(done.stdout)["id"] == "r-00001"
        assert "scored 1, rejected 0" in done.stderr


class TestErrors:
    """Expected failures print one line and exit 1."""

    def test_invalid_setting_names_its_env_var(self, tmp_path: Path) -> None:
        """A bad value is reported with the env var to fix, no traceback."""
        done = subprocess.run(
            [sys.executable, "-m", "agent", "run"],
            cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "LOOKOUT_BATCH__MAX_RECORDS": "0"},
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 1
        assert done.stderr.strip() == (
            "lookout: error: invalid setting batch.max_records (LOOKOUT_BATCH__MAX_RECORDS): "
            "Input should be greater than or equal to 1"
        )

    def test_busy_data_directory_is_reported_clearly(self, agent_env: AgentEnv) -> None:
        """While an agent holds the chDB directory, stats goes through it and a second agent is told who holds it."""
        agent_env.topic.produce_records([record(0)])
        holder = agent_env.start("run")
        try:
            assert holder.stderr is not None
            for line in holder.stderr:  # the directory is held from "agent ready" on
                if "agent ready" in line:
                    break
            done = agent_env.run("stats", "--json")  # through the agent (the store's owner): works
            assert done.returncode == 0, done.stderr[-2000:]
            assert json.loads(done.stdout)["dead_letters"] == 0
            second = agent_env.run("run", "--exit-when-idle", "1")  # a second agent needs the store: one line
            assert second.returncode == 1
            last = second.stderr.strip().splitlines()[-1]
            assert last.startswith(f"lookout: error: ClickHouse data directory {agent_env.data_dir} is held by `")
            assert f"(pid {holder.pid})" in last and "DB::Exception" not in second.stderr
        finally:
            holder.send_signal(signal.SIGTERM)
            holder.communicate(timeout=60)
        assert holder.returncode == 0

    def test_query_is_read_only(self, agent_env: AgentEnv) -> None:
        """``lookout query`` refuses writes and DDL."""
        done = agent_env.run("query", "DROP TABLE lookout.records")
        assert done.returncode == 1
        assert "readonly" in done.stderr.strip().splitlines()[-1]
        ok = agent_env.run("query", "SELECT count() AS n FROM lookout.v_records", "--json")
        assert json.loads(ok.stdout) == {"n": 0}


class TestBrokerAndReplay:
    """``lookout broker`` and ``lookout replay``."""

    def test_broker_runs_in_foreground_and_replay_produces_to_it(self, tmp_path: Path) -> None:
        """The broker writes its address to --data, accepts a replay, and stops on SIGTERM with exit 0."""
        port = free_port()
        data = tmp_path / "broker"
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "broker", "--port", str(port), "--data", str(data)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 30
            while not (data / "broker.json").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            info = json.loads((data / "broker.json").read_text())
            assert info["bootstrap_servers"] == f"127.0.0.1:{port}"
            done = lookout(
                "replay", str(FIXTURE), "--topic", "t", "--bootstrap", info["bootstrap_servers"], cwd=tmp_path
            )
            assert done.returncode == 0, done.stderr[-2000:]
            assert done.stderr.strip().splitlines()[-1] == f"produced 6 messages to t at 127.0.0.1:{port}"
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert not (data / "broker.json").exists()


class TestDemo:
    """``lookout demo``: the one-command tour."""

    def test_fresh_drops_the_embedded_store_and_nothing_else(self, tmp_path: Path) -> None:
        """``--fresh`` drops lookout's database in the chdb:// directory; it refuses a server DSN and a busy store."""
        from agent.config import Settings
        from agent.demo import clear_embedded
        from agent.errors import ConfigError

        data = tmp_path / "lookout-data"
        with open_chdb(data, migrate=True) as c:
            c.command("CREATE DATABASE other")
            c.command("CREATE TABLE other.kept (x UInt8) ENGINE = MergeTree ORDER BY x")
            c.command("INSERT INTO lookout.agent_runs (run_id) VALUES ('earlier')")
            # while this process holds the directory, `lookout demo --fresh` stops before touching it
            busy = lookout("demo", "--fresh", cwd=tmp_path, timeout=120)
        assert busy.returncode != 0
        assert "is held by" in busy.stderr.strip().splitlines()[-1]
        settings = Settings().with_overrides(clickhouse={"dsn": f"chdb://{data}"})
        with open_chdb(data) as c:
            assert c.command("SELECT count() FROM lookout.agent_runs") == 1
        clear_embedded(settings)
        with open_chdb(data) as c:
            tables = c.query("SELECT database, name FROM system.tables WHERE database IN ('lookout', 'other')")
            assert tables.result_rows == [("other", "kept")]
        server = Settings().with_overrides(clickhouse={"dsn": "http://127.0.0.1:1"})
        with pytest.raises(ConfigError, match=r"--fresh only clears an embedded chdb:// store"):
            clear_embedded(server)

    def test_demo_prints_what_the_docs_show_and_the_same_again(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """README and docs/demo.md show the demo's summary as printed; one stream drifts; a rerun prints the same."""
        monkeypatch.setenv("COLUMNS", str(DEMO_COLUMNS))  # the width the docs' blocks were printed at
        first = lookout("demo", cwd=tmp_path)
        assert first.returncode == 0, first.stderr[-3000:]
        second = lookout("demo", cwd=tmp_path)
        assert second.returncode == 0, second.stderr[-3000:]
        printed = demo_summary(first.stdout)
        stale = "the demo prints something else now: run scripts/demo_output.py"
        readme = printed[: printed.index("next:")]
        readme = readme[: readme.rindex("\n", 0, readme.index("most flagged"))].rstrip()  # no record text in the README
        assert fenced_block(REPO / "README.md", "3/3 this run") == readme, stale
        assert fenced_block(REPO / "docs" / "demo.md", "3/3 this run") == printed, stale
        # the rerun scores every record again, the same way; it says that review queues keep their first routing
        note = "(the store already held 1 earlier run(s)"
        assert note not in first.stdout
        again = demo_summary(second.stdout)
        assert note in again and "lookout demo --fresh" in " ".join(again.split())
        assert again[: again.index(note)] == printed[: printed.index("next:")]

        summary = json.loads(lookout("stats", "--json", cwd=tmp_path).stdout)
        assert (summary["samples"], summary["dead_letters"]) == (500, 8)  # demo_sample.jsonl + demo_drift.jsonl
        drifted = summary["drift"]["drifted_streams"]
        assert [(d["tenant"], d["model"], d["route"]) for d in drifted] == [("globex", "gpt-4o-mini", "kb-qa")]
        assert "prompt_embedding" in drifted[0]["signals"]
        assert summary["detectors"]["novelty"]["flagged"] > 0
        windows = json.loads(
            lookout(
                "query",
                "SELECT groupArray(drifted) AS drifted FROM (SELECT drifted FROM lookout.v_drift_windows "
                "WHERE stream = 'prompt_embedding' ORDER BY window_end)",
                "--json",
                cwd=tmp_path,
            ).stdout
        )
        assert windows == {"drifted": [0, 1]}  # the stream's usual traffic passes, the red-team chat drifts
