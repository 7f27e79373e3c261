"""``scoring.mode: cascade`` through ``lookout run`` (real broker, chDB): tiers, the audit sample and its metrics."""

from __future__ import annotations

import json

from conftest import AgentEnv, record

from detectors.cascade import audit_selected

TOPICS = ["bread", "tides", "volcanoes", "chess", "rainbows", "glaciers", "bees", "comets"]


class TestCascadeInAgent:
    """Every record stores which tier decided each cascaded score; the audit sample is the ids' hash."""

    def test_tiers_and_audit_are_stored(self, agent_env: AgentEnv) -> None:
        """40 records, audit rate 0.25: each has a tier per cascaded detector; audited ones are exactly the hash's."""
        rows = [
            record(i, prompt=f"Tell me about {TOPICS[i % 8]}.", response=f"Here is a fact about {TOPICS[i % 8]}.")
            for i in range(40)
        ]
        agent_env.topic.produce([json.dumps(r).encode() for r in rows], key=b"acme")
        done = agent_env.run(
            "run", "--exit-when-idle", "4", LOOKOUT_SCORING__MODE="cascade", LOOKOUT_SCORING__AUDIT_RATE="0.25"
        )
        assert done.returncode == 0, done.stderr[-2000:]
        query = "SELECT id, score_tiers, audited, audit_disagree, relevance FROM lookout.v_records"
        stored = {r[0]: r[1:] for r in agent_env.query(query)}
        assert len(stored) == 40
        cascaded = {"toxicity", "prompt_toxicity", "relevance", "hallucination"}
        for rid, (tiers, audited, _disagree, relevance) in stored.items():
            assert set(tiers) == cascaded and set(tiers.values()) <= {"fast", "full"}
            assert audited == int(audit_selected(rid, 0.25)), rid
            if audited:  # the audit ran the full tier on every applicable cascaded score
                assert tiers["relevance"] == "full" and relevance is not None
        assert 0 < sum(a for _, a, _, _ in stored.values()) < 40
