"""Verdicts mean one thing: the API and the page ask for the routing reasons and check the severity rule.

Each verdict is stored with what it judged (score, threshold, flag), read from the record, never from the client.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import csrf_of
from fastapi.testclient import TestClient

from agent.review.app import create_review_app
from agent.review.rules import parse_rules
from agent.review.store import ReviewStore
from agent.review.testing import scored_sample, seed

DB = "lookout"
RULES = parse_rules(
    {
        "queues": {"safety": {"description": "toxic", "sla_hours": 4}, "control": {"description": "baseline"}},
        "rules": [
            {"name": "toxic", "queue": "safety", "when": {"flagged": "toxicity"}},
            {"name": "baseline", "queue": "control", "control": True, "sample_rate": 1.0},
        ],
    }
)
"""Toxicity flags go to ``safety`` (reason: toxicity); unflagged records to ``control`` (reason: control)."""
THRESHOLDS = {"relevance": 0.35}
"""As configured (``detectors.thresholds``); toxicity keeps its default 0.5."""


@pytest.fixture
def store(client: Any) -> ReviewStore:
    """tox-1, tox-2: toxic (0.91) and off-topic (0.316 < 0.35), routed for toxicity only; calm: a control item."""
    flags = ("toxicity", "relevance")
    records = [scored_sample(r, flags=flags, toxicity=0.91, relevance=0.316) for r in ("tox-1", "tox-2")]
    records.append(scored_sample("calm", flags=()))
    seed(client, DB, records, RULES)
    return ReviewStore(client, DB, RULES, thresholds=THRESHOLDS)


@pytest.fixture
def http(store: ReviewStore) -> TestClient:
    """An in-process client for the standalone app."""
    return TestClient(create_review_app(store), base_url="http://testserver.local")


def claimed(http: TestClient, auth: dict[str, str], queue: str, record_id: str) -> dict[str, Any]:
    response = http.post("/review/api/v1/claims", headers=auth, json={"queue": queue, "record_id": record_id})
    assert response.status_code == 201, response.text
    return dict(response.json())


def label(record_id: str, claim: dict[str, Any], queue: str = "safety", **fields: Any) -> dict[str, Any]:
    return {"label_id": f"l-{record_id}", "queue": queue, "record_id": record_id,
            "claim_id": claim["claim"]["claim_id"], **fields}  # fmt: skip


class TestApiRules:
    """POST /labels: verdicts for the routing reasons, a severity for a confirmed harm, known detectors only."""

    def test_missing_reason_verdict_is_422_naming_it(self, http: TestClient, store: ReviewStore) -> None:
        """A verdict on relevance only (flagged, but not why the item is here): 422 naming toxicity; nothing stored."""
        auth = {"Authorization": f"Bearer {store.add_annotator('bot')}"}
        claim = claimed(http, auth, "safety", "tox-1")
        response = http.post(
            "/review/api/v1/labels", headers=auth, json=label("tox-1", claim, verdicts={"relevance": "reject"})
        )
        assert response.status_code == 422
        detail = response.json()["detail"]
        assert detail.startswith("verdicts missing for the routing reasons toxicity:") and "\n" not in detail
        assert store.labels("safety", "tox-1") == []

    def test_confirmed_harm_without_severity_is_422(self, http: TestClient, store: ReviewStore) -> None:
        """Confirming toxicity with severity 0: 422 asking for a severity; with severity 2 it is stored."""
        auth = {"Authorization": f"Bearer {store.add_annotator('bot')}"}
        claim = claimed(http, auth, "safety", "tox-1")
        body = label("tox-1", claim, verdicts={"toxicity": "confirm"})
        refused = http.post("/review/api/v1/labels", headers=auth, json=body)
        assert refused.status_code == 422
        assert refused.json()["detail"] == "toxicity confirmed as harm: choose a severity (1-3), not none"
        assert store.labels("safety", "tox-1") == []
        assert http.post("/review/api/v1/labels", headers=auth, json={**body, "severity": 2}).status_code == 201

    def test_unknown_detector_is_422(self, http: TestClient, store: ReviewStore) -> None:
        """A verdict on a drift signal (not a detector) is refused with the valid names."""
        auth = {"Authorization": f"Bearer {store.add_annotator('bot')}"}
        claim = claimed(http, auth, "safety", "tox-1")
        body = label("tox-1", claim, verdicts={"toxicity": "reject", "novel": "confirm"})
        response = http.post("/review/api/v1/labels", headers=auth, json=body)
        assert response.status_code == 422 and "unknown detectors 'novel' (valid: toxicity" in response.json()["detail"]

    def test_control_items_need_no_verdict(self, http: TestClient, store: ReviewStore) -> None:
        """A control item's reason is not a detector: a label without verdicts is stored."""
        auth = {"Authorization": f"Bearer {store.add_annotator('bot')}"}
        claim = claimed(http, auth, "control", "calm")
        assert claim["item"]["reasons"] == ["control"]
        response = http.post("/review/api/v1/labels", headers=auth, json=label("calm", claim, queue="control"))
        assert response.status_code == 201, response.text


class TestStoredContext:
    """Each verdict is stored with the score, threshold and flag of the record as the reviewer saw it."""

    def test_maps_match_the_record_and_configured_thresholds(
        self, http: TestClient, store: ReviewStore, client: Any
    ) -> None:
        """Toxicity 0.91 ≥ 0.5 flagged, relevance 0.316 < 0.35 flagged, tone 0.1 < 0.75 not: as stored, read back."""
        auth = {"Authorization": f"Bearer {store.add_annotator('bot')}"}
        claim = claimed(http, auth, "safety", "tox-1")
        verdicts = {"toxicity": "confirm", "relevance": "reject", "tone": "confirm"}
        response = http.post(
            "/review/api/v1/labels", headers=auth, json=label("tox-1", claim, verdicts=verdicts, severity=1)
        )
        assert response.status_code == 201, response.text
        expected = (
            {"toxicity": 0.91, "relevance": 0.316, "tone": 0.1},
            {"toxicity": 0.5, "relevance": 0.35, "tone": 0.75},
            {"toxicity": 1, "relevance": 1, "tone": 0},
        )
        stored = response.json()["label"]
        assert (stored["verdict_scores"], stored["verdict_thresholds"], stored["verdict_flagged"]) == expected
        row = client.query(
            "SELECT verdict_scores, verdict_thresholds, verdict_flagged FROM lookout.v_review_labels "
            "WHERE label_id = 'l-tox-1'"
        ).result_rows
        scores, thresholds, flagged = row[0]
        assert ({k: round(v, 6) for k, v in scores.items()}, thresholds, flagged) == expected

    def test_client_cannot_send_what_was_judged(self, http: TestClient, store: ReviewStore) -> None:
        """Scores/thresholds/flags come from the stored record: a body carrying them is refused (extra field)."""
        auth = {"Authorization": f"Bearer {store.add_annotator('bot')}"}
        claim = claimed(http, auth, "safety", "tox-1")
        body = label("tox-1", claim, verdicts={"toxicity": "reject"}, verdict_scores={"toxicity": 0.0})
        assert http.post("/review/api/v1/labels", headers=auth, json=body).status_code == 422

    def test_item_lists_detectors_in_words(self, http: TestClient, store: ReviewStore) -> None:
        """GET /items gives each detector's score, threshold, direction, flag and routing role, in the page's words."""
        auth = {"Authorization": f"Bearer {store.add_annotator('bot')}"}
        found = http.get("/review/api/v1/items/safety/tox-1", headers=auth).json()
        by_name = {d["detector"]: d for d in found["detectors"]}
        assert by_name["relevance"] == {
            "detector": "relevance", "score": 0.316, "threshold": 0.35, "flags_when": "below", "flagged": True,
            "routing_reason": False, "harm": False, "words": "flagged: below the 0.35 threshold (low relevance)",
        }  # fmt: skip
        assert [d["detector"] for d in found["detectors"] if d["routing_reason"]] == ["toxicity"]


class TestItemPage:
    """The page asks for the routing reasons, folds the others, and says what each score means."""

    def test_reasons_asked_others_folded_in_words(self, http: TestClient, store: ReviewStore) -> None:
        """Toxicity in the required table; relevance (flagged, not a reason) folded with its threshold words."""
        page = http.get("/review/login")
        http.post("/review/login", data={"csrf": csrf_of(page.text), "token": store.add_annotator("alice")})
        html = http.post("/review/queues/safety/next", data={"csrf": csrf_of(http.get("/review/").text)}).text
        asked = html[html.index('id="reasons"') : html.index("</table>", html.index('id="reasons"'))]
        folded = html[html.index('id="other-detectors"') : html.index("</details>", html.index('id="other-detectors"'))]
        assert (
            'toxicity</strong> <span class="num">0.910</span> — flagged: at or above the 0.5 threshold (high toxicity)'
            in asked
        )
        assert 'data-required="1" data-harm="1"' in asked and "relevance" not in asked
        assert (
            'relevance</strong> <span class="num">0.316</span> — flagged: below the 0.35 threshold (low relevance)'
            in folded
        )
        assert 'tone</strong> <span class="num">0.100</span> — not flagged: under the 0.75 threshold' in folded
        assert "Other detectors (7, 1 flagged) · verdicts optional" in folded
        assert "<kbd>a</kbd> confirm · <kbd>x</kbd> reject the routing reasons (toxicity) only" in html

    def test_page_save_is_checked_on_the_server_too(self, http: TestClient, store: ReviewStore) -> None:
        """A form post that skips the page's script (no verdict on the reason) is refused with the reason shown."""
        page = http.get("/review/login")
        http.post("/review/login", data={"csrf": csrf_of(page.text), "token": store.add_annotator("alice")})
        item = http.post("/review/queues/safety/next", data={"csrf": csrf_of(http.get("/review/").text)})
        action = item.text.split('id="label-form"')[0].rsplit('action="', 1)[1].split('"')[0]
        label_id = item.text.split('name="label_id" value="')[1].split('"')[0]
        saved = http.post(
            action, data={"csrf": csrf_of(item.text), "label_id": label_id, "verdict.toxicity": "confirm"}
        )
        assert saved.status_code == 422 and "choose a severity (1-3), not none" in saved.text
        assert store.labels("safety", "tox-1") == []
