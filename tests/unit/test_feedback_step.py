"""The agent loop with a feedback topic: in-memory source and sinks, dispatch by topic, flush before commit."""

from __future__ import annotations

import json

from agent.decode import DecodeStep
from agent.feedback.sink import FeedbackItem
from agent.feedback.step import FeedbackStep
from agent.redact import Redactor
from agent.route import RouteStep
from agent.score import Scorer, ScoreStep
from agent.step import Step
from agent.store import StoreStep
from agent.testing import ListSink, ListSource, loop, messages
from agent.types import DeadLetter, FeedbackEvent, ScoredSample
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
        dead: ListSink[DeadLetter] = ListSink("dlq", log)
        fb_dead: ListSink[DeadLetter] = ListSink("fb-dlq", log)
        fb_sink: ListSink[FeedbackItem] = ListSink("feedback", log)
        step = FeedbackStep("logs.fb", fb_sink, (fb_dead,), redactor=Redactor())
        steps: list[Step] = [
            step,
            DecodeStep(),
            ScoreStep(Scorer([RefusalDetector()], None)),
            StoreStep(records, [dead]),
            RouteStep([fb_sink]),
        ]
        agent = loop(source, steps, max_records=10)
        counters = agent.run(exit_when_idle=0.05)
        assert log == [
            "fb-dlq wrote 1",
            "dlq wrote 1",
            "records wrote 2",
            "feedback wrote 3",
            "commit [(('logs', 0), 2), (('logs', 1), 1), (('logs.fb', 0), 2)]",
        ]
        (got,) = [e for e in fb_sink.written if isinstance(e, FeedbackEvent)]
        assert (got.id, got.record_id, got.value, got.comment) == ("logs.fb/0/0", "r0", -1.0, "call [PHONE]")
        assert sorted(s.sample.id for s in fb_sink.written if isinstance(s, ScoredSample)) == ["r0", "r2"]
        assert fb_dead.written[0].reason == "missing required field: 'record_id' or 'trace_id'"
        assert dead.written[0].reason.startswith("not JSON")
        assert (counters.consumed, counters.stored, counters.dead_lettered) == (5, 2, 2)
