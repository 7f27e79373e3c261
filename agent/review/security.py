"""Review UI security: response headers, the login cookie, CSRF tokens, bearer tokens.

- Every response carries a strict Content-Security-Policy (scripts only from this origin, no inline script
  or style, no framing, forms post only here), ``nosniff``, no referrer and ``no-store``.
- Pages authenticate with the annotator's token in an HttpOnly, SameSite=Strict cookie; the JSON API takes
  ``Authorization: Bearer`` only (never the cookie), so a browser can't be tricked into calling it.
- Every form carries a CSRF token: for a signed-in annotator an HMAC of their token's hash under a key held
  by this process (a restart invalidates open forms); for the login form a random value also set in a
  SameSite=Strict cookie (double submit).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

SESSION_COOKIE = "lookout_review"
LOGIN_CSRF_COOKIE = "lookout_login_csrf"
SESSION_MAX_AGE_S = 12 * 3600

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
                response = JSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return secured


class Csrf:
    """CSRF tokens bound to a session, under a per-process key."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def for_session(self, session_token: str) -> str:
        """The token forms of this session must carry."""
        digest = hashlib.sha256(session_token.encode("utf-8")).hexdigest()
        return hmac.new(self._key, f"csrf:{digest}".encode(), hashlib.sha256).hexdigest()

    def check_session(self, session_token: str, submitted: str) -> bool:
        """Whether ``submitted`` is this session's token (constant time)."""
        return bool(submitted) and hmac.compare_digest(self.for_session(session_token), submitted)

    @staticmethod
    def new_login_token() -> str:
        """A random double-submit token for the login form."""
        return secrets.token_urlsafe(24)

    @staticmethod
    def check_login(cookie: str | None, submitted: str) -> bool:
        """Whether the login form's token matches its cookie (constant time)."""
        return bool(cookie) and bool(submitted) and hmac.compare_digest(cookie or "", submitted)


def bearer_token(request: Request) -> str:
    """The ``Authorization: Bearer`` token, or ``""``."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def set_cookie(response: Response, name: str, value: str, path: str, secure: bool, max_age: int | None) -> None:
    """Set an HttpOnly, SameSite=Strict cookie."""
    response.set_cookie(
        name, value, max_age=max_age, path=path, secure=secure, httponly=True, samesite="strict"
    )  # fmt: skip
