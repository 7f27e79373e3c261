"""Access: every route with data needs a token; tokens are stored hashed; secrets never reach logs or output."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from conftest import AgentEnv, record
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute

from agent.config import ClickHouseSettings
from agent.metrics import Health
from agent.review.app import create_review_app, review_router
from agent.review.store import ReviewStore, token_hash
from agent.review.testing import FLAGGED_TO_ONE_QUEUE, scored_sample, seed
from agent.storage import migrations
from agent.storage.client import connect
from agent.web import build_app

DB = "lookout"
SECRET_TEXT = "the-confidential-response-text"  # noqa: S105  # record text, not a password

PUBLIC = {
    ("GET", "/"),  # a redirect to /review/
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),  # counters, gauges and topic names; no record content
    ("GET", "/review/login"),
    ("POST", "/review/login"),
    ("POST", "/review/logout"),
    ("GET", "/review/static/{name}"),  # review.css and review.js only
}
"""Routes that answer without a token: probes, metrics, the login form and the UI's own static files."""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ReviewStore]:
    """A migrated chDB database with flagged items in ``safety`` holding :data:`SECRET_TEXT`."""
    client = connect(ClickHouseSettings(dsn=f"chdb://{tmp_path / 'data'}"))
    migrations.migrate(client, DB)
    seed(client, DB, [scored_sample(f"r-{i}", response=f"{SECRET_TEXT} {i}") for i in range(3)])
    yield ReviewStore(client, DB, FLAGGED_TO_ONE_QUEUE)
    client.close()


def _apps(store: ReviewStore) -> list[FastAPI]:
    """The standalone review app and the agent's web app with the review router mounted (``review.serve_ui``)."""
    return [create_review_app(store), build_app(Health(), [review_router(store)])]


def _walk(routes: Sequence[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, full path) of every route; FastAPI 0.165 keeps included routers nested (``original_router``)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield from ((m, prefix + route.path) for m in route.methods or () if m != "HEAD")
        elif hasattr(route, "original_router"):
            yield from _walk(route.original_router.routes, prefix + getattr(route, "include_context").prefix)  # noqa: B009
        else:
            raise AssertionError(f"unexpected route type {type(route).__name__}: classify it in this test")


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    return sorted(set(_walk(app.routes)))


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path).replace("/static/x", "/static/review.css")


class TestEveryRouteNeedsAToken:
    """An enumeration of every route: without a valid token, the API answers 401 and pages go to the login form."""

    @pytest.mark.parametrize("credentials", ["none", "wrong-bearer", "wrong-cookie"])
    def test_no_data_without_a_valid_token(self, store: ReviewStore, credentials: str) -> None:
        """Each non-public route refuses; no response body carries stored record text."""
        headers = {"Authorization": "Bearer lk_wrong"} if credentials == "wrong-bearer" else {}
        cookies = {"lookout_review": "lk_wrong"} if credentials == "wrong-cookie" else {}
        checked = 0
        for app in _apps(store):
            http = TestClient(app, base_url="http://testserver.local", cookies=cookies, follow_redirects=False)
            for method, path in _routes(app):
                response = http.request(method, _fill(path), headers=headers, json={}, data=None)
                assert SECRET_TEXT not in response.text, (method, path)
                if (method, path) in PUBLIC:
                    continue
                checked += 1
                if path.startswith("/review/api/"):
                    assert response.status_code == 401, (method, path, response.status_code)
                else:
                    assert (response.status_code, response.headers.get("location")) == (303, "/review/login"), (
                        method,
                        path,
                        response.status_code,
                    )
        assert checked >= 2 * 12, "the enumeration should reach every page and API route of both apps"

    def test_every_route_is_classified(self, store: ReviewStore) -> None:
        """A new route is either in PUBLIC or refused above: the list of public routes is exactly this one."""
        seen = {route for app in _apps(store) for route in _routes(app)}
        assert seen >= PUBLIC
        assert {r for r in seen if r[1].startswith("/review/api/")} == {
            ("GET", "/review/api/v1/queues"),
            ("POST", "/review/api/v1/queues/{queue}/next"),
            ("POST", "/review/api/v1/claims"),
            ("POST", "/review/api/v1/claims/{claim_id}/release"),
            ("POST", "/review/api/v1/labels"),
            ("GET", "/review/api/v1/items/{queue}/{record_id:path}"),
        }

    def test_a_valid_token_opens_the_api_and_static_files_hold_no_data(self, store: ReviewStore) -> None:
        """The same enumeration is not vacuous: a real token reads the items; static files are the UI's own."""
        token = store.add_annotator("ann")
        http = TestClient(create_review_app(store), base_url="http://testserver.local")
        item = http.get("/review/api/v1/items/safety/r-0", headers={"Authorization": f"Bearer {token}"})
        assert item.status_code == 200 and SECRET_TEXT in item.text
        assert http.get("/review/static/../store.py").status_code == 404
        assert http.get("/review/static/review.js").status_code == 200


class TestTokensAtRest:
    """Annotator tokens are stored only as their SHA-256."""

    def test_token_is_not_stored_in_clear(self, store: ReviewStore) -> None:
        """No column of any lookout table holds the token; the annotator row holds its hash."""
        token = store.add_annotator("ann")
        rows = store.client.query("SELECT name, token_sha256 FROM lookout.v_annotators").result_rows
        assert rows == [("ann", token_hash(token))]
        tables = [r[0] for r in store.client.query("SHOW TABLES FROM lookout").result_rows]
        for table in tables:
            dump = store.client.query(f"SELECT * FROM lookout.{table}").result_rows  # noqa: S608  # names from SHOW TABLES
            assert token not in repr(dump), table
        assert store.authenticate(token) is not None
        assert store.authenticate(token_hash(token)) is None, "the stored hash must not work as a token"


class TestSecretsNeverPrinted:
    """Passwords set through the environment appear neither in logs nor in ``lookout config``."""

    SECRETS: ClassVar[dict[str, Any]] = {
        "LOOKOUT_KAFKA__SASL_PASSWORD": "kafka-s3cret-pw",
        "LOOKOUT_KAFKA__SSL_PASSWORD": "keyfile-s3cret-pw",
        "LOOKOUT_CLICKHOUSE__PASSWORD": "ch-s3cret-pw",
        "LOOKOUT_LABELSTUDIO__TOKEN": "ls-s3cret-token",
        "LOOKOUT_GRAFANA__CLICKHOUSE_PASSWORD": "grafana-s3cret-pw",
    }

    def test_agent_debug_logs_and_config_output_mask_secrets(self, agent_env: AgentEnv) -> None:
        """A full ``lookout run`` at debug level, JSON logs, and ``lookout config``: no secret value anywhere."""
        agent_env.topic.produce_records([record(i) for i in range(5)])
        done = agent_env.run(
            "run", "--exit-when-idle", "3", LOOKOUT_LOG__LEVEL="debug", LOOKOUT_LOG__FORMAT="json",
            LOOKOUT_DETECTORS__TOXICITY_BACKEND="lexical", **self.SECRETS,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        assert "batch committed" in done.stderr, "debug logging should be on"
        shown = agent_env.run("config", **self.SECRETS, LOOKOUT_CLICKHOUSE__DSN="http://u:dsn-s3cret-pw@ch:8123")
        assert shown.returncode == 0, shown.stderr
        assert "http://u:***@ch:8123" in shown.stdout and "**********" in shown.stdout
        for secret in [*self.SECRETS.values(), "dsn-s3cret-pw"]:
            assert secret not in done.stdout + done.stderr
            assert secret not in shown.stdout + shown.stderr
