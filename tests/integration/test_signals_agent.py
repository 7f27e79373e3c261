"""Repetition, tone, formality, novelty and near-duplicate columns through the running agent (real broker, chDB)."""

from __future__ import annotations

import json

from conftest import AgentEnv, record

COUNTRIES = ["France", "Peru", "Kenya", "Japan", "Canada", "Norway", "Chile", "Egypt", "India", "Spain"]
CANNED = (
    "Thank you for your message. Our support team has received your request and will get back to you within "
    "two business days."
)
LOOP = "The capital is the capital is the capital is " * 10


class TestSignalsInAgent:
    """The new score columns land in ``records``; stream signals flag and route."""

    def test_columns_land_and_near_duplicate_and_novel_flags_fire(self, agent_env: AgentEnv) -> None:
        """40 on-topic records fill the reference; then an answer repeats, a prompt is off-topic, a reply loops."""
        same = [
            record(i, prompt=f"What is the capital of {COUNTRIES[i % 10]}?", response=f"It is city number {i}.")
            for i in range(40)
        ]
        later = [
            record(40, prompt="What is the capital of Peru?", response="Lima is the capital of Peru, on the coast."),
            record(41, prompt="How do I cancel my subscription?", response=CANNED),
            record(42, prompt="Can I change my delivery address after ordering?", response=CANNED),
            record(43, prompt="Receta de paella valenciana con conejo y judías verdes, paso a paso.", response="Ok."),
            record(44, prompt="What is the capital of Japan?", response=LOOP),
            record(45, prompt="What is the capital of Kenya?", response="This is awful. I hate this stupid question."),
        ]
        agent_env.topic.produce([json.dumps(r).encode() for r in same + later], key=b"acme")  # one partition

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

        rows = {
            r[0]: r[1:]
            for r in agent_env.query(
                "SELECT id, repetition, tone, formality, novelty, near_duplicate, flags, "
                "detector_versions['novelty'] FROM lookout.v_records"
            )
        }
        assert len(rows) == 46
        assert all(rows[f"r-{i:05d}"][3] is None for i in range(40))  # novelty NULL until the reference is ready
        assert all(rows[f"r-{i:05d}"][3] is not None for i in range(40, 46))
        near_dup, flags = rows["r-00042"][4:6]
        assert near_dup is not None and near_dup > 0.99 and "near_duplicate" in flags
        assert rows["r-00041"][4] is None  # first of its kind: nothing earlier to repeat (short replies are skipped)
        assert rows["r-00043"][3] == 1.0 and "novel" in rows["r-00043"][5]
        assert rows["r-00040"][3] < 0.99 and "novel" not in rows["r-00040"][5]
        assert rows["r-00044"][0] >= 0.5 and "repetition" in rows["r-00044"][5]
        assert rows["r-00045"][1] >= 0.75 and "tone" in rows["r-00045"][5]
        assert 0 <= rows["r-00040"][2] <= 1 and rows["r-00040"][6].startswith("knn3")

        queued = agent_env.query("SELECT record_id, rule FROM lookout.v_review_items WHERE queue = 'degenerate'")
        assert ("r-00044", "repetition") in queued
