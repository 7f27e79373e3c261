"""Label Studio mapping and client errors, without a server (the real round trip is a slow integration test)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from agent.review.labelstudio import (
    LabelStudio,
    LabelStudioError,
    PulledLabel,
    annotation_result,
    label_config,
    label_from_annotation,
    task,
)
from agent.review.rules import DETECTORS
from agent.storage.records import Label, Queued, Row

LABEL = Label(
    label_id="l1",
    queue="tox",
    annotator="ann",
    labeled_at=datetime(2026, 11, 25, tzinfo=UTC),
    verdicts={"toxicity": "confirm", "relevance": "reject"},
    severity=3,
    note="rude",
    corrected_response="A polite answer.",
    preference="corrected",
    source="ui",
    n_labels=1,
)
RECORD = {
    "id": "r1",
    "ts": "2026-11-20T13:00:00Z",
    "tenant": "acme",
    "model": "m1",
    "route": "chat",
    "prompt": "p",
    "response": "r",
    "history": [{"role": "system", "content": "Be brief."}],
    "context": ["c1", "c2"],
    "flags": ["toxicity"],
}
ROW = Row(
    record_id="r1",
    record=RECORD,
    scores={"toxicity": 0.91, "relevance": None},
    label=None,
    queued=Queued(("tox",), 5, ("toxicity",), ("toxic",), False, datetime(2026, 11, 25, tzinfo=UTC)),
)


def annotation(result: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    base = {"id": 7, "completed_by": 1, "updated_at": "2026-11-26T10:00:00.123456Z", "result": result}
    base.update(extra)
    return base


class TestLabelConfig:
    """The project's labeling config mirrors lookout's label model."""

    def test_controls_match_the_label_model(self) -> None:
        """One verdict choice per detector, severity rating 1-3, note, corrected response, preference."""
        root = ET.fromstring(label_config())  # noqa: S314 - our own generated XML
        controls = {el.get("name"): el for el in root if el.tag in ("Choices", "Rating", "TextArea")}
        assert list(controls) == [
            *(f"verdict_{d}" for d in DETECTORS), "severity", "note", "corrected_response", "preference",
        ]  # fmt: skip
        assert [c.get("value") for c in controls["verdict_toxicity"]] == ["confirm", "reject"]
        assert [c.get("value") for c in controls["preference"]] == ["none", "corrected", "original"]
        assert controls["severity"].get("maxRating") == "3"
        objects = {el.get("name"): el.get("value") for el in root if el.tag == "Text"}
        assert objects == {
            "history": "$history", "prompt": "$prompt", "response": "$response", "context": "$context",
            "scores": "$scores",
        }  # fmt: skip


class TestTask:
    """Rows become tasks keyed by lookout's record id."""

    def test_task_data_has_every_config_variable_and_the_record_id(self) -> None:
        """record_id, queue, and the texts the config shows (history/context joined, scores as text)."""
        data = task(ROW)["data"]
        assert (data["record_id"], data["queue"]) == ("r1", "tox")
        assert data["history"] == "[system] Be brief."
        assert data["context"] == "c1\n\nc2"
        assert data["scores"] == "toxicity: 0.910\nrelevance: -\nflags: toxicity\nqueued for: toxicity (rules toxic)"
        assert "annotations" not in task(ROW)

    def test_label_round_trips_through_an_annotation(self) -> None:
        """A lookout label → annotation result → the same verdicts, severity, note, correction, preference."""
        pulled = label_from_annotation(
            {"data": {"record_id": "r1", "queue": "tox"}}, annotation(annotation_result(LABEL)), {1: "a@x"}
        )
        assert isinstance(pulled, PulledLabel)
        assert pulled.verdicts == {"relevance": "reject", "toxicity": "confirm"}
        assert (pulled.severity, pulled.note, pulled.corrected_response, pulled.preference) == (
            3, "rude", "A polite answer.", "corrected",
        )  # fmt: skip


class TestLabelFromAnnotation:
    """Annotations become review_labels rows, deterministically."""

    def test_label_id_annotator_time_queue(self) -> None:
        """label_id = ls-<annotation id>-<updated_at>; annotator is the user's email; queue from the task."""
        pulled = label_from_annotation({"data": {"record_id": "r1", "queue": "tox"}}, annotation([]), {1: "a@x"})
        assert isinstance(pulled, PulledLabel)
        assert pulled.label_id == "ls-7-2026-11-26T10:00:00.123456Z"
        assert (pulled.annotator, pulled.queue, pulled.record_id) == ("a@x", "tox", "r1")
        assert pulled.labeled_at == datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC)
        assert (pulled.verdicts, pulled.severity, pulled.corrected_response, pulled.preference) == ({}, 0, None, "none")
        assert pulled.row()[-1] == "labelstudio"

    def test_cancelled_and_foreign_tasks_are_skipped_with_a_reason(self) -> None:
        """A skipped (cancelled) annotation and a task without record_id are not labels."""
        assert (
            label_from_annotation({"data": {"record_id": "r1"}}, annotation([], was_cancelled=True), {}) == "cancelled"
        )
        assert label_from_annotation({"data": {"text": "x"}}, annotation([]), {}) == "not_from_lookout"

    def test_unknown_controls_and_values_are_ignored(self) -> None:
        """Verdicts for unknown detectors or values, out-of-range severity and unknown users are tolerated."""
        result = [
            {"from_name": "verdict_nope", "value": {"choices": ["confirm"]}},
            {"from_name": "verdict_refusal", "value": {"choices": ["maybe"]}},
            {"from_name": "severity", "value": {"rating": 9}},
            {"from_name": "preference", "value": {"choices": ["both"]}},
        ]
        pulled = label_from_annotation({"data": {"record_id": "r1"}}, annotation(result, completed_by=4), {})
        assert isinstance(pulled, PulledLabel)
        assert (pulled.verdicts, pulled.severity, pulled.preference) == ({}, 3, "none")
        assert (pulled.annotator, pulled.queue) == ("labelstudio-user-4", "labelstudio")


class TestLabelStudioClient:
    """HTTP failures are one-line errors that say what to check."""

    def client(self, handler: Any) -> LabelStudio:
        return LabelStudio("http://ls.test", "legacy-token", transport=httpx.MockTransport(handler))

    def test_refused_token_names_the_legacy_token_switch(self) -> None:
        """401 says to check --token and LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN."""
        ls = self.client(lambda request: httpx.Response(401, json={"detail": "no"}))
        with pytest.raises(LabelStudioError, match=r"refused the token \(401\); check --token .*LEGACY_API_TOKEN=true"):
            ls.find_project("lookout")

    def test_unreachable_server_is_one_line(self) -> None:
        """A connection error names the URL and says to check --url."""

        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused")

        with pytest.raises(LabelStudioError, match=r"^Label Studio unreachable at http://ls.test .*; check --url$"):
            self.client(refuse).find_project("lookout")

    def test_legacy_token_header_and_project_paging(self) -> None:
        """The token goes as ``Token …``; projects are read page by page; the lowest id with the title wins."""
        seen: list[str] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request.headers["Authorization"])
            page = int(request.url.params["page"])
            results = [{"id": 9, "title": "lookout"}] if page == 1 else [{"id": 3, "title": "lookout"}]
            return httpx.Response(200, json={"results": results, "next": "more" if page == 1 else None})

        assert self.client(handler).find_project("lookout") == {"id": 3, "title": "lookout"}
        assert seen == ["Token legacy-token", "Token legacy-token"]

    def test_personal_access_token_is_exchanged_for_a_bearer_token(self) -> None:
        """A JWT refresh token is exchanged at /api/token/refresh and sent as Bearer."""
        auth: list[str] = []

        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/api/token/refresh":
                assert json.loads(request.content) == {"refresh": "a.b.c"}
                return httpx.Response(200, json={"access": "acc"})
            auth.append(request.headers["Authorization"])
            return httpx.Response(200, json={"results": [], "next": None})

        LabelStudio("http://ls.test", "a.b.c", transport=httpx.MockTransport(handler)).find_project("x")
        assert auth == ["Bearer acc"]
