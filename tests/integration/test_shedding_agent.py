"""Load shedding in the running agent: real tansu broker, real chDB, ``lookout run`` as a subprocess."""

from __future__ import annotations

import json

from conftest import AgentEnv, record

N = 200
REFUSAL = "I'm sorry, but I can't help with that request."


def is_refusal(i: int) -> bool:
    """30 % of the records are refusals, spread evenly."""
    return i % 10 < 3


class TestSheddingInAgent:
    """Forced shedding samples the expensive signals, stores weights, and weighted rates stay unbiased."""

    def test_weighted_rate_matches_the_true_rate(self, agent_env: AgentEnv) -> None:
        """After the first batch every batch sheds: refusal and drift see about half the records, weights 2/0.

        The unweighted refusal count falls well short of the true 60; the ``shed_weight``-weighted count and
        rate match the true ones within sampling error (the hash sample is fixed, so this is deterministic).
        """
        records = [
            record(i, response=REFUSAL if is_refusal(i) else f"The capital of country number {i} is City {i}.")
            for i in range(N)
        ]
        agent_env.topic.produce([json.dumps(r).encode() for r in records], key=b"acme")

        done = agent_env.run(
            "run",
            "--exit-when-idle",
            "4",
            LOOKOUT_SHEDDING__INFERENCE_HIGH_S="0.000001",  # any batch is "slow": shed from the second batch on
            LOOKOUT_SHEDDING__RATE="0.5",
            LOOKOUT_SHEDDING__DETECTORS='["refusal"]',
            LOOKOUT_DRIFT__REFERENCE_SIZE="20",
            LOOKOUT_DRIFT__WINDOW_SIZE="10",
            LOOKOUT_DRIFT__MIN_WINDOW="2",
            LOOKOUT_DRIFT__K="3",
        )
        assert done.returncode == 0, done.stderr[-2000:]

        rows = agent_env.query("SELECT id, shed_weight, refusal, has(flags, 'refusal') FROM lookout.v_records")
        assert len(rows) == N
        weights = {r[1] for r in rows}
        assert weights == {0.0, 1.0, 2.0}
        for _, weight, refusal, _ in rows:
            assert (refusal is None) == (weight == 0.0)  # skipped exactly where the weight is 0
        true_count = sum(is_refusal(i) for i in range(N))
        flagged = sum(r[3] for r in rows)
        weighted = sum(r[1] * r[3] for r in rows)
        assert flagged < true_count - 10  # shedding really skipped refusal scoring
        assert abs(weighted - true_count) <= 21  # 3 sigma of the 0.5-sampled part
        weighted_rate = weighted / sum(r[1] for r in rows)
        assert abs(weighted_rate - true_count / N) <= 0.08
        assert sum(r[1] for r in rows) == sum(1 for r in rows if r[1] == 1.0) + 2 * sum(1 for r in rows if r[1] == 2.0)

        fed = sum(1 for r in rows if r[1] > 0)  # records the drift step saw
        assert fed < N - 40
        (windowed,) = agent_env.query("SELECT sum(n) FROM lookout.v_drift_windows WHERE stream = 'response_length'")[0]
        # the first 20 fed records are the reference; the rest fill 10-record windows (the last may stay open)
        assert fed - 20 - 10 < windowed <= fed - 20
