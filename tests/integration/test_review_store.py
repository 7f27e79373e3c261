"""Review queue against real chDB: routing sink, claims under concurrency, leases, labels, annotators."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest

from agent.review.rules import parse_rules
from agent.review.store import Annotator, Conflict, LabelInput, NotFound, ReviewError, ReviewStore, token_hash
from agent.review.testing import FLAGGED_TO_ONE_QUEUE, ManualClock, scored_sample, seed
from agent.types import Message

DB = "lookout"


@pytest.fixture
def clock() -> ManualClock:
    """A clock the test moves."""
    return ManualClock()


@pytest.fixture
def store(client: Any, clock: ManualClock) -> ReviewStore:
    """A store with five flagged items in ``safety`` (lease 600 s)."""
    seed(client, DB, [scored_sample(f"r-{i}") for i in range(5)], clock=clock)
    return ReviewStore(client, DB, FLAGGED_TO_ONE_QUEUE, lease_s=600, clock=clock)


def rows(client: Any, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in client.query(sql).result_rows]


class TestReviewSink:
    """The route step writes each (queue, record) once, first enqueue wins, within the hourly budget."""

    def test_replayed_batch_enters_each_queue_once(self, client: Any, clock: ManualClock) -> None:
        """Routing the same records again (a replay) adds no rows, even to the raw table."""
        items = [scored_sample("a"), scored_sample("b"), scored_sample("c", flags=())]
        sink = seed(client, DB, items, clock=clock)
        clock.advance(60)
        sink.extend(items)
        sink.flush()
        assert rows(client, "SELECT record_id FROM lookout.v_review_items ORDER BY record_id") == [("a",), ("b",)]
        assert rows(client, "SELECT count() FROM lookout.review_items") == [(2,)]

    def test_first_enqueue_wins_in_the_table(self, client: Any, clock: ManualClock) -> None:
        """A later duplicate row (written by another agent) collapses into the earliest one."""
        seed(client, DB, [scored_sample("a")], clock=clock)
        client.command(
            "INSERT INTO lookout.review_items (queue, record_id, enqueued_at, record_ts, priority, rule) "
            "VALUES ('safety', 'a', '2026-11-25 13:00:00', '2026-11-25 11:00:00', 99, 'late')"
        )
        assert rows(client, "SELECT rule, priority FROM lookout.v_review_items") == [("toxic", 10)]
        client.command("OPTIMIZE TABLE lookout.review_items FINAL")
        assert rows(client, "SELECT rule, toString(enqueued_at) FROM lookout.review_items") == [
            ("toxic", "2026-11-25 12:00:00.000000")
        ]

    def test_hourly_budget_keeps_highest_priority(self, client: Any, clock: ManualClock) -> None:
        """Over budget, higher-priority decisions go first; the budget resets at the next hour."""
        rules = parse_rules(
            {
                "queues": {"q": {"hourly_budget": 2}},
                "rules": [
                    {"name": "tox", "queue": "q", "priority": 5, "when": {"flagged": "toxicity"}},
                    {"name": "any", "queue": "q", "priority": 1},
                ],
            }
        )
        batch = [scored_sample("plain-1", flags=()), scored_sample("tox-1"), scored_sample("plain-2", flags=())]
        sink = seed(client, DB, batch, rules=rules, clock=clock)
        assert rows(client, "SELECT record_id FROM lookout.v_review_items ORDER BY record_id") == [
            ("plain-1",),
            ("tox-1",),
        ]
        assert sink.over_budget["q"] == 1
        clock.advance(3600)
        sink.extend([scored_sample("plain-3", flags=())])
        sink.flush()
        assert rows(client, "SELECT count() FROM lookout.v_review_items") == [(3,)]


class TestClaims:
    """Two annotators never hold the same item; leases expire; skips release."""

    def test_concurrent_claims_never_hand_an_item_twice(self, store: ReviewStore) -> None:
        """Twenty threads claiming at once get each of the five items at most once."""
        got: list[str] = []
        errors: list[BaseException] = []
        start = threading.Barrier(20)

        def claim(n: int) -> None:
            try:
                start.wait()
                c = store.claim_next("safety", f"annotator-{n}")
                if c is not None:
                    got.append(c.record_id)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=claim, args=(n,)) for n in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(got) == [f"r-{i}" for i in range(5)]

    def test_claim_order_and_resume(self, store: ReviewStore) -> None:
        """Items come oldest first at equal priority; asking again returns the annotator's open claim."""
        first = store.claim_next("safety", "ann")
        again = store.claim_next("safety", "ann")
        assert first is not None and again is not None
        assert again.claim_id == first.claim_id

    def test_lease_expiry_returns_the_item(self, store: ReviewStore, clock: ManualClock) -> None:
        """After the lease an item is handed to someone else; before it, it is not."""
        claims = [store.claim_next("safety", f"a{i}") for i in range(5)]
        assert all(c is not None for c in claims)
        assert store.claim_next("safety", "late") is None
        clock.advance(599)
        assert store.claim_next("safety", "late") is None
        clock.advance(2)
        reclaimed = store.claim_next("safety", "late")
        assert reclaimed is not None and reclaimed.record_id == "r-0"
        with pytest.raises(Conflict):
            store.claim("safety", "r-0", "a0")

    def test_specific_claim_conflicts(self, store: ReviewStore) -> None:
        """Claiming a held item is a conflict; a labeled item too; an unknown one is not found."""
        held = store.claim("safety", "r-1", "alice")
        with pytest.raises(Conflict, match="claimed by another annotator"):
            store.claim("safety", "r-1", "bob")
        store.label("alice", LabelInput("l-1", "safety", "r-1", {"toxicity": "reject"}, claim_id=held.claim_id))
        with pytest.raises(Conflict, match="already labeled"):
            store.claim("safety", "r-1", "bob")
        with pytest.raises(NotFound):
            store.claim("safety", "nope", "bob")

    def test_skip_releases_to_others_not_to_the_skipper(self, store: ReviewStore) -> None:
        """A skipped item goes back to the queue for others, and not to whoever skipped it."""
        c = store.claim_next("safety", "alice")
        assert c is not None
        store.release(c.claim_id, "alice")
        nxt = store.claim_next("safety", "alice")
        assert nxt is not None and nxt.record_id != c.record_id
        other = store.claim_next("safety", "bob")
        assert other is not None and other.record_id == c.record_id


class TestLabels:
    """A label is stored once per label_id and never lost."""

    def test_same_label_id_is_applied_once(self, store: ReviewStore, client: Any) -> None:
        """Submitting a label twice stores one row and returns the first."""
        c = store.claim_next("safety", "alice")
        assert c is not None
        data = LabelInput(
            "label-1", "safety", c.record_id, verdicts={"toxicity": "confirm", "relevance": "reject"}, severity=2,
            note="slur", corrected_response="A polite answer.", preference="corrected", claim_id=c.claim_id,
        )  # fmt: skip
        first, applied = store.label("alice", data)
        again, applied_again = store.label("alice", LabelInput("label-1", "safety", c.record_id, severity=0))
        assert (applied, applied_again) == (True, False)
        assert again == first
        assert rows(client, "SELECT count() FROM lookout.review_labels") == [(1,)]
        stored = rows(
            client,
            "SELECT annotator, verdicts, severity, note, corrected_response, preference, source, claim_id "
            "FROM lookout.v_review_labels",
        )
        assert stored == [
            ("alice", {"toxicity": "confirm", "relevance": "reject"}, 2, "slur", "A polite answer.", "corrected",
             "ui", c.claim_id),
        ]  # fmt: skip

    def test_label_releases_claim_and_leaves_queue(self, store: ReviewStore) -> None:
        """A labeled item is no longer handed out and the backlog shrinks."""
        c = store.claim_next("safety", "alice")
        assert c is not None
        store.label("alice", LabelInput("l", "safety", c.record_id, {"toxicity": "reject"}, claim_id=c.claim_id))
        assert not store.is_active(c)
        (status,) = store.overview()
        assert (status.backlog, status.labeled, status.claimed) == (4, 1, 0)
        handed = {store.claim_next("safety", f"x{i}").record_id for i in range(4)}  # type: ignore[union-attr]
        assert c.record_id not in handed

    def test_label_after_lease_expiry_is_kept(self, store: ReviewStore, clock: ManualClock) -> None:
        """A late label (the lease expired, someone else claimed) is stored, not lost."""
        c = store.claim_next("safety", "alice")
        assert c is not None
        clock.advance(700)
        assert store.claim("safety", c.record_id, "bob").annotator == "bob"
        _, applied = store.label(
            "alice", LabelInput("late", "safety", c.record_id, {"toxicity": "reject"}, claim_id=c.claim_id)
        )
        assert applied
        assert [lab.annotator for lab in store.labels("safety", c.record_id)] == ["alice"]

    def test_invalid_labels_are_refused(self, store: ReviewStore) -> None:
        """Unknown detectors, bad severities and unknown items are one-line errors."""
        with pytest.raises(ReviewError, match="unknown detectors"):
            store.label("a", LabelInput("x", "safety", "r-0", verdicts={"nope": "confirm"}))
        with pytest.raises(ReviewError, match="severity must be 0-3"):
            store.label("a", LabelInput("x", "safety", "r-0", severity=7))
        with pytest.raises(NotFound):
            store.label("a", LabelInput("x", "safety", "missing"))


class TestAnnotators:
    """Tokens are stored only as sha256; disabled or unknown tokens do not authenticate."""

    def test_token_stored_as_hash_and_authenticates(self, store: ReviewStore, client: Any) -> None:
        """The token itself is nowhere in the table; its hash is, and it signs the annotator in."""
        token = store.add_annotator("alice", is_admin=True)
        assert rows(client, "SELECT token_sha256 FROM lookout.v_annotators") == [(token_hash(token),)]
        who = store.authenticate(token)
        assert who is not None and (who.name, who.is_admin) == ("alice", True)
        assert store.authenticate("lk_wrong") is None
        assert store.authenticate("") is None

    def test_reissue_replaces_the_token(self, store: ReviewStore) -> None:
        """Re-issuing gives a new token and keeps the role; the old token stops working."""
        old = store.add_annotator("bob", is_admin=True)
        new = store.add_annotator("bob", reissue=True)
        assert store.authenticate(old) is None
        assert store.authenticate(new) == Annotator("bob", True)

    def test_existing_name_needs_reissue_in_any_case(self, store: ReviewStore) -> None:
        """Adding a name that exists, in any letter case, is refused and leaves its token working (issue 25 f3)."""
        token = store.add_annotator("me")
        for again in ("me", "ME", "Me"):
            with pytest.raises(Conflict, match="already exists; re-issue"):
                store.add_annotator(again)
        assert store.authenticate(token) == Annotator("me", False)
        new = store.add_annotator("ME", reissue=True)
        assert store.authenticate(token) is None
        assert [a[0] for a in store.annotators()] == ["me"]
        assert store.authenticate(new) == Annotator("me", False)

    def test_bad_name_is_refused(self, store: ReviewStore) -> None:
        """Names are letters, digits and _.@- only."""
        with pytest.raises(ReviewError, match="must be 1-64 letters"):
            store.add_annotator("<script>")


class TestItems:
    """An item comes with its record's text and scores."""

    def test_item_carries_the_conversation_turns(self, client: Any, clock: ManualClock) -> None:
        """The record's earlier turns come back as (role, content) pairs, in order."""
        turns = (Message("user", "What's a good name for my puppy?"), Message("assistant", "Biscuit or Luna?"))
        scored = scored_sample("r-h")
        scored = replace(scored, sample=replace(scored.sample, history=turns))
        seed(client, DB, [scored], clock=clock)
        item = ReviewStore(client, DB, FLAGGED_TO_ONE_QUEUE, lease_s=600, clock=clock).item("safety", "r-h")
        assert item.history == (("user", "What's a good name for my puppy?"), ("assistant", "Biscuit or Luna?"))

    def test_item_joins_record(self, store: ReviewStore) -> None:
        """Prompt, response, scores and flags come from records; reasons and rule from the queue."""
        item = store.item("safety", "r-2")
        assert (item.prompt, item.response, item.flags, item.reasons, item.rule) == (
            "a prompt", "a response", ("toxicity",), ("toxicity",), "toxic",
        )  # fmt: skip
        assert item.scores["toxicity"] == pytest.approx(0.1)
