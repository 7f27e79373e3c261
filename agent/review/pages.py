"""Server-rendered annotator pages: login, queue overview, labeling, admin. Forms only; JS adds shortcuts.

Model outputs are hostile: templates autoescape everything and render text in ``<pre>`` as plain text (no
markdown, no links), and the CSP forbids inline script (see :mod:`agent.review.security`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from agent.review.rules import DETECTORS
from agent.review.security import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_MAX_AGE_S,
    Csrf,
    SecureRoute,
    set_cookie,
)
from agent.review.spans import unsupported_terms
from agent.review.store import Annotator, LabelInput, Preference, ReviewError, ReviewStore, Verdict

HERE = Path(__file__).parent
STATIC = {"review.js": "text/javascript", "review.css": "text/css"}
SEVERITIES = ("none", "minor", "moderate", "severe")


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["age"] = _age
    return env


def _age(hours: float | None) -> str:
    if hours is None:
        return "-"
    if hours < 1:
        return f"{round(hours * 60)} min"
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} d"


class Pages:
    """The page routes, bound to one store.

    Args:
        store: Queue state.
        csrf: CSRF token maker.
        secure_cookie: Mark cookies ``Secure``.
    """

    def __init__(self, store: ReviewStore, csrf: Csrf, secure_cookie: bool) -> None:
        self.store = store
        self.csrf = csrf
        self.secure_cookie = secure_cookie
        self.env = _env()

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        """Render a template with ``url()`` and the common context."""

        def url(route: str, /, **params: str) -> str:
            return str(request.url_for(route, **params).path)

        html = self.env.get_template(template).render(url=url, **context)
        return HTMLResponse(html, status_code=status)

    def cookie_path(self, request: Request) -> str:
        """Cookies are scoped to the review UI's path."""
        return str(request.url_for("review_overview").path)

    def session(self, request: Request) -> tuple[Annotator, str] | None:
        """The signed-in annotator and their token, from the cookie."""
        token = request.cookies.get(SESSION_COOKIE, "")
        who = self.store.authenticate(token) if token else None
        return (who, token) if who else None

    def to_login(self, request: Request) -> RedirectResponse:
        """Redirect to the login page."""
        return RedirectResponse(request.url_for("review_login").path, status_code=303)

    async def form(self, request: Request, token: str) -> FormData | None:
        """The posted form if its CSRF token is this session's, else None."""
        form = await request.form()
        return form if self.csrf.check_session(token, str(form.get("csrf", ""))) else None

    def forbidden(self, request: Request, why: str) -> HTMLResponse:
        """A 403 page."""
        return self.render(request, "message.html", status=403, title="Forbidden", message=why, who=None)


def page_router(store: ReviewStore, csrf: Csrf, secure_cookie: bool = False) -> APIRouter:
    """Login, overview, labeling and admin pages."""
    pages = Pages(store, csrf, secure_cookie)
    router = APIRouter(route_class=SecureRoute, include_in_schema=False)

    @router.get("/static/{name}", name="review_static")
    def static(name: str) -> Response:
        if name not in STATIC:
            return Response("not found", status_code=404, media_type="text/plain")
        return FileResponse(HERE / "static" / name, media_type=STATIC[name])

    @router.get("/login", name="review_login")
    def login_page(request: Request, error: str = "") -> Response:
        token = csrf.new_login_token()
        response = pages.render(request, "login.html", csrf=token, error=error, who=None)
        set_cookie(response, LOGIN_CSRF_COOKIE, token, pages.cookie_path(request), secure_cookie, 600)
        return response

    @router.post("/login", name="review_login_post")
    async def login(request: Request) -> Response:
        form = await request.form()
        if not csrf.check_login(request.cookies.get(LOGIN_CSRF_COOKIE), str(form.get("csrf", ""))):
            return pages.forbidden(request, "The login form expired; reload the page and sign in again.")
        token = str(form.get("token", "")).strip()
        who = await run_in_threadpool(store.authenticate, token)
        if who is None:
            return RedirectResponse(request.url_for("review_login").path + "?error=1", status_code=303)
        response = RedirectResponse(request.url_for("review_overview").path, status_code=303)
        set_cookie(response, SESSION_COOKIE, token, pages.cookie_path(request), secure_cookie, SESSION_MAX_AGE_S)
        response.delete_cookie(LOGIN_CSRF_COOKIE, path=pages.cookie_path(request), httponly=True, samesite="strict")
        return response

    @router.post("/logout", name="review_logout")
    async def logout(request: Request) -> Response:
        session = await run_in_threadpool(pages.session, request)
        if session is not None and await pages.form(request, session[1]) is None:
            return pages.forbidden(request, "The form expired; reload the page.")
        response = pages.to_login(request)
        response.delete_cookie(SESSION_COOKIE, path=pages.cookie_path(request), httponly=True, samesite="strict")
        return response

    @router.get("/", name="review_overview")
    def overview(request: Request, empty: str = "") -> Response:
        session = pages.session(request)
        if session is None:
            return pages.to_login(request)
        who, token = session
        now = store.now()
        queues = store.overview()
        return pages.render(
            request, "overview.html", who=who, csrf=csrf.for_session(token), now=now, queues=queues,
            empty=empty if any(q.queue == empty for q in queues) else "",
            done_today=store.labeled_by(who.name, now - timedelta(hours=24)),
        )  # fmt: skip

    @router.post("/queues/{queue}/next", name="review_next")
    async def start(request: Request, queue: str) -> Response:
        session = await run_in_threadpool(pages.session, request)
        if session is None:
            return pages.to_login(request)
        if await pages.form(request, session[1]) is None:
            return pages.forbidden(request, "The form expired; reload the page.")
        return await run_in_threadpool(_next, request, queue, session[0].name)

    def _next(request: Request, queue: str, name: str) -> Response:
        claim = store.claim_next(queue, name)
        if claim is None:
            return RedirectResponse(request.url_for("review_overview").path + f"?empty={queue}", status_code=303)
        return RedirectResponse(request.url_for("review_claim", claim_id=claim.claim_id).path, status_code=303)

    @router.get("/claims/{claim_id}", name="review_claim")
    def claim_page(request: Request, claim_id: str) -> Response:
        session = pages.session(request)
        if session is None:
            return pages.to_login(request)
        who, token = session
        try:
            claim = store.get_claim(claim_id, who.name)
            item = store.item(claim.queue, claim.record_id)
        except ReviewError as exc:
            return pages.render(request, "message.html", status=404, title="Not found", message=str(exc), who=who)
        now = store.now()
        backlog = next((q.backlog for q in store.overview() if q.queue == claim.queue), 0)
        detectors = [d for d in DETECTORS if d in item.scores]
        check_support = item.context and ("hallucination" in item.flags or "hallucination" in item.reasons)
        segments = unsupported_terms(item.response, item.context) if check_support else [(item.response, False)]
        return pages.render(
            request, "item.html", who=who, csrf=csrf.for_session(token), claim=claim, item=item,
            detectors=detectors, active=store.is_active(claim), label_id=uuid.uuid4().hex, severities=SEVERITIES,
            backlog=backlog, done_today=store.labeled_by(who.name, now - timedelta(hours=24)),
            previous=store.labels(claim.queue, claim.record_id), segments=segments,
            feedback=store.feedback(claim.record_id),
        )  # fmt: skip

    @router.post("/claims/{claim_id}/label", name="review_label")
    async def label(request: Request, claim_id: str) -> Response:
        session = await run_in_threadpool(pages.session, request)
        if session is None:
            return pages.to_login(request)
        form = await pages.form(request, session[1])
        if form is None:
            return pages.forbidden(request, "The form expired; reload the page (your label was not saved).")
        return await run_in_threadpool(_label, request, claim_id, session[0], _label_fields(form))

    def _label(request: Request, claim_id: str, who: Annotator, fields: Mapping[str, Any]) -> Response:
        try:
            claim = store.get_claim(claim_id, who.name)
            store.label(who.name, LabelInput(queue=claim.queue, record_id=claim.record_id, claim_id=claim_id, **fields))
        except ReviewError as exc:
            return pages.render(request, "message.html", status=422, title="Not saved", message=str(exc), who=who)
        return _next(request, claim.queue, who.name)

    @router.post("/claims/{claim_id}/skip", name="review_skip")
    async def skip(request: Request, claim_id: str) -> Response:
        session = await run_in_threadpool(pages.session, request)
        if session is None:
            return pages.to_login(request)
        if await pages.form(request, session[1]) is None:
            return pages.forbidden(request, "The form expired; reload the page.")
        who = session[0]

        def run() -> Response:
            try:
                claim = store.get_claim(claim_id, who.name)
                store.release(claim_id, who.name)
            except ReviewError as exc:
                return pages.render(request, "message.html", status=404, title="Not found", message=str(exc), who=who)
            return _next(request, claim.queue, who.name)

        return await run_in_threadpool(run)

    @router.get("/admin", name="review_admin")
    def admin(request: Request) -> Response:
        session = pages.session(request)
        if session is None:
            return pages.to_login(request)
        who, token = session
        if not who.is_admin:
            return pages.forbidden(request, "Only admins may manage annotators.")
        return pages.render(
            request, "admin.html", who=who, csrf=csrf.for_session(token), annotators=store.annotators(),
            created=None, token=None, error="",
        )  # fmt: skip

    @router.post("/admin/annotators", name="review_add_annotator")
    async def add_annotator(request: Request) -> Response:
        session = await run_in_threadpool(pages.session, request)
        if session is None:
            return pages.to_login(request)
        who, token = session
        form = await pages.form(request, token)
        if form is None or not who.is_admin:
            return pages.forbidden(request, "Only admins may manage annotators (or the form expired).")
        name = str(form.get("name", "")).strip()
        make_admin = form.get("is_admin") == "1"

        def run() -> Response:
            created: str | None = None
            new_token: str | None = None
            error = ""
            try:
                new_token = store.add_annotator(name, make_admin)
                created = name
            except ReviewError as exc:
                error = str(exc)
            return pages.render(
                request, "admin.html", who=who, csrf=csrf.for_session(token), annotators=store.annotators(),
                created=created, token=new_token, error=error, status=200 if not error else 422,
            )  # fmt: skip

        return await run_in_threadpool(run)

    return router


def _label_fields(form: FormData) -> dict[str, Any]:
    verdicts: dict[str, Verdict] = {}
    for name in DETECTORS:
        value = form.get(f"verdict.{name}")
        if value == "confirm":
            verdicts[name] = "confirm"
        elif value == "reject":
            verdicts[name] = "reject"
    severity = str(form.get("severity", "0"))
    preference: Preference = "none"
    pref = form.get("preference")
    if pref == "corrected":
        preference = "corrected"
    elif pref == "original":
        preference = "original"
    corrected = str(form.get("corrected_response", "")).replace("\r\n", "\n")
    return {
        "label_id": str(form.get("label_id", "")),
        "verdicts": verdicts,
        "severity": int(severity) if severity.isdigit() else -1,
        "note": str(form.get("note", "")).replace("\r\n", "\n"),
        "corrected_response": corrected if corrected.strip() else None,
        "preference": preference,
    }
