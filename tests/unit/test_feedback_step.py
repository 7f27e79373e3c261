"""The agent loop with a feedback topic: in-memory source and sinks, dispatch by topic, flush before commit."""

from __future__ import annotations

import json

from agent.feedback.event import FeedbackEvent
from agent.feedback.sink import FeedbackItem
from agent.feedback.step import FeedbackStep
from agent.pipeline import Scorer
from agent.redact import Redactor
from agent.runner import Agent
from agent.testing import ListSink, ListSource, messages
from agent.types import DecodeFailure, ScoredSample
from detectors.refusal import RefusalDetector


def record(i: int) -> bytes:
    return json.dumps({"id": f"r{i}", "ts": 1000 + i, "prompt": "p", "response": "fine"}).encode()


def event(record_id: str, comment: str = "") -> bytes:
    return json.dumps({"record_id": record_id, "ts": 5, "kind": "thumbs_down", "comment": comment}).encode()


class TestFeedbackStep:
    """Messages of the feedback topic become events or feedback dead letters; records are scored as before."""

    def test_dispatch_by_topic_and_commit_after_every_sink(self) -> None:
        """One batch from both topics: each sink gets its share, the commit covers both topics, after the writes."""
        log: list[str] = []
        batch = [
            *messages([record(0), b"junk"], topic="logs"),
            *messages([event("r0", "call +44 20 7946 0958"), b'{"kind": "thumbs_down"}'], topic="logs.fb"),
            *messages([record(2)], topic="logs", partition=1),
        ]
        source = ListSource(batch, log)
        records: ListSink[ScoredSample] = ListSink("records", log)
        dead: ListSink[DecodeFailure] = ListSink("dlq", log)
        fb_dead: ListSink[DecodeFailure] = ListSink("fb-dlq", log)
        fb_sink: ListSink[FeedbackItem] = ListSink("feedback", log)
        step = FeedbackStep("logs.fb", fb_sink, (fb_dead,), redactor=Redactor())
        agent = Agent(source, Scorer([RefusalDetector()], None), records, [dead], feedback=step, max_records=10)
        counters = agent.run(exit_when_idle=0.05)
        assert log == [
            "dlq wrote 1",
            "records wrote 2",
            "fb-dlq wrote 1",
            "feedback wrote 3",
            "commit [(('logs', 0), 2), (('logs', 1), 1), (('logs.fb', 0), 2)]",
        ]
        (got,) = [e for e in fb_sink.written if isinstance(e, FeedbackEvent)]
        assert (got.id, got.record_id, got.value, got.comment) == ("logs.fb/0/0", "r0", -1.0, "call [PHONE]")
        assert sorted(s.sample.id for s in fb_sink.written if isinstance(s, ScoredSample)) == ["r0", "r2"]
        assert fb_dead.written[0].reason == "missing required field: 'record_id' or 'trace_id'"
        assert dead.written[0].reason.startswith("not JSON")
        assert (counters.consumed, counters.stored, counters.dead_lettered) == (5, 2, 2)
