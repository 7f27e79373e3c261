"""User feedback inside ``lookout run``: real broker, real chDB, the agent as a subprocess."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from conftest import AgentEnv, Topic, read_topic, record

from agent.broker import ensure_topic
from agent.sinks.kafka import REASON_HEADER

IDLE = "4"
REFUSAL = "I'm sorry, but I can't help with that."


def feedback(event_id: str | None, record_id: str, kind: str, **fields: Any) -> bytes:
    event = {"record_id": record_id, "ts": "2026-11-25T09:00:00Z", "kind": kind, "user_id": "u-1", **fields}
    if event_id is not None:
        event["id"] = event_id
    return json.dumps(event).encode()


def run(env: AgentEnv) -> subprocess.CompletedProcess[str]:
    """``lookout run`` with the feedback topic on, until idle."""
    return env.run(
        "run", "--exit-when-idle", IDLE, LOOKOUT_FEEDBACK__ENABLED="true", LOOKOUT_DETECTORS__TOXICITY_BACKEND="lexical"
    )


class TestFeedbackStream:
    """Feedback events are stored once, bad ones dead-lettered, and missed records reach their queue."""

    def test_feedback_before_and_after_records(self, agent_env: AgentEnv, tmp_path: Path) -> None:
        """Two runs: feedback first, then records and more feedback; the join and the missed queue catch up."""
        fb_topic = f"{agent_env.topic.name}.feedback"
        ensure_topic(agent_env.topic.broker.bootstrap, fb_topic, 2)
        fb = Topic(agent_env.topic.broker, fb_topic, 2)
        fb.produce(
            [
                feedback("e-early", "r-00001", "thumbs_down", comment="wrong, mail me at jane@example.com"),
                feedback("e-dup", "r-00002", "thumbs_down"),
                feedback("e-dup", "r-00002", "thumbs_down"),  # the producer retried
                b'{"record_id": "r-00003", "ts": 1, "kind": "love"}',
            ]
        )
        first = run(agent_env)
        assert first.returncode == 0, first.stderr[-2000:]
        agent_env.topic.produce_records(
            [record(i) for i in range(5)] + [record(5, response=REFUSAL)]  # r-00005 is flagged (refusal)
        )
        fb.produce(
            [
                feedback("e-report", "r-00004", "report"),
                feedback("e-flagged", "r-00005", "thumbs_down"),
                feedback("e-up", "r-00003", "thumbs_up"),
                feedback(None, "r-00000", "rating", value=5),
                feedback("e-dup", "r-00002", "thumbs_down"),  # and again, a run later
            ]
        )
        second = run(agent_env)
        assert second.returncode == 0, second.stderr[-2000:]

        stored = agent_env.query("SELECT event_id, record_id, kind, value, comment FROM lookout.v_feedback")
        ids = sorted(r[0] for r in stored)
        assert len(ids) == 6 and ids[:5] == ["e-dup", "e-early", "e-flagged", "e-report", "e-up"]
        assert ids[5].startswith(f"{fb_topic}/")  # no id in the event: topic/partition/offset
        events = {r[1]: r for r in stored}
        assert events["r-00001"][4] == "wrong, mail me at [EMAIL]"
        assert events["r-00000"][2:4] == ("rating", 5.0)
        (flags,) = agent_env.query("SELECT flags FROM lookout.v_records WHERE id = 'r-00005'")
        assert "refusal" in flags[0]
        missed = agent_env.query(
            "SELECT record_id, reasons, rule FROM lookout.v_review_items WHERE queue = 'missed' ORDER BY record_id"
        )
        assert missed == [
            ("r-00001", ["thumbs_down"], "feedback"),
            ("r-00002", ["thumbs_down"], "feedback"),
            ("r-00004", ["report"], "feedback"),
        ]
        dead = read_topic(agent_env.topic.broker, f"{fb_topic}.dlq", 1)
        assert len(dead) == 1
        reason = dict(dead[0].headers)[REASON_HEADER].decode()
        assert reason == "field 'kind' must be one of thumbs_up, thumbs_down, report, rating, got 'love'"
        assert agent_env.query("SELECT src_topic, dlq_topic, reason FROM lookout.v_dead_letters") == [
            (fb_topic, f"{fb_topic}.dlq", reason)
        ]

        out = tmp_path / "export"
        exported = agent_env.run(
            "export", "--out", str(out), "--format", "jsonl", "--include-unlabeled", "--feedback", "thumbs_down"
        )
        assert exported.returncode == 0, exported.stderr[-2000:]
        rows = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
        by_id = {r["id"]: r for r in rows}
        assert sorted(by_id) == ["r-00001", "r-00002"]
        assert [(f["event_id"], f["kind"], f["value"]) for f in by_id["r-00002"]["feedback"]] == [
            ("e-dup", "thumbs_down", -1.0)
        ]
        assert by_id["r-00001"]["review"]["queues"] == ["missed"]
