"""The review JSON API (``/review/api/v1``): queues, next item, claim, release, label. Bearer tokens only."""

# no ``from __future__ import annotations``: FastAPI must see the router-local ``Who`` dependency type

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from agent.review.errors import Conflict, Forbidden, NotFound, ReviewError
from agent.review.security import SecureRoute, bearer_token
from agent.review.store import Annotator, Claim, Item, Label, LabelInput, ReviewStore
from agent.review.verdicts import DetectorView


class LabelBody(BaseModel):
    """A label submitted through the API."""

    model_config = ConfigDict(extra="forbid")

    label_id: str = Field(min_length=1, max_length=128)
    """Idempotency key (a UUID chosen by the client; retry with the same one)."""
    queue: str = Field(max_length=256)
    record_id: str = Field(max_length=4096)
    claim_id: str = Field(default="", max_length=128)
    """Your claim on the item (from ``/queues/{queue}/next`` or ``/claims``); required unless ``override``."""
    override: bool = False
    """Admins only: label without a claim of your own; stored with source ``api-override``."""
    verdicts: dict[str, Literal["confirm", "reject"]] = Field(default_factory=dict)
    severity: int = Field(default=0, ge=0, le=3)
    note: str = Field(default="", max_length=10_000)
    corrected_response: str | None = Field(default=None, max_length=200_000)
    preference: Literal["none", "corrected", "original"] = "none"


class ClaimBody(BaseModel):
    """A specific item to claim."""

    model_config = ConfigDict(extra="forbid")

    queue: str = Field(max_length=256)
    record_id: str = Field(max_length=4096)


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value


def claim_json(claim: Claim) -> dict[str, Any]:
    """A claim as JSON."""
    return dict(_json(asdict(claim)))


def item_json(item: Item) -> dict[str, Any]:
    """An item as JSON (history as role/content objects)."""
    data = _json(asdict(item))
    data["history"] = [{"role": r, "content": c} for r, c in item.history]
    return dict(data)


def detectors_json(views: list[DetectorView]) -> list[dict[str, Any]]:
    """What each detector said about the item, as the page words it: what a verdict on it judges."""
    return [
        {
            "detector": v.name, "score": v.score, "threshold": v.threshold,
            "flags_when": "above" if v.higher_is_worse else "below", "flagged": v.flagged,
            "routing_reason": v.reason, "harm": v.harm, "words": v.words(),
        }
        for v in views
    ]  # fmt: skip


def label_json(label: Label) -> dict[str, Any]:
    """A label as JSON."""
    return dict(_json(asdict(label)))


def api_router(store: ReviewStore) -> APIRouter:
    """The JSON API; every route needs ``Authorization: Bearer <token>``."""
    router = APIRouter(prefix="/api/v1", route_class=SecureRoute)

    def annotator(request: Request) -> Annotator:
        who = store.authenticate(bearer_token(request))
        if who is None:
            raise HTTPException(401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"})
        return who

    Who = Annotated[Annotator, Depends(annotator)]

    def with_item(found: Item, **extra: Any) -> dict[str, Any]:
        return {**extra, "item": item_json(found), "detectors": detectors_json(store.detector_views(found))}

    def fail(exc: ReviewError) -> HTTPException:
        codes = ((NotFound, 404), (Conflict, 409), (Forbidden, 403))
        code = next((c for kind, c in codes if isinstance(exc, kind)), 422)
        return HTTPException(code, str(exc))

    @router.get("/queues", name="api_queues")
    def queues(who: Who) -> list[dict[str, Any]]:
        now = store.now()
        return [
            {
                "queue": q.queue, "description": q.description, "backlog": q.backlog, "claimed": q.claimed,
                "labeled": q.labeled, "oldest_enqueued_at": q.oldest_at.isoformat() if q.oldest_at else None,
                "oldest_age_h": q.oldest_age_h(now), "sla_hours": q.sla_hours, "sla_breached": q.breached(now),
            }
            for q in store.overview()
        ]  # fmt: skip

    @router.post("/queues/{queue}/next", name="api_next", response_model=None)
    def next_item(queue: str, who: Who) -> Response | dict[str, Any]:
        claim = store.claim_next(queue, who.name)
        if claim is None:
            return Response(status_code=204)
        return with_item(store.item(claim.queue, claim.record_id), claim=claim_json(claim))

    @router.post("/claims", name="api_claim", status_code=201)
    def claim(body: ClaimBody, who: Who) -> dict[str, Any]:
        try:
            c = store.claim(body.queue, body.record_id, who.name)
        except ReviewError as exc:
            raise fail(exc) from None
        return with_item(store.item(c.queue, c.record_id), claim=claim_json(c))

    @router.post("/claims/{claim_id}/release", name="api_release", status_code=204)
    def release(claim_id: str, who: Who) -> Response:
        try:
            store.release(claim_id, who.name)
        except ReviewError as exc:
            raise fail(exc) from None
        return Response(status_code=204)

    @router.post("/labels", name="api_label")
    def label(body: LabelBody, who: Who) -> JSONResponse:
        if body.override and not who.is_admin:
            raise HTTPException(403, "only admins may label without a claim (override)")
        data = LabelInput(**body.model_dump(exclude={"override"}), source="api")
        try:
            stored, applied = store.label(who.name, data, override=body.override)
        except ReviewError as exc:
            raise fail(exc) from None
        return JSONResponse({"applied": applied, "label": label_json(stored)}, status_code=201 if applied else 200)

    # ids may hold "/" (an id-less record's id is topic/partition/offset): sent raw or as %2F, both match
    @router.get("/items/{queue}/{record_id:path}", name="api_item")
    def item(queue: str, record_id: str, who: Who) -> dict[str, Any]:
        try:
            found = store.item(queue, record_id)
        except ReviewError as exc:
            raise fail(exc) from None
        # overlap and gold items are labeled blind: an annotator sees only their own labels there (admins see all)
        found_labels = (
            store.labels(queue, record_id) if who.is_admin else store.labels_shown_to(queue, record_id, who.name)
        )
        labels = [label_json(lab) for lab in found_labels]
        feedback = [f.to_json() for f in store.feedback(record_id)]
        return {**with_item(found), "labels": labels, "feedback": feedback}

    return router
