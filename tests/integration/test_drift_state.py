"""Drift state that survives a restart: the drift step and the store step over real chDB, rebuilt by a new monitor.

Each test runs the batches an agent would (drift step, then the store step's records and embeddings, every sink
flushed), throws the monitor away as a kill would, and checks that a new one rebuilt from storage scores the next
records as the first monitor, never stopped, does.
"""

from __future__ import annotations

import dataclasses
import time
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from agent.config import DriftSettings
from agent.drift import NEAR_DUPLICATE, NOVEL_FLAG, NOVELTY, DriftMonitor, DriftSink, DriftStep
from agent.drift_state import ReferenceSink, StateReader
from agent.sinks.clickhouse import RecordSink
from agent.sinks.embeddings import EmbeddingSink
from agent.source import PartitionMoves
from agent.step import BatchState
from agent.store import StoreStep
from agent.types import Origin, Sample, ScoredSample
from detectors.testing import HashingEncoder
from detectors.types import TextField, Vectors

DB = "lookout"
ENCODER = HashingEncoder(dim=64)
SETTINGS = DriftSettings(
    reference_size=40, window_size=20, window_seconds=None, min_window=10, k=3, near_duplicate_min_chars=20
)
COLUMNS = ("toxicity", NOVELTY, NEAR_DUPLICATE)
TOPICS = ["bread flour yeast oven", "bread dough knead rise", "oven bake crust flour", "sourdough starter feed"]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
CANNED = "Thank you for your message, our team will reply within two business days."


def item(i: int, tenant: str = "acme", prompt: str | None = None, response: str | None = None) -> ScoredSample:
    """Record ``i`` of a bread-baking stream, from partition 0 of ``logs`` (toxicity varies, responses differ)."""
    sample = Sample(
        id=f"r{i:04d}",
        ts=T0 + timedelta(seconds=i),
        prompt=prompt or f"{TOPICS[i % 4]} question {i % 7}",
        response=response or f"answer number {i} about {TOPICS[(i + 1) % 4]} and more words",
        tenant=tenant,
        model="m",
        origin=Origin("logs", 0, i),
    )
    return ScoredSample(sample=sample, scores={"toxicity": 0.05 + (i % 10) / 100}, versions={}, flags=(), cost_usd=None)


def drift_step(client: Any, settings: DriftSettings = SETTINGS, encoder: str = ENCODER.name) -> DriftStep:
    """The drift step as ``lookout run`` wires it with ``drift.restore``."""
    reader = StateReader(client, DB, settings, encoder)
    monitor = DriftMonitor(settings, available=["toxicity"], reader=reader, redelivered=256)
    return DriftStep(monitor, DriftSink(client, DB), ReferenceSink(client, DB, settings.reference_size, encoder))


def vectors(items: Sequence[ScoredSample]) -> dict[TextField, Vectors]:
    """What the score step embeds for the drift step: hashed words plus a little noise seeded by the record id.

    The noise keeps kNN distances apart: with exact ties, the Int8 round trip of a stored reference could
    reorder them.
    """
    out: dict[TextField, Vectors] = {}
    for field in ("prompt", "response"):
        texts = [getattr(s.sample, field) for s in items]
        noise = np.stack([np.random.default_rng(zlib.crc32(s.sample.id.encode())).normal(size=64) for s in items])
        matrix = ENCODER.encode(texts) + 0.01 * noise.astype(np.float32)
        out[field] = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    return out


def run(step: DriftStep, items: Sequence[ScoredSample], client: Any = None) -> list[ScoredSample]:
    """One batch through the drift step; with ``client``, stored and flushed as the checkpoint does."""
    batch = BatchState(messages=[])
    batch.scored = list(items)
    batch.vectors = vectors(items)
    step.apply(batch)
    if client is not None:
        store = StoreStep(
            RecordSink(client, DB, COLUMNS), [], None, EmbeddingSink(client, DB, ENCODER.name, ("prompt", "response"))
        )
        store.apply(batch)
        for sink in [*step.sinks(), *store.sinks()]:
            sink.flush()
    return batch.scored


def windows(client: Any, stream: str = "prompt_embedding") -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in client.query(
            "SELECT tenant, window_start, window_end, n, reference_n, drifted FROM lookout.v_drift_windows "
            "WHERE stream = {s:String} ORDER BY tenant, window_end",
            parameters={"s": stream},
        ).result_rows
    ]


class TestRestart:
    """A monitor rebuilt from storage carries on where the stopped one was."""

    def test_warm_stream_scores_at_once_as_if_never_stopped(self, client: Any) -> None:
        """Reference, open window, near-duplicate bank and drift flag come back: novelty and windows match."""
        first = drift_step(client)
        warm = [item(i) for i in range(55)]  # the reference (40) and 15 records in the open window
        warm[50] = item(50, prompt="How do I cancel my order?", response=CANNED)
        for start in range(0, 55, 11):
            run(first, warm[start : start + 11], client)
        later = [item(i) for i in range(55, 75)]
        later[3] = item(58, prompt="quantum chromodynamics gluon lattice")
        later[9] = item(64, prompt="Can I change the delivery address?", response=CANNED)

        rebuilt = drift_step(client)
        restored = run(rebuilt, later, client)
        never_stopped = run(first, later)

        assert all(r.scores[NOVELTY] is not None for r in restored)
        assert [r.scores[NOVELTY] for r in restored] == pytest.approx(
            [r.scores[NOVELTY] for r in never_stopped], abs=0.051
        )  # one rank of 20 held-out distances at most: the kept reference went through Int8
        assert restored[3].scores[NOVELTY] == 1.0 and NOVEL_FLAG in restored[3].flags
        assert [r.scores[NEAR_DUPLICATE] for r in restored] == pytest.approx(
            [r.scores[NEAR_DUPLICATE] for r in never_stopped], abs=0.01
        )
        assert NEAR_DUPLICATE in restored[9].flags  # the canned answer was stored before the restart
        # 15 stored + 5 new records close the first window at record 59, tested against the 40-vector reference
        opened, closed = (T0 + timedelta(seconds=s) for s in (40, 59))
        assert [w[1:5] for w in windows(client)] == [(opened.replace(tzinfo=None), closed.replace(tzinfo=None), 20, 40)]

    def test_reference_still_filling_goes_on_from_stored_records(self, client: Any) -> None:
        """25 of 40 reference records stored: after 15 more the reference is ready, not after 40 more."""
        first = drift_step(client)
        run(first, [item(i) for i in range(25)], client)
        rebuilt = drift_step(client)
        filling = run(rebuilt, [item(i) for i in range(25, 40)], client)
        ready = run(rebuilt, [item(40)], client)
        assert [r.scores[NOVELTY] for r in filling] == [None] * 15 and ready[0].scores[NOVELTY] is not None
        kept = client.query(
            "SELECT stream, length(vectors), length(values), encoder FROM lookout.v_drift_references ORDER BY stream"
        ).result_rows
        assert ("prompt_embedding", 40, 0, ENCODER.name) in kept and ("score:toxicity", 0, 40, "") in kept

    def test_redelivered_batch_is_scored_but_not_observed_twice(self, client: Any) -> None:
        """A batch written but not committed comes again after the kill: it joins no window a second time."""
        first = drift_step(client)
        run(first, [item(i) for i in range(50)], client)
        rebuilt = drift_step(client)
        again = run(rebuilt, [item(i) for i in range(45, 50)], client)  # the uncommitted tail, re-delivered
        assert all(r.scores[NOVELTY] is not None for r in again)
        run(rebuilt, [item(i) for i in range(50, 60)], client)
        assert [w[3] for w in windows(client)] == [20]  # records 40..59: the first window closes at 59
        assert windows(client)[0][2] == (T0 + timedelta(seconds=59)).replace(tzinfo=None)

    def test_other_encoder_state_is_ignored(self, client: Any) -> None:
        """Stored vectors and references of another encoder are not used; score references still are."""
        run(drift_step(client), [item(i) for i in range(45)], client)
        other = drift_step(client, encoder="another-encoder").monitor
        later = [item(i) for i in range(45, 60)]
        out, closed = other.observe(later, vectors(later))
        assert all(r.scores[NOVELTY] is None for r in out)
        assert sorted({w.stream for w in closed}) == ["response_length", "score:toxicity"]  # 5 stored + 15 new

    def test_streams_of_a_partition_that_moved_away_are_rebuilt(self, client: Any) -> None:
        """Records another replica observed while it held the partition count in the window here afterwards."""
        moves = PartitionMoves()
        here = dataclasses.replace(drift_step(client), lost_partitions=moves.take_lost)
        there = drift_step(client)
        run(here, [item(i) for i in range(45)], client)
        moves.revoked([("logs", 0), ("logs", 1)])
        moves.assigned([("logs", 1)])
        run(there, [item(i) for i in range(45, 55)], client)  # partition 0 is there for a while...
        moves.revoked([("logs", 1)])
        moves.assigned([("logs", 0), ("logs", 1)])  # ...and back
        run(here, [item(i) for i in range(55, 60)], client)
        assert [w[3] for w in windows(client)] == [20]  # 40..59: 5 seen here, 10 there, 5 here again

    def test_unreadable_state_skips_the_stream_once(self, client: Any) -> None:
        """A failed read leaves the batch's records without stream signals; the next batch rebuilds."""
        run(drift_step(client), [item(i) for i in range(45)], client)

        class Flaky:
            def __init__(self) -> None:
                self.failed = False

            def query(self, *args: Any, **kwargs: Any) -> Any:
                if not self.failed:
                    self.failed = True
                    raise ConnectionError("connection refused")
                return client.query(*args, **kwargs)

        step = drift_step(Flaky())
        assert NOVELTY not in run(step, [item(45)])[0].scores
        assert run(step, [item(46)])[0].scores[NOVELTY] is not None

    def test_hostile_stream_names_are_bound_not_spliced(self, client: Any) -> None:
        """Tenants with quotes and parameter placeholders are restored like any other."""
        tenant = "a'; DROP TABLE lookout.records; -- {keys:String}\\"
        run(drift_step(client), [item(i, tenant=tenant) for i in range(45)], client)
        out = run(drift_step(client), [item(45, tenant=tenant)])
        assert out[0].scores[NOVELTY] is not None


class TestBounds:
    """The restore reads a bounded number of records per stream, for the streams seen only."""

    def test_ten_warm_streams_read_at_most_window_sized_tails(self, client: Any) -> None:
        """10 streams with 200 stored records each: ready streams read max(window, near-duplicate window) rows."""
        settings = DriftSettings(
            reference_size=40, window_size=20, window_seconds=None, min_window=10, k=3, near_duplicate_window=30
        )
        first = drift_step(client, settings)
        for start in range(0, 200, 50):
            run(first, [item(i, tenant=f"t{t}") for t in range(10) for i in range(start, start + 50)], client)
        reader = StateReader(client, DB, settings, ENCODER.name)
        started = time.perf_counter()
        stored = reader.load(
            [(f"t{t}", "m", "") for t in range(10)],
            fields={"prompt", "response"},
            references=["prompt_embedding", "score:toxicity", "response_length"],
            scores=["toxicity", "response_length"],
        )
        elapsed = time.perf_counter() - started
        assert len(stored) == 10 and elapsed < 10
        for state in stored.values():
            assert set(state.references) == {"prompt_embedding", "score:toxicity", "response_length"}
            assert len(state.records.ids) == 30 and state.records.ids[-1] == "r0199"
            assert {f: len(rows) for f, (rows, _) in state.records.vectors.items()} == {"prompt": 30, "response": 30}


class TestPartitionMoves:
    """The source reports partitions that left in a rebalance, not those revoked and assigned straight back."""

    def test_left_partitions_accumulate_until_taken(self) -> None:
        """Eager rebalances revoke everything; only partitions not assigned back count, across rebalances."""
        moves = PartitionMoves()
        moves.assigned([("logs", 0), ("logs", 1)])  # the first assignment: nothing was revoked
        moves.revoked([("logs", 0), ("logs", 1)])
        moves.assigned([("logs", 1)])
        moves.revoked([("logs", 1)])
        moves.assigned([("logs", 0), ("logs", 1)])  # partition 0 is back: it still left in between
        assert moves.take_lost() == {("logs", 0)}
        assert moves.take_lost() == set()
