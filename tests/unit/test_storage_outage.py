"""The agent loop while storage fails: capped backoff in short waits, no commit, health and metrics report it."""

from __future__ import annotations

import json

import pytest

from agent import metrics
from agent.decode import DecodeStep
from agent.errors import StorageError
from agent.metrics import Health
from agent.runner import Agent
from agent.score import Scorer, ScoreStep
from agent.step import Step
from agent.store import StoreStep
from agent.testing import ListSink, ListSource, loop, messages
from agent.types import DeadLetter, ScoredSample


def _record(i: int) -> bytes:
    return json.dumps({"id": f"r{i}", "ts": 1000 + i, "prompt": "p", "response": "fine"}).encode()


def _agent(fail: int, retries: int, backoff_max_s: float) -> tuple[Agent, ListSource, list[float], Health]:
    source = ListSource(messages([_record(0)]))
    records: ListSink[ScoredSample] = ListSink("records", fail_next=fail)
    waits: list[float] = []
    health = Health()
    steps: list[Step] = [DecodeStep(), ScoreStep(Scorer([], None)), StoreStep(records, [ListSink[DeadLetter]("dlq")])]
    agent = loop(
        source, steps, write_retries=retries, retry_backoff_max_s=backoff_max_s, health=health, sleep=waits.append
    )
    return agent, source, waits, health


def _gauge(name: str) -> float | None:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name)


class TestOutageBackoff:
    """Retries wait in steps of at most a second, capped exponential in total; health follows the writes."""

    def test_backoff_is_capped_and_waited_in_one_second_steps(self) -> None:
        """Six failures with a 3 s cap: waits 0.5, 1, 2, 3, 3, 3 s, each cut into ≤1 s steps; then written once."""
        agent, source, waits, health = _agent(fail=6, retries=10, backoff_max_s=3.0)
        agent.run(exit_when_idle=0.05)
        assert waits == [0.5] + [1.0] * 12
        assert source.committed == {("t", 0): 1}
        assert health.storage_error is None and _gauge(metrics.STORAGE_UP) == 1

    def test_outage_reported_to_readyz_and_metrics_while_it_lasts(self) -> None:
        """During the waits /readyz has the reason and lookout_storage_up is 0; nothing is committed yet."""
        agent, source, _, health = _agent(fail=3, retries=10, backoff_max_s=1.0)
        seen: list[tuple[str | None, float | None, int]] = []
        agent.checkpoint._sleep = lambda s: seen.append(
            (health.storage_error, _gauge(metrics.STORAGE_UP), len(source.committed))
        )
        agent.run(exit_when_idle=0.05)
        assert seen == [("records: injected failure", 0.0, 0)] * 3
        assert source.committed == {("t", 0): 1}

    def test_sigterm_during_backoff_stops_within_a_step_without_commit(self) -> None:
        """A stop requested mid-wait ends the wait at the next step; the batch stays uncommitted (re-read later)."""
        agent, source, waits, _ = _agent(fail=100, retries=100, backoff_max_s=30.0)

        def wait(seconds: float) -> None:
            waits.append(seconds)
            if len(waits) == 6:  # inside the 4 s wait of the fourth retry
                agent.request_stop()

        agent.checkpoint._sleep = wait
        with pytest.raises(StorageError, match="stopped without committing"):
            agent.run(exit_when_idle=0.05)
        assert len(waits) == 6 and max(waits) <= 1.0
        assert source.committed == {}
