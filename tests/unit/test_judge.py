"""The LLM judge step's selection, budget, failure handling and the column it fills.

The judge call itself is a coroutine written here (``FakeJudge``): it stands in for the LLM endpoint that cannot
run in unit tests. ragas against an OpenAI-compatible server is tested in tests/integration/test_judge_agent.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from agent.config import JudgeSettings
from agent.judge import JUDGE, JudgeStep, TokenBudget, estimate_tokens
from agent.shedding import keeps
from agent.types import Sample, ScoredSample

CTX = ("Paris is the capital of France.",)


def item(rid: str, context: tuple[str, ...] = CTX, flagged: bool = False, response: str = "Paris.") -> ScoredSample:
    sample = Sample(id=rid, ts=datetime(2026, 11, 27, tzinfo=UTC), prompt="Capital of France?", response=response,
                    context=context)  # fmt: skip
    flags = ("hallucination",) if flagged else ()
    return ScoredSample(sample, {"hallucination": 0.9 if flagged else 0.1}, {"hallucination": "h1"}, flags, None)


class FakeJudge:
    """Faithfulness per response text; records what it was asked; ``hang`` never answers, ``boom`` raises."""

    def __init__(self, values: dict[str, float] | None = None) -> None:
        self.values = values or {}
        self.calls: list[tuple[str, str, list[str]]] = []

    async def __call__(self, prompt: str, response: str, context: Sequence[str]) -> float:
        self.calls.append((prompt, response, list(context)))
        if response == "hang":
            await asyncio.sleep(60)
        if response == "boom":
            raise RuntimeError("bad JSON from the model")
        return self.values.get(response, 1.0)


def settings(**kw: object) -> JudgeSettings:
    return JudgeSettings.model_validate({"enabled": True, "base_url": "http://x/v1", **kw})


class TestSelection:
    """Which records the judge sees."""

    def test_flagged_with_context_are_judged_and_others_only_when_sampled(self) -> None:
        """Records without context or response are never judged; unflagged ones by the id hash at the rate."""
        batch = [item("f1", flagged=True), item("nc", context=(), flagged=True), item("empty", response=" ")]
        batch += [item(f"u{i}") for i in range(400)]
        step = JudgeStep(settings(sample_rate=0.1), FakeJudge())
        chosen = step.select(batch)
        picked = {batch[i].sample.id: w for i, w in chosen}
        assert picked.pop("f1") == 1.0
        expected = {f"u{i}" for i in range(400) if keeps(f"u{i}", 0.1)}
        assert set(picked) == expected and 20 < len(expected) < 60
        assert all(w == pytest.approx(10.0) for w in picked.values())

    def test_flagged_go_first_when_the_budget_is_short(self) -> None:
        """With room for two judgements, the flagged record is one of them even though it comes last."""
        batch = [item(f"u{i}") for i in range(50)] + [item("f1", flagged=True)]
        cost = estimate_tokens("Capital of France?", "Paris.", CTX)
        step = JudgeStep(settings(sample_rate=1.0), FakeJudge(), budget=TokenBudget(2 * cost))
        chosen = step.select(batch)
        assert len(chosen) == 2 and batch[chosen[0][0]].sample.id == "f1"

    def test_shed_records_are_skipped_and_kept_ones_carry_their_weight(self) -> None:
        """Under load shedding the judge sees what shedding kept; the weight multiplies by ``shed_weight``."""
        import dataclasses

        batch = [dataclasses.replace(item("f1", flagged=True), shed_weight=0.0),
                 dataclasses.replace(item("f2", flagged=True), shed_weight=4.0)]  # fmt: skip
        assert JudgeStep(settings(sample_rate=0.0), FakeJudge()).select(batch) == [(1, 4.0)]

    def test_sample_rate_zero_and_on_flagged_off(self) -> None:
        batch = [item("f1", flagged=True), item("u1")]
        assert JudgeStep(settings(sample_rate=0.0, on_flagged=False), FakeJudge()).select(batch) == []


class TestBudget:
    """The hourly token budget."""

    def test_budget_resets_each_clock_hour(self) -> None:
        now = [3600.0 * 10 + 5]
        budget = TokenBudget(100, clock=lambda: now[0])
        assert budget.take(60) and not budget.take(50) and budget.take(40)
        now[0] += 3600
        assert budget.take(100)

    def test_estimate_grows_with_text(self) -> None:
        assert estimate_tokens("q", "a" * 400, ["c" * 400]) > estimate_tokens("q", "a", ["c"])


class TestApply:
    """What the step writes into the batch."""

    def test_writes_one_minus_faithfulness_weight_version_and_flag(self) -> None:
        """Faithfulness 0.2 → hallucination_judge 0.8, flagged; 1.0 → 0.0, not flagged; others untouched."""
        batch = [item("f1", flagged=True, response="bad"), item("f2", flagged=True, response="good"), item("x")]
        judge = FakeJudge({"bad": 0.2, "good": 1.0})
        out = JudgeStep(settings(sample_rate=0.0), judge, version="ragas-test").judged(batch)
        assert out[0].scores[JUDGE] == pytest.approx(0.8) and JUDGE in out[0].flags
        assert out[0].versions[JUDGE] == "ragas-test" and out[0].judge_weight == 1.0
        assert out[1].scores[JUDGE] == pytest.approx(0.0) and JUDGE not in out[1].flags
        assert out[2] is batch[2] and JUDGE not in out[2].scores and out[2].judge_weight is None
        assert judge.calls[0] == ("Capital of France?", "bad", list(CTX))

    def test_failures_and_timeouts_are_null_not_errors(self) -> None:
        batch = [item("a", flagged=True, response="hang"), item("b", flagged=True, response="boom"),
                 item("c", flagged=True, response="ok")]  # fmt: skip
        out = JudgeStep(settings(sample_rate=0.0, timeout_s=0.2), FakeJudge({"ok": 0.5})).judged(batch)
        assert [o.scores[JUDGE] for o in out] == [None, None, pytest.approx(0.5)]
        assert [o.judge_weight for o in out] == [None, None, 1.0]

    def test_nothing_selected_returns_the_batch(self) -> None:
        batch = [item("u1")]
        assert JudgeStep(settings(sample_rate=0.0), FakeJudge()).judged(batch) is batch
