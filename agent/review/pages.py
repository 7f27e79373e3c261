"""Server-rendered annotator pages: login, queue overview, labeling, admin. Forms only; JS adds shortcuts.

Model outputs are hostile: templates autoescape everything and render text in ``<pre>`` as plain text (no
markdown, no links), bidi and invisible characters are shown as escapes (:func:`_visible`), and the CSP
forbids inline script (see :mod:`agent.review.security`).
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
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from agent.display import visible
from agent.review.rules import DETECTORS
from agent.review.security import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_MAX_AGE_S,
    Csrf,
    LoginLimiter,
    SecureRoute,
    clear_cookie,
    cookie_name,
    first_cookie,
    set_cookie,
)
from agent.review.spans import unsupported_terms
from agent.review.store import Annotator, LabelInput, Preference, ReviewError, ReviewStore, Verdict
from agent.review.verdicts import HARM_DETECTORS

HERE = Path(__file__).parent
STATIC = {"review.js": "text/javascript", "review.css": "text/css"}
SEVERITIES = ("none", "minor", "moderate", "severe")
SESSION_TURNS = 20
"""Earlier turns of the item's session shown above it (the latest ones)."""


def _visible(value: Any) -> Any:
    """Every ``{{ }}`` string: bidi overrides, zero-width and control characters shown as ``\u202e``-like text.

    ``model: "gpt\u202e4o"`` reversed the rest of the meta line and ``invoice\u202efdp.exe`` displayed as
    ``invoiceexe.pdf``; escaped before autoescaping, they show what they are (tab and newline are kept).
    """
    return visible(value) if isinstance(value, str) and not isinstance(value, Markup) else value


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_visible,
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
        secure_cookie: Mark cookies ``Secure`` and ``__Host-`` prefix them.
        limiter: Failed sign-ins per client.
    """

    def __init__(self, store: ReviewStore, csrf: Csrf, secure_cookie: bool, limiter: LoginLimiter) -> None:
        self.store = store
        self.csrf = csrf
        self.secure_cookie = secure_cookie
        self.limiter = limiter
        self.session_cookie = cookie_name(SESSION_COOKIE, secure_cookie)
        self.login_cookie = cookie_name(LOGIN_CSRF_COOKIE, secure_cookie)
        self.env = _env()

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        """Render a template with ``url()`` and the common context."""

        def url(route: str, /, **params: str) -> str:
            return str(request.url_for(route, **params).path)

        html = self.env.get_template(template).render(url=url, **context)
        return HTMLResponse(html, status_code=status)

    def cookie_path(self, request: Request) -> str:
        """Cookies are scoped to the review UI's path (``/`` for ``__Host-`` cookies, as browsers require)."""
        return "/" if self.secure_cookie else str(request.url_for("review_overview").path)

    def set_cookie(self, request: Request, response: Response, name: str, value: str, max_age: int) -> None:
        """Set one of the UI's cookies."""
        set_cookie(response, name, value, self.cookie_path(request), self.secure_cookie, max_age)

    def clear_cookie(self, request: Request, response: Response, name: str) -> None:
        """Delete one of the UI's cookies."""
        clear_cookie(response, name, self.cookie_path(request), self.secure_cookie)

    def session(self, request: Request) -> tuple[Annotator, str] | None:
        """The signed-in annotator and their session id, from the cookie."""
        session_id = first_cookie(request, self.session_cookie)
        who = self.store.accounts.session(session_id) if session_id else None
        return (who, session_id) if who else None

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


def page_router(
    store: ReviewStore, csrf: Csrf, secure_cookie: bool = False, limiter: LoginLimiter | None = None
) -> APIRouter:
    """Login, overview, labeling and admin pages."""
    pages = Pages(store, csrf, secure_cookie, limiter or LoginLimiter())
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
        pages.set_cookie(request, response, pages.login_cookie, token, 600)
        return response

    @router.post("/login", name="review_login_post")
    async def login(request: Request) -> Response:
        client = request.client.host if request.client else "-"
        wait = pages.limiter.retry_after(client)
        if wait:
            refused = pages.render(
                request, "message.html", status=429, title="Too many attempts", who=None,
                message=f"Too many failed sign-ins from this address; try again in {wait} s.",
            )  # fmt: skip
            refused.headers["Retry-After"] = str(wait)
            return refused
        form = await request.form()
        if not csrf.check_login(request.cookies.get(pages.login_cookie), str(form.get("csrf", ""))):
            return pages.forbidden(request, "The login form expired; reload the page and sign in again.")
        token = str(form.get("token", "")).strip()
        opened = await run_in_threadpool(store.accounts.open_session, token, SESSION_MAX_AGE_S)
        if opened is None:
            pages.limiter.failed(client)
            return RedirectResponse(request.url_for("review_login").path + "?error=1", status_code=303)
        pages.limiter.succeeded(client)
        previous = first_cookie(request, pages.session_cookie)
        if previous:  # a new id at every sign-in: whatever the browser held before is ended, never adopted
            await run_in_threadpool(store.accounts.close_session, previous)
        response = RedirectResponse(request.url_for("review_overview").path, status_code=303)
        pages.set_cookie(request, response, pages.session_cookie, opened[1], SESSION_MAX_AGE_S)
        pages.clear_cookie(request, response, pages.login_cookie)
        return response

    @router.post("/logout", name="review_logout")
    async def logout(request: Request) -> Response:
        session = await run_in_threadpool(pages.session, request)
        if session is not None:
            if await pages.form(request, session[1]) is None:
                return pages.forbidden(request, "The form expired; reload the page.")
            await run_in_threadpool(store.accounts.close_session, session[1])
        response = pages.to_login(request)
        pages.clear_cookie(request, response, pages.session_cookie)
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
        views = [v for v in store.detector_views(item) if v.name in item.scores or v.reason]
        asked = [v for v in views if v.reason]
        others = [v for v in views if not v.reason]
        check_support = item.context and ("hallucination" in item.flags or "hallucination" in item.reasons)
        segments = unsupported_terms(item.response, item.context) if check_support else [(item.response, False)]
        return pages.render(
            request, "item.html", who=who, csrf=csrf.for_session(token), claim=claim, item=item,
            asked=list(enumerate(asked, 1)), others=list(enumerate(others, len(asked) + 1)),
            others_flagged=sum(v.flagged for v in others), harms=HARM_DETECTORS, active=store.is_active(claim),
            label_id=uuid.uuid4().hex, severities=SEVERITIES,
            backlog=backlog, done_today=store.labeled_by(who.name, now - timedelta(hours=24)),
            previous=store.labels_shown_to(claim.queue, claim.record_id, who.name), segments=segments,
            feedback=store.feedback(claim.record_id), session_turns=store.session_turns(item, SESSION_TURNS),
            session_limit=SESSION_TURNS,
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
        make_admin = True if form.get("is_admin") == "1" else None  # unticked: a re-issue keeps the role
        reissue = form.get("reissue") == "1"

        def run() -> Response:
            created: str | None = None
            new_token: str | None = None
            error = ""
            try:
                new_token = store.add_annotator(name, make_admin, reissue=reissue)
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
