"""The score step: samples → scored samples (every detector, one shared encoder pass, flags, cost)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from agent import metrics
from agent.config import Settings
from agent.cost import PriceTable
from agent.types import Sample, ScoredSample
from detectors import registry
from detectors.encoder import SentenceTransformerEncoder, build_batch
from detectors.types import Detector, Encoder, TextField, Vectors, is_flagged

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class Scorer:
    """Runs the configured detectors over a batch and prices each call.

    Args:
        detectors: Detectors to run, in column order.
        encoder: Shared encoder; needed when some detector declares ``needs``.
        thresholds: Per-detector flag thresholds overriding each detector's default.
        prices: Price table for cost at ingest.
    """

    def __init__(
        self,
        detectors: Sequence[Detector],
        encoder: Encoder | None,
        thresholds: Mapping[str, float] | None = None,
        prices: PriceTable | None = None,
        extra_fields: frozenset[TextField] = frozenset(),
    ) -> None:
        self.detectors = tuple(detectors)
        self.encoder = encoder
        self.thresholds = {d.name: (thresholds or {}).get(d.name, d.default_threshold) for d in detectors}
        unknown = set(thresholds or {}) - {d.name for d in detectors}
        if unknown:
            raise ValueError(f"thresholds given for detectors that are not enabled: {sorted(unknown)}")
        self.prices = prices if prices is not None else PriceTable({})
        self._fields: frozenset[TextField] = frozenset(extra_fields).union(*(d.needs for d in detectors))

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
        )
        detectors = registry.build(det.enabled, options)
        encoder = SentenceTransformerEncoder(enc.model_path, enc.device, enc.batch_size, enc.max_seq_length)
        drift_fields = frozenset(settings.drift.fields) if settings.drift.enabled else frozenset()
        prices = PriceTable.load(settings.cost.price_table)
        return cls(detectors, encoder, settings.detectors.thresholds, prices, extra_fields=drift_fields)

    def warm_up(self) -> None:
        """Load every model now (so the first batch is not slow and load errors surface at start)."""
        probe = [Sample(id="warmup", ts=_EPOCH, prompt="hello", response="hello")]
        self.score(probe)

    def score(self, samples: Sequence[Sample]) -> list[ScoredSample]:
        """Score, flag and price every sample, in order."""
        return self.score_batch(samples)[0]

    def score_batch(self, samples: Sequence[Sample]) -> tuple[list[ScoredSample], Mapping[TextField, Vectors]]:
        """:meth:`score`, plus the batch's embeddings of each text field (for the drift step)."""
        if not samples:
            return [], {}
        batch = build_batch(samples, self.encoder, self._fields)
        columns = {}
        for detector in self.detectors:
            with metrics.timed(metrics.detector_inference, detector=detector.name):
                scores = detector.score(batch)
            if len(scores) != len(samples):
                raise RuntimeError(f"detector {detector.name} returned {len(scores)} scores for {len(samples)}")
            columns[detector.name] = [s.value for s in scores]
        versions = {d.name: d.version for d in self.detectors}
        out = []
        for i, sample in enumerate(samples):
            scores_i = {name: values[i] for name, values in columns.items()}
            flags = tuple(d.name for d in self.detectors if is_flagged(d, scores_i[d.name], self.thresholds[d.name]))
            out.append(
                ScoredSample(
                    sample=sample,
                    scores=scores_i,
                    versions=versions,
                    flags=flags,
                    cost_usd=self.prices.cost(sample.model, sample.usage),
                )
            )
        return out, batch.vectors

    def is_unpriced(self, sample: Sample) -> bool:
        """True when the sample reports usage but its model has no price (the unknown-model counter)."""
        return sample.usage is not None and self.prices.lookup(sample.model) is None
