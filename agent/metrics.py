"""The agent's Prometheus metrics, defined once; the dashboards and alert rules import these names.

Counters are labelled by ``topic`` (the stream) and, where it applies, ``detector``; histograms are in
seconds. The names below are the names as exposed (counters end in ``_total``), so dashboard queries can
use them verbatim. Readiness for ``/readyz`` lives here too (:class:`Health`), set by the agent loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge, Histogram

from agent.types import ScoredSample

RECORDS_CONSUMED = "lookout_records_consumed_total"
"""Messages polled from Kafka, per topic."""
RECORDS_SCORED = "lookout_records_scored_total"
"""Records scored and stored, per topic."""
RECORDS_FLAGGED = "lookout_records_flagged_total"
"""Records flagged, per topic and detector."""
RECORDS_DEAD_LETTERED = "lookout_records_dead_lettered_total"
"""Messages sent to the dead-letter topic and table (decode or scoring failures), per topic."""
BATCH_DURATION = "lookout_batch_duration_seconds"
"""Decode + score + write + commit time of one batch, per topic."""
CONSUMER_LAG = "lookout_consumer_lag"
"""Records behind the partition's high watermark, per topic and partition."""
SINK_WRITE_DURATION = "lookout_sink_write_duration_seconds"
"""Time of one sink write (flush), per sink."""
SINK_WRITE_FAILURES = "lookout_sink_write_failures_total"
"""Sink writes that raised (each is retried), per sink."""
COMMIT_FAILURES = "lookout_commit_failures_total"
"""Offset commits refused after a rebalance (the batch is re-read and deduplicated)."""
COMMITS_DEFERRED = "lookout_commits_deferred_total"
"""Offset commit attempts the broker could not take (unreachable, timed out); the offsets are kept and retried."""
DETECTOR_INFERENCE = "lookout_detector_inference_seconds"
"""Time of one ``detector.score(batch)`` call, per detector."""
PII_REDACTED = "lookout_pii_redacted_total"
"""PII spans replaced by the redact step, per type (``email``, ``phone``, ``card``, ``iban``, ``ip``, ``secret``...)."""
FEEDBACK_EVENTS = "lookout_feedback_events_total"
"""Feedback events consumed, per ``kind`` and ``outcome`` (``stored``, or ``dead_lettered`` with kind ``invalid``)."""
FEEDBACK_MISSED = "lookout_feedback_missed_total"
"""Records enqueued in the missed review queue (negative feedback, no detector flag)."""
SHEDDING = "lookout_shedding"
"""1 while load shedding samples the expensive signals (lag or scoring time over its threshold), else 0."""
RECORDS_SHED = "lookout_records_shed_total"
"""Records whose expensive signal was skipped by load shedding, per ``signal`` (detector name or ``drift``)."""
ENCODER_CACHE = "lookout_encoder_cache_total"
"""Texts looked up in the cross-batch embedding cache, per ``result`` (``hit``, ``miss``)."""
DRIFT_STREAMS_RESTORED = "lookout_drift_streams_restored_total"
"""Streams the drift step rebuilt from storage on first sight (after a restart or a rebalance), per ``state``:
``ready`` (every reference read back), ``filling`` (a reference still filling), ``empty`` (nothing stored)."""
DRIFT_RESTORE_DURATION = "lookout_drift_restore_seconds"
"""Time to read and rebuild one batch's newly seen streams."""
DRIFT_RESTORE_FAILURES = "lookout_drift_restore_failures_total"
"""Reads of stored drift state that failed (those streams skip the batch and are tried again)."""
OTEL_SPANS = "lookout_otel_spans_total"
"""OpenTelemetry spans consumed, per ``role``: ``llm`` (became records), ``retriever`` (documents joined to their
trace's LLM spans), ``other`` (skipped), ``invalid`` (an LLM span that could not become a record: dead-lettered)."""
OTEL_HELD = "lookout_otel_held_records"
"""LLM spans held while their traces complete (``otel.trace_wait_s``)."""
OTEL_GAVE_UP = "lookout_otel_trace_gave_up_total"
"""What the trace join gave up on, per ``reason``: ``timeout`` (scored before its trace's root span came),
``memory`` (scored early: ``otel.max_held_records``), ``late_documents`` (documents after their LLM span was scored),
``documents_cut`` (documents past ``otel.max_documents_chars``), ``traces_forgotten`` (``otel.max_traces``)."""
OTLP_REQUESTS = "lookout_otlp_requests_total"
"""OTLP/HTTP export requests the receiver answered, per status ``code``: ``200`` (every span acknowledged by Kafka),
``400`` (not an OTLP export), ``401`` (token), ``413`` (too large), ``415`` (media type or encoding), ``503`` (Kafka did
not acknowledge in ``otlp.ack_timeout_s``)."""
OTLP_SPANS_RECEIVED = "lookout_otlp_spans_received_total"
"""Spans the OTLP/HTTP receiver wrote to Kafka (in requests answered 200)."""
READY = "lookout_ready"
"""1 while ``/readyz`` answers ready, else 0."""
STORAGE_UP = "lookout_storage_up"
"""1 while the latest ClickHouse write or probe succeeded, 0 while writes fail (the agent holds its partitions
paused, commits nothing and retries with capped backoff)."""
JUDGE_RECORDS = "lookout_judge_records_total"
"""Records sent to the LLM judge, per ``outcome`` (``judged``, ``failed``, ``over_budget``)."""
JUDGE_SECONDS = "lookout_judge_seconds"
"""Time the LLM judge took per batch."""
DETECTOR_PRECISION = "lookout_detector_precision"
"""Share of a detector's labeled flags that reviewers confirmed, per detector (all streams; from the review labels,
read by ``lookout run`` at start and every ``detectors.quality_refresh_s``); absent until a flag is labeled."""
DETECTOR_MISS_RATE = "lookout_detector_miss_rate"
"""Share of unflagged traffic the detector should have flagged, per detector (from the labeled control sample, as
``lookout detectors report``); absent until a control item is labeled."""
CASCADE_SCORES = "lookout_cascade_scores_total"
"""Scores decided under cascade scoring, per ``detector`` and the ``tier`` that decided it (``fast``, ``full``,
``expensive``); nothing under ``scoring.mode: full``."""
CASCADE_AUDIT = "lookout_cascade_audit_total"
"""Records in the cascade's audit sample (every tier scored them), per ``detector`` the audit compared."""
CASCADE_AUDIT_DISAGREE = "lookout_cascade_audit_disagree_total"
"""Audited records whose fast-tier flag differed from the escalation tier's (full or expensive), per ``detector``."""
PROCESS_START = "process_start_time_seconds"
"""prometheus-client's process collector; a change means the agent restarted."""

HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

records_consumed = Counter(RECORDS_CONSUMED, "Messages polled from Kafka.", ["topic"])
records_scored = Counter(RECORDS_SCORED, "Records scored and stored.", ["topic"])
records_flagged = Counter(RECORDS_FLAGGED, "Records flagged by a detector.", ["topic", "detector"])
records_dead_lettered = Counter(RECORDS_DEAD_LETTERED, "Messages dead-lettered.", ["topic"])
batch_duration = Histogram(BATCH_DURATION, "Seconds to process one batch.", ["topic"], buckets=_LATENCY_BUCKETS)
consumer_lag = Gauge(CONSUMER_LAG, "Records behind the high watermark.", ["topic", "partition"])
sink_write_duration = Histogram(SINK_WRITE_DURATION, "Seconds of one sink write.", ["sink"], buckets=_LATENCY_BUCKETS)
sink_write_failures = Counter(SINK_WRITE_FAILURES, "Sink writes that failed.", ["sink"])
commit_failures = Counter(COMMIT_FAILURES, "Offset commits refused after a rebalance.", ["topic"])
commits_deferred = Counter(COMMITS_DEFERRED, "Offset commit attempts deferred: broker unreachable.", ["topic"])
detector_inference = Histogram(
    DETECTOR_INFERENCE, "Seconds of one detector.score call.", ["detector"], buckets=_LATENCY_BUCKETS
)
pii_redacted = Counter(PII_REDACTED, "PII spans redacted.", ["type"])
feedback_events = Counter(FEEDBACK_EVENTS, "Feedback events consumed.", ["kind", "outcome"])
feedback_missed = Counter(FEEDBACK_MISSED, "Records enqueued in the missed review queue.")
shedding = Gauge(SHEDDING, "1 while load shedding is on.")
records_shed = Counter(RECORDS_SHED, "Records whose expensive signal was shed.", ["signal"])
encoder_cache = Counter(ENCODER_CACHE, "Embedding cache lookups.", ["result"])
drift_streams_restored = Counter(DRIFT_STREAMS_RESTORED, "Drift streams rebuilt from storage.", ["state"])
drift_restore_duration = Histogram(
    DRIFT_RESTORE_DURATION, "Seconds to rebuild newly seen drift streams.", buckets=_LATENCY_BUCKETS
)
drift_restore_failures = Counter(DRIFT_RESTORE_FAILURES, "Failed reads of stored drift state.")
otel_spans = Counter(OTEL_SPANS, "OpenTelemetry spans consumed.", ["role"])
otel_held = Gauge(OTEL_HELD, "LLM spans held while their traces complete.")
otel_gave_up = Counter(OTEL_GAVE_UP, "What the trace join gave up on.", ["reason"])
otlp_requests = Counter(OTLP_REQUESTS, "OTLP/HTTP export requests answered.", ["code"])
otlp_spans_received = Counter(OTLP_SPANS_RECEIVED, "Spans received over OTLP/HTTP and written to Kafka.")
ready = Gauge(READY, "1 while the agent is ready.")
storage_up = Gauge(STORAGE_UP, "1 while ClickHouse writes succeed, 0 while they fail.")
judge_records = Counter(JUDGE_RECORDS, "Records sent to the LLM judge.", ["outcome"])
judge_seconds = Histogram(JUDGE_SECONDS, "LLM judge time per batch.", buckets=_LATENCY_BUCKETS)
detector_precision = Gauge(DETECTOR_PRECISION, "Confirmed share of a detector's labeled flags.", ["detector"])
detector_miss_rate = Gauge(DETECTOR_MISS_RATE, "Estimated share of unflagged traffic a detector missed.", ["detector"])
cascade_scores = Counter(CASCADE_SCORES, "Scores decided by each cascade tier.", ["detector", "tier"])
cascade_audit = Counter(CASCADE_AUDIT, "Records in the cascade audit sample.", ["detector"])
cascade_audit_disagree = Counter(
    CASCADE_AUDIT_DISAGREE, "Audited records whose fast-tier flag differed from the escalation tier's.", ["detector"]
)


@contextmanager
def timed(histogram: Histogram, **labels: str) -> Iterator[None]:
    """Observe the block's duration in ``histogram`` (labelled), whether it raises or not."""
    started = time.perf_counter()
    try:
        yield
    finally:
        histogram.labels(**labels).observe(time.perf_counter() - started)


def observe_cascade(scored: Sequence[ScoredSample], fast: Collection[str] | None = None) -> None:
    """Count one batch's cascade decisions: each score per tier; audited records and disagreements per detector.

    A record with no tiers (``scoring.mode: full``) counts nothing. An audited record counts once in
    ``lookout_cascade_audit_total`` for each detector in its ``tiers`` that the audit compared and once in
    ``lookout_cascade_audit_disagree_total`` for each one in its ``audit_disagree``.

    Args:
        scored: The batch's scored records.
        fast: The detectors with a fast tier (the only ones the audit compares); None: every detector in a record's
            ``tiers`` (those without a fast tier then count audits that can never disagree).
    """
    for item in scored:
        for detector, tier in item.tiers.items():
            cascade_scores.labels(detector=detector, tier=tier).inc()
            if item.audited and (fast is None or detector in fast):
                cascade_audit.labels(detector=detector).inc()
        if item.audited and item.tiers:
            for detector in item.audit_disagree:
                cascade_audit_disagree.labels(detector=detector).inc()


def set_lag(lag: Mapping[tuple[str, int], int]) -> None:
    """Replace the lag gauges with ``lag`` (partitions no longer assigned disappear)."""
    consumer_lag.clear()
    for (topic, partition), value in lag.items():
        consumer_lag.labels(topic=topic, partition=str(partition)).set(value)


@dataclass
class Health:
    """What ``/readyz`` reports: warmed up, partitions assigned, storage reachable.

    The agent thread writes these fields; the web thread reads them (plain attribute reads, no locking
    needed beyond the GIL).
    """

    warmed_up: bool = False
    """Models loaded and a probe batch scored."""
    assigned: Callable[[], bool] = lambda: False
    """True once the consumer holds a partition assignment."""
    storage_error: str | None = None
    """Why storage is unreachable, or None while the latest write or probe succeeded."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def storage_ok(self) -> None:
        """The latest write or probe reached storage."""
        with self._lock:
            self.storage_error = None
        storage_up.set(1)

    def storage_failed(self, reason: str) -> None:
        """The latest write or probe failed."""
        with self._lock:
            self.storage_error = reason
        storage_up.set(0)

    def readiness(self) -> tuple[bool, list[str]]:
        """(ready, reasons it is not)."""
        reasons = []
        if not self.warmed_up:
            reasons.append("models still loading")
        if not self.assigned():
            reasons.append("no partitions assigned yet")
        with self._lock:
            if self.storage_error is not None:
                reasons.append(f"storage unreachable: {self.storage_error}")
        ok = not reasons
        ready.set(1 if ok else 0)
        return ok, reasons
