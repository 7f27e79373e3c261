"""Cascade scoring (``scoring.mode: cascade``): the fast tier for every record, the full tier only where unsure.

For each detector with a fast twin (:mod:`detectors.cascade`), every record is scored from the static encoder's
embeddings. A record whose fast score lies inside the detector's band around the record's threshold, or that is
in the audit sample, is scored again by the escalation tier: the site's expensive model for that detector when
one is configured (``scoring.relevance_model_dir``, ``faithfulness_model_dir``), else the full tier (MiniLM and
today's heads), in one MiniLM call over the texts the escalated records need. The escalated score decides.
Detectors without a fast twin run once, on the full tier's batch (those that read no embeddings cost no MiniLM
pass). Audited records also record the detectors whose fast score was outside the band (so the cascade would have
kept it) and whose fast flag disagreed with the escalation tier's: the cascade's errors, which the bands bound.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from agent.config_scoring import ScoringSettings
from agent.types import Sample, ShedPlan
from detectors.cascade import BANDS_FILE, FAST_DIR, Bands, audit_selected, build_fast
from detectors.encoder import build_batch
from detectors.static_encoder import StaticEncoder
from detectors.types import Batch, Detector, Encoder, Score, TextField, Vectors, is_flagged

Tier = str
"""``fast``, ``full`` or ``expensive``."""


@dataclass
class Outcome:
    """One batch through the cascade: scores per detector, and per record which tier decided each."""

    columns: dict[str, list[float | None]]
    """Detector name → one score per record."""
    tiers: list[dict[str, Tier]]
    """Per record: detector name → the tier whose score was kept (cheap single-tier detectors are not listed)."""
    versions: list[dict[str, str]]
    """Per record: detector name → version of the detector whose score was kept."""
    audited: list[bool]
    """Per record: in the audit sample."""
    disagree: list[list[str]]
    """Per audited record: detectors whose fast score lay outside the band (the cascade would have kept it) and
    whose fast flag differed from the escalation tier's: the cascade's own errors."""
    vectors: Mapping[TextField, Vectors]
    """The fast tier's embeddings of the batch's text fields (for drift and stored embeddings)."""
    escalated: int = 0
    """Records that went through the full or expensive tier for at least one detector."""
    per_detector: dict[str, int] = field(default_factory=dict)
    """Detector name → records escalated for it."""


class Cascade:
    """The fast tier, its bands, the audit rate, and what records escalate to.

    Args:
        fast_encoder: The static encoder (its vectors feed the fast detectors, drift and stored embeddings).
        full_encoder: MiniLM (possibly cached): the full tier's encoder.
        fast: Detector name → its fast twin.
        bands: The fitted bands.
        audit_rate: Share of records (by id) that run every tier.
        expensive: Detector name → an expensive model that replaces the full tier for escalated records.
    """

    def __init__(
        self,
        fast_encoder: Encoder,
        full_encoder: Encoder,
        fast: Mapping[str, Detector],
        bands: Bands,
        audit_rate: float = 0.01,
        expensive: Mapping[str, Detector] | None = None,
    ) -> None:
        self.fast_encoder = fast_encoder
        self.full_encoder = full_encoder
        self.fast = dict(fast)
        self.bands = bands
        self.audit_rate = audit_rate
        self.expensive = dict(expensive or {})

    def __repr__(self) -> str:
        return (
            f"Cascade(fast={sorted(self.fast)}, expensive={sorted(self.expensive)}, audit_rate={self.audit_rate}, "
            f"fast_encoder={self.fast_encoder!r})"
        )

    def warm_up(self, probe: Sequence[Sample]) -> None:
        """Load the full tier's encoder and every expensive model now (a batch may never escalate at start)."""
        self.full_encoder.encode([probe[0].prompt])
        for det in self.expensive.values():
            det.score(Batch(items=probe, vectors={}, encoder=self.full_encoder))

    def run(
        self,
        samples: Sequence[Sample],
        detectors: Sequence[Detector],
        fields: frozenset[TextField],
        thresholds_for: Callable[[str], Mapping[str, float]],
        plan: ShedPlan | None = None,
    ) -> Outcome:
        """Score ``samples`` with ``detectors`` (the full tier's), escalating only what the bands say."""
        n = len(samples)
        everyone = list(range(n))
        kept = plan.kept() if plan is not None else everyone
        needs = set(fields).union(*(self.fast[d.name].needs for d in detectors if d.name in self.fast))
        fast_batch = build_batch(samples, self.fast_encoder, needs)
        out = Outcome(
            columns={}, tiers=[{} for _ in everyone], versions=[{} for _ in everyone],
            audited=[audit_selected(s.id, self.audit_rate) for s in samples], disagree=[[] for _ in everyone],
            vectors=fast_batch.vectors,
        )  # fmt: skip
        escalate: dict[str, list[int]] = {}
        audit_outside: set[tuple[str, int]] = set()  # audited scores the fast tier would have decided
        single: list[tuple[Detector, list[int]]] = []
        for det in detectors:
            idx = kept if plan is not None and det.name in plan.detectors else everyone
            out.columns[det.name] = [None] * n
            twin = self.fast.get(det.name)
            if twin is None:
                single.append((det, idx))
                continue
            values = _scores(twin, fast_batch if len(idx) == n else fast_batch.subset(idx), len(idx))
            esc = []
            for i, value in zip(idx, values, strict=True):
                out.columns[det.name][i] = value
                out.tiers[i][det.name] = "fast"
                out.versions[i][det.name] = twin.version
                limit = thresholds_for(samples[i].tenant)[det.name]
                inside = value is not None and self.bands.in_band(det.name, value, limit)
                if inside or out.audited[i]:
                    esc.append(i)
                if out.audited[i] and not inside:
                    audit_outside.add((det.name, i))
            escalate[det.name] = esc
            out.per_detector[det.name] = len(esc)
        by_name = {d.name: d for d in detectors}
        full_rows = sorted(
            {i for name, esc in escalate.items() if name not in self.expensive for i in esc}
            | {i for det, idx in single if det.needs for i in idx}
        )
        full_fields = set().union(*(by_name[name].needs for name in escalate if name not in self.expensive))
        full_fields |= set().union(*(det.needs for det, _ in single))
        pos = {i: p for p, i in enumerate(full_rows)}
        full_batch = build_batch([samples[i] for i in full_rows], self.full_encoder, full_fields)
        lazy = Batch(items=samples, vectors={}, encoder=self.full_encoder)
        decided: set[int] = set()
        for name, esc in escalate.items():
            if not esc:
                continue
            det, tier = (self.expensive[name], "expensive") if name in self.expensive else (by_name[name], "full")
            batch = lazy.subset(esc) if tier == "expensive" else full_batch.subset([pos[i] for i in esc])
            fast_values = [out.columns[name][i] for i in esc]
            for i, before, value in zip(esc, fast_values, _scores(det, batch, len(esc)), strict=True):
                out.columns[name][i] = value
                out.tiers[i][name] = tier
                out.versions[i][name] = det.version
                decided.add(i)
                if (name, i) in audit_outside:
                    limit = thresholds_for(samples[i].tenant)[name]
                    if is_flagged(det, before, limit) != is_flagged(det, value, limit):
                        out.disagree[i].append(name)
        for det, idx in single:
            batch = full_batch.subset([pos[i] for i in idx]) if det.needs else lazy.subset(idx)
            for i, value in zip(idx, _scores(det, batch, len(idx)), strict=True):
                out.columns[det.name][i] = value
                out.versions[i][det.name] = det.version
                if det.needs:
                    out.tiers[i][det.name] = "full"
                    decided.add(i)
        out.escalated = len(decided)
        return out


def _scores(detector: Detector, batch: Batch, expected: int) -> list[float | None]:
    if not expected:
        return []
    scores: list[Score] = detector.score(batch)
    if len(scores) != expected:
        raise RuntimeError(f"detector {detector.name} returned {len(scores)} scores for {expected}")
    return [s.value for s in scores]


def build_cascade(
    settings: ScoringSettings,
    detectors: Sequence[Detector],
    full_encoder: Encoder,
    device: str = "cpu",
) -> Cascade:
    """The cascade ``settings`` describe over the full tier's ``detectors`` (fast twins only where one exists).

    The toxicity twins are built only over the ``head`` backend (the bands were fitted against it); another
    backend's toxicity runs on the full tier alone.
    """
    from detectors.toxicity import HeadToxicity

    folder = settings.fast_dir or FAST_DIR
    cascaded = [d.name for d in detectors if not d.name.endswith("toxicity") or isinstance(d, HeadToxicity)]
    lexical = next((d.lexical for d in detectors if isinstance(d, HeadToxicity)), None)  # one model for both tiers
    fast = build_fast(cascaded, folder, lexical)
    bands = Bands.load(folder / BANDS_FILE)
    expensive: dict[str, Detector] = {}
    if settings.relevance_model_dir is not None or settings.faithfulness_model_dir is not None:
        from detectors.expensive import build_expensive  # torch/transformers: only with a local model

        enabled = {d.name for d in detectors}
        built = build_expensive(settings.relevance_model_dir, settings.faithfulness_model_dir, device)
        expensive = {name: det for name, det in built.items() if name in enabled}
    static = StaticEncoder(settings.static_dir) if settings.static_dir is not None else StaticEncoder()
    return Cascade(static, full_encoder, fast, bands, settings.audit_rate, expensive)
