"""Review UI and JSON API: auth, CSRF, CSP, and headless Chromium against hostile model output and the keyboard."""

from __future__ import annotations

import dataclasses
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from conftest import csrf_of
from fastapi.testclient import TestClient

from agent.review.app import create_review_app
from agent.review.security import CONTENT_SECURITY_POLICY
from agent.review.store import ReviewStore, token_hash
from agent.review.testing import FLAGGED_TO_ONE_QUEUE, scored_sample, seed
from agent.types import ScoredSample

DB = "lookout"
CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="headless browser tests need /usr/bin/chromium")

HOSTILE = (
    '<script>window.__pwned = "script"; alert("script")</script>',
    "<img src=x onerror=\"window.__pwned='img'; alert('img')\">",
    "<a id=evil href=\"javascript:window.__pwned='link'\">click me</a>",
    '[click me](javascript:window.__pwned="md") ![x](javascript:window.__pwned="mdimg") <javascript:alert(1)>',
    "</pre><svg onload=\"window.__pwned='svg'\"></svg><pre>",
    '<iframe srcdoc="<script>parent.__pwned=1</script>"></iframe>',
    '"><script>alert(1)</script><input autofocus onfocus="window.__pwned=\'focus\'">',
    "{{ 7*7 }} {% if true %}jinja{% endif %} ${7*7}",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)"><style>body{display:none}</style>',
)


@pytest.fixture
def store(client: Any) -> ReviewStore:
    """Three flagged items in ``safety``."""
    seed(client, DB, [scored_sample(f"r-{i}", response=f"response number {i}") for i in range(3)])
    return ReviewStore(client, DB, FLAGGED_TO_ONE_QUEUE)


@pytest.fixture
def http(store: ReviewStore) -> TestClient:
    """An in-process HTTP client for the standalone app."""
    return TestClient(create_review_app(store), base_url="http://testserver.local")


def login(http: TestClient, token: str) -> str:
    """Sign in through the form; returns the overview's CSRF token."""
    page = http.get("/review/login")
    response = http.post("/review/login", data={"csrf": csrf_of(page.text), "token": token}, follow_redirects=False)
    assert response.status_code == 303
    return csrf_of(http.get("/review/").text)


class TestSecurity:
    """Every route needs a token; forms need CSRF; responses carry a strict CSP."""

    def test_pages_redirect_to_login_and_api_needs_bearer(self, http: TestClient) -> None:
        """No cookie: pages go to the login form; no bearer: the API answers 401, with the CSP header."""
        page = http.get("/review/", follow_redirects=False)
        assert (page.status_code, page.headers["location"]) == (303, "/review/login")
        api = http.get("/review/api/v1/queues")
        assert api.status_code == 401
        assert api.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY

    def test_login_cookie_is_httponly_strict_and_not_accepted_by_api(
        self, http: TestClient, store: ReviewStore
    ) -> None:
        """The session cookie is HttpOnly and SameSite=Strict, and the API ignores it."""
        token = store.add_annotator("alice")
        page = http.get("/review/login")
        response = http.post("/review/login", data={"csrf": csrf_of(page.text), "token": token}, follow_redirects=False)
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/review/" in cookie
        assert http.get("/review/api/v1/queues").status_code == 401

    def test_bad_token_and_missing_login_csrf(self, http: TestClient, store: ReviewStore) -> None:
        """A wrong token returns to the form with an error; a login post without its CSRF pair is refused."""
        page = http.get("/review/login")
        bad = http.post("/review/login", data={"csrf": csrf_of(page.text), "token": "lk_nope"}, follow_redirects=False)
        assert bad.headers["location"] == "/review/login?error=1"
        http.cookies.clear()
        forged = http.post("/review/login", data={"csrf": "x", "token": store.add_annotator("a")})
        assert forged.status_code == 403

    def test_forms_need_the_session_csrf_token(self, http: TestClient, store: ReviewStore) -> None:
        """Posting a form without or with a wrong CSRF token is refused and claims nothing."""
        csrf = login(http, store.add_annotator("alice"))
        wrong = csrf[:-1] + ("1" if csrf.endswith("0") else "0")  # always differs from the real one
        assert http.post("/review/queues/safety/next", data={}).status_code == 403
        assert http.post("/review/queues/safety/next", data={"csrf": wrong}).status_code == 403
        assert store.overview()[0].claimed == 0
        ok = http.post("/review/queues/safety/next", data={"csrf": csrf}, follow_redirects=False)
        assert ok.status_code == 303 and ok.headers["location"].startswith("/review/claims/")

    def test_admin_page_only_for_admins_and_token_shown_once(self, http: TestClient, store: ReviewStore) -> None:
        """A non-admin gets 403; an admin adds an annotator and sees the token once, stored as its hash."""
        login(http, store.add_annotator("bob"))
        assert http.get("/review/admin").status_code == 403
        http.cookies.clear()
        login(http, store.add_annotator("root", is_admin=True))
        csrf = csrf_of(http.get("/review/admin").text)
        created = http.post("/review/admin/annotators", data={"csrf": csrf, "name": "carol"})
        token = re.search(r'<pre class="token">([^<]+)</pre>', created.text)
        assert token is not None
        assert store.authenticate(token.group(1)) is not None
        assert token_hash(token.group(1)) != token.group(1)
        assert token.group(1) not in http.get("/review/admin").text


class TestApi:
    """The JSON API: next item, claim, label (idempotent), release."""

    def test_next_label_repeat_and_empty(self, http: TestClient, store: ReviewStore) -> None:
        """Label each item once via the API; a repeated label_id is 200 applied=false; an empty queue is 204."""
        auth = {"Authorization": f"Bearer {store.add_annotator('bot')}"}
        for i in range(3):
            nxt = http.post("/review/api/v1/queues/safety/next", headers=auth)
            assert nxt.status_code == 200
            body = nxt.json()
            assert body["item"]["response"] == f"response number {body['item']['record_id'][-1]}"
            label = {
                "label_id": f"api-{i}", "queue": "safety", "record_id": body["claim"]["record_id"],
                "claim_id": body["claim"]["claim_id"], "verdicts": {"toxicity": "reject"}, "severity": 1,
            }  # fmt: skip
            first = http.post("/review/api/v1/labels", headers=auth, json=label)
            again = http.post("/review/api/v1/labels", headers=auth, json=label)
            assert (first.status_code, first.json()["applied"]) == (201, True)
            assert (again.status_code, again.json()["applied"]) == (200, False)
        assert http.post("/review/api/v1/queues/safety/next", headers=auth).status_code == 204
        queues = http.get("/review/api/v1/queues", headers=auth).json()
        assert [(q["queue"], q["backlog"], q["labeled"]) for q in queues] == [("safety", 0, 3)]

    def test_claim_conflict_and_release(self, http: TestClient, store: ReviewStore) -> None:
        """A held item is 409 for others until released."""
        alice = {"Authorization": f"Bearer {store.add_annotator('alice')}"}
        bob = {"Authorization": f"Bearer {store.add_annotator('bob')}"}
        claim = http.post("/review/api/v1/claims", headers=alice, json={"queue": "safety", "record_id": "r-1"})
        assert claim.status_code == 201
        assert (
            http.post("/review/api/v1/claims", headers=bob, json={"queue": "safety", "record_id": "r-1"}).status_code
            == 409
        )
        claim_id = claim.json()["claim"]["claim_id"]
        assert http.post(f"/review/api/v1/claims/{claim_id}/release", headers=alice).status_code == 204
        assert (
            http.post("/review/api/v1/claims", headers=bob, json={"queue": "safety", "record_id": "r-1"}).status_code
            == 201
        )

    def test_invalid_label_is_422(self, http: TestClient, store: ReviewStore) -> None:
        """A verdict other than confirm/reject is refused with the CSP header still set."""
        auth = {"Authorization": f"Bearer {store.add_annotator('bot')}"}
        bad = {"label_id": "x", "queue": "safety", "record_id": "r-0", "verdicts": {"toxicity": "maybe"}}
        response = http.post("/review/api/v1/labels", headers=auth, json=bad)
        assert response.status_code == 422
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def in_session(
    record_id: str, minute: int, session: str = "conv-1", tenant: str = "acme", flagged: bool = False,
    prompt: str = "a prompt", response: str = "a response",
) -> ScoredSample:  # fmt: skip
    """A record of ``session`` at 10:``minute`` (the routed item is flagged, the other turns are not)."""
    base = scored_sample(record_id, response, prompt, flags=("toxicity",) if flagged else ())
    sample = dataclasses.replace(
        base.sample, ts=datetime(2026, 11, 25, 10, minute, tzinfo=UTC), session_id=session, tenant=tenant
    )
    return dataclasses.replace(base, sample=sample)


class TestSessionTurns:
    """The item page shows the earlier turns of the item's session, above it, escaped like the item itself."""

    def page(self, client: Any, records: list[ScoredSample]) -> str:
        seed(client, DB, records)
        store = ReviewStore(client, DB, FLAGGED_TO_ONE_QUEUE)
        http = TestClient(create_review_app(store), base_url="http://testserver.local")
        csrf = login(http, store.add_annotator("alice"))
        page = http.post("/review/queues/safety/next", data={"csrf": csrf})
        assert page.status_code == 200 and "item-0" in page.text
        return page.text

    def test_earlier_turns_oldest_first_escaped_and_shortened(self, client: Any) -> None:
        """Earlier turns of the same (tenant, session_id) only, oldest first; hostile text inert; long text cut."""
        records = [
            in_session("turn-a", 1, prompt="first question", response="y" * 600),
            in_session("turn-b", 2, prompt=HOSTILE[0], response="pay\u202epal"),
            in_session("turn-c", 3, prompt="third question", response=HOSTILE[1]),
            in_session("item-0", 4, flagged=True, prompt="the flagged prompt"),
            in_session("later", 5, prompt="asked after the item"),
            in_session("other-tenant", 2, tenant="globex", prompt="another tenant's turn"),
            in_session("other-session", 2, session="conv-2", prompt="another conversation"),
        ]
        html = self.page(client, records)
        section = html[html.index('<details class="session"') : html.index("</details>")]
        assert "Earlier in this session (3)" in section
        assert [m for m in re.findall(r"turn-[abc]", section)] == ["turn-a", "turn-b", "turn-c"]
        assert html.index('id="session"') < html.index('id="prompt"')
        for absent in ("asked after the item", "another tenant", "another conversation", "<script>", "<img"):
            assert absent not in html
        assert "&lt;script&gt;window.__pwned" in section and "&lt;img src=x onerror=" in section
        assert "pay\\u202epal" in section and "\u202e" not in html  # shown as an escape, never raw
        assert "y" * 500 + "…" in section and "y" * 501 not in section

    def test_at_most_the_latest_twenty(self, client: Any) -> None:
        """A long session shows its 20 turns before the item, not the older ones."""
        records = [in_session(f"turn-{k:02d}", k, prompt=f"question {k:02d}") for k in range(25)]
        html = self.page(client, [*records, in_session("item-0", 30, flagged=True)])
        assert "Earlier in this session (20, the latest)" in html
        assert re.findall(r"question (\d\d)", html) == [f"{k:02d}" for k in range(5, 25)]

    def test_no_session_no_section(self, client: Any) -> None:
        """An item without a session_id shows no session section."""
        html = self.page(client, [in_session("item-0", 4, session="", flagged=True), in_session("a", 1, session="")])
        assert 'id="session"' not in html


class Served:
    """The standalone app on a free loopback port, in a thread."""

    def __init__(self, store: ReviewStore) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(create_review_app(store), log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=lambda: self.server.run(sockets=[sock]), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (the Debian package), shared by this module's browser tests."""
    if not CHROMIUM.exists():
        pytest.skip("headless browser tests need /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


def browser_login(page: Any, url: str, token: str) -> None:
    page.goto(f"{url}/review/login")
    page.fill("#token", token)
    with page.expect_navigation():
        page.keyboard.press("Enter")


@needs_chromium
class TestBrowser:
    """Real Chromium: hostile output stays text; the keyboard labels items end to end."""

    def test_hostile_output_never_runs(self, browser: Any, client: Any) -> None:
        """Script tags, event handlers, javascript: links and markdown tricks render as text; nothing executes."""
        text = "\n".join(HOSTILE)
        evil = scored_sample(
            "evil", prompt=text, response=text, context=[HOSTILE[1]], flags=("toxicity", "hallucination")
        )
        seed(client, DB, [evil])
        store = ReviewStore(client, DB, FLAGGED_TO_ONE_QUEUE)
        served = Served(store)
        context = browser.new_context()
        page = context.new_page()
        dialogs: list[str] = []

        def on_dialog(dialog: Any) -> None:
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        try:
            browser_login(page, served.url, store.add_annotator("alice"))
            with page.expect_navigation():
                page.keyboard.press("1")
            assert "/review/claims/" in page.url
            page.hover("#response")
            page.click("#response")
            page.keyboard.press("Tab")
            page.wait_for_timeout(200)
            assert page.evaluate("window.__pwned") is None
            assert page.evaluate("parent.__pwned") is None
            assert dialogs == []
            assert page.evaluate("document.scripts.length") == 1  # review.js only
            injected = "main img, main svg, main iframe, main input[autofocus], main a#evil, a[href^='javascript']"
            assert page.locator(injected).count() == 0
            assert page.locator("meta[http-equiv]").count() == 0
            assert page.inner_text("#response") == text
            assert page.locator("#response mark").count() > 0  # unsupported terms marked, markup still text
            assert page.inner_text("pre.context") == HOSTILE[1]
            assert page.is_visible("#response")
        finally:
            context.close()
            served.stop()

    def test_annotator_labels_three_items_with_the_keyboard(
        self, browser: Any, store: ReviewStore, client: Any
    ) -> None:
        """Log in with a token, label three items with keys only; the three labels are in ClickHouse."""
        served = Served(store)
        context = browser.new_context()
        page = context.new_page()
        try:
            browser_login(page, served.url, store.add_annotator("alice"))
            assert page.locator("table.queues").inner_text().count("safety") == 1
            with page.expect_navigation():
                page.keyboard.press("1")  # start labeling queue 1
            for _ in range(3):
                assert "/review/claims/" in page.url
                page.keyboard.press("1")  # toxicity: confirm
                page.keyboard.press("]")
                page.keyboard.press("]")  # severity 2
                page.keyboard.press("p")  # preference: corrected
                page.keyboard.press("p")  # preference: original
                with page.expect_navigation():
                    page.keyboard.press("Enter")
            assert "/review/?empty=safety" in page.url
        finally:
            context.close()
            served.stop()
        labels = client.query(
            "SELECT record_id, annotator, verdicts, severity, preference, source FROM lookout.v_review_labels "
            "ORDER BY record_id"
        ).result_rows
        assert [tuple(r) for r in labels] == [
            (f"r-{i}", "alice", {"toxicity": "confirm"}, 2, "original", "ui") for i in range(3)
        ]

    def test_keyboard_verdicts_judge_the_routing_reasons_only(self, browser: Any, client: Any) -> None:
        """`a`/`x` set the routing reason (toxicity), never the flagged relevance; save is blocked until it is whole."""
        flags = ("toxicity", "relevance")
        seed(client, DB, [scored_sample(r, flags=flags, toxicity=0.91, relevance=0.2) for r in ("r-0", "r-1")])
        store = ReviewStore(client, DB, FLAGGED_TO_ONE_QUEUE)
        served = Served(store)
        context = browser.new_context()
        page = context.new_page()
        try:
            browser_login(page, served.url, store.add_annotator("alice"))
            with page.expect_navigation():
                page.keyboard.press("1")
            first = page.url
            assert "toxicity 0.910 — flagged: at or above the 0.5 threshold (high toxicity)" in page.inner_text(
                "#reasons"
            )
            assert not page.is_visible("#other-detectors tr[data-detector=relevance]")  # folded
            page.keyboard.press("Enter")  # no verdict on the reason: blocked
            assert (
                page.inner_text("#form-error")
                == "Give a verdict for the routing reasons: toxicity (a confirms, x rejects)."
            )
            page.keyboard.press("a")
            page.keyboard.press("Enter")  # confirmed harm, severity none: blocked
            page.wait_for_timeout(100)
            assert page.url == first
            assert "toxicity confirmed as harm: choose a severity" in page.inner_text("#form-error")
            assert page.is_visible("#form-error")
            page.keyboard.press("]")  # severity 1
            with page.expect_navigation():
                page.keyboard.press("Enter")
            assert page.url != first and "/review/claims/" in page.url
            page.keyboard.press("x")  # reject the reason only
            page.keyboard.press("3")  # the per-detector keys still work: relevance (third row, folded) confirmed
            assert page.is_visible("#other-detectors tr[data-detector=relevance]")  # the key unfolded it
            with page.expect_navigation():
                page.keyboard.press("Enter")
            assert "/review/?empty=safety" in page.url
        finally:
            context.close()
            served.stop()
        labels = client.query(
            "SELECT record_id, verdicts, severity, verdict_scores, verdict_thresholds, verdict_flagged "
            "FROM lookout.v_review_labels ORDER BY record_id"
        ).result_rows
        assert [(r, v, s, {k: round(x, 3) for k, x in vs.items()}, vt, vf) for r, v, s, vs, vt, vf in labels] == [
            ("r-0", {"toxicity": "confirm"}, 1, {"toxicity": 0.91}, {"toxicity": 0.5}, {"toxicity": 1}),
            (
                "r-1", {"toxicity": "reject", "relevance": "confirm"}, 0, {"toxicity": 0.91, "relevance": 0.2},
                {"toxicity": 0.5, "relevance": 0.26}, {"toxicity": 1, "relevance": 1},
            ),
        ]  # fmt: skip
