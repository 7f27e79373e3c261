"""The agent loop with in-memory source and sinks: ordering, retries, failures as values."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest
from numpy.typing import NDArray

from agent.decode import DecodeStep
from agent.errors import StorageError
from agent.runner import Agent
from agent.score import Scorer, ScoreStep
from agent.source import CommitDeferred, CommitFailed
from agent.step import Step
from agent.store import StoreStep
from agent.testing import ListSink, ListSource, loop, messages
from agent.types import DeadLetter, DecodeFailure, ScoredSample, ScoringFailure
from detectors.toxicity import LexicalToxicity


class ExplodingClassifier:
    """Raises on any text containing 'boom' (a detector bug triggered by one record)."""

    def predict_proba(self, texts: Sequence[str]) -> NDArray[np.float64]:
        if any("boom" in t for t in texts):
            raise ValueError("kaboom")
        return np.full(len(texts), 0.2)


def good(i: int, response: str = "fine") -> bytes:
    return json.dumps({"id": f"r{i}", "ts": 1000 + i, "prompt": "p", "response": response}).encode()


def make_agent(
    values: Sequence[bytes | None], fail_records: int = 0, retries: int = 3
) -> tuple[Agent, ListSource, ListSink[ScoredSample], ListSink[DeadLetter], list[str]]:
    events: list[str] = []
    source = ListSource(messages(values), events)
    records: ListSink[ScoredSample] = ListSink("records", events, fail_next=fail_records)
    dead: ListSink[DeadLetter] = ListSink("dlq", events)
    scorer = Scorer([LexicalToxicity(ExplodingClassifier())], None)
    steps: list[Step] = [DecodeStep(), ScoreStep(scorer), StoreStep(records, [dead])]
    agent = loop(source, steps, max_records=3, write_retries=retries, sleep=lambda s: events.append(f"sleep {s}"))
    return agent, source, records, dead, events


class TestAgentLoop:
    """source → decode → score → sink → flush → commit."""

    def test_sinks_flush_before_offsets_commit(self) -> None:
        """Every commit comes after both sinks wrote that batch."""
        agent, source, records, dead, events = make_agent([good(0), b"junk", good(2), good(3)])
        agent.run(exit_when_idle=0.05)
        assert events == [
            "dlq wrote 1",
            "records wrote 2",
            "commit [(('t', 0), 3)]",
            "records wrote 1",
            "commit [(('t', 0), 4)]",
        ]
        assert [s.sample.id for s in records.written] == ["r0", "r2", "r3"]
        assert isinstance(dead.written[0], DecodeFailure) and dead.written[0].step == "decode"
        assert dead.written[0].reason.startswith("not JSON")
        assert source.closed

    def test_failed_write_is_retried_with_backoff_then_committed(self) -> None:
        """Two failed writes, then success: nothing lost, one commit, backoff doubles."""
        agent, source, _records, _, events = make_agent([good(0)], fail_records=2)
        counters = agent.run(exit_when_idle=0.05)
        assert events == [
            "records failed",
            "sleep 0.5",
            "records failed",
            "sleep 1.0",
            "records wrote 1",
            "commit [(('t', 0), 1)]",
        ]
        assert counters.write_retries == 2
        assert source.committed == {("t", 0): 1}

    def test_writes_failing_past_the_retry_budget_stop_without_commit(self) -> None:
        """When writes keep failing the agent raises a one-line StorageError and commits nothing."""
        agent, source, _, _, _ = make_agent([good(0)], fail_records=10, retries=2)
        with pytest.raises(StorageError, match="stopped without committing"):
            agent.run(exit_when_idle=0.05)
        assert source.committed == {}
        assert source.closed

    def test_record_that_breaks_a_detector_is_dead_lettered_not_fatal(self) -> None:
        """A scoring exception isolates the one bad record; the rest of the batch is stored."""
        agent, source, records, dead, _ = make_agent([good(0), good(1, "boom"), good(2)])
        agent.run(exit_when_idle=0.05)
        assert [s.sample.id for s in records.written] == ["r0", "r2"]
        assert len(dead.written) == 1
        assert isinstance(dead.written[0], ScoringFailure)
        assert (dead.written[0].step, dead.written[0].record_id) == ("score", "r1")
        assert dead.written[0].reason == "scoring failed: ValueError: kaboom"
        assert dead.written[0].raw == good(1, "boom")
        assert source.committed == {("t", 0): 3}

    def test_tombstone_and_counters(self) -> None:
        """A null message value is a decode failure; counters add up."""
        agent, _, _, dead, _ = make_agent([None, good(1)])
        counters = agent.run(exit_when_idle=0.05)
        assert dead.written[0].reason == "empty message value (tombstone)"
        assert (counters.consumed, counters.stored, counters.dead_lettered, counters.batches) == (2, 1, 1, 1)

    def test_stop_request_finishes_current_batch(self) -> None:
        """A stop requested during a batch lets it commit, then the loop ends."""
        agent, source, records, _, _ = make_agent([good(i) for i in range(9)])
        agent.on_batch = lambda counters: agent.request_stop()
        agent.run()
        assert len(records.written) == 3
        assert source.committed == {("t", 0): 3}


class TestCommitDuringBrokerOutage:
    """A commit the broker cannot take is deferred, not fatal: the offsets are kept and retried."""

    def _agent(
        self, items: Sequence[bytes | None], errors: Sequence[CommitDeferred | CommitFailed], partitions: int = 1
    ) -> tuple[Agent, ListSource, ListSink[ScoredSample], list[str]]:
        events: list[str] = []
        msgs = [m for p in range(partitions) for m in messages(items, partition=p)]
        source = ListSource(msgs, events, commit_errors=errors)
        records: ListSink[ScoredSample] = ListSink("records", events)
        agent = loop(
            source,
            [DecodeStep(), ScoreStep(Scorer([], None)), StoreStep(records, [ListSink("dlq", events)])],
            max_records=3,
        )
        return agent, source, records, events

    def test_deferred_offsets_ride_along_with_the_next_commit(self) -> None:
        """Partition 0's commit is deferred; the next batch's commit carries partition 0 and 1 together."""
        agent, source, records, events = self._agent([good(0), good(1), good(2)], [CommitDeferred("down")], 2)
        counters = agent.run(exit_when_idle=0.05)
        assert [e for e in events if e.startswith("commit")] == [
            "commit CommitDeferred [(('t', 0), 3)]",
            "commit [(('t', 0), 3), (('t', 1), 3)]",
        ]
        assert source.committed == {("t", 0): 3, ("t", 1): 3}
        assert len(records.written) == 6
        assert counters.commit_failures == 0

    def test_idle_agent_retries_until_the_broker_takes_it(self) -> None:
        """No further traffic: the idle loop retries the kept offsets until the commit goes through."""
        errors = [CommitDeferred("down")] * 3
        agent, source, _, events = self._agent([good(0), good(1)], errors)
        agent.run(exit_when_idle=0.2)
        assert [e.split(" [")[0] for e in events if e.startswith("commit")] == [
            *["commit CommitDeferred"] * 3,
            "commit",
        ]
        assert source.committed == {("t", 0): 2}

    def test_stop_makes_a_last_try(self) -> None:
        """A stop while the commit is deferred tries once more before leaving."""
        agent, source, _, _ = self._agent([good(0)], [CommitDeferred("down")])
        agent.on_batch = lambda counters: agent.request_stop()
        agent.run()
        assert source.committed == {("t", 0): 1}
        assert source.closed

    def test_rebalance_drops_the_kept_offsets(self) -> None:
        """Deferred, then refused by a rebalance: the offsets are dropped (the new owner re-reads), counted once."""
        errors: list[CommitDeferred | CommitFailed] = [CommitDeferred("down"), CommitFailed("generation moved on")]
        agent, source, _, _ = self._agent([good(0)], errors)
        counters = agent.run(exit_when_idle=0.1)
        assert source.committed == {}
        assert counters.commit_failures == 1
