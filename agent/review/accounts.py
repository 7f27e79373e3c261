"""Review UI accounts: annotators (token hashes only) and signed-in sessions (session-id hashes only).

Annotator names are unique case-insensitively (``Alice`` is ``alice``). Adding a name that exists is refused
unless ``reissue`` is asked for: that issues a new token, and the old token and every session opened with it
stop working. A session is a random id held in the browser's cookie; only its sha256 is stored, with the
annotator and the hash of the token it was opened with. It ends at sign-out (a revoked row replaces it), at
``expires_at``, or when its annotator is disabled or re-issued. The raw token never leaves the sign-in form.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.review.errors import Conflict, ReviewError, shown
from agent.storage.client import Client

NAME_PATTERN = r"^[A-Za-z0-9_.@-]{1,64}$"
SESSION_COLUMNS = ("session_sha256", "annotator", "token_sha256", "created_at", "expires_at", "revoked", "updated_at")


def token_hash(token: str) -> str:
    """What is stored for a token or a session id: its sha256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Annotator:
    """A review UI user."""

    name: str
    """Unique name (case-insensitively), recorded on claims and labels."""
    is_admin: bool
    """May add annotators and label without a claim (recorded as an override)."""


class Accounts:
    """Annotators and sessions in ClickHouse.

    Args:
        client: clickhouse-connect client.
        database: Database holding ``annotators`` and ``review_sessions``.
        clock: Current UTC time.
        lock: Held around every read-then-write (shared with the review store).
    """

    def __init__(
        self, client: Client, database: str, clock: Callable[[], datetime], lock: threading.RLock | None = None
    ) -> None:
        self.client = client
        self.database = database
        self._clock = clock
        self._lock = lock or threading.RLock()

    def _rows(self, sql: str, **params: Any) -> list[Any]:
        return list(self.client.query(sql.replace("{db}", self.database), parameters=params).result_rows)

    # annotators

    def find(self, name: str) -> tuple[str, bool, datetime] | None:
        """(stored name, is_admin, created_at) of the annotator called ``name`` in any case, if any."""
        rows = self._rows(
            "SELECT name, is_admin, created_at FROM {db}.v_annotators WHERE lower(name) = lower({n:String}) "
            "ORDER BY created_at LIMIT 1",
            n=name,
        )
        return (str(rows[0][0]), bool(rows[0][1]), _utc(rows[0][2])) if rows else None

    def add_annotator(self, name: str, is_admin: bool | None = None, *, reissue: bool = False) -> str:
        """Create an annotator, or with ``reissue`` give an existing one a new token; returns the token.

        Only the token's sha256 is stored. ``is_admin`` None keeps an existing annotator's role (a new one is
        not an admin). :class:`Conflict` when the name exists (in any case) and ``reissue`` is False.
        """
        if not re.match(NAME_PATTERN, name):
            raise ReviewError(f"annotator name {shown(name)} must be 1-64 letters, digits or _.@-")
        token = "lk_" + secrets.token_urlsafe(32)
        with self._lock:
            now = self._clock()
            existing = self.find(name)
            if existing is not None and not reissue:
                raise Conflict(
                    f"annotator {existing[0]!r} already exists; re-issue their token with --reissue "
                    "(the old token and its sessions stop working)"
                )
            stored, was_admin, created = existing if existing is not None else (name, False, now)
            admin = was_admin if is_admin is None else is_admin
            self.client.insert(
                f"{self.database}.annotators",
                [[stored, token_hash(token), created, int(admin), 0, now]],
                column_names=["name", "token_sha256", "created_at", "is_admin", "disabled", "updated_at"],
            )
        return token

    def authenticate(self, token: str) -> Annotator | None:
        """The enabled annotator holding this token, if any."""
        if not token:
            return None
        with self._lock:
            rows = self._rows("SELECT name, is_admin, token_sha256 FROM {db}.v_annotators WHERE disabled = 0")
        # every stored hash is compared, in constant time, whatever matches: timing tells nothing about any token
        wanted = token_hash(token)
        found: Annotator | None = None
        for name, is_admin, stored in rows:
            if hmac.compare_digest(str(stored), wanted) and found is None:
                found = Annotator(str(name), bool(is_admin))
        return found

    def annotators(self) -> list[tuple[str, bool, bool, datetime]]:
        """(name, is_admin, disabled, created_at) of everyone."""
        with self._lock:
            rows = self._rows("SELECT name, is_admin, disabled, created_at FROM {db}.v_annotators ORDER BY name")
        return [(str(n), bool(a), bool(d), _utc(c)) for n, a, d, c in rows]

    # sessions

    def open_session(self, token: str, max_age_s: float) -> tuple[Annotator, str] | None:
        """Sign in with an API token: the annotator and a new random session id, or None for a bad token."""
        who = self.authenticate(token)
        if who is None:
            return None
        session_id = secrets.token_urlsafe(32)
        now = self._clock()
        row = [token_hash(session_id), who.name, token_hash(token), now, now + timedelta(seconds=max_age_s), 0, now]
        with self._lock:
            self.client.insert(f"{self.database}.review_sessions", [row], column_names=list(SESSION_COLUMNS))
        return who, session_id

    def session(self, session_id: str) -> Annotator | None:
        """The annotator of a live session: not signed out, not expired, its token still theirs and enabled."""
        if not session_id or len(session_id) > 128:
            return None
        with self._lock:
            rows = self._rows(
                "SELECT a.name, a.is_admin FROM {db}.v_review_sessions AS s "
                "INNER JOIN {db}.v_annotators AS a ON a.name = s.annotator AND a.token_sha256 = s.token_sha256 "
                "WHERE s.session_sha256 = {h:String} AND s.revoked = 0 AND a.disabled = 0 "
                "AND s.expires_at > {now:DateTime64(3, 'UTC')} LIMIT 1",
                h=token_hash(session_id),
                now=self._clock(),
            )
        return Annotator(str(rows[0][0]), bool(rows[0][1])) if rows else None

    def close_session(self, session_id: str) -> None:
        """Sign out: the session stops working at once (unknown ids are ignored)."""
        if not session_id or len(session_id) > 128:
            return
        with self._lock:
            rows = self._rows(
                "SELECT annotator, token_sha256, created_at, expires_at FROM {db}.v_review_sessions "
                "WHERE session_sha256 = {h:String} AND revoked = 0",
                h=token_hash(session_id),
            )
            if rows:
                name, token_sha, created, expires = rows[0]
                row = [token_hash(session_id), str(name), str(token_sha), created, expires, 1, self._clock()]
                self.client.insert(f"{self.database}.review_sessions", [row], column_names=list(SESSION_COLUMNS))
