"""Reading sessions back: the records that share a ``session_id`` (one conversation), per tenant, in ``ts`` order.

A session is ``(tenant, session_id)``: the same id under two tenants is two sessions. Records without a
``session_id`` (``''``) belong to none. Two readers: :func:`iter_sessions` streams whole sessions for
``lookout export --group-by session``, and :func:`earlier_turns` gives the review UI the turns of an item's
session before it.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agent.errors import StorageError
from agent.storage.client import Client, reason
from agent.storage.records import RECORD_COLUMNS, f32, record_json

SessionKey = tuple[str, str]
"""``(tenant, session_id)``."""

ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class Turn:
    """One record of a session, as an export writes it."""

    record: Mapping[str, Any]
    """JSON-ready ``v_records`` fields (as :attr:`agent.storage.records.Row.record`)."""
    scores: Mapping[str, float | None]
    """Detector → score, in registry order."""


@dataclass(frozen=True, slots=True)
class StoredSession:
    """Every stored record of one session, oldest first (``ts``, then ``id``)."""

    tenant: str
    """Tenant of the session."""
    session_id: str
    """The session id the records share."""
    turns: tuple[Turn, ...]
    """The records, in ``(ts, id)`` order."""


def sessions_sql(db: str, scores: list[str]) -> str:
    """Every record of the sessions in ``{keys:Array(Tuple(String, String))}``, ordered by session start, then turn.

    Columns: ``id``, :data:`~agent.storage.records.RECORD_COLUMNS`, the score columns. One row per (tenant, id):
    the latest ingested copy.
    """
    score_select = "".join(f", {s}" for s in scores)
    return (
        f"SELECT id, {', '.join(RECORD_COLUMNS)}{score_select}, "
        "min(ts) OVER (PARTITION BY tenant, session_id) AS session_start FROM ("
        f"SELECT * FROM {db}.v_records WHERE session_id != '' AND (toString(tenant), session_id) IN "
        "{keys:Array(Tuple(String, String))} ORDER BY tenant, id, ingested_at DESC LIMIT 1 BY tenant, id"
        ") ORDER BY session_start, tenant, session_id, ts, id"
    )


def iter_sessions(client: Client, db: str, keys: Collection[SessionKey], scores: list[str]) -> Iterator[StoredSession]:
    """Stream the sessions named by ``keys``, each with all its stored records; ordered by their first ``ts``."""
    if not keys:
        return
    n_rec = len(RECORD_COLUMNS)

    def turns() -> Iterator[tuple[SessionKey, Turn]]:
        with client.query_row_block_stream(sessions_sql(db, scores), parameters={"keys": sorted(keys)}) as stream:
            for block in stream:
                for raw in block:
                    rec = dict(zip(RECORD_COLUMNS, raw[1 : 1 + n_rec], strict=True))
                    values = raw[1 + n_rec : 1 + n_rec + len(scores)]
                    turn = Turn(record_json(raw[0], rec), {s: f32(v) for s, v in zip(scores, values, strict=True)})
                    yield (str(rec["tenant"]), str(rec["session_id"])), turn

    try:
        for (tenant, session_id), group in itertools.groupby(turns(), key=lambda kt: kt[0]):
            yield StoredSession(tenant, session_id, tuple(t for _, t in group))
    except (StorageError, GeneratorExit):
        raise
    except Exception as exc:
        raise StorageError(f"session query failed: {reason(exc)}") from None


@dataclass(frozen=True, slots=True)
class SessionTurn:
    """An earlier turn of a session, shortened for display."""

    record_id: str
    """The record."""
    ts: datetime
    """When the call happened (UTC)."""
    model: str
    """Model."""
    prompt: str
    """Prompt, cut to ``max_chars`` (ending in ``…`` when cut)."""
    response: str
    """Response, cut the same way."""
    flags: tuple[str, ...]
    """Detectors that flagged it."""
    error: str
    """Why the call failed ('' when it did not)."""


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # ClickHouse returns naive UTC


def shorten(text: str, max_chars: int) -> str:
    """``text``, or its first ``max_chars`` characters and ``…`` when it is longer."""
    return text if len(text) <= max_chars else text[:max_chars] + ELLIPSIS


def earlier_turns(
    client: Client, db: str, tenant: str, record_id: str, limit: int = 20, max_chars: int = 500
) -> list[SessionTurn]:
    """The records of ``(tenant, record_id)``'s session with an earlier ``ts``: the latest ``limit``, oldest first.

    Empty when the record has no ``session_id`` (or is not stored). Texts are cut to ``max_chars``.
    """
    own = client.query(
        f"SELECT session_id, ts FROM {db}.v_records WHERE tenant = {{t:String}} AND id = {{r:String}} "
        "ORDER BY ingested_at DESC LIMIT 1",
        parameters={"t": tenant, "r": record_id},
    ).result_rows
    if not own or not own[0][0]:
        return []
    session_id, ts = own[0][0], _utc(own[0][1])
    rows = client.query(
        f"SELECT id, ts, model, substringUTF8(prompt, 1, {{n:UInt32}}), substringUTF8(response, 1, {{n:UInt32}}), "
        f"flags, error FROM {db}.v_records WHERE tenant = {{t:String}} AND session_id = {{s:String}} "
        "AND ts < {ts:DateTime64(3, 'UTC')} AND id != {r:String} ORDER BY ts DESC, id DESC LIMIT {k:UInt32}",
        parameters={"t": tenant, "s": session_id, "ts": ts, "r": record_id, "n": max_chars + 1, "k": limit},
    ).result_rows
    return [
        SessionTurn(
            str(i), _utc(t), str(m), shorten(str(p), max_chars),
            shorten(str(resp), max_chars), tuple(str(f) for f in flags), str(err),
        )
        for i, t, m, p, resp, flags, err in reversed(rows)
    ]  # fmt: skip
