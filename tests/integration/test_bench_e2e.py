"""The bench's end-to-end measurement on a real tansu broker, the real agent and chDB (a few records)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from agent import bench, bench_encoders
from agent.config import load_settings
from agent.runner import Agent


def test_end_to_end_runs_the_agent_on_the_main_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight demo records go through broker → agent → chDB; the rate is positive; the loop ran on this thread."""
    threads: list[str] = []
    run = Agent.run

    def recording_run(self: Agent, *args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return run(self, *args, **kwargs)

    monkeypatch.setattr(Agent, "run", recording_run)
    records, _ = bench.load_records(8, bench.DEMO)
    rate = bench.measure_end_to_end(load_settings(), records, timeout_s=120)
    assert rate > 0
    assert threads == [threading.main_thread().name]


def test_consume_ceiling_reads_and_decodes_every_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """The consume ceiling fetches and decodes every produced message from a real broker, none twice or lost."""
    from agent.decode import decode

    decoded: list[int] = []

    def counting(message: Any, *args: Any) -> Any:
        decoded.append(message.origin.offset)
        return decode(message, *args)

    records, _ = bench.load_records(8, bench.DEMO)  # before counting: loading checks that each record decodes
    monkeypatch.setattr(bench, "decode", counting)
    rate = bench.measure_consume(records, messages=300)
    assert rate > 0
    assert decoded == list(range(300))


def test_end_to_end_without_the_model_uses_only_looked_up_vectors() -> None:
    """The whole agent runs over a LookupEncoder; a text it lacks goes to the model once and is counted.

    A second run, with the vectors the first one collected, never calls the model.
    """
    records, _ = bench.load_records(8, bench.DEMO)
    first = bench_encoders.LookupEncoder("all-MiniLM-L6-v2", {}, 384)
    assert bench.measure_end_to_end(load_settings(), records, timeout_s=120, lookup=first) > 0
    assert first.misses > 0 and first.fallback is not None
    second = bench_encoders.LookupEncoder("all-MiniLM-L6-v2", first.vectors, 384)
    copies = bench.repeated(records, 20)
    assert len({r["id"] for r in copies}) == 20 and [r["response"] for r in copies[8:16]] == [
        r["response"] for r in records
    ]
    assert bench.measure_end_to_end(load_settings(), copies, timeout_s=120, lookup=second) > 0
    assert second.misses == 0
