"""The LLM judge step: ragas ``Faithfulness`` on flagged or sampled records, within a token budget.

Off by default (``judge.enabled``). When on, after the detectors scored a batch, records that have ``context``
and a response are judged when the ``hallucination`` detector flagged them (``judge.on_flagged``) or when a hash
of their id falls below ``judge.sample_rate`` (the same deterministic sampler as load shedding, so a replay
judges the same records). Flagged records go first; a record whose estimated tokens would exceed what is left of
the hour's ``judge.tokens_per_hour`` is not judged (counted, never queued). Judging is concurrent
(``judge.concurrency``) and each call has ``judge.timeout_s``; a failure or timeout leaves the column NULL.

The stored value is ``hallucination_judge = 1 - faithfulness`` (higher = less supported, like
``hallucination``), flagged at ``detectors.thresholds['hallucination_judge']`` (default 0.5), with
``judge_weight``: 1 for a record judged because it was flagged, ``1 / sample_rate`` for a sampled one, NULL when
not judged; under load shedding only the records shedding kept are judged, and the weight is multiplied by their
``shed_weight``. ``sum(judge_weight * (hallucination_judge >= 0.5)) / count()`` estimates the judge's rate over all
traffic with context.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog

from agent import metrics
from agent.config import JudgeSettings
from agent.shedding import keeps
from agent.sinks.base import BatchingSink
from agent.step import BatchState
from agent.types import Sample, ScoredSample

log = structlog.get_logger(__name__)

JUDGE = "hallucination_judge"
"""Score column and flag name of the judge."""
HALLUCINATION = "hallucination"
"""The detector whose flag sends a record to the judge."""
CHARS_PER_TOKEN = 4
"""Rough English characters per token for the budget estimate."""
CALL_OVERHEAD_TOKENS = 700
"""ragas Faithfulness makes two calls (statements, then verdicts); their instructions cost about this much."""

Judge = Callable[[str, str, Sequence[str]], Awaitable[float]]
"""(user input, response, contexts) → faithfulness in 0..1."""


def estimate_tokens(prompt: str, response: str, context: Sequence[str]) -> int:
    """Tokens one Faithfulness judgement is expected to use: the response twice, the context once, instructions."""
    chars = len(prompt) + 2 * len(response) + sum(len(c) for c in context)
    return CALL_OVERHEAD_TOKENS + chars // CHARS_PER_TOKEN


class TokenBudget:
    """Tokens per clock hour; what is not spent in an hour is lost.

    Args:
        per_hour: Tokens allowed per hour.
        clock: Seconds since the epoch (injectable for tests).
    """

    def __init__(self, per_hour: int, clock: Callable[[], float] = time.time) -> None:
        self.per_hour = per_hour
        self.clock = clock
        self._hour = -1
        self.spent = 0

    def __repr__(self) -> str:
        return f"TokenBudget(per_hour={self.per_hour}, spent={self.spent})"

    def take(self, tokens: int) -> bool:
        """Reserve ``tokens`` from this hour's budget; False (nothing reserved) when they do not fit."""
        hour = int(self.clock() // 3600)
        if hour != self._hour:
            self._hour, self.spent = hour, 0
        if self.spent + tokens > self.per_hour:
            return False
        self.spent += tokens
        return True


class JudgeStep:
    """Judges the selected records of a batch and returns the batch with ``hallucination_judge`` filled in.

    Args:
        settings: The ``judge`` settings.
        judge: The scoring call (ragas Faithfulness against the endpoint, see :func:`ragas_judge`).
        threshold: Flag threshold of ``hallucination_judge``.
        version: Recorded in ``detector_versions`` for the column.
        budget: Token budget (default: ``settings.tokens_per_hour`` per clock hour).
    """

    def __init__(
        self,
        settings: JudgeSettings,
        judge: Judge,
        threshold: float = 0.5,
        version: str = "ragas-faithfulness",
        budget: TokenBudget | None = None,
    ) -> None:
        self.settings = settings
        self.judge = judge
        self.threshold = threshold
        self.version = version
        self.budget = budget if budget is not None else TokenBudget(settings.tokens_per_hour)
        self._loop = asyncio.new_event_loop()
        """One event loop for every batch: the endpoint's HTTP connections stay bound to the loop that opened them."""

    def __repr__(self) -> str:
        return f"JudgeStep(model={self.settings.model!r}, sample_rate={self.settings.sample_rate}, {self.budget!r})"

    def select(self, scored: Sequence[ScoredSample]) -> list[tuple[int, float]]:
        """(index, weight) of the records to judge, flagged first, within the budget."""
        flagged: list[tuple[int, float]] = []
        sampled: list[tuple[int, float]] = []
        for i, item in enumerate(scored):
            s = item.sample
            if not s.context or not s.response.strip() or item.shed_weight <= 0:  # shed records are not judged
                continue
            if self.settings.on_flagged and HALLUCINATION in item.flags:
                flagged.append((i, item.shed_weight))
            elif self.settings.sample_rate > 0 and keeps(s.id, self.settings.sample_rate):
                sampled.append((i, item.shed_weight / self.settings.sample_rate))
        chosen = []
        for i, weight in (*flagged, *sampled):
            s = scored[i].sample
            if self.budget.take(estimate_tokens(s.prompt, s.response, s.context)):
                chosen.append((i, weight))
            else:
                metrics.judge_records.labels(outcome="over_budget").inc()
        return chosen

    name = "judge"

    def apply(self, batch: BatchState) -> None:
        """Judge the batch's selected records."""
        batch.scored = self.judged(batch.scored)

    def sinks(self) -> Sequence[BatchingSink[Any]]:
        """None: the verdicts are columns of the records, written by the store step."""
        return ()

    def judged(self, scored: list[ScoredSample]) -> list[ScoredSample]:
        """The batch with the judged records' ``hallucination_judge``, ``judge_weight`` and flag set."""
        chosen = self.select(scored)
        if not chosen:
            return scored
        started = time.perf_counter()
        values = self._loop.run_until_complete(self._judge_all([scored[i].sample for i, _ in chosen]))
        metrics.judge_seconds.observe(time.perf_counter() - started)
        out = list(scored)
        for (i, weight), value in zip(chosen, values, strict=True):
            metrics.judge_records.labels(outcome="failed" if value is None else "judged").inc()
            item = scored[i]
            unsupported = None if value is None else min(1.0, max(0.0, 1.0 - value))
            flags = item.flags
            if unsupported is not None and unsupported >= self.threshold:
                flags = (*flags, JUDGE)
            out[i] = dataclasses.replace(
                item,
                scores={**item.scores, JUDGE: unsupported},
                versions={**item.versions, JUDGE: self.version},
                flags=flags,
                judge_weight=None if value is None else weight,
            )
        return out

    async def _judge_all(self, samples: Sequence[Sample]) -> list[float | None]:
        gate = asyncio.Semaphore(self.settings.concurrency)

        async def one(sample: Sample) -> float | None:
            async with gate:
                try:
                    return await asyncio.wait_for(
                        self.judge(sample.prompt, sample.response, list(sample.context)),
                        timeout=self.settings.timeout_s,
                    )
                except Exception as exc:  # a judge failing on one record (timeout, bad JSON) is a NULL, not a crash
                    log.warning("judge failed", record_id=sample.id, error=str(exc)[:200])
                    return None

        return list(await asyncio.gather(*(one(s) for s in samples)))


def ragas_judge(settings: JudgeSettings) -> tuple[Judge, str]:
    """The ragas ``Faithfulness`` metric against the configured OpenAI-compatible endpoint, and its version string."""
    import os

    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
    from importlib import metadata

    from openai import AsyncOpenAI
    from ragas.llms import llm_factory
    from ragas.metrics.collections import Faithfulness

    if not settings.base_url:
        raise ValueError("judge.base_url is required when judge.enabled is true")
    key = settings.api_key.get_secret_value() if settings.api_key is not None else "unused"
    client = AsyncOpenAI(base_url=settings.base_url, api_key=key, timeout=settings.timeout_s, max_retries=1)
    metric = Faithfulness(llm=llm_factory(settings.model, client=client))

    async def judge(prompt: str, response: str, context: Sequence[str]) -> float:
        result = await metric.ascore(user_input=prompt, response=response, retrieved_contexts=list(context))
        return float(result.value)

    return judge, f"ragas-{metadata.version('ragas')}-faithfulness:{settings.model}"
