"""Drift in the running agent: real tansu broker, real chDB, ``lookout run`` as a subprocess, real encoder."""

from __future__ import annotations

import json

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
