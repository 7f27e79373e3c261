"""``lookout evaluate ragas``: ragas metrics over stored records, written to ``eval_scores`` and ``eval_runs``.

Metrics (names as stored in ``eval_scores.metric``):

- offline, against a reference answer: ``string_similarity`` (Levenshtein), ``bleu``, ``rouge`` (ROUGE-L F1),
  ``semantic_similarity`` (cosine of lookout's local MiniLM embeddings);
- offline, against reference contexts: ``context_precision_nonllm``, ``context_recall_nonllm``;
- with an OpenAI-compatible endpoint (``eval.llm_base_url``): ``faithfulness`` (needs context),
  ``answer_relevancy`` (LLM questions + MiniLM), ``context_precision`` (LLM, no reference; needs context).

References: records carry no reference column. The reference answer is ``metadata['reference']`` when the
producer sent one, else the latest review label's ``corrected_response`` (unless the annotator preferred the
original). Reference contexts are ``metadata['reference_contexts']``, a JSON array of strings. A metric whose
input is missing is stored as NULL for that record (counted as skipped), never guessed.

ragas is the ``eval`` extra; it is imported lazily with telemetry off (``RAGAS_DO_NOT_TRACK=true``).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agent.errors import ConfigError, LookoutError
from agent.storage.records import ExportFilter
from detectors.types import Encoder
from evaluators.stored import StoredRecord, count_records, iter_pages

OFFLINE = ("string_similarity", "bleu", "rouge", "semantic_similarity", "context_precision_nonllm",
           "context_recall_nonllm")  # fmt: skip
LLM = ("faithfulness", "answer_relevancy", "context_precision")
METRICS = OFFLINE + LLM
"""Every metric name, offline first."""

NEEDS: Mapping[str, frozenset[str]] = {
    "string_similarity": frozenset({"reference"}),
    "bleu": frozenset({"reference"}),
    "rouge": frozenset({"reference"}),
    "semantic_similarity": frozenset({"reference"}),
    "context_precision_nonllm": frozenset({"contexts", "reference_contexts"}),
    "context_recall_nonllm": frozenset({"contexts", "reference_contexts"}),
    "faithfulness": frozenset({"contexts"}),
    "answer_relevancy": frozenset(),
    "context_precision": frozenset({"contexts"}),
}
"""Inputs beyond prompt and response each metric needs; without them its value is NULL."""

SCORE_COLUMNS = ("run_id", "record_id", "metric", "value", "record_ts", "tenant", "model", "route", "scored_at")
RUN_COLUMNS = ("run_id", "kind", "started_at", "updated_at", "status", "filter", "metrics", "llm_model", "records",
               "scored", "means")  # fmt: skip
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class LLMEndpoint:
    """An OpenAI-compatible chat endpoint for ragas's LLM metrics."""

    base_url: str
    """e.g. ``http://vllm:8000/v1``."""
    model: str
    """Model name sent with each request."""
    api_key: str
    """API key (``unused`` for servers without one)."""
    timeout_s: float = 60.0
    """Per-request timeout."""


@dataclass(frozen=True, slots=True)
class EvalInput:
    """What the metrics of one record see."""

    user_input: str
    """The prompt."""
    response: str
    """The response."""
    contexts: tuple[str, ...]
    """Retrieved passages."""
    reference: str | None
    """Reference answer, if any."""
    reference_contexts: tuple[str, ...] | None
    """Reference passages, if any."""

    def has(self, need: str) -> bool:
        """Whether an input the metric needs is present."""
        return bool({"reference": self.reference, "contexts": self.contexts,
                     "reference_contexts": self.reference_contexts}[need])  # fmt: skip


@dataclass
class MetricTotals:
    """Running totals of one metric over a run."""

    scored: int = 0
    """Records with a value."""
    skipped: int = 0
    """Records without the inputs it needs (NULL)."""
    failed: int = 0
    """Records where the metric raised or returned NaN (NULL)."""
    total: float = 0.0
    """Sum of values."""

    @property
    def mean(self) -> float | None:
        """Mean value (None when nothing was scored)."""
        return self.total / self.scored if self.scored else None


@dataclass
class EvalSummary:
    """The outcome of one run."""

    run_id: str
    """Run id (``eval_runs``, ``eval_scores``)."""
    records: int = 0
    """Records evaluated."""
    metrics: dict[str, MetricTotals] = field(default_factory=dict)
    """Metric name → totals."""


def eval_input(record: StoredRecord, corrected: str | None = None) -> EvalInput:
    """A record's metric inputs; ``corrected`` is its review label's corrected response, if any."""
    reference = record.metadata.get("reference") or corrected or None
    reference_contexts: tuple[str, ...] | None = None
    raw = record.metadata.get("reference_contexts")
    if raw:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed) and parsed:
            reference_contexts = tuple(parsed)
    return EvalInput(record.prompt, record.response, record.context, reference, reference_contexts)


def corrected_responses(client: Any, db: str, ids: Sequence[str]) -> dict[str, str]:
    """The latest label's corrected response per record (labels preferring the original are ignored)."""
    if not ids:
        return {}
    rows = client.query(
        f"SELECT record_id, corrected_response FROM {db}.v_review_labels "
        "WHERE record_id IN {ids:Array(String)} AND corrected_response IS NOT NULL AND corrected_response != '' "
        "AND preference != 'original' ORDER BY record_id, labeled_at DESC, label_id DESC LIMIT 1 BY record_id",
        parameters={"ids": list(ids)},
    ).result_rows
    return {r[0]: r[1] for r in rows}


def resolve_metrics(names: Sequence[str] | None, llm: LLMEndpoint | None) -> tuple[str, ...]:
    """The metrics to run: ``names`` validated, or every offline metric plus the LLM ones when configured."""
    if not names:
        return METRICS if llm is not None else OFFLINE
    unknown = sorted(set(names) - set(METRICS))
    if unknown:
        raise LookoutError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    needs_llm = [n for n in names if n in LLM]
    if needs_llm and llm is None:
        raise ConfigError(
            f"metrics {', '.join(needs_llm)} need an LLM: set LOOKOUT_EVAL__LLM_BASE_URL (OpenAI-compatible) "
            "and LOOKOUT_EVAL__LLM_API_KEY"
        )
    return tuple(n for n in METRICS if n in names)


def _import_ragas() -> None:
    """Telemetry off before ragas is imported (it reads the variable once)."""
    os.environ["RAGAS_DO_NOT_TRACK"] = "true"
    try:
        import ragas  # noqa: F401  # the import is the check
    except ImportError:
        raise ConfigError("ragas is not installed; install the eval extra: pip install 'llm-lookout[eval]'") from None


def encoder_embeddings(encoder: Encoder) -> Any:
    """Lookout's local encoder as a ragas embeddings object (no downloads, no API)."""
    _import_ragas()
    from ragas.embeddings.base import BaseRagasEmbedding

    class _EncoderEmbeddings(BaseRagasEmbedding):
        def embed_text(self, text: str, **kwargs: Any) -> list[float]:
            return [float(x) for x in encoder.encode([text])[0]]

        async def aembed_text(self, text: str, **kwargs: Any) -> list[float]:
            return self.embed_text(text)

        def embed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
            return [[float(x) for x in row] for row in encoder.encode(texts)]

        async def aembed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
            return self.embed_texts(texts)

    return _EncoderEmbeddings()


Scorer = Callable[[EvalInput], Coroutine[Any, Any, float]]


def build_scorers(
    names: Sequence[str], encoder: Encoder | None, llm: LLMEndpoint | None, strictness: int = 3
) -> dict[str, Scorer]:
    """One coroutine function per metric, each taking an :class:`EvalInput` and returning its value."""
    _import_ragas()
    from ragas.metrics.collections import BleuScore, NonLLMStringSimilarity, RougeScore

    out: dict[str, Scorer] = {}
    if "string_similarity" in names:
        m_str = NonLLMStringSimilarity()
        out["string_similarity"] = lambda x: _value(m_str.ascore(reference=x.reference or "", response=x.response))
    if "bleu" in names:
        m_bleu = BleuScore()
        out["bleu"] = lambda x: _value(m_bleu.ascore(reference=x.reference or "", response=x.response))
    if "rouge" in names:
        m_rouge = RougeScore()
        out["rouge"] = lambda x: _value(m_rouge.ascore(reference=x.reference or "", response=x.response))
    embeddings: Any = None
    if "semantic_similarity" in names or "answer_relevancy" in names:
        if encoder is None:
            raise ConfigError("semantic_similarity and answer_relevancy need the encoder")
        embeddings = encoder_embeddings(encoder)
    if "semantic_similarity" in names:
        from ragas.metrics.collections import SemanticSimilarity

        m_sem = SemanticSimilarity(embeddings=embeddings)
        out["semantic_similarity"] = lambda x: _value(m_sem.ascore(reference=x.reference or "", response=x.response))
    if "context_precision_nonllm" in names or "context_recall_nonllm" in names:
        _non_llm_context(names, out)
    if any(n in LLM for n in names):
        if llm is None:
            raise ConfigError("LLM metrics need eval.llm_base_url")
        _llm_metrics(names, llm, embeddings, strictness, out)
    return out


def _non_llm_context(names: Sequence[str], out: dict[str, Scorer]) -> None:
    """The string-distance context metrics (only ragas's legacy API has them)."""
    import warnings

    from ragas.dataset_schema import SingleTurnSample

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from ragas.metrics import NonLLMContextPrecisionWithReference, NonLLMContextRecall

    def sample(x: EvalInput) -> Any:
        return SingleTurnSample(
            retrieved_contexts=list(x.contexts), reference_contexts=list(x.reference_contexts or ())
        )

    if "context_precision_nonllm" in names:
        m_cp = NonLLMContextPrecisionWithReference()

        async def precision(x: EvalInput) -> float:
            return float(await m_cp.single_turn_ascore(sample(x)))

        out["context_precision_nonllm"] = precision
    if "context_recall_nonllm" in names:
        m_cr = NonLLMContextRecall()

        async def recall(x: EvalInput) -> float:
            return float(await m_cr.single_turn_ascore(sample(x)))

        out["context_recall_nonllm"] = recall


def _llm_metrics(
    names: Sequence[str], llm: LLMEndpoint, embeddings: Any, strictness: int, out: dict[str, Scorer]
) -> None:
    from openai import AsyncOpenAI
    from ragas.llms import llm_factory
    from ragas.metrics.collections import AnswerRelevancy, ContextPrecisionWithoutReference, Faithfulness

    client = AsyncOpenAI(base_url=llm.base_url, api_key=llm.api_key, timeout=llm.timeout_s, max_retries=1)
    model = llm_factory(llm.model, client=client)
    if "faithfulness" in names:
        m_f = Faithfulness(llm=model)
        out["faithfulness"] = lambda x: _value(
            m_f.ascore(user_input=x.user_input, response=x.response, retrieved_contexts=list(x.contexts))
        )
    if "answer_relevancy" in names:
        m_ar = AnswerRelevancy(llm=model, embeddings=embeddings, strictness=strictness)
        out["answer_relevancy"] = lambda x: _value(m_ar.ascore(user_input=x.user_input, response=x.response))
    if "context_precision" in names:
        m_cp = ContextPrecisionWithoutReference(llm=model)
        out["context_precision"] = lambda x: _value(
            m_cp.ascore(user_input=x.user_input, response=x.response, retrieved_contexts=list(x.contexts))
        )


async def _value(result: Coroutine[Any, Any, Any]) -> float:
    return float((await result).value)


async def _score_record(
    x: EvalInput, scorers: Mapping[str, Scorer], gate: asyncio.Semaphore
) -> dict[str, tuple[float | None, str]]:
    """Metric → (value, outcome) with outcome ``scored``, ``skipped`` or ``failed``."""
    async with gate:
        out: dict[str, tuple[float | None, str]] = {}
        for name, scorer in scorers.items():
            if not x.response or not x.user_input or not all(x.has(n) for n in NEEDS[name]):
                out[name] = (None, "skipped")
                continue
            try:
                value = await scorer(x)
            except Exception:  # a metric failing on one record (bad LLM JSON, timeout) is a NULL, not a crash
                out[name] = (None, "failed")
                continue
            out[name] = (None, "failed") if math.isnan(value) else (value, "scored")
        return out


def evaluate(
    client: Any,
    db: str,
    filt: ExportFilter,
    scorers: Mapping[str, Scorer],
    *,
    llm_model: str = "",
    concurrency: int = 4,
    page_size: int = 500,
    progress: Progress | None = None,
) -> EvalSummary:
    """Run ``scorers`` over the records ``filt`` selects; write every value and the run row; return the totals."""
    summary = EvalSummary(run_id=uuid.uuid4().hex[:16], metrics={n: MetricTotals() for n in scorers})
    started = datetime.now(UTC)
    total = count_records(client, db, filt)

    def save_run(status: str) -> None:
        row = {
            "run_id": summary.run_id, "kind": "ragas", "started_at": started, "updated_at": datetime.now(UTC),
            "status": status, "filter": json.dumps(filt.to_json(), sort_keys=True), "metrics": list(scorers),
            "llm_model": llm_model, "records": summary.records,
            "scored": {n: t.scored for n, t in summary.metrics.items()},
            "means": {n: t.mean for n, t in summary.metrics.items() if t.mean is not None},
        }  # fmt: skip
        client.insert(f"{db}.eval_runs", [[row[c] for c in RUN_COLUMNS]], column_names=list(RUN_COLUMNS))

    save_run("running")
    status = "failed"
    try:
        asyncio.run(_run_pages(client, db, filt, scorers, summary, total, concurrency, page_size, progress, save_run))
        status = "done"
    finally:
        save_run(status)
    return summary


async def _run_pages(
    client: Any,
    db: str,
    filt: ExportFilter,
    scorers: Mapping[str, Scorer],
    summary: EvalSummary,
    total: int,
    concurrency: int,
    page_size: int,
    progress: Progress | None,
    save_run: Callable[[str], None],
) -> None:
    """Every page in one event loop (the LLM client's connections belong to it)."""
    for page in iter_pages(client, db, filt, page_size):
        corrected = corrected_responses(client, db, [r.id for r in page])
        inputs = [eval_input(r, corrected.get(r.id)) for r in page]
        results = await _score_page(inputs, scorers, concurrency)
        now = datetime.now(UTC)
        rows = []
        for record, result in zip(page, results, strict=True):
            for name, (value, outcome) in result.items():
                totals = summary.metrics[name]
                if outcome == "scored" and value is not None:
                    totals.scored += 1
                    totals.total += value
                elif outcome == "skipped":
                    totals.skipped += 1
                else:
                    totals.failed += 1
                rows.append([summary.run_id, record.id, name, value, record.ts, record.tenant, record.model,
                             record.route, now])  # fmt: skip
        if rows:
            client.insert(f"{db}.eval_scores", rows, column_names=list(SCORE_COLUMNS))
        summary.records += len(page)
        save_run("running")
        if progress is not None:
            progress(summary.records, total)


async def _score_page(
    inputs: Sequence[EvalInput], scorers: Mapping[str, Scorer], concurrency: int
) -> list[dict[str, tuple[float | None, str]]]:
    gate = asyncio.Semaphore(concurrency)
    return list(await asyncio.gather(*(_score_record(x, scorers, gate) for x in inputs)))


def summary_rows(summary: EvalSummary) -> list[tuple[str, int, int, int, str]]:
    """(metric, scored, skipped, failed, mean) per metric, for the table ``lookout evaluate ragas`` prints."""
    return [
        (name, t.scored, t.skipped, t.failed, "" if t.mean is None else f"{t.mean:.4f}")
        for name, t in summary.metrics.items()
    ]
