"""Review UI security: response headers, the login cookie, CSRF tokens, bearer tokens.

- Every response carries a strict Content-Security-Policy (scripts only from this origin, no inline script
  or style, no framing, forms post only here), ``nosniff``, no referrer and ``no-store``.
- Signing in exchanges the annotator's API token for a random session id (:mod:`agent.review.accounts`
  stores only its hash): the HttpOnly, SameSite=Strict cookie holds that id, never the token. Each sign-in
  makes a new id (a planted cookie value is never adopted) and sign-out revokes it server-side. With
  ``secure_cookie`` the cookies are ``__Host-`` prefixed (Secure, path ``/``, no domain: a service on another
  port or subdomain cannot set or shadow them over plain HTTP).
- Failed sign-ins are limited per client address (:class:`LoginLimiter`).
- The JSON API takes ``Authorization: Bearer`` only (never the cookie), so a browser can't be tricked into
  calling it. Validation errors name the field and the rule, never echo the submitted value.
- Every form carries a CSRF token: for a signed-in annotator an HMAC of their session id's hash (the session
  id is the secret, held only in the HttpOnly cookie, so the token is valid exactly as long as the session,
  across server restarts: an open form survives one); for the login form a random value also set in a
  SameSite=Strict cookie (double submit).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

SESSION_COOKIE = "lookout_review"
LOGIN_CSRF_COOKIE = "lookout_login_csrf"
HOST_PREFIX = "__Host-"
SESSION_MAX_AGE_S = 12 * 3600
MAX_ERROR_TEXT = 200
"""Longest validation message sent back (the submitted value itself never is)."""

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class SecureRoute(APIRoute):
    """A route whose every response (errors included) carries :data:`SECURITY_HEADERS`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the handler to add the headers."""
        handler = super().get_route_handler()

        async def secured(request: Request) -> Response:
            try:
                response = await handler(request)
            except HTTPException as exc:
                response = JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
            except RequestValidationError as exc:
                response = JSONResponse({"detail": validation_errors(exc)}, status_code=422)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return secured


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Where and why the request is invalid, without the submitted values (a 5 MB note is not sent back)."""
    out = []
    for error in exc.errors()[:20]:
        out.append(
            {
                "loc": jsonable_encoder(error.get("loc", ()))[:10],
                "type": str(error.get("type", ""))[:MAX_ERROR_TEXT],
                "msg": str(error.get("msg", ""))[:MAX_ERROR_TEXT],
            }
        )
    return out


def cookie_name(name: str, secure: bool) -> str:
    """``name``, ``__Host-`` prefixed when cookies are ``Secure`` (the browser then insists on path ``/``)."""
    return HOST_PREFIX + name if secure else name


class LoginLimiter:
    """Failed sign-ins per client: after ``max_failures`` within ``window_s`` it refuses until the oldest ages out.

    In memory, per process; at most ``max_clients`` addresses are tracked (the least recently failing one is
    forgotten first). Behind a reverse proxy every client shares the proxy's address: limit there as well.
    """

    def __init__(
        self,
        max_failures: int = 10,
        window_s: float = 300.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_clients = max_clients
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, client: str) -> deque[float]:
        times = self._failures.get(client, deque())
        cutoff = self._clock() - self.window_s
        while times and times[0] <= cutoff:
            times.popleft()
        return times

    def retry_after(self, client: str) -> int:
        """Seconds until ``client`` may try again; 0 when it may now."""
        times = self._recent(client)
        if len(times) < self.max_failures:
            return 0
        return max(1, math.ceil(times[0] + self.window_s - self._clock()))

    def failed(self, client: str) -> None:
        """Count a failed sign-in."""
        times = self._recent(client)
        times.append(self._clock())
        self._failures[client] = times
        self._failures.move_to_end(client)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        """Forget ``client``'s failures."""
        self._failures.pop(client, None)


class Csrf:
    """CSRF tokens bound to a session: an HMAC of the session id's hash.

    No per-process key, so a restart keeps open forms valid; a page of another origin can neither read the cookie
    nor recover the session id from a token.
    """

    def __init__(self, key: bytes = b"lookout-review-csrf-v1") -> None:
        self._key = key

    def for_session(self, session_id: str) -> str:
        """The token forms of this session must carry."""
        digest = hashlib.sha256(session_id.encode("utf-8")).hexdigest()
        return hmac.new(self._key, f"csrf:{digest}".encode(), hashlib.sha256).hexdigest()

    def check_session(self, session_id: str, submitted: str) -> bool:
        """Whether ``submitted`` is this session's token (constant time)."""
        return bool(submitted) and hmac.compare_digest(self.for_session(session_id), submitted)

    @staticmethod
    def new_login_token() -> str:
        """A random double-submit token for the login form."""
        return secrets.token_urlsafe(24)

    @staticmethod
    def check_login(cookie: str | None, submitted: str) -> bool:
        """Whether the login form's token matches its cookie (constant time)."""
        return bool(cookie) and bool(submitted) and hmac.compare_digest(cookie or "", submitted)


def first_cookie(request: Request, name: str) -> str:
    """The first value the browser sent for cookie ``name`` ("" if none).

    Browsers send the cookie with the longest path first; a same-named cookie planted for ``/`` by another
    service on this host comes later and must not shadow ours (a plain dict of cookies keeps the last one).
    """
    for part in request.headers.get("cookie", "").split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"')
    return ""


def bearer_token(request: Request) -> str:
    """The ``Authorization: Bearer`` token, or ``""``."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def set_cookie(response: Response, name: str, value: str, path: str, secure: bool, max_age: int | None) -> None:
    """Set an HttpOnly, SameSite=Strict cookie."""
    response.set_cookie(
        name, value, max_age=max_age, path=path, secure=secure, httponly=True, samesite="strict"
    )  # fmt: skip


def clear_cookie(response: Response, name: str, path: str, secure: bool) -> None:
    """Delete a cookie set by :func:`set_cookie` (same attributes, or the browser keeps it)."""
    response.delete_cookie(name, path=path, secure=secure, httponly=True, samesite="strict")
