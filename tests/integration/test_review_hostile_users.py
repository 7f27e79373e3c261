"""Hostile users of the review UI and API (issue 25, findings 3 and 4): sessions, sign-in limits, claims, ids.

Each test here failed on the code the security probe ran against: the cookie held the API token (sign-out did
not sign out, the cookie worked as a Bearer token, a planted value was adopted), sign-in had no limit, re-adding
a name silently revoked its token, a 422 echoed the whole input, the API stored labels around other people's
claims, and ids holding ``/`` were 404.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any
from urllib.parse import quote

import pytest
from conftest import csrf_of
from fastapi.testclient import TestClient

from agent.review.app import create_review_app
from agent.review.security import LoginLimiter
from agent.review.store import Conflict, ReviewStore, token_hash
from agent.review.testing import FLAGGED_TO_ONE_QUEUE, scored_sample, seed

DB = "lookout"
SLASH_ID = "lookout-records/3/1207"  # what an id-less record is called: topic/partition/offset


@pytest.fixture
def store(client: Any) -> ReviewStore:
    """Three flagged items in ``safety``, one of them with a ``/`` in its id."""
    samples = [scored_sample("r-0"), scored_sample("r-1"), scored_sample(SLASH_ID)]
    seed(client, DB, samples)
    return ReviewStore(client, DB, FLAGGED_TO_ONE_QUEUE)


def app_client(store: ReviewStore, secure: bool = False) -> TestClient:
    scheme = "https" if secure else "http"
    return TestClient(create_review_app(store, secure_cookie=secure), base_url=f"{scheme}://testserver.local")


def sign_in(http: TestClient, token: str) -> Any:
    """Post the login form (with its CSRF pair); returns the response (303 on success)."""
    page = http.get("/review/login")
    return http.post("/review/login", data={"csrf": csrf_of(page.text), "token": token}, follow_redirects=False)


def session_cookie(response: Any, name: str = "lookout_review") -> str:
    match = re.search(rf"(?:^|, ){re.escape(name)}=([^;]+)", response.headers.get("set-cookie", ""))
    assert match is not None, response.headers.get("set-cookie")
    return match.group(1)


def signed_in(store: ReviewStore, cookie: str, name: str = "lookout_review", secure: bool = False) -> bool:
    """Whether a fresh browser holding only this cookie sees the overview."""
    fresh = app_client(store, secure)
    fresh.cookies.set(name, cookie)
    return fresh.get("/review/", follow_redirects=False).status_code == 200


class TestSessions:
    """The cookie holds a server-side session id, rotated at sign-in and revoked at sign-out."""

    def test_cookie_never_holds_the_token_and_a_token_cookie_is_refused(self, store: ReviewStore) -> None:
        """The session cookie is not the API token; the token planted as the cookie opens nothing."""
        token = store.add_annotator("alice")
        http = app_client(store)
        cookie = session_cookie(sign_in(http, token))
        assert cookie != token and token_hash(token) not in cookie
        assert signed_in(store, cookie)
        assert not signed_in(store, token)
        as_bearer = http.get("/review/api/v1/queues", headers={"Authorization": f"Bearer {cookie}"})
        assert as_bearer.status_code == 401

    def test_sign_out_revokes_the_session(self, store: ReviewStore) -> None:
        """After sign-out the old cookie value no longer opens any page."""
        http = app_client(store)
        cookie = session_cookie(sign_in(http, store.add_annotator("alice")))
        csrf = csrf_of(http.get("/review/").text)
        out = http.post("/review/logout", data={"csrf": csrf}, follow_redirects=False)
        assert out.status_code == 303
        assert not signed_in(store, cookie)
        assert store.client.query(
            "SELECT revoked FROM lookout.v_review_sessions WHERE session_sha256 = {h:String}",
            parameters={"h": token_hash(cookie)},
        ).result_rows == [(1,)]

    def test_sign_in_rotates_and_never_adopts_a_planted_cookie(self, store: ReviewStore) -> None:
        """A session id planted in the browser (the attacker's own) is ended by the victim's sign-in, not kept."""
        attacker = app_client(store)
        planted = session_cookie(sign_in(attacker, store.add_annotator("mallory")))
        victim = app_client(store)
        victim.cookies.set("lookout_review", planted)
        fresh = session_cookie(sign_in(victim, store.add_annotator("alice")))
        assert fresh != planted
        assert not signed_in(store, planted)
        assert "alice" in victim.get("/review/").text

    def test_reissue_ends_the_old_tokens_sessions(self, store: ReviewStore) -> None:
        """A re-issued token ends every session opened with the old one."""
        cookie = session_cookie(sign_in(app_client(store), store.add_annotator("alice")))
        assert signed_in(store, cookie)
        store.add_annotator("alice", reissue=True)
        assert not signed_in(store, cookie)

    def test_secure_cookies_are_host_prefixed(self, store: ReviewStore) -> None:
        """With secure_cookie, both cookies are __Host- prefixed: Secure, path /, no Domain."""
        http = app_client(store, secure=True)
        login_page = http.get("/review/login")
        assert login_page.headers["set-cookie"].startswith("__Host-lookout_login_csrf=")
        response = sign_in(http, store.add_annotator("alice"))
        header = response.headers["set-cookie"]
        assert "__Host-lookout_review=" in header and "Secure" in header and "Path=/;" in header
        assert "Domain" not in header
        cookie = session_cookie(response, "__Host-lookout_review")
        assert signed_in(store, cookie, "__Host-lookout_review", secure=True)
        assert not signed_in(store, cookie, "lookout_review", secure=True), "the unprefixed name is not read"


class TestSignInLimit:
    """Failed sign-ins are limited per client address."""

    def test_eleventh_attempt_is_refused_even_with_the_right_token(self, store: ReviewStore) -> None:
        """Ten wrong tokens, then 429 with Retry-After, and the right token is not even checked."""
        token = store.add_annotator("alice")
        http = app_client(store)
        for _ in range(10):
            assert sign_in(http, "lk_guess").headers["location"] == "/review/login?error=1"
        refused = sign_in(http, token)
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 300
        assert "lookout_review=" not in refused.headers.get("set-cookie", "")

    def test_limiter_window_and_success(self) -> None:
        """Failures age out after the window; a success clears them; clients are counted apart."""
        now = [0.0]
        limiter = LoginLimiter(max_failures=3, window_s=60, clock=lambda: now[0])
        for _ in range(3):
            limiter.failed("a")
        assert limiter.retry_after("a") == 60 and limiter.retry_after("b") == 0
        now[0] = 59.5
        assert limiter.retry_after("a") == 1
        now[0] = 60.0
        assert limiter.retry_after("a") == 0
        limiter.failed("a")
        limiter.succeeded("a")
        assert limiter.retry_after("a") == 0

    def test_tracked_clients_are_bounded(self) -> None:
        """A flood of addresses does not grow memory without bound."""
        limiter = LoginLimiter(max_failures=1, max_clients=100)
        for i in range(1000):
            limiter.failed(f"10.0.{i // 256}.{i % 256}")
        assert len(limiter._failures) == 100


class TestAnnotatorNames:
    """Names are unique case-insensitively; re-adding one needs --reissue."""

    def test_admin_page_refuses_an_existing_name(self, store: ReviewStore) -> None:
        """Adding ``ALICE`` when ``alice`` exists is a 422 that leaves alice's token working."""
        alice = store.add_annotator("alice")
        http = app_client(store)
        sign_in(http, store.add_annotator("root", is_admin=True))
        csrf = csrf_of(http.get("/review/admin").text)
        again = http.post("/review/admin/annotators", data={"csrf": csrf, "name": "ALICE"})
        assert again.status_code == 422 and "already exists" in again.text
        assert store.authenticate(alice) is not None
        reissued = http.post("/review/admin/annotators", data={"csrf": csrf, "name": "ALICE", "reissue": "1"})
        assert reissued.status_code == 200
        assert store.authenticate(alice) is None

    def test_store_refuses_duplicates(self, store: ReviewStore) -> None:
        """The store itself refuses, whatever the caller."""
        store.add_annotator("Bob")
        with pytest.raises(Conflict):
            store.add_annotator("bob")


class TestValidationErrors:
    """A 422 says where and why, never echoes the input."""

    def test_large_note_is_not_echoed(self, store: ReviewStore) -> None:
        """A 5 MB note is refused in a short answer that does not contain it."""
        auth = {"Authorization": f"Bearer {store.add_annotator('bot')}"}
        note = "N" * 5_000_000
        body = {"label_id": "x", "queue": "safety", "record_id": "r-0", "note": note}
        response = app_client(store).post("/review/api/v1/labels", headers=auth, json=body)
        assert response.status_code == 422
        assert len(response.content) < 2_000 and "NNNNNNNNNN" not in response.text
        assert response.json()["detail"][0]["loc"] == ["body", "note"]

    def test_long_name_is_not_echoed(self, store: ReviewStore) -> None:
        """A bad annotator name is named, cut short."""
        with pytest.raises(Exception, match="characters") as err:
            store.add_annotator("<" * 100_000)
        assert len(str(err.value)) < 300


class TestApiClaims:
    """API labels need the caller's own claim on the item; admins may override, and it is recorded."""

    @staticmethod
    def label(item: str, claim_id: str = "", **extra: Any) -> dict[str, Any]:
        return {"label_id": f"l-{item}-{claim_id}-{extra}", "queue": "safety", "record_id": item,
                "claim_id": claim_id, "verdicts": {"toxicity": "confirm"}, "severity": 1, **extra}  # fmt: skip

    def test_label_without_a_claim_is_refused(self, store: ReviewStore) -> None:
        """No claim_id: 403, nothing stored."""
        auth = {"Authorization": f"Bearer {store.add_annotator('bot')}"}
        response = app_client(store).post("/review/api/v1/labels", headers=auth, json=self.label("r-0"))
        assert response.status_code == 403 and "claim it first" in response.json()["detail"]
        assert store.labels("safety", "r-0") == []

    def test_label_with_someone_elses_claim_is_refused(self, store: ReviewStore) -> None:
        """Bob cannot label around Alice's claim by sending her claim_id."""
        http = app_client(store)
        alice = {"Authorization": f"Bearer {store.add_annotator('alice')}"}
        bob = {"Authorization": f"Bearer {store.add_annotator('bob')}"}
        held = http.post("/review/api/v1/claims", headers=alice, json={"queue": "safety", "record_id": "r-1"})
        claim_id = held.json()["claim"]["claim_id"]
        response = http.post("/review/api/v1/labels", headers=bob, json=self.label("r-1", claim_id))
        assert response.status_code == 403
        assert store.labels("safety", "r-1") == []
        own_claim_other_item = http.post("/review/api/v1/labels", headers=alice, json=self.label("r-0", claim_id))
        assert own_claim_other_item.status_code == 403
        ok = http.post("/review/api/v1/labels", headers=alice, json=self.label("r-1", claim_id))
        assert ok.status_code == 201 and ok.json()["label"]["source"] == "api"

    def test_admin_override_is_recorded_and_only_for_admins(self, store: ReviewStore) -> None:
        """override=true: 403 for an annotator, 201 for an admin with source api-override."""
        http = app_client(store)
        bot = {"Authorization": f"Bearer {store.add_annotator('bot')}"}
        root = {"Authorization": f"Bearer {store.add_annotator('root', is_admin=True)}"}
        assert http.post("/review/api/v1/labels", headers=bot, json=self.label("r-0", override=True)).status_code == 403
        done = http.post("/review/api/v1/labels", headers=root, json=self.label("r-0", override=True))
        assert done.status_code == 201
        assert [(lab.annotator, lab.source) for lab in store.labels("safety", "r-0")] == [("root", "api-override")]


class TestIdsWithSlashes:
    """An id holding ``/`` works on the item route, raw or path-encoded."""

    @pytest.mark.parametrize("path_id", [SLASH_ID, quote(SLASH_ID, safe="")])
    def test_item_route(self, store: ReviewStore, path_id: str) -> None:
        auth = {"Authorization": f"Bearer {store.add_annotator('bot')}"}
        response = app_client(store).get(f"/review/api/v1/items/safety/{path_id}", headers=auth)
        assert response.status_code == 200, response.text
        assert response.json()["item"]["record_id"] == SLASH_ID

    def test_claim_and_label_through_the_api(self, store: ReviewStore) -> None:
        """Claim by body, label by body: the id travels as JSON and round-trips."""
        http = app_client(store)
        auth = {"Authorization": f"Bearer {store.add_annotator('bot')}"}
        held = http.post("/review/api/v1/claims", headers=auth, json={"queue": "safety", "record_id": SLASH_ID})
        assert held.status_code == 201
        body = TestApiClaims.label(SLASH_ID, held.json()["claim"]["claim_id"])
        assert http.post("/review/api/v1/labels", headers=auth, json=body).status_code == 201
        assert [lab.record_id for lab in store.labels("safety", SLASH_ID)] == [SLASH_ID]


class TestInvisibleCharacters:
    """Bidi overrides and invisible characters in stored text are shown as escapes on the item page (finding 7)."""

    def test_item_page_shows_bidi_and_zero_width_characters(self, client: Any) -> None:
        r"""``gpt\u202e4o`` and ``invoice\u202efdp.exe`` appear escaped; no raw override reaches the HTML."""
        base = scored_sample("r-bidi", response="see invoice\u202efdp.exe", prompt="pay\u200bpal \u2066login\u2069")
        hostile = dataclasses.replace(base, sample=dataclasses.replace(base.sample, model="gpt\u202e4o"))
        seed(client, DB, [hostile])
        store = ReviewStore(client, DB, FLAGGED_TO_ONE_QUEUE)
        http = app_client(store)
        sign_in(http, store.add_annotator("alice"))
        page = http.post("/review/queues/safety/next", data={"csrf": csrf_of(http.get("/review/").text)})
        assert page.status_code == 200 and "r-bidi" in page.text
        for raw in ("\u202e", "\u200b", "\u2066", "\u2069"):
            assert raw not in page.text, repr(raw)
        assert "<bdi>gpt\\u202e4o</bdi>" in page.text
        assert "invoice\\u202efdp.exe" in page.text and "pay\\u200bpal \\u2066login\\u2069" in page.text
        api = http.get(
            "/review/api/v1/items/safety/r-bidi", headers={"Authorization": f"Bearer {store.add_annotator('bot')}"}
        )
        assert api.json()["item"]["model"] == "gpt\u202e4o", "the JSON API stays exact"
