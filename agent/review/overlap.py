"""Overlap: a deterministic share of review items waits for labels from two different annotators.

The route step marks an item ``overlap = 1`` when a hash of its queue and record id falls under
``review.overlap_rate`` (:func:`is_overlap`), so a replay marks it the same way. Which item an annotator gets next
(:func:`next_item`) then follows one rule: an item is offered while it has fewer annotators' labels than it needs
(two with overlap, else one), to anyone who has not labeled or skipped it and while no one holds a claim on it.
The first annotator of an overlap item never gets it back; its labels are all kept (``label_id`` keys them).
The backlog and the SLA still count items with no label at all: an overlap item waiting for its second label
is offered to others but is not late (a team of one never sees it stuck).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from agent.storage.client import Client


def is_overlap(queue: str, record_id: str, rate: float) -> bool:
    """Whether the item needs a second annotator: deterministic in (queue, record id)."""
    if rate <= 0:
        return False
    digest = hashlib.sha256(f"overlap\0{queue}\0{record_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


_NEXT_ITEM = """
SELECT i.record_id FROM {db}.v_review_items AS i
LEFT JOIN (
    SELECT record_id, uniqExact(annotator) AS n, has(groupUniqArray(annotator), {a:String}) AS mine
    FROM {db}.v_review_labels WHERE queue = {q:String} GROUP BY record_id
) AS l ON l.record_id = i.record_id
WHERE i.queue = {q:String}
  AND ifNull(l.n, 0) < if(i.overlap = 1, 2, 1)
  AND ifNull(l.mine, 0) = 0
  AND i.record_id NOT IN (
      SELECT record_id FROM {db}.v_review_claims
      WHERE queue = {q:String} AND released = 0 AND lease_until > {now:DateTime64(6, 'UTC')})
  AND i.record_id NOT IN (
      SELECT record_id FROM {db}.v_review_claims
      WHERE queue = {q:String} AND annotator = {a:String} AND released = 1)
ORDER BY i.priority DESC, i.enqueued_at, i.record_id
LIMIT 1
"""


def next_item(client: Client, database: str, queue: str, annotator: str, now: datetime) -> str | None:
    """The most urgent item of the queue this annotator may claim now, if any."""
    rows = client.query(
        _NEXT_ITEM.replace("{db}", database), parameters={"q": queue, "a": annotator, "now": now}
    ).result_rows
    return str(rows[0][0]) if rows else None


def label_state(client: Client, database: str, queue: str, record_id: str) -> tuple[int, frozenset[str]]:
    """How many annotators' labels the item needs (2 with overlap, else 1) and who has labeled it."""
    params = {"q": queue, "r": record_id}
    overlap = client.query(
        f"SELECT max(overlap) FROM {database}.v_review_items WHERE queue = {{q:String}} AND record_id = {{r:String}}",
        parameters=params,
    ).result_rows
    who = client.query(
        f"SELECT DISTINCT annotator FROM {database}.v_review_labels "
        "WHERE queue = {q:String} AND record_id = {r:String}",
        parameters=params,
    ).result_rows
    needed = 2 if overlap and overlap[0][0] else 1
    return needed, frozenset(str(a) for (a,) in who)
