"""The review UI as one FastAPI router under ``/review``: pages plus the JSON API.

Two ways to serve it, both one process per embedded ClickHouse directory:
- ``lookout review serve``: :func:`create_review_app` run by uvicorn (no agent holds the directory, or an
  ``http://`` ClickHouse);
- inside ``lookout run`` with ``review.serve_ui``: :func:`review_router` passed to ``agent.web.build_app``
  next to ``/metrics``, sharing the agent's ClickHouse client.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse

from agent.config import Settings
from agent.errors import ConfigError, StorageBusyError
from agent.review.api import api_router
from agent.review.gold import load_gold, read_gold_file
from agent.review.pages import page_router
from agent.review.rules import load_rules
from agent.review.security import Csrf
from agent.review.store import ReviewStore
from agent.storage.client import Client

PREFIX = "/review"


def open_store(settings: Settings, client: Client) -> ReviewStore:
    """A store over ``client`` with the configured rules, lease, detector thresholds and gold items (loaded)."""
    review = settings.review
    rules = load_rules(review.rules)
    store = ReviewStore(
        client, settings.clickhouse.database, rules, lease_s=review.lease_s,
        thresholds=settings.detectors.thresholds, gold_share=review.gold_share if review.gold else 0.0,
    )  # fmt: skip
    if review.gold is not None:
        load_gold(client, settings.clickhouse.database, read_gold_file(review.gold, rules), store.now())
    return store


def agent_router(settings: Settings, client: Client) -> APIRouter:
    """The review router for ``lookout run`` (``review.serve_ui``), over the agent's own client."""
    if settings.metrics.port == 0:
        raise ConfigError("review.serve_ui needs the agent's web endpoint; set metrics.port to a port, not 0")
    return review_router(open_store(settings, client), settings.review.secure_cookie)


def review_router(store: ReviewStore, secure_cookie: bool = False, csrf: Csrf | None = None) -> APIRouter:
    """Pages and ``/api/v1`` under ``/review``; include it in any FastAPI app."""
    router = APIRouter(prefix=PREFIX)
    router.include_router(page_router(store, csrf or Csrf(), secure_cookie))
    router.include_router(api_router(store))
    return router


def create_review_app(store: ReviewStore, secure_cookie: bool = False) -> FastAPI:
    """A standalone app: the review router, ``/`` redirecting to it, and ``/healthz``."""
    app = FastAPI(title="lookout review", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(review_router(store, secure_cookie))

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=303)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def serve(settings: Settings, host: str, port: int) -> None:
    """Run the review UI in the foreground until interrupted (``lookout review serve``)."""
    import uvicorn

    from agent.storage.database import open_storage

    try:
        client = open_storage(settings)
    except StorageBusyError as exc:
        raise StorageBusyError(
            f"{exc}; to label while the agent runs, set LOOKOUT_REVIEW__SERVE_UI=true and open /review/ on "
            "the agent's metrics port"
        ) from None
    try:
        app = create_review_app(open_store(settings, client), settings.review.secure_cookie)
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        client.close()
