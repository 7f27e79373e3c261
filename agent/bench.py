"""``lookout bench``: what scoring costs next to the encoder alone, a naive loop, and the whole agent.

Everything is measured in one run on one machine, on real conversation text, so the ratios hold even where
the absolute numbers are noisy:

* **encoder ceiling**: the bare encoder over exactly the texts the scoring run encoded, in the same calls and
  batch size (texts/s). Scoring can only approach it: the encoder is the cost. Scoring and ceiling alternate
  ``rounds`` times and the best of each counts, so a neighbour's burst on a shared machine skews neither.
* **naive baseline**: what a user would write: for each record, for each detector, encode what that detector
  needs and score that one record.
* **scoring**: :meth:`Scorer.score_batch` over batches of ``batch.max_records`` (every default detector,
  one encoder pass per distinct text, cross-batch embedding cache), samples/s.
* **end to end**: a tansu broker, the real agent (decode → redact → score → drift → review routing → chDB →
  commit) in this process, records/s from the first produce to the last record stored, counted after the
  group joined (the ~5 s join is a start-up cost, not throughput); the best of ``--rounds`` runs, like scoring.
* **OTLP decode**: the same records as OTLP trace exports (:mod:`agent.otel.synthetic`) through the decode and
  trace steps; ``otlp_decode_share_of_e2e`` is end to end over it (decoding's share of the agent's time).
* **peak RSS** of this process (both encoder copies, chDB and the broker client included).

The data is ``--data FILE``: JSONL of v1 records or HH-RLHF transcripts (both the chosen and the rejected
transcript of a conversation, as an assistant's traffic repeats prompts); without it, the committed
``agent/data/demo_sample.jsonl``. Measured numbers live in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import resource
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from agent.bench_cascade import measure_cascade
from agent.bench_encoders import LookupEncoder, RecordingEncoder
from agent.config import Settings, load_settings
from agent.decode import decode
from agent.errors import ConfigError
from agent.hh import alternating, hh_turns
from agent.otel.synthetic import measure_decode as measure_otlp_decode
from agent.score import Scorer
from agent.source import missing_client_speedups
from agent.types import Origin, RawMessage, Sample
from detectors.encoder import CachingEncoder, build_batch
from detectors.types import Encoder

_E = TypeVar("_E", bound=Encoder)

REPO = Path(__file__).resolve().parent.parent
DEMO = Path(__file__).resolve().parent / "data" / "demo_sample.jsonl"


@dataclass(frozen=True)
class BenchConfig:
    """What one bench run measures."""

    samples: int = 1024
    """Records scored (and produced for the end-to-end run)."""
    naive_samples: int = 64
    """Records of the naive per-record loop (it is slow; its rate is per record)."""
    device: str = "cpu"
    """Torch device of the encoder."""
    precision: str = "fp32"
    """Encoder precision; anything else also measures the score drift against fp32."""
    runtime: str | None = None
    """Encoder runtime (``torch``/``onnx``); None keeps the settings'. ``onnx`` also measures the score drift
    against torch fp32."""
    encoder_batch: int | None = None
    """Texts per encoder forward pass; None keeps the settings' (default 16 on cpu, 128 on a GPU)."""
    end_to_end: bool = True
    """Run the broker → agent → chDB measurement."""
    rounds: int = 3
    """Scoring and ceiling alternate this many times; the best of each counts (a shared machine is noisy)."""
    data: Path | None = None
    """JSONL of v1 records or HH-RLHF transcripts; default the committed demo sample."""
    cascade: bool = True
    """Also time ``scoring.mode: cascade`` against the full path on the same records (and end to end)."""


@dataclass
class BenchResult:
    """The numbers one run produced (the JSON line is :meth:`as_json`)."""

    device: str
    precision: str
    data: str
    runtime: str
    encoder_batch_size: int
    samples: int
    batch_size: int
    scoring_samples_per_s: float
    texts_per_sample: float
    encoder_ceiling_texts_per_s: float
    naive_samples_per_s: float
    naive_texts_per_sample: float
    e2e_samples_per_s: float | None
    peak_rss_mb: float
    cache_hit_rate: float
    score_drift_max_abs: dict[str, float] = field(default_factory=dict)
    flag_agreement: float | None = None
    host_ceiling_samples_per_s: float | None = None
    """Scoring samples/s with the model's time taken out (:class:`LookupEncoder`): one process's ceiling."""
    host_e2e_records_per_s: float | None = None
    """End-to-end records/s of the whole agent with the model's time taken out: one process's ceiling."""
    consume_ceiling_records_per_s: float | None = None
    """Records/s a bare consumer fetches, checksums and decodes: what the agent cannot pass on any device."""
    otlp_decode_records_per_s: float | None = None
    """Records/s the decode and trace steps get out of OTLP exports of the same records (no Kafka, no scoring)."""
    kafka_missing: tuple[str, ...] = ()
    """kafka-python speedups and codecs missing here (:func:`agent.source.missing_client_speedups`)."""
    cascade_samples_per_s: float | None = None
    """``scoring.mode: cascade`` samples/s (audit on), timed beside ``full_samples_per_s`` (``agent.bench_cascade``)."""
    full_samples_per_s: float | None = None
    cascade_full_fraction: float | None = None
    cascade_flag_agreement: float | None = None
    """The lowest, over cascaded detectors, share of records the cascade flags as the full path does."""
    cascade_e2e_samples_per_s: float | None = None
    """End to end with ``scoring.mode: cascade``."""

    @property
    def encoder_efficiency(self) -> float:
        """Scoring's texts/s as a share of the bare encoder's on the same texts."""
        return self.scoring_samples_per_s * self.texts_per_sample / max(self.encoder_ceiling_texts_per_s, 1e-9)

    @property
    def vs_naive(self) -> float:
        """How many times the naive loop's samples/s scoring achieves."""
        return self.scoring_samples_per_s / max(self.naive_samples_per_s, 1e-9)

    @property
    def e2e_vs_scoring(self) -> float | None:
        """End-to-end samples/s as a share of scoring-only."""
        if self.e2e_samples_per_s is None:
            return None
        return self.e2e_samples_per_s / max(self.scoring_samples_per_s, 1e-9)

    def as_json(self) -> dict[str, Any]:
        """Every field and ratio, rounded, JSON-ready."""
        out = {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}
        out["encoder_efficiency"] = round(self.encoder_efficiency, 4)
        out["vs_naive"] = round(self.vs_naive, 2)
        ratio = self.e2e_vs_scoring
        out["e2e_vs_scoring"] = None if ratio is None else round(ratio, 4)
        otlp = self.otlp_decode_records_per_s
        share = None if otlp is None or self.e2e_samples_per_s is None else self.e2e_samples_per_s / otlp
        out["otlp_decode_share_of_e2e"] = None if share is None else round(share, 5)  # goal: at most 0.1
        c, f, ce = self.cascade_samples_per_s, self.full_samples_per_s, self.cascade_e2e_samples_per_s
        out["cascade_vs_full"] = None if c is None or f is None else round(c / f, 2)  # goal: at least 10
        out["cascade_e2e_vs_cascade"] = None if c is None or ce is None else round(ce / c, 4)  # goal: at least 0.9
        return out


def _hh_turns(transcript: str) -> tuple[list[dict[str, str]], str] | None:
    """(messages up to the last human turn, final assistant turn) of a regular HH-RLHF transcript, else None."""
    turns = hh_turns(transcript)
    if not alternating(turns):
        return None
    messages = [{"role": role, "content": text} for role, text in turns]
    return messages[:-1], messages[-1]["content"]


def load_records(n: int, path: Path | None = None) -> tuple[list[dict[str, Any]], str]:
    """Up to ``n`` v1 records of real conversation text, and where they came from."""
    source = path if path is not None else DEMO
    if not source.is_file():
        raise ConfigError(f"bench data {source} not found; pass --data FILE (JSONL of v1 records)")
    records: list[dict[str, Any]] = []
    for line in source.read_text(encoding="utf-8").splitlines():
        if len(records) >= n:
            break
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(row, dict):
            continue
        if "chosen" in row:  # HH-RLHF: both variants of a conversation, as two calls with one prompt
            for variant in ("chosen", "rejected"):
                turns = _hh_turns(str(row.get(variant, "")))
                if turns is not None and len(records) < n:
                    i = len(records)
                    records.append(
                        {
                            "id": f"bench-{i:06d}", "ts": 1_764_000_000_000 + i * 1000, "model": "bench-model",
                            "tenant": f"t{i % 3}", "route": "chat", "messages": turns[0], "response": turns[1],
                        }
                    )  # fmt: skip
        elif isinstance(row.get("response"), str) and _decodes(row, len(records)):
            records.append(row)  # the demo sample's malformed lines (there on purpose) stay out of the bench
    if not records:
        raise ConfigError(f"bench data {source} has no usable records")
    return records, str(source.relative_to(REPO) if source.is_relative_to(REPO) else source)


def _decodes(row: dict[str, Any], i: int) -> bool:
    """Whether the agent's decoder accepts ``row`` as a record."""
    raw = RawMessage(Origin("bench", 0, i), json.dumps(row).encode(), None)
    return isinstance(decode(raw), Sample)


def to_samples(records: Sequence[dict[str, Any]]) -> list[Sample]:
    """Decode records the way the agent does (records that fail to decode are left out)."""
    out = []
    for i, record in enumerate(records):
        result = decode(RawMessage(Origin("bench", 0, i), json.dumps(record).encode()), 1 << 24)
        if isinstance(result, Sample):
            out.append(result)
    return out


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _batches(items: Sequence[Sample], size: int) -> list[Sequence[Sample]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def measure_scoring(scorer: Scorer, recorder: RecordingEncoder, samples: Sequence[Sample], batch: int) -> float:
    """Scoring samples/s over batches of ``batch`` records, from a cold embedding cache."""
    if isinstance(scorer.encoder, CachingEncoder):
        scorer.encoder.clear()
    recorder.calls.clear()
    started = time.perf_counter()
    for part in _batches(samples, batch):
        scorer.score_batch(part)
    return len(samples) / (time.perf_counter() - started)


def measure_host(scorer: Scorer, recorder: RecordingEncoder, samples: Sequence[Sample], batch: int) -> float:
    """Scoring samples/s with the model replaced by a lookup of the vectors it produced (best of two)."""
    model = recorder.inner
    recorder.inner = LookupEncoder(model.name, recorder.vectors)
    try:
        return max(measure_scoring(scorer, recorder, samples, batch) for _ in range(2))
    finally:
        recorder.inner = model


def _above_model(scorer: Scorer, wrap: Callable[[Encoder], _E]) -> _E:
    """Replace the scorer's model, right below any cache, with ``wrap(model)``; returns what was put there."""
    enc = scorer.encoder
    if enc is None:
        raise ConfigError("bench needs the encoder (some detector must use embeddings)")
    wrapped = wrap(enc.inner if isinstance(enc, CachingEncoder) else enc)
    if isinstance(enc, CachingEncoder):
        enc.inner = wrapped
    else:
        scorer.encoder = wrapped
    return wrapped


def _install_recorder(scorer: Scorer) -> RecordingEncoder:
    """Put a :class:`RecordingEncoder` right above the model, below any cache."""
    return _above_model(scorer, RecordingEncoder)


def measure_ceiling(encoder: Encoder, calls: Sequence[Sequence[str]]) -> float:
    """The bare encoder's texts/s over the same calls."""
    total = sum(len(c) for c in calls)
    started = time.perf_counter()
    for call in calls:
        encoder.encode(call)
    return total / (time.perf_counter() - started)


def measure_naive(scorer: Scorer, encoder: Encoder, samples: Sequence[Sample]) -> tuple[float, float]:
    """(samples/s, texts encoded per sample) of a per-record, per-detector loop without any sharing."""
    counter = RecordingEncoder(encoder)
    started = time.perf_counter()
    for sample in samples:
        for detector in scorer.detectors:
            detector.score(build_batch([sample], counter, detector.needs))
    elapsed = time.perf_counter() - started
    return len(samples) / elapsed, sum(len(c) for c in counter.calls) / len(samples)


def measure_drift(settings: Settings, base: Scorer, samples: Sequence[Sample]) -> tuple[dict[str, float], float]:
    """Max |score difference| per detector and the share of equal flag sets, this encoder vs torch fp32."""
    reference = [s for b in _batches(samples, settings.batch.max_records) for s in base.score(b)]
    fp32 = Scorer.from_settings(
        settings.with_overrides(encoder={"precision": "fp32", "runtime": "torch", "cache_size": 0})
    )
    other = [s for b in _batches(samples, settings.batch.max_records) for s in fp32.score(b)]
    drift: dict[str, float] = {}
    for a, b in zip(reference, other, strict=True):
        for name, value in a.scores.items():
            v2 = b.scores.get(name)
            if value is not None and v2 is not None:
                drift[name] = max(drift.get(name, 0.0), abs(value - v2))
    agree = sum(set(a.flags) == set(b.flags) for a, b in zip(reference, other, strict=True)) / len(reference)
    return drift, agree


def measure_end_to_end(
    settings: Settings,
    records: Sequence[dict[str, Any]],
    timeout_s: float = 600.0,
    lookup: LookupEncoder | None = None,
) -> float:
    """Records/s through a real broker and the real agent into chDB, from first produce to last stored.

    The agent loop runs on this (the main) thread, as under ``lookout run``; the producer and the watcher that
    stops the agent run beside it. (Driving torch from a second thread after the main thread used it slows
    the encoder down, a harness effect that is not the agent's.)

    With ``lookup`` the agent's model is replaced by that :class:`LookupEncoder` (the model becomes its fallback):
    the whole agent without the model. That agent outruns kafka-python's producer, so then the records are all
    produced first and the clock runs from the group assignment to the last record stored: how fast one agent
    drains a backlog.
    """
    from kafka import KafkaProducer

    from agent.app import build_agent
    from agent.broker import Broker, ensure_topic

    with Broker() as broker, tempfile.TemporaryDirectory(prefix="lookout-bench-") as tmp:
        ensure_topic(broker.bootstrap, "bench", 1)
        e2e = settings.with_overrides(
            kafka={"bootstrap_servers": broker.bootstrap, "topic": "bench", "group_id": "bench"},
            clickhouse={"dsn": f"chdb://{tmp}/data"},
            metrics={"port": 0},
        )

        def produce() -> None:
            producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5)
            for record in records:
                producer.send("bench", value=json.dumps(record).encode(), key=str(record.get("id", "")).encode())
            producer.flush(timeout=60)
            producer.close()

        if lookup is not None:  # a backlog: produced before the agent exists
            produce()
        running = build_agent(e2e)
        agent = running.agent
        if lookup is not None:
            _above_model(running.scorer, lookup.over)
        n = len(records)
        times: dict[str, float] = {}
        errors: list[BaseException] = []

        def drive() -> None:
            try:
                _wait(lambda: agent.source.last_assigned_at() is not None, 90.0, "the agent never joined its group")
                if lookup is None:
                    times["start"] = time.perf_counter()
                    produce()
                else:
                    times["start"] = time.perf_counter() - (time.monotonic() - (agent.source.last_assigned_at() or 0))
                _wait(
                    lambda: agent.counters.stored + agent.counters.dead_lettered >= n, timeout_s, "records not stored"
                )
                times["end"] = time.perf_counter()
            except BaseException as exc:  # reported on the main thread
                errors.append(exc)
            finally:
                agent.request_stop()

        driver = threading.Thread(target=drive, name="bench-producer", daemon=True)
        driver.start()
        try:
            agent.run()
        finally:
            agent.request_stop()
            driver.join(timeout=timeout_s + 120)
            running.close()
        if errors:
            raise errors[0]
    return n / (times["end"] - times["start"])


CONSUME_MESSAGES = 20_000
"""Messages of the consume-ceiling measurement (the records, repeated)."""


def measure_consume(records: Sequence[dict[str, Any]], messages: int = CONSUME_MESSAGES) -> float:
    """Records/s one bare consumer fetches from the bundled broker, CRC-checks (kafka-python's default) and decodes.

    Nothing is scored or stored: this is the ceiling that Kafka's client leaves the agent whatever the encoder's
    device (kafka-python's pure-Python CRC-32C, when the C one is missing, is the usual limit).
    """
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    from agent.broker import Broker, ensure_topic

    values = [json.dumps(r).encode() for r in records]
    with Broker() as broker:
        ensure_topic(broker.bootstrap, "consume", 1)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=20, batch_size=1 << 18)
        for i in range(messages):
            producer.send("consume", value=values[i % len(values)])
        producer.flush(timeout=120)
        producer.close()
        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False)
        try:
            consumer.assign([TopicPartition("consume", 0)])
            consumer.seek_to_beginning()
            seen = rejected = 0
            deadline = time.monotonic() + 300
            start = time.perf_counter()
            while seen < messages:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"bench: consumed {seen} of {messages} messages within 300 s")
                for tp, batch in consumer.poll(timeout_ms=1000, max_records=2000).items():
                    for m in batch:
                        out = decode(RawMessage(Origin(tp.topic, tp.partition, m.offset), m.value, m.key))
                        rejected += not isinstance(out, Sample)
                    seen += len(batch)
            elapsed = time.perf_counter() - start
        finally:
            consumer.close()
    if rejected:
        raise RuntimeError(f"bench: {rejected} of the consumed records did not decode")
    return seen / elapsed


def repeated(records: Sequence[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """``records`` cycled to ``n``, each copy with its own id (``#k`` appended) so none is a re-delivery."""
    out = []
    for i in range(n):
        r = records[i % len(records)]
        out.append({**r, "id": f"{r.get('id', 'r')}#{i // len(records)}"})
    return out


HOST_E2E_RECORDS = 2_048
"""Records of the end-to-end run without the model (at ~1,000 records/s, about two seconds)."""


def _wait(done: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench: {what} within {timeout_s:.0f} s")
        time.sleep(0.05)


def run(config: BenchConfig, settings: Settings | None = None, progress: Callable[[str], None] = print) -> BenchResult:
    """Every measurement of one bench run, in one process."""
    base = settings if settings is not None else load_settings()
    if config.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("--device cuda: torch sees no CUDA device here; run the bench on a GPU machine")
    overrides: dict[str, Any] = {"device": config.device, "precision": config.precision}
    if config.runtime is not None:
        overrides["runtime"] = config.runtime
    if config.encoder_batch is not None:
        overrides["batch_size"] = config.encoder_batch
    settings = base.with_overrides(encoder=overrides)
    records, source = load_records(config.samples, config.data)
    samples = to_samples(records)
    progress(f"data: {len(samples)} records from {source}")
    scorer = Scorer.from_settings(settings)
    scorer.warm_up()
    recorder = _install_recorder(scorer)
    bare = recorder.inner
    scoring = ceiling = 0.0
    for n in range(1, config.rounds + 1):
        scoring = max(scoring, measure_scoring(scorer, recorder, samples, settings.batch.max_records))
        ceiling = max(ceiling, measure_ceiling(bare, recorder.calls))
        progress(f"round {n}: best scoring {scoring:.1f} samples/s, best encoder ceiling {ceiling:.1f} texts/s")
    texts = sum(len(c) for c in recorder.calls)
    host = measure_host(scorer, recorder, samples, settings.batch.max_records)
    progress(f"scoring without the model (vectors looked up): {host:,.0f} samples/s")
    cache = scorer.encoder
    hit_rate = cache.hits / max(cache.hits + cache.misses, 1) if isinstance(cache, CachingEncoder) else 0.0
    naive, naive_texts = measure_naive(scorer, bare, samples[: config.naive_samples])
    progress(f"naive loop: {naive:.2f} samples/s")
    otlp = measure_otlp_decode(records[: len(samples)])
    progress(f"OTLP decode (spans → records, trace join): {otlp:,.0f} records/s")
    drift: dict[str, float] = {}
    agreement = None
    if config.precision != "fp32" or settings.encoder.runtime != "torch":
        drift, agreement = measure_drift(settings.with_overrides(encoder={"cache_size": 0}), scorer, samples)
        progress(f"score drift vs torch fp32: {drift}, flag agreement {agreement:.4f}")
    cascade = None
    if config.cascade:
        cascade = measure_cascade(settings, samples, settings.batch.max_records, config.rounds, progress)
        progress(f"cascade: {cascade.cascade_full_fraction:.1%} of records to the full tier; flag agreement "
                 f"{cascade.agreement_by_detector}; escalated {cascade.escalated_by_detector}")  # fmt: skip
    e2e = consume = host_e2e = cascade_e2e = None
    if config.end_to_end and config.cascade:
        cascaded = settings.with_overrides(scoring={"mode": "cascade"})
        for n in range(1, config.rounds + 1):
            rate = measure_end_to_end(cascaded, records[: len(samples)])
            cascade_e2e = rate if cascade_e2e is None else max(cascade_e2e, rate)
            progress(f"cascade end to end round {n}: {rate:.1f} records/s (best {cascade_e2e:.1f})")
    if config.end_to_end:  # best of the same number of rounds as scoring, so the two ratios compare alike
        consume = measure_consume(records[: len(samples)])
        progress(f"consume ceiling (fetch + CRC + decode, no scoring): {consume:,.0f} records/s")
        for n in range(1, config.rounds + 1):
            rate = measure_end_to_end(settings, records[: len(samples)])
            e2e = rate if e2e is None else max(e2e, rate)
            progress(f"end to end round {n}: {rate:.1f} records/s (best {e2e:.1f})")
        lookup = LookupEncoder(recorder.inner.name, recorder.vectors)
        host_e2e = measure_end_to_end(settings, repeated(records[: len(samples)], HOST_E2E_RECORDS), lookup=lookup)
        progress(f"end to end without the model: {host_e2e:,.0f} records/s ({lookup.misses} texts not looked up)")
    return BenchResult(
        device=config.device,
        precision=config.precision,
        data=source,
        runtime=settings.encoder.runtime,
        encoder_batch_size=getattr(bare, "batch_size", 0),
        samples=len(samples),
        batch_size=settings.batch.max_records,
        scoring_samples_per_s=scoring,
        texts_per_sample=texts / len(samples),
        encoder_ceiling_texts_per_s=ceiling,
        naive_samples_per_s=naive,
        naive_texts_per_sample=naive_texts,
        e2e_samples_per_s=e2e,
        peak_rss_mb=peak_rss_mb(),
        cache_hit_rate=hit_rate,
        score_drift_max_abs=drift,
        flag_agreement=agreement,
        consume_ceiling_records_per_s=consume,
        host_ceiling_samples_per_s=host,
        host_e2e_records_per_s=host_e2e,
        otlp_decode_records_per_s=otlp,
        kafka_missing=tuple(missing_client_speedups()),
        cascade_samples_per_s=None if cascade is None else cascade.cascade_samples_per_s,
        full_samples_per_s=None if cascade is None else cascade.full_samples_per_s,
        cascade_full_fraction=None if cascade is None else cascade.cascade_full_fraction,
        cascade_flag_agreement=None if cascade is None else cascade.cascade_flag_agreement,
        cascade_e2e_samples_per_s=cascade_e2e,
    )


def table(result: BenchResult) -> str:
    """A readable table of one run."""
    r = result
    e2e = "skipped" if r.e2e_samples_per_s is None else f"{r.e2e_samples_per_s:,.1f} records/s"
    ratio = r.e2e_vs_scoring
    rows = [
        ("device / precision / runtime", f"{r.device} / {r.precision} / {r.runtime}"),
        ("encoder batch", f"{r.encoder_batch_size} texts per forward pass"),
        ("data", f"{r.samples} records, {r.data}"),
        ("encoder ceiling", f"{r.encoder_ceiling_texts_per_s:,.1f} texts/s"),
        ("scoring", f"{r.scoring_samples_per_s:,.1f} samples/s ({r.texts_per_sample:.2f} texts/sample)"),
        ("  = share of ceiling", f"{r.encoder_efficiency:.1%}"),
        ("naive per-record loop", f"{r.naive_samples_per_s:,.2f} samples/s "
         f"({r.naive_texts_per_sample:.2f} texts/sample)"),
        ("  scoring / naive", f"{r.vs_naive:.1f}x"),
        ("end to end (tansu → agent → chDB)", e2e),
        ("  end to end / scoring", "-" if ratio is None else f"{ratio:.1%}"),
        ("OTLP decode (spans → records)", "-" if r.otlp_decode_records_per_s is None
         else f"{r.otlp_decode_records_per_s:,.0f} records/s"),
        ("consume ceiling (fetch, CRC, decode)", "skipped" if r.consume_ceiling_records_per_s is None
         else f"{r.consume_ceiling_records_per_s:,.0f} records/s"),
        ("scoring without the model", "-" if r.host_ceiling_samples_per_s is None
         else f"{r.host_ceiling_samples_per_s:,.0f} samples/s (one process; vectors looked up)"),
        ("end to end without the model", "skipped" if r.host_e2e_records_per_s is None
         else f"{r.host_e2e_records_per_s:,.0f} records/s (one agent process)"),
        ("embedding cache hit rate", f"{r.cache_hit_rate:.1%}"),
        ("peak RSS", f"{r.peak_rss_mb:,.0f} MB"),
    ]  # fmt: skip
    if r.cascade_samples_per_s is not None and r.full_samples_per_s is not None:
        rows.append(
            (
                "cascade scoring",
                f"{r.cascade_samples_per_s:,.1f} samples/s vs full {r.full_samples_per_s:,.1f} "
                f"({r.cascade_samples_per_s / max(r.full_samples_per_s, 1e-9):.1f}x)",
            )
        )
        rows.append(("  records to the full tier", f"{r.cascade_full_fraction or 0:.1%}"))
        rows.append(("  same flags as full (lowest detector)", f"{r.cascade_flag_agreement or 0:.2%}"))
        if r.cascade_e2e_samples_per_s is not None:
            rows.append(("  cascade end to end", f"{r.cascade_e2e_samples_per_s:,.1f} records/s"))
    if r.kafka_missing:
        rows.append(("kafka-python lacks", ", ".join(r.kafka_missing) + " (reinstall lookout's dependencies)"))
    if r.flag_agreement is not None:
        drift = ", ".join(f"{k} {v:.4f}" for k, v in sorted(r.score_drift_max_abs.items()))
        rows.append((f"{r.precision} {r.runtime} vs torch fp32 max |Δscore|", drift or "-"))
        rows.append((f"{r.precision} {r.runtime} vs torch fp32 same flags", f"{r.flag_agreement:.2%}"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)
