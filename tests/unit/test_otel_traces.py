"""The trace join and holding: LLM records wait, bounded, for their trace; held offsets are never committed."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from prometheus_client import REGISTRY

from agent.config_otel import OtelSettings
from agent.decode import DecodeStep
from agent.otel.traces import TraceJoin
from agent.score import Scorer, ScoreStep
from agent.sinks.base import BatchingSink
from agent.step import BatchState, Step
from agent.store import StoreStep
from agent.testing import ListSink, ListSource, loop, messages
from agent.types import DeadLetter, Origin, Sample, ScoredSample
from detectors.toxicity import LexicalToxicity


def sample(i: int, context: tuple[str, ...] = (), offset: int = 0) -> Sample:
    return Sample(
        id=f"r{i}", ts=datetime(2026, 1, 1, tzinfo=UTC), prompt="p", response="r", context=context,
        origin=Origin("t", 0, offset),
    )  # fmt: skip


def gave_up(reason: str) -> float:
    return REGISTRY.get_sample_value("lookout_otel_trace_gave_up_total", {"reason": reason}) or 0.0


class TestTraceJoin:
    """Per trace: documents and held records; release on the root span, the wait, or the memory bounds."""

    def test_record_waits_for_the_root_then_gets_the_documents_retrieved_before_it(self) -> None:
        join = TraceJoin(OtelSettings(trace_wait_s=5))
        join.add_record("t1", sample(1), start_ns=200, now=0.0)
        assert join.release(0.1) == [] and join.holding() and not join.due(0.1)
        join.add_documents("t1", ("doc A", "doc B"), end_ns=150, now=0.2)
        join.add_documents("t1", ("answer-time doc",), end_ns=900, now=0.2)  # ended after the call started
        join.root_seen("t1", now=0.3)
        assert join.due(0.3)
        [out] = join.release(0.3)
        assert out.context == ("doc A", "doc B") and not join.holding()

    def test_without_documents_before_the_call_all_of_the_trace_are_used(self) -> None:
        join = TraceJoin(OtelSettings(trace_wait_s=5))
        join.add_documents("t1", ("late doc",), end_ns=900, now=0.0)
        join.add_record("t1", sample(1, context=("own",)), start_ns=200, now=0.0)
        join.root_seen("t1", 0.0)
        [out] = join.release(0.0)
        assert out.context == ("own", "late doc")

    def test_timeout_releases_and_is_counted(self) -> None:
        join = TraceJoin(OtelSettings(trace_wait_s=2))
        before = gave_up("timeout")
        join.add_record("t1", sample(1), start_ns=0, now=10.0)
        assert join.release(11.9) == [] and not join.due(11.9)
        assert join.due(12.0)
        assert [s.id for s in join.release(12.0)] == ["r1"]
        assert gave_up("timeout") == before + 1

    def test_zero_wait_releases_at_once_with_documents_of_the_same_batch(self) -> None:
        join = TraceJoin(OtelSettings(trace_wait_s=0))
        join.add_record("t1", sample(1), start_ns=500, now=0.0)
        join.add_documents("t1", ("d",), end_ns=100, now=0.0)
        [out] = join.release(0.0)
        assert out.context == ("d",)

    def test_memory_cap_releases_the_oldest_trace_first(self) -> None:
        join = TraceJoin(OtelSettings(trace_wait_s=60, max_held_records=2))
        before = gave_up("memory")
        for i in range(3):
            join.add_record(f"t{i}", sample(i), start_ns=0, now=float(i))
        assert [s.id for s in join.release(3.0)] == ["r0"]
        assert gave_up("memory") == before + 1 and join.holding()

    def test_redelivered_record_is_held_once(self) -> None:
        join = TraceJoin(OtelSettings(trace_wait_s=60))
        join.add_record("t1", sample(1), start_ns=0, now=0.0)
        join.add_record("t1", sample(1), start_ns=0, now=1.0)
        join.root_seen("t1", 1.0)
        assert len(join.release(1.0)) == 1 and not join.holding()

    def test_documents_past_the_cap_are_cut_and_counted(self) -> None:
        join = TraceJoin(OtelSettings(trace_wait_s=0, max_documents_chars=1_000))
        before = gave_up("documents_cut")
        join.add_documents("t1", ("a" * 600, "b" * 600), end_ns=0, now=0.0)
        join.add_record("t1", sample(1), start_ns=10, now=0.0)
        [out] = join.release(0.0)
        assert out.context == ("a" * 600,) and gave_up("documents_cut") == before + 1

    def test_trace_count_is_bounded(self) -> None:
        join = TraceJoin(OtelSettings(trace_wait_s=60, max_traces=3))
        for i in range(5):
            join.add_documents(f"t{i}", ("d",), end_ns=0, now=float(i))
        join.add_record("t0", sample(0), start_ns=10, now=5.0)  # t0's documents were forgotten
        join.root_seen("t0", 5.0)
        [out] = join.release(5.0)
        assert out.context == () and len(join._traces) <= 3


class HoldOdd:
    """A stand-in holding step (the real one needs OTLP): holds records of odd offsets until released."""

    name = "hold"

    def __init__(self) -> None:
        self.held: dict[int, Sample] = {}
        self.open = False

    def apply(self, batch: BatchState) -> None:
        keep = [s for s in batch.samples if s.origin is not None and s.origin.offset % 2 == 1]
        batch.samples = [s for s in batch.samples if s not in keep]
        self.held.update({s.origin.offset: s for s in keep if s.origin is not None})
        if self.open:
            batch.samples.extend(self.held.values())
            self.held.clear()

    def held_offsets(self) -> Mapping[tuple[str, int], int]:
        return {("t", 0): min(self.held)} if self.held else {}

    def due(self) -> bool:
        return self.open and bool(self.held)

    def holding(self) -> bool:
        return bool(self.held)

    def sinks(self) -> Sequence[BatchingSink[Any]]:
        return ()


def record(i: int) -> bytes:
    return json.dumps({"id": f"r{i}", "ts": 1000 + i, "prompt": "p", "response": "r"}).encode()


class Calm:
    """A toxicity classifier that scores everything 0.1 (the loop's scoring is not under test here)."""

    def predict_proba(self, texts: Sequence[str]) -> NDArray[np.float64]:
        return np.full(len(texts), 0.1)


def score_all() -> ScoreStep:
    """A score step over :class:`Calm`."""
    return ScoreStep(Scorer([LexicalToxicity(Calm())], None))


class TestHeldOffsets:
    """The checkpoint commits no partition past a held record; the idle loop lets due records go on."""

    def test_no_commit_passes_a_held_record_and_the_rest_commits_once_it_is_written(self) -> None:
        events: list[str] = []
        source = ListSource(messages([record(i) for i in range(4)]), events)
        hold = HoldOdd()
        records: ListSink[ScoredSample] = ListSink("records", events)
        dead: ListSink[DeadLetter] = ListSink("dlq", events)
        steps: list[Step] = [DecodeStep(), hold, score_all(), StoreStep(records, [dead])]
        agent = loop(source, steps, max_records=4)
        agent.process(source.poll(10, 4))
        assert source.committed == {("t", 0): 1}  # offset 1 is held: nothing at or past it is committed
        assert sorted(s.sample.id for s in records.written) == ["r0", "r2"]
        hold.open = True
        agent.run(exit_when_idle=0.05)  # the idle loop sees the held records due, hands an empty batch
        assert sorted(s.sample.id for s in records.written) == ["r0", "r1", "r2", "r3"]
        assert source.committed == {("t", 0): 4}
        assert events.index("records wrote 2", events.index("records wrote 2") + 1) < events.index(
            "commit [(('t', 0), 4)]"
        )

    def test_idle_exit_waits_while_records_are_held(self) -> None:
        source = ListSource(messages([record(1)]))
        hold = HoldOdd()
        records: ListSink[ScoredSample] = ListSink("records")
        agent = loop(source, [DecodeStep(), hold, score_all(), StoreStep(records, [])])
        agent.process(source.poll(10, 4))
        threading.Timer(0.3, lambda: setattr(hold, "open", True)).start()
        agent.run(exit_when_idle=0.05)
        assert [s.sample.id for s in records.written] == ["r1"] and source.committed == {("t", 0): 1}
