"""The agent loop: source → decode → redact → score → sink → flush → commit, one batch at a time.

Offsets are committed only after every sink has durably written the batch. A crash between write and
commit re-delivers the batch; writes are idempotent on the record id, so no reader sees it twice.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import structlog

from agent import metrics
from agent.decode import decode
from agent.errors import StorageError
from agent.metrics import Health
from agent.pipeline import Scorer
from agent.redact import Counts, Redactor
from agent.sinks.base import BatchingSink, SinkError
from agent.source import CommitDeferred, CommitFailed, Source, TopicPartitionKey
from agent.storage.runs import RunCounters, RunLog
from agent.types import DecodeFailure, Origin, RawMessage, Sample, ScoredSample
from detectors.types import TextField, Vectors

if TYPE_CHECKING:
    from agent.drift import DriftStep
    from agent.feedback.step import FeedbackStep
    from agent.judge import JudgeStep
    from agent.shedding import Shedder, ShedPlan
    from agent.sinks.embeddings import EmbeddingSink

_T = TypeVar("_T")
log = structlog.get_logger(__name__)

JOIN_GRACE_S = 60.0
"""With ``exit_when_idle``, how long to wait for a first partition assignment before giving up."""

STORAGE_PROBE_S = 10.0
"""While idle, how often ``storage_probe`` checks that storage is reachable (for ``/readyz``)."""


class Agent:
    """One consumer-group member scoring records into ClickHouse.

    Args:
        source: Where messages come from.
        scorer: Detectors, encoder and prices.
        record_sink: Where scored records go.
        dead_letter_sinks: Where decode failures go (DLQ topic, ``dead_letters`` table).
        route_sinks: Written after ``record_sink``, before the commit (review routing).
        max_records: Largest batch.
        max_wait_ms: Longest poll wait.
        max_record_bytes: Size limit for one message.
        write_retries: Failed-write retries before giving up without committing.
        retry_backoff_max_s: Cap of the exponential backoff between retries.
        run_log: Where run counters are recorded, if anywhere.
        crash_after_write_batches: Fault injection (tests): SIGKILL self after this many batches are
            written and before their commit.
        health: Readiness state for ``/readyz`` (storage reachability is set here).
        storage_probe: Called while idle, every ``STORAGE_PROBE_S``; raises if storage is unreachable.
        drift: The drift step (per-stream monitor and its sink), if drift is enabled.
        embedding_sink: Stores each batch's embeddings (``record_embeddings``) with the records, if enabled.
        redactor: The redact step (PII → placeholders before scoring and before any sink), if enabled.
        shedder: Load shedding: under lag or slow scoring, expensive detectors and drift see a sample only.
        feedback: The feedback step: messages of its topic are feedback events, not records (if enabled).
        judge: The LLM judge step (ragas Faithfulness on flagged or sampled records), if enabled.
        sleep: How to wait between write retries; the Kafka source's ``hold`` pauses its partitions and keeps
            polling, so a long storage outage does not cost the group membership.
    """

    def __init__(
        self,
        source: Source,
        scorer: Scorer,
        record_sink: BatchingSink[ScoredSample],
        dead_letter_sinks: Sequence[BatchingSink[DecodeFailure]],
        *,
        route_sinks: Sequence[BatchingSink[ScoredSample]] = (),
        max_records: int = 256,
        max_wait_ms: int = 1000,
        max_record_bytes: int = 1_048_576,
        write_retries: int = 5,
        retry_backoff_max_s: float = 30.0,
        run_log: RunLog | None = None,
        crash_after_write_batches: int | None = None,
        health: Health | None = None,
        storage_probe: Callable[[], None] | None = None,
        drift: DriftStep | None = None,
        embedding_sink: EmbeddingSink | None = None,
        feedback: FeedbackStep | None = None,
        redactor: Redactor | None = None,
        shedder: Shedder | None = None,
        judge: JudgeStep | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.source = source
        self.scorer = scorer
        self.record_sink = record_sink
        self.dead_letter_sinks = tuple(dead_letter_sinks)
        self.route_sinks = tuple(route_sinks)
        self.max_records = max_records
        self.max_wait_ms = max_wait_ms
        self.max_record_bytes = max_record_bytes
        self.write_retries = write_retries
        self.retry_backoff_max_s = retry_backoff_max_s
        self.run_log = run_log
        self.crash_after_write_batches = crash_after_write_batches
        self.health = health
        self.storage_probe = storage_probe
        self.drift = drift
        self.embedding_sink = embedding_sink
        self.feedback = feedback
        self.redactor = redactor
        self.shedder = shedder
        self.judge = judge
        self.counters = RunCounters()
        self._sleep = sleep
        self._probed_at = time.monotonic()
        self._stop = False
        self._written_batches = 0
        self._uncommitted: dict[TopicPartitionKey, int] = {}
        """Next offsets of written batches whose commit the broker has not taken yet (see :meth:`_commit`)."""
        self._deferring = False
        self.on_batch: Callable[[RunCounters], None] | None = None
        """Called after each committed batch (progress displays)."""

    def request_stop(self, *_: object) -> None:
        """Finish the current batch, commit, and return from :meth:`run` (also the SIGTERM handler)."""
        self._stop = True

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
                self._commit_uncommitted()
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
                self._commit_uncommitted()
            except Exception:  # never hide why the loop ended; the next owner re-reads and writes dedupe
                log.exception("final commit failed")
            self._record_run(status)
            self.source.close()
            for sink in self._sinks():
                sink.close()
        return self.counters

    def _sinks(self) -> list[BatchingSink[Any]]:
        drift = [self.drift.sink] if self.drift is not None else []
        embeddings = [self.embedding_sink] if self.embedding_sink is not None else []
        feedback = self.feedback.sinks() if self.feedback is not None else []  # after records: it looks them up
        return [*self.dead_letter_sinks, self.record_sink, *self.route_sinks, *feedback, *drift, *embeddings]

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
        if assigned is None:  # still joining: the idle clock has not started
            return now - started - JOIN_GRACE_S
        return now - max(last_record, assigned)

    def process(self, messages: Sequence[RawMessage]) -> None:
        """Decode, score, write and commit one batch."""
        started = time.perf_counter()
        samples: list[Sample] = []
        failures: list[DecodeFailure] = []
        records, feedback_failures = self.feedback.take(messages) if self.feedback is not None else (messages, [])
        for message in records:
            result = decode(message, self.max_record_bytes)
            if isinstance(result, Sample):
                samples.append(result)
            else:
                failures.append(result)
        samples = self._redact(samples)
        plan = self.shedder.plan([s.id for s in samples]) if self.shedder is not None and samples else None
        scored, scoring_failures, vectors = self._score(samples, {m.origin: m for m in messages}, plan)
        failures.extend(scoring_failures)
        if self.embedding_sink is not None:  # before drift: it reads the batch's vectors, in scored order
            self.embedding_sink.add_batch(scored, vectors)
        if self.drift is not None:
            scored, windows = self._observe_drift(self.drift, scored, vectors, plan)
            self.drift.sink.extend(windows)
        if self.judge is not None:  # after drift and the detectors: it reads their flags
            scored = self.judge.apply(scored)
        self.record_sink.extend(scored)
        for route_sink in self.route_sinks:
            route_sink.extend(scored)
        if self.feedback is not None:
            self.feedback.sink.extend(scored)
        failures = self._redact_failures(failures)
        for sink in self.dead_letter_sinks:
            sink.extend(failures)
        self._flush()
        self._written_batches += 1
        if self.crash_after_write_batches == self._written_batches:
            log.warning("fault injection: killing the agent after write, before commit")
            os.kill(os.getpid(), signal.SIGKILL)
        self._commit(messages)
        self._count(messages, scored, [*failures, *feedback_failures])
        metrics.batch_duration.labels(topic=messages[0].origin.topic).observe(time.perf_counter() - started)

    def _redact(self, samples: list[Sample]) -> list[Sample]:
        """The redact step: PII in each sample's text becomes placeholders, counted per type."""
        if self.redactor is None:
            return samples
        return _redacted(samples, self.redactor.redact_sample)

    def _redact_failures(self, failures: list[DecodeFailure]) -> list[DecodeFailure]:
        """Dead letters are redacted too: reason and bytes (valid UTF-8 stretches; invalid bytes stay as they are)."""
        if self.redactor is None:
            return failures
        return _redacted(failures, self.redactor.redact_failure)

    @staticmethod
    def _observe_drift(
        drift: DriftStep, scored: list[ScoredSample], vectors: Mapping[TextField, Vectors], plan: ShedPlan | None
    ) -> tuple[list[ScoredSample], list[Any]]:
        """The drift step over the batch, or, while shedding, over the records the plan keeps only."""
        if plan is None or not plan.drift:
            return drift.monitor.observe(scored, vectors)
        kept = [i for i, item in enumerate(scored) if item.shed_weight > 0]
        rows = np.asarray(kept, dtype=np.intp)
        observed, windows = drift.monitor.observe([scored[i] for i in kept], {f: v[rows] for f, v in vectors.items()})
        out = list(scored)
        for i, item in zip(kept, observed, strict=True):
            out[i] = item
        return out, list(windows)

    def _score(
        self, samples: list[Sample], raw: Mapping[Origin | None, RawMessage], plan: ShedPlan | None = None
    ) -> tuple[list[ScoredSample], list[DecodeFailure], Mapping[TextField, Vectors]]:
        """Score the batch; if that raises, score one by one and dead-letter the records that fail.

        The embeddings of the batch come back for the drift step; a batch scored one by one has none.
        """
        try:
            started = time.perf_counter()
            scored_batch, vectors = self.scorer.score_batch(samples, plan)
            if self.shedder is not None:
                self.shedder.observe_inference(time.perf_counter() - started)
            return scored_batch, [], vectors
        except Exception:
            log.exception("batch scoring failed; scoring records one by one")
        scored: list[ScoredSample] = []
        failures: list[DecodeFailure] = []
        for sample in samples:
            try:
                scored.extend(self.scorer.score([sample]))
            except Exception as exc:
                message = raw[sample.origin]
                reason = f"scoring failed: {type(exc).__name__}: {exc}"[:500]
                failures.append(
                    DecodeFailure(message.value or b"", reason, message.origin, message.key, message.timestamp_ms)
                )
        return scored, failures, {}

    def _flush(self) -> None:
        """Flush every sink, retrying with capped exponential backoff; raise if writes keep failing."""
        attempt = 0
        while True:
            try:
                for sink in self._sinks():
                    sink.flush()
                if self.health is not None:
                    self.health.storage_ok()
                return
            except SinkError as exc:
                attempt += 1
                if self.health is not None:
                    self.health.storage_failed(str(exc)[:200])
                self.counters.write_retries += 1
                if attempt > self.write_retries or self._stop:
                    raise StorageError(
                        f"writes keep failing after {attempt} attempts ({exc}); stopped without committing, "
                        "nothing is lost: the batch is re-read on restart"
                    ) from None
                delay = min(self.retry_backoff_max_s, 0.5 * 2 ** (attempt - 1))
                log.warning("write failed, retrying", attempt=attempt, delay_s=delay, error=str(exc)[:300])
                waited = 0.0
                while waited < delay and not self._stop:  # in steps, so SIGTERM is answered within a second
                    step = min(1.0, delay - waited)
                    self._sleep(step)
                    waited += step

    def _commit(self, messages: Sequence[RawMessage]) -> None:
        for m in messages:
            key = (m.origin.topic, m.origin.partition)
            self._uncommitted[key] = max(self._uncommitted.get(key, 0), m.origin.offset + 1)
        self._commit_uncommitted()

    def _commit_uncommitted(self) -> None:
        """Commit the written batches' offsets.

        A broker outage defers the commit: the offsets are kept and tried again with the next batch or the next
        idle poll, and the agent keeps running (the rows are stored already; if it stops first, the next owner
        re-reads them and the writes deduplicate).
        """
        if not self._uncommitted:
            return
        offsets = dict(self._uncommitted)
        topics = sorted({topic for topic, _ in offsets})
        try:
            self.source.commit(offsets)
        except CommitFailed as exc:
            self._uncommitted.clear()
            self.counters.commit_failures += 1
            metrics.commit_failures.labels(topic=topics[0]).inc()
            log.warning("commit refused after a rebalance; the new owner re-reads and writes dedupe", error=str(exc))
        except CommitDeferred as exc:
            for topic in topics:
                metrics.commits_deferred.labels(topic=topic).inc()
            if not self._deferring:
                log.warning("commit deferred: Kafka unreachable; the offsets are kept and retried", error=str(exc))
            self._deferring = True
        else:
            self._uncommitted.clear()
            if self._deferring:
                log.info("deferred commit went through")
            self._deferring = False

    def _count(self, messages: Sequence[RawMessage], scored: list[ScoredSample], failures: list[DecodeFailure]) -> None:
        c = self.counters
        c.consumed += len(messages)
        c.stored += len(scored)
        c.dead_lettered += len(failures)
        c.batches += 1
        for m in messages:
            metrics.records_consumed.labels(topic=m.origin.topic).inc()
        for f in failures:
            metrics.records_dead_lettered.labels(topic=f.origin.topic).inc()
        for item in scored:
            topic = item.sample.origin.topic if item.sample.origin else ""
            metrics.records_scored.labels(topic=topic).inc()
            for name in item.flags:
                metrics.records_flagged.labels(topic=topic, detector=name).inc()
        for item in scored:
            c.flagged.update(item.flags)
            if item.cost_usd is None and self.scorer.is_unpriced(item.sample):
                c.unpriced += 1
        log.debug("batch committed", records=len(scored), dead_lettered=len(failures))
        self._record_run("running")
        if self.on_batch is not None:
            self.on_batch(c)

    def _record_run(self, status: str) -> None:
        if self.run_log is None:
            return
        try:
            self.run_log.update(self.counters, status)
        except Exception as exc:  # counters are informational; never stop scoring for them
            log.warning("could not record run counters", error=str(exc)[:300])


def _redacted(items: list[_T], redact: Callable[[_T], tuple[_T, Counts]]) -> list[_T]:
    """Apply one redaction to every item, counting what it replaced on /metrics."""
    out = []
    for item in items:
        redacted, counts = redact(item)
        for kind, n in counts.items():
            metrics.pii_redacted.labels(type=kind).inc(n)
        out.append(redacted)
    return out
