"""The score step: samples → scored samples (every detector, one shared encoder pass, flags, cost)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from agent import metrics
from agent.cascade import Cascade, build_cascade
from agent.config import EncoderSettings, Settings
from agent.cost import PriceTable
from agent.errors import ConfigError
from agent.sinks.base import BatchingSink
from agent.step import BatchState
from agent.thresholds import load_thresholds
from agent.types import Origin, RawMessage, Sample, ScoredSample, ScoringFailure, ShedPlan
from detectors import registry
from detectors.encoder import CachingEncoder, SentenceTransformerEncoder, build_batch
from detectors.promoted import HEAD_OF, PromotedHeadError
from detectors.types import Batch, Detector, Encoder, TextField, Vectors, is_flagged

log = structlog.get_logger(__name__)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


CPU_BATCH = 16
"""Default texts per forward pass on CPU: attention memory grows with batch x length^2, so small batches run
faster on CPU (docs/benchmarks.md)."""
GPU_BATCH = 128
"""Default texts per forward pass on a GPU."""


def build_encoder(enc: EncoderSettings) -> Encoder:
    """The encoder ``enc`` describes (torch or ONNX Runtime), without the cross-batch cache."""
    size = enc.batch_size or (CPU_BATCH if enc.device.startswith("cpu") else GPU_BATCH)
    if enc.runtime == "onnx":
        from detectors.onnx_encoder import OnnxEncoder  # optional extra: onnxruntime

        return OnnxEncoder(enc.model_path, enc.onnx_path, size, enc.max_seq_length, enc.threads)
    return SentenceTransformerEncoder(enc.model_path, enc.device, size, enc.max_seq_length, enc.precision, enc.threads)


SUPPRESSES: Mapping[str, tuple[str, ...]] = {"refusal": ("relevance",)}
"""Flags a detector's flag takes over: a refusal or deflection is off-topic on purpose, so it goes to the refusals
queue and is not also flagged irrelevant (its relevance score is kept)."""


def suppressed(flags: tuple[str, ...]) -> tuple[str, ...]:
    """``flags`` without those a present flag takes over (:data:`SUPPRESSES`)."""
    dropped = {name for flag in flags for name in SUPPRESSES.get(flag, ())}
    return tuple(f for f in flags if f not in dropped) if dropped else flags


def build_detectors(names: Sequence[str], options: registry.DetectorOptions) -> list[Detector]:
    """The named detectors; with a heads folder, its active promoted heads replace the shipped ones (logged)."""
    try:
        detectors = registry.build(names, options)
    except PromotedHeadError as exc:
        raise ConfigError(f"detectors.heads_dir: {exc}") from None
    if options.heads_dir is not None:
        promoted = {d.name: d.version for d in detectors if d.name in HEAD_OF}
        log.info("heads loaded", heads_dir=str(options.heads_dir), versions=promoted)
    return detectors


class Scorer:
    """Runs the configured detectors over a batch and prices each call.

    Args:
        detectors: Detectors to run, in column order.
        encoder: Shared encoder; needed when some detector declares ``needs``.
        thresholds: Per-detector flag thresholds overriding each detector's default.
        prices: Price table for cost at ingest.
        tenant_thresholds: Tenant → detector → threshold, overriding ``thresholds`` for that tenant's records.
        thresholds_version: The thresholds file's version ('' without one), stored with every record.
        cascade: Cascade scoring (``scoring.mode: cascade``): ``encoder`` is then the fast tier's, and the full
            tier scores only the records the cascade escalates.
    """

    def __init__(
        self,
        detectors: Sequence[Detector],
        encoder: Encoder | None,
        thresholds: Mapping[str, float] | None = None,
        prices: PriceTable | None = None,
        extra_fields: frozenset[TextField] = frozenset(),
        tenant_thresholds: Mapping[str, Mapping[str, float]] | None = None,
        thresholds_version: str = "",
        cascade: Cascade | None = None,
    ) -> None:
        self.detectors = tuple(detectors)
        self.cascade = cascade
        self.encoder = encoder
        self.thresholds = {d.name: (thresholds or {}).get(d.name, d.default_threshold) for d in detectors}
        tenants = tenant_thresholds or {}
        unknown = set(thresholds or {}).union(*tenants.values()) - {d.name for d in detectors}
        if unknown:
            raise ValueError(f"thresholds given for detectors that are not enabled: {sorted(unknown)}")
        self.tenant_thresholds = {tenant: {**self.thresholds, **over} for tenant, over in tenants.items()}
        self.thresholds_version = thresholds_version
        self.prices = prices if prices is not None else PriceTable({})
        self._fields: frozenset[TextField] = frozenset(extra_fields).union(*(d.needs for d in detectors))
        self._cache_seen = (0, 0)

    @classmethod
    def from_settings(cls, settings: Settings) -> Scorer:
        """The scorer a deployment's settings describe."""
        enc, det = settings.encoder, settings.detectors
        options = registry.DetectorOptions(
            toxicity_backend=det.toxicity_backend,
            detoxify_checkpoint=det.detoxify_checkpoint,
            detoxify_config_dir=det.detoxify_config_dir,
            detoxify_model_type=det.detoxify_model_type,
            device=enc.device,
            heads_dir=det.heads_dir,
        )
        detectors = build_detectors(det.enabled, options)
        encoder = build_encoder(enc)
        if enc.cache_size > 0:
            encoder = CachingEncoder(encoder, enc.cache_size)
        cascade = None
        if settings.scoring.mode == "cascade":
            try:
                cascade = build_cascade(settings.scoring, detectors, encoder, enc.device)
            except (FileNotFoundError, ValueError) as exc:
                raise ConfigError(f"scoring: {exc}") from None
            encoder = cascade.fast_encoder
        from agent.drift import required_fields  # the drift step's texts (prompt/response for its signals)

        drift_fields = required_fields(settings.drift)
        prices = PriceTable.load(settings.cost.price_table)
        stored = frozenset(settings.embeddings.fields) if settings.embeddings.store else frozenset()
        thresholds, tenants, version = dict(det.thresholds), {}, ""
        if det.thresholds_file is not None:
            file = load_thresholds(det.thresholds_file)
            enabled = {d.name for d in detectors}
            if file.detectors() - enabled:  # calibrated once, switched off since: the file stays valid
                log.warning("thresholds file names detectors that are not enabled; ignored",
                            file=str(det.thresholds_file), detectors=sorted(file.detectors() - enabled))  # fmt: skip
            thresholds.update({k: v for k, v in file.thresholds.items() if k in enabled})
            tenants = {t: {k: v for k, v in over.items() if k in enabled} for t, over in file.tenants.items()}
            version = file.version
        return cls(
            detectors, encoder, thresholds, prices, extra_fields=drift_fields | stored, tenant_thresholds=tenants,
            thresholds_version=version, cascade=cascade,
        )  # fmt: skip

    def thresholds_for(self, tenant: str) -> Mapping[str, float]:
        """The flag thresholds that apply to ``tenant``'s records."""
        return self.tenant_thresholds.get(tenant, self.thresholds)

    def warm_up(self) -> None:
        """Load every model now (so the first batch is not slow and load errors surface at start)."""
        probe = [Sample(id="warmup", ts=_EPOCH, prompt="hello", response="hello", context=("hello",))]
        self.score(probe)
        if self.cascade is not None:
            self.cascade.warm_up(probe)

    def score(self, samples: Sequence[Sample]) -> list[ScoredSample]:
        """Score, flag and price every sample, in order."""
        return self.score_batch(samples)[0]

    def score_batch(
        self, samples: Sequence[Sample], plan: ShedPlan | None = None
    ) -> tuple[list[ScoredSample], Mapping[TextField, Vectors]]:
        """:meth:`score`, plus the batch's embeddings of each text field (for the drift step).

        With a shedding ``plan``, its detectors score only the kept records (the others get None and
        ``shed_weight`` 0; kept ones get ``plan.weight``).
        """
        if not samples:
            return [], {}
        if self.cascade is not None:
            return self._score_cascade(self.cascade, samples, plan)
        batch = build_batch(samples, self.encoder, self._fields)
        kept = plan.kept() if plan is not None else []
        columns = {}
        for detector in self.detectors:
            shed = plan is not None and detector.name in plan.detectors
            with metrics.timed(metrics.detector_inference, detector=detector.name):
                values = self._shed_scores(detector, batch, kept) if shed else [s.value for s in detector.score(batch)]
            if len(values) != len(samples):
                raise RuntimeError(f"detector {detector.name} returned {len(values)} scores for {len(samples)}")
            columns[detector.name] = values
        self._count_cache()
        versions = {d.name: d.version for d in self.detectors}
        out = []
        for i, sample in enumerate(samples):
            scores_i = {name: values[i] for name, values in columns.items()}
            limits = self.thresholds_for(sample.tenant)
            flags = suppressed(tuple(d.name for d in self.detectors if is_flagged(d, scores_i[d.name], limits[d.name])))
            out.append(
                ScoredSample(
                    sample=sample,
                    scores=scores_i,
                    versions=versions,
                    flags=flags,
                    cost_usd=self.prices.cost(sample.model, sample.usage),
                    shed_weight=1.0 if plan is None else plan.weight_of(i),
                )
            )
        return out, batch.vectors

    def _score_cascade(
        self, cascade: Cascade, samples: Sequence[Sample], plan: ShedPlan | None
    ) -> tuple[list[ScoredSample], Mapping[TextField, Vectors]]:
        """:meth:`score_batch` through the cascade: which tier decided each score is kept with the record."""
        with metrics.timed(metrics.detector_inference, detector="cascade"):
            run = cascade.run(samples, self.detectors, self._fields, self.thresholds_for, plan)
        self._count_cache()
        out = []
        for i, sample in enumerate(samples):
            scores_i = {d.name: run.columns[d.name][i] for d in self.detectors}
            limits = self.thresholds_for(sample.tenant)
            flags = suppressed(tuple(d.name for d in self.detectors if is_flagged(d, scores_i[d.name], limits[d.name])))
            out.append(
                ScoredSample(
                    sample=sample, scores=scores_i, versions=run.versions[i], flags=flags,
                    cost_usd=self.prices.cost(sample.model, sample.usage),
                    shed_weight=1.0 if plan is None else plan.weight_of(i),
                    tiers=run.tiers[i], audited=run.audited[i], audit_disagree=tuple(run.disagree[i]),
                )
            )  # fmt: skip
        metrics.observe_cascade(out, fast=cascade.fast.keys())
        return out, run.vectors

    @staticmethod
    def _shed_scores(detector: Detector, batch: Batch, kept: Sequence[int]) -> list[float | None]:
        """Scores of the kept records only; None for the records shedding skipped."""
        values: list[float | None] = [None] * len(batch)
        if not kept:
            return values
        scores = detector.score(batch.subset(kept))
        if len(scores) != len(kept):
            raise RuntimeError(f"detector {detector.name} returned {len(scores)} scores for {len(kept)}")
        for i, score in zip(kept, scores, strict=True):
            values[i] = score.value
        return values

    def _count_cache(self) -> None:
        """Report the embedding cache's hits and misses since the last batch."""
        enc = self.encoder if self.cascade is None else self.cascade.full_encoder
        if not isinstance(enc, CachingEncoder):
            return
        hits, misses = enc.hits - self._cache_seen[0], enc.misses - self._cache_seen[1]
        self._cache_seen = (enc.hits, enc.misses)
        if hits:
            metrics.encoder_cache.labels(result="hit").inc(hits)
        if misses:
            metrics.encoder_cache.labels(result="miss").inc(misses)

    def is_unpriced(self, sample: Sample) -> bool:
        """True when the sample reports usage but its model has no price (the unknown-model counter)."""
        return sample.usage is not None and self.prices.lookup(sample.model) is None


class ScoreStep:
    """The score step: the batch through the scorer, or record by record if that raises.

    The records that still fail become :class:`ScoringFailure` dead letters: a detector bug never stops the loop.

    Args:
        scorer: Detectors, encoder and prices.
        observe_inference: Told how long each batch took to score (the shedding step's signal).
    """

    name = "score"

    def __init__(self, scorer: Scorer, observe_inference: Callable[[float], None] | None = None) -> None:
        self.scorer = scorer
        self.observe_inference = observe_inference

    def __repr__(self) -> str:
        return f"ScoreStep(detectors={[d.name for d in self.scorer.detectors]})"

    def apply(self, batch: BatchState) -> None:
        """Fill ``batch.scored`` and ``batch.vectors`` (none when scored one by one); count unpriced records."""
        batch.scored, batch.vectors = self._score(batch)
        batch.unpriced += sum(
            1 for item in batch.scored if item.cost_usd is None and self.scorer.is_unpriced(item.sample)
        )

    def _score(self, batch: BatchState) -> tuple[list[ScoredSample], Mapping[TextField, Vectors]]:
        try:
            started = time.perf_counter()
            scored, vectors = self.scorer.score_batch(batch.samples, batch.plan)
            if self.observe_inference is not None:
                self.observe_inference(time.perf_counter() - started)
            return scored, vectors
        except Exception:
            log.exception("batch scoring failed; scoring records one by one")
        raw: dict[Origin | None, RawMessage] = {m.origin: m for m in batch.messages}
        scored = []
        for sample in batch.samples:
            try:
                scored.extend(self.scorer.score([sample]))
            except Exception as exc:
                message = raw[sample.origin]
                batch.dead_letters.append(
                    ScoringFailure(
                        raw=message.value or b"",
                        reason=f"scoring failed: {type(exc).__name__}: {exc}"[:500],
                        origin=message.origin,
                        key=message.key,
                        timestamp_ms=message.timestamp_ms,
                        record_id=sample.id,
                    )
                )
        return scored, {}

    def sinks(self) -> Sequence[BatchingSink[Any]]:
        """None: scored records are written by the store step."""
        return ()
