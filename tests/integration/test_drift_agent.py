"""Drift in the running agent: real tansu broker, real chDB, ``lookout run`` as a subprocess, real encoder."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime
from typing import Any

from conftest import AgentEnv, record

COUNTRIES = ["France", "Peru", "Kenya", "Japan", "Canada", "Norway", "Chile", "Egypt", "India", "Spain"]
"""Same-stream traffic: one distribution throughout (reference and windows draw from the same ten questions)."""

OTHER = [
    "Receta de paella valenciana con conejo y judías verdes, paso a paso.",
    "Write a haiku about autumn leaves falling on a quiet pond.",
    "Debug this segfault in my C++ linked list destructor.",
    "What is the best fertilizer for tomato plants in clay soil?",
    "Translate 'good morning' into Japanese, Korean and Thai.",
]


class TestDriftInAgent:
    """Closed windows land in drift_windows before the offsets commit."""

    def test_windows_written_and_other_topic_window_drifts(self, agent_env: AgentEnv) -> None:
        """40 records fill the reference; of three 20-record windows only the off-topic one drifts."""
        same = [record(i, prompt=f"What is the capital of {COUNTRIES[i % len(COUNTRIES)]}?") for i in range(80)]
        other = [record(80 + i, prompt=f"{OTHER[i % len(OTHER)]} (variant {i})") for i in range(20)]
        # keyed by tenant: one partition, consumed in produce order, so the off-topic records form the 3rd window
        agent_env.topic.produce([json.dumps(r).encode() for r in same + other], key=b"acme")

        done = agent_env.run(
            "run",
            "--exit-when-idle",
            "4",
            LOOKOUT_DRIFT__REFERENCE_SIZE="40",
            LOOKOUT_DRIFT__WINDOW_SIZE="20",
            LOOKOUT_DRIFT__MIN_WINDOW="10",
            LOOKOUT_DRIFT__K="3",
        )
        assert done.returncode == 0, done.stderr[-2000:]

        rows = agent_env.query(
            "SELECT stream, kind, tenant, model, n, drifted, method, reference_n FROM lookout.v_drift_windows "
            "WHERE stream = 'prompt_embedding' ORDER BY window_start"
        )
        assert [(r[0], r[1], r[2], r[3], r[4], r[6], r[7]) for r in rows] == [
            ("prompt_embedding", "embedding", "acme", "gpt-4o-mini", 20, "knn-ks", 40)
        ] * 3
        assert [r[5] for r in rows] == [0, 0, 1]
        streams = {r[0] for r in agent_env.query("SELECT DISTINCT stream FROM lookout.v_drift_windows")}
        expected = {
            "prompt_embedding", "score:toxicity", "score:relevance", "score:repetition", "score:tone",
            "score:formality", "response_length",
        }  # fmt: skip
        assert streams == expected


SMALL_DRIFT: dict[str, Any] = {
    "LOOKOUT_DRIFT__REFERENCE_SIZE": "20",
    "LOOKOUT_DRIFT__WINDOW_SIZE": "10",
    "LOOKOUT_DRIFT__MIN_WINDOW": "5",
    "LOOKOUT_DRIFT__K": "3",
    "LOOKOUT_BATCH__MAX_RECORDS": "5",
}
"""A 20-record reference, 10-record windows, 5-record batches."""


def _ts(i: int) -> datetime:
    """The time of ``record(i)`` as chDB returns it (naive UTC)."""
    return datetime.fromtimestamp(record(i)["ts"] / 1000, tz=UTC).replace(tzinfo=None)


class TestDriftStateSurvivesKill:
    """A warmed-up stream keeps its reference, open window and near-duplicate bank across kill -9 and restart."""

    def test_after_kill_9_and_restart_new_records_have_novelty_and_windows_at_once(self, agent_env: AgentEnv) -> None:
        """SIGKILL after the 5th batch is written, before its commit; restart: no record waits for a new reference.

        Records 0-19 fill the reference and 20-24 open a window; the agent dies with 20-24 written but not
        committed. After the restart 20-24 come again (scored, not observed twice) and 25-39 are new: every one
        has ``novelty``, the off-topic prompt is ``novel``, and two windows (20-29, 30-39) are tested against the
        20-record reference of the first run. Before state survived restarts, 20-39 refilled the reference: no
        novelty, no window.
        """
        warm = [record(i, prompt=f"What is the capital of {COUNTRIES[i % len(COUNTRIES)]}?") for i in range(25)]
        agent_env.topic.produce([json.dumps(r).encode() for r in warm], key=b"acme")  # one partition, in order
        crashed = agent_env.run_crashing(5, **SMALL_DRIFT)
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
        assert list(agent_env.topic.committed(agent_env.group).values()) == [20]  # 20-24 written, not committed
        kept = agent_env.query("SELECT stream, length(vectors) FROM lookout.v_drift_references")
        assert ("prompt_embedding", 20) in kept
        assert agent_env.query("SELECT count() FROM lookout.v_records") == [(25,)]

        later = [record(i, prompt=f"What is the capital of {COUNTRIES[i % len(COUNTRIES)]}?") for i in range(25, 40)]
        later[12] = record(37, prompt="Receta de paella valenciana con conejo y judías verdes, paso a paso.")
        agent_env.topic.produce([json.dumps(r).encode() for r in later], key=b"acme")
        done = agent_env.run("run", "--exit-when-idle", "4", **SMALL_DRIFT)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "drift: streams rebuilt from storage" in done.stderr and "ready=1" in done.stderr

        novelty = dict(agent_env.query("SELECT id, novelty FROM lookout.v_records WHERE id >= 'r-00020' ORDER BY id"))
        assert len(novelty) == 20 and all(v is not None for v in novelty.values()), novelty
        flags = dict(agent_env.query("SELECT id, flags FROM lookout.v_records WHERE id = 'r-00037'"))
        assert novelty["r-00037"] == 1.0 and "novel" in flags["r-00037"]
        windows = agent_env.query(
            "SELECT window_start, window_end, n, reference_n FROM lookout.v_drift_windows "
            "WHERE stream = 'prompt_embedding' ORDER BY window_start"
        )
        assert windows == [(_ts(20), _ts(29), 10, 20), (_ts(30), _ts(39), 10, 20)]
