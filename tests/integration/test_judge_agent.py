"""The LLM judge in the agent: real broker, the agent as a subprocess, chDB, real ragas ``Faithfulness``.

The LLM itself is ``StubOpenAI`` (tests/conftest.py), a local OpenAI-compatible HTTP server: it is the one mock
here, standing in for the model endpoint that cannot run in tests. It splits every response into two statements
and judges one supported and one not, so ragas computes faithfulness 0.5 and the judge stores 0.5.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import AgentEnv, StubOpenAI, record

pytest.importorskip("ragas", reason="the eval extra (make test installs it)")

IDLE = "4"
CONTEXT = ["Paris is the capital of France. It lies on the Seine."]


def records() -> list[dict[str, object]]:
    """Four records with context (two of them unsupported by it) and two without."""
    out = []
    for i in range(4):
        answer = "Paris is the capital." if i % 2 == 0 else "The capital is Lyon, founded by Napoleon in 1990."
        out.append(record(i, prompt="What is the capital of France?", response=answer, context=CONTEXT))
    out += [record(10 + i) for i in range(2)]
    return out


@pytest.fixture
def stub() -> Iterator[StubOpenAI]:
    """A stand-in OpenAI-compatible endpoint for the judge."""
    server = StubOpenAI()
    yield server
    server.close()


class TestJudgeAgent:
    """ragas Faithfulness through the agent, within a token budget."""

    def test_judges_every_record_with_context_at_rate_one(self, agent_env: AgentEnv, stub: StubOpenAI) -> None:
        """sample_rate 1: every record with context gets 1 - faithfulness = 0.5 and weight 1; others stay NULL."""
        agent_env.topic.produce_records(records())
        done = agent_env.run(
            "run", "--exit-when-idle", IDLE, LOOKOUT_JUDGE__ENABLED="true", LOOKOUT_JUDGE__BASE_URL=stub.url,
            LOOKOUT_JUDGE__MODEL="judge-model", LOOKOUT_JUDGE__API_KEY="sk-judge-secret",
            LOOKOUT_JUDGE__SAMPLE_RATE="1.0", LOOKOUT_DETECTORS__TOXICITY_BACKEND="lexical",
            LOOKOUT_BATCH__MAX_RECORDS="2",  # several batches: the judge's client is reused across them
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        rows = dict(
            (r[0], (r[1], r[2], r[3]))
            for r in agent_env.query(
                "SELECT id, hallucination_judge, judge_weight, detector_versions['hallucination_judge'] "
                "FROM lookout.v_records"
            )
        )
        assert len(rows) == 6
        for i in range(4):
            value, weight, version = rows[f"r-{i:05d}"]
            assert value == pytest.approx(0.5) and weight == pytest.approx(1.0)
            assert version.startswith("ragas-") and version.endswith(":judge-model")
        assert rows["r-00010"][:2] == (None, None) and rows["r-00011"][:2] == (None, None)
        assert stub.requests and {r["model"] for r in stub.requests} == {"judge-model"}
        assert set(stub.auth) == {"Bearer sk-judge-secret"}
        assert "sk-judge-secret" not in done.stderr

    def test_budget_limits_the_judged_records(self, agent_env: AgentEnv, stub: StubOpenAI) -> None:
        """A budget for about one judgement per hour: one record judged, the rest NULL; no call beyond it."""
        agent_env.topic.produce_records(records())
        done = agent_env.run(
            "run", "--exit-when-idle", IDLE, LOOKOUT_JUDGE__ENABLED="true", LOOKOUT_JUDGE__BASE_URL=stub.url,
            LOOKOUT_JUDGE__SAMPLE_RATE="1.0", LOOKOUT_JUDGE__TOKENS_PER_HOUR="750",
            LOOKOUT_DETECTORS__TOXICITY_BACKEND="lexical",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        judged = agent_env.query("SELECT count() FROM lookout.v_records WHERE hallucination_judge IS NOT NULL")
        assert judged == [(1,)]
