"""Review routing rules: YAML validation with one-line errors, and routing decisions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.errors import ConfigError
from agent.review.rules import DEFAULT_RULES, load_rules, parse_rules, route
from agent.types import Sample, ScoredSample


def scored(
    record_id: str = "r-1",
    flags: tuple[str, ...] = (),
    tenant: str = "acme",
    model: str = "gpt-4o-mini",
    route_name: str = "chat",
    **scores: float | None,
) -> ScoredSample:
    sample = Sample(
        id=record_id, ts=datetime(2026, 1, 1, tzinfo=UTC), prompt="p", response="r", tenant=tenant, model=model,
        route=route_name,
    )  # fmt: skip
    return ScoredSample(sample, scores, {}, flags, None)


def rules(*rule: dict[str, Any], **queues: dict[str, Any]) -> Any:
    return parse_rules({"queues": queues, "rules": list(rule)})


class TestParseRules:
    """Rules files are validated, with one-line errors naming the rule and field."""

    def test_default_rules_file_is_valid(self) -> None:
        """The shipped default rules load and name their queues."""
        loaded = load_rules(DEFAULT_RULES)
        assert loaded.queue_names() == ["safety", "grounding", "refusals", "degenerate", "control", "missed"]
        assert any(r.control for r in loaded.rules)

    def test_unknown_detector_names_rule_and_path(self) -> None:
        """A typo in a nested detector name is one line naming the rule, the field path and valid names."""
        with pytest.raises(ConfigError) as err:
            rules({"name": "bad", "queue": "q", "when": {"all": [{"flagged": "toxicity"}, {"flagged": "toxcity"}]}})
        message = str(err.value)
        assert "rule 'bad' when.all[1].flagged: unknown detector 'toxcity'" in message
        assert "valid: toxicity, prompt_toxicity" in message
        assert "\n" not in message

    def test_out_of_range_field_names_rule_and_field(self) -> None:
        """A sample rate above 1 names the rule and the field."""
        with pytest.raises(ConfigError, match=r"rule 'r1' field sample_rate: Input should be less than or equal to 1"):
            rules({"name": "r1", "queue": "q", "sample_rate": 1.5})

    def test_unnamed_rule_is_numbered(self) -> None:
        """A rule without a name is identified by its position."""
        with pytest.raises(ConfigError, match=r"rule #2 field name: Field required"):
            rules({"name": "ok", "queue": "q"}, {"queue": "q"})

    def test_threshold_without_bounds_is_rejected(self) -> None:
        """A detector condition needs above or below."""
        with pytest.raises(ConfigError, match=r"rule 'x' field when: when: a detector condition needs above"):
            rules({"name": "x", "queue": "q", "when": {"detector": "relevance"}})

    def test_unknown_rule_key_is_rejected(self) -> None:
        """Misspelt rule keys are errors, not silently ignored."""
        with pytest.raises(ConfigError, match=r"rule 'x' field priorty: Extra inputs are not permitted"):
            rules({"name": "x", "queue": "q", "priorty": 3})

    def test_duplicate_rule_names_are_rejected(self) -> None:
        """Rule names are unique (they salt the sampling hash)."""
        with pytest.raises(ConfigError, match="rule 'x' is defined twice"):
            rules({"name": "x", "queue": "q"}, {"name": "x", "queue": "p"})

    def test_bad_queue_budget_names_queue(self) -> None:
        """Queue settings errors name the queue and the field."""
        with pytest.raises(ConfigError, match=r"queue 'q' field hourly_budget: Input should be greater than or equal"):
            rules(q={"hourly_budget": -1})

    def test_unreadable_and_invalid_yaml_files(self, tmp_path: Path) -> None:
        """A missing file and broken YAML are one-line errors naming the file."""
        with pytest.raises(ConfigError, match="is not readable"):
            load_rules(tmp_path / "missing.yaml")
        broken = tmp_path / "broken.yaml"
        broken.write_text("rules: [\n", encoding="utf-8")
        with pytest.raises(ConfigError, match="is not valid YAML") as err:
            load_rules(broken)
        assert "\n" not in str(err.value)


class TestRoute:
    """Which queues a scored record enters."""

    def test_threshold_above_and_below(self) -> None:
        """The bound above is >=, below is <, and a missing score never matches."""
        r = rules({"name": "low", "queue": "q", "when": {"detector": "relevance", "below": 0.3}})
        assert [d.reasons for d in route(r, scored(relevance=0.29))] == [("relevance",)]
        assert route(r, scored(relevance=0.3)) == []
        assert route(r, scored(relevance=None)) == []
        r = rules({"name": "hi", "queue": "q", "when": {"detector": "toxicity", "above": 0.5}})
        assert len(route(r, scored(toxicity=0.5))) == 1

    def test_boolean_combinations(self) -> None:
        """any/all/not combine; reasons are the detectors whose conditions held."""
        when = {
            "all": [{"any": [{"flagged": "toxicity"}, {"flagged": "prompt_toxicity"}]}, {"not": {"flagged": "refusal"}}]
        }
        r = rules({"name": "c", "queue": "q", "when": when})
        assert [d.reasons for d in route(r, scored(flags=("prompt_toxicity",)))] == [("prompt_toxicity",)]
        assert route(r, scored(flags=("prompt_toxicity", "refusal"))) == []
        assert route(r, scored(flags=())) == []

    def test_filters_by_tenant_model_route(self) -> None:
        """Filters restrict a rule to listed tenants, models and routes."""
        r = rules({"name": "f", "queue": "q", "tenants": ["acme"], "models": ["m1"], "routes": ["search"]})
        assert len(route(r, scored(tenant="acme", model="m1", route_name="search"))) == 1
        assert route(r, scored(tenant="other", model="m1", route_name="search")) == []
        assert route(r, scored(tenant="acme", model="m2", route_name="search")) == []
        assert route(r, scored(tenant="acme", model="m1", route_name="chat")) == []

    def test_sampling_is_deterministic_and_near_the_rate(self) -> None:
        """The same id always gets the same decision; about rate x N of N ids are routed."""
        r = rules({"name": "s", "queue": "q", "sample_rate": 0.2})
        first = [bool(route(r, scored(f"id-{i}"))) for i in range(2000)]
        again = [bool(route(r, scored(f"id-{i}"))) for i in range(2000)]
        assert first == again
        assert 340 <= sum(first) <= 460

    def test_control_samples_only_unflagged_records(self) -> None:
        """A control rule never takes a flagged record; its items are marked control."""
        r = rules({"name": "ctl", "queue": "control", "control": True})
        assert route(r, scored(flags=("toxicity",))) == []
        (decision,) = route(r, scored())
        assert decision.control
        assert decision.reasons == ("control",)

    def test_one_decision_per_queue_highest_priority(self) -> None:
        """Two rules of one queue give one decision, from the higher priority; other queues get their own."""
        r = rules(
            {"name": "low", "queue": "q", "priority": 1},
            {"name": "high", "queue": "q", "priority": 9, "when": {"flagged": "toxicity"}},
            {"name": "other", "queue": "p"},
        )
        decisions = {d.queue: d for d in route(r, scored(flags=("toxicity",)))}
        assert set(decisions) == {"q", "p"}
        assert (decisions["q"].rule, decisions["q"].priority) == ("high", 9)
