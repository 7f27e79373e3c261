"""The agent loop: poll the source, hand the batch to each step in order, then the checkpoint (flush, commit).

The steps are the record's path (``decode → trace → redact → shed → score → drift → judge → store → route``, see
:mod:`agent.step`); the checkpoint (:mod:`agent.checkpoint`) flushes their sinks before it commits the offsets.
A crash between write and commit re-delivers the batch; writes are idempotent on the record id, so no reader
sees it twice.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Sequence

import structlog

from agent import metrics
from agent.checkpoint import Checkpoint
from agent.metrics import Health
from agent.source import Source
from agent.step import BatchState, Holding, Step
from agent.storage.runs import RunCounters, RunLog
from agent.types import RawMessage

log = structlog.get_logger(__name__)

JOIN_GRACE_S = 60.0
"""With ``exit_when_idle``, how long to wait for a first partition assignment before giving up."""

STORAGE_PROBE_S = 10.0
"""While idle, how often ``storage_probe`` checks that storage is reachable (for ``/readyz``)."""


class Agent:
    """One consumer-group member scoring records into ClickHouse.

    Args:
        source: Where messages come from.
        steps: The record's path, applied to every batch in order.
        checkpoint: Flushes the steps' sinks and commits the offsets.
        max_records: Largest batch.
        max_wait_ms: Longest poll wait.
        run_log: Where run counters are recorded, if anywhere.
        health: Readiness state for ``/readyz`` (storage reachability is set here).
        storage_probe: Called while idle, every ``STORAGE_PROBE_S``; raises if storage is unreachable.
    """

    def __init__(
        self,
        source: Source,
        steps: Sequence[Step],
        checkpoint: Checkpoint,
        *,
        max_records: int = 256,
        max_wait_ms: int = 1000,
        run_log: RunLog | None = None,
        health: Health | None = None,
        storage_probe: Callable[[], None] | None = None,
    ) -> None:
        self.source = source
        self.steps = tuple(steps)
        self.checkpoint = checkpoint
        self.max_records = max_records
        self.max_wait_ms = max_wait_ms
        self.run_log = run_log
        self.health = health
        self.storage_probe = storage_probe
        self.counters = RunCounters()
        self._probed_at = time.monotonic()
        self._stop = False
        self._holding = [step for step in self.steps if isinstance(step, Holding)]
        self.on_batch: Callable[[RunCounters], None] | None = None
        """Called after each committed batch (progress displays)."""

    def __repr__(self) -> str:
        return f"Agent(steps={[s.name for s in self.steps]}, {self.checkpoint!r})"

    def request_stop(self, *_: object) -> None:
        """Finish the current batch, commit, and return from :meth:`run` (also the SIGTERM handler)."""
        self._stop = True

    def stopping(self) -> bool:
        """Whether a stop was requested."""
        return self._stop

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT drain and stop."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def run(self, exit_when_idle: float | None = None) -> RunCounters:
        """Consume until stopped, or until ``exit_when_idle`` seconds pass with nothing to consume."""
        started = time.monotonic()
        last_record = started
        status = "stopped"
        self._record_run("running")
        try:
            while not self._stop:
                messages = self.source.poll(self.max_wait_ms, self.max_records)
                if messages:
                    self.process(messages)
                    last_record = time.monotonic()
                    continue
                if any(step.due() for step in self._holding):  # held records whose wait is over, with no new batch
                    self.process(())
                    continue
                self.checkpoint.commit_pending()
                self._probe_storage()
                if exit_when_idle is not None and self._idle_for(started, last_record) >= exit_when_idle:
                    log.info("idle, exiting", idle_s=exit_when_idle)
                    status = "idle-exit"
                    break
        except BaseException:
            status = "failed"
            raise
        finally:
            try:  # a last try for a commit deferred by a broker outage
                self.checkpoint.commit_pending()
            except Exception:  # never hide why the loop ended; the next owner re-reads and writes dedupe
                log.exception("final commit failed")
            self._record_run(status)
            self.source.close()
            self.checkpoint.close()
        return self.counters

    def process(self, messages: Sequence[RawMessage]) -> None:
        """Every step over one batch, then flush and commit (an empty batch lets held records go on)."""
        started = time.perf_counter()
        batch = BatchState.of(messages)
        for step in self.steps:
            try:
                step.apply(batch)
            except Exception as exc:
                exc.add_note(f"in the {step.name} step of the record path")
                raise
        try:
            self.checkpoint.write(messages, self.stopping)
        finally:
            self.counters.write_retries = self.checkpoint.retries
        if messages:  # before the counters: a scrape that sees the batch's records counted sees its duration
            metrics.batch_duration.labels(topic=messages[0].origin.topic).observe(time.perf_counter() - started)
        self._count(batch)

    def _probe_storage(self) -> None:
        """While idle, check storage now and then so ``/readyz`` notices an outage without traffic."""
        if self.storage_probe is None or self.health is None:
            return
        now = time.monotonic()
        if now - self._probed_at < STORAGE_PROBE_S:
            return
        self._probed_at = now
        try:
            self.storage_probe()
        except Exception as exc:
            self.health.storage_failed(" ".join(str(exc).split())[:200])
        else:
            self.health.storage_ok()

    def _idle_for(self, started: float, last_record: float) -> float:
        now = time.monotonic()
        assigned = self.source.last_assigned_at()
        if any(step.holding() for step in self._holding):  # records wait for their traces: not idle yet
            return 0.0
        if assigned is None:  # still joining: the idle clock has not started
            return now - started - JOIN_GRACE_S
        return now - max(last_record, assigned)

    def _count(self, batch: BatchState) -> None:
        c = self.counters
        failures = [*batch.dead_letters, *batch.dead_lettered]
        c.consumed += len(batch.messages)
        c.stored += len(batch.scored)
        c.dead_lettered += len(failures)
        c.batches += 1
        c.unpriced += batch.unpriced
        c.commit_failures = self.checkpoint.commit_failures
        for f in failures:
            metrics.records_dead_lettered.labels(topic=f.origin.topic).inc()
        for item in batch.scored:
            topic = item.sample.origin.topic if item.sample.origin else ""
            metrics.records_scored.labels(topic=topic).inc()
            for name in item.flags:
                metrics.records_flagged.labels(topic=topic, detector=name).inc()
            c.flagged.update(item.flags)
        for m in batch.messages:  # last: a scrape that sees a batch consumed sees its other counts
            metrics.records_consumed.labels(topic=m.origin.topic).inc()
        log.debug("batch committed", records=len(batch.scored), dead_lettered=len(failures))
        self._record_run("running")
        if self.on_batch is not None:
            self.on_batch(c)

    def _record_run(self, status: str) -> None:
        self.counters.commit_failures = self.checkpoint.commit_failures
        if self.run_log is None:
            return
        try:
            self.run_log.update(self.counters, status)
        except Exception as exc:  # counters are informational; never stop scoring for them
            log.warning("could not record run counters", error=str(exc)[:300])
