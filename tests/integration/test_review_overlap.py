"""Overlap and gold items against real chDB: two annotators per overlap item, gold items scoring annotators."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.review.gold import GoldLoad, load_gold, read_gold_file
from agent.review.overlap import is_overlap
from agent.review.store import Conflict, LabelInput, ReviewStore, Verdict
from agent.review.testing import FLAGGED_TO_ONE_QUEUE, ManualClock, scored_sample, seed
from agent.stats import collect
from agent.storage.records import ExportFilter, iter_rows
from evaluators.agreement import report

DB = "lookout"
IDS = [f"r-{i}" for i in range(8)]
GOLD = """
- queues: [safety]
  id: 7d1c7e2a-0b1e-4a57-9d6c-2b0f5c1f0a11
  tenant: acme
  model: gpt-4o-mini
  route: chat
  prompt: How do I reset my password?
  response: Figure it out yourself, idiot.
  scores: {toxicity: 0.93}
  flags: [toxicity]
  expected: {toxicity: confirm}
  severity: 2
- queues: [safety]
  id: 0f6a3c9e-5d2b-4c1a-8e7f-3a9b1c2d4e5f
  tenant: acme
  model: gpt-4o-mini
  route: chat
  prompt: What is the capital of France?
  response: Paris.
  scores: {toxicity: 0.52}
  flags: [toxicity]
  expected: {toxicity: reject}
"""
RUDE, POLITE = "7d1c7e2a-0b1e-4a57-9d6c-2b0f5c1f0a11", "0f6a3c9e-5d2b-4c1a-8e7f-3a9b1c2d4e5f"


@pytest.fixture
def clock() -> ManualClock:
    """A clock the test moves."""
    return ManualClock()


def label(store: ReviewStore, who: str, record_id: str, claim_id: str, verdict: Verdict = "reject") -> None:
    """Store ``who``'s label on the item with one toxicity verdict (a confirmed harm gets severity 2)."""
    severity = 2 if verdict == "confirm" else 0
    data = LabelInput(f"{who}-{record_id}", "safety", record_id, {"toxicity": verdict}, severity, claim_id=claim_id)
    store.label(who, data)


def drain(store: ReviewStore, who: str, verdict: Verdict = "reject") -> list[str]:
    """Label everything the queue hands ``who``, in order; the record ids."""
    got = []
    while (claim := store.claim_next("safety", who)) is not None:
        got.append(claim.record_id)
        label(store, who, claim.record_id, claim.claim_id, verdict)
    return got


def write_gold(tmp_path: Path, text: str = GOLD) -> Path:
    path = tmp_path / "gold.yaml"
    path.write_text(text)
    return path


class TestOverlap:
    """An overlap item goes to a second, different annotator and never back to the first; others take one label."""

    def test_overlap_items_take_two_annotators(self, client: Any, clock: ManualClock) -> None:
        """Alice labels all; Bob then gets exactly the overlap items; after him nobody gets anything."""
        overlap = {r for r in IDS if is_overlap("safety", r, 0.5)}
        assert 0 < len(overlap) < len(IDS)  # the hash splits these ids
        seed(client, DB, [scored_sample(r) for r in IDS], clock=clock, overlap_rate=0.5)
        stored = client.query("SELECT record_id FROM lookout.v_review_items WHERE overlap = 1").result_rows
        assert {r for (r,) in stored} == overlap
        store = ReviewStore(client, DB, FLAGGED_TO_ONE_QUEUE, clock=clock)
        assert drain(store, "alice") == IDS
        assert store.claim_next("safety", "alice") is None  # never an item she labeled
        assert next(q for q in store.overview() if q.queue == "safety").backlog == 0  # a second label is not late
        assert drain(store, "bob", "confirm") == sorted(overlap)
        assert store.claim_next("safety", "carol") is None
        both = store.labels("safety", sorted(overlap)[0])
        assert sorted(lab.annotator for lab in both) == ["alice", "bob"]

    def test_named_claims_follow_the_same_rule(self, client: Any, clock: ManualClock) -> None:
        """Claiming by id: the first annotator is refused, a second one gets it, a third is refused."""
        seed(client, DB, [scored_sample("x")], clock=clock, overlap_rate=1.0)
        store = ReviewStore(client, DB, FLAGGED_TO_ONE_QUEUE, clock=clock)
        first = store.claim("safety", "x", "alice")
        label(store, "alice", "x", first.claim_id)
        with pytest.raises(Conflict, match="already has your label"):
            store.claim("safety", "x", "alice")
        second = store.claim("safety", "x", "bob")
        label(store, "bob", "x", second.claim_id)
        with pytest.raises(Conflict, match="already labeled"):
            store.claim("safety", "x", "carol")

    def test_second_annotator_labels_blind(self, client: Any, clock: ManualClock) -> None:
        """The labeling page shows Bob none of Alice's labels on an overlap item; a normal item shows all."""
        seed(client, DB, [scored_sample("x")], clock=clock, overlap_rate=1.0)
        store = ReviewStore(client, DB, FLAGGED_TO_ONE_QUEUE, clock=clock)
        first = store.claim("safety", "x", "alice")
        label(store, "alice", "x", first.claim_id)
        store.claim("safety", "x", "bob")
        assert store.labels_shown_to("safety", "x", "bob") == []
        assert [lab.annotator for lab in store.labels_shown_to("safety", "x", "alice")] == ["alice"]
        seed(client, DB, [scored_sample("y")], clock=clock)  # overlap_rate 0
        c = store.claim("safety", "y", "alice")
        label(store, "alice", "y", c.claim_id)
        assert [lab.annotator for lab in store.labels_shown_to("safety", "y", "bob")] == ["alice"]

    def test_agreement_of_the_two_labels(self, client: Any, clock: ManualClock) -> None:
        """Two annotators who always disagree on overlap items: kappa -1 and alpha below 0 over their pairs."""
        seed(client, DB, [scored_sample(r) for r in IDS[:4]], clock=clock, overlap_rate=1.0)
        store = ReviewStore(client, DB, FLAGGED_TO_ONE_QUEUE, clock=clock)
        for i, r in enumerate(IDS[:4]):  # alice: confirm, reject, confirm, reject; bob the opposite
            mine: Verdict = "confirm" if i % 2 == 0 else "reject"
            theirs: Verdict = "reject" if mine == "confirm" else "confirm"
            label(store, "alice", r, store.claim("safety", r, "alice").claim_id, mine)
            clock.advance(1)
            label(store, "bob", r, store.claim("safety", r, "bob").claim_id, theirs)
        (row,) = report(client, DB).agreement
        assert (row.queue, row.detector, row.items, row.pairs, row.verdicts) == ("safety", "toxicity", 4, 4, 8)
        assert row.kappa == pytest.approx(-1.0)
        assert row.alpha == pytest.approx(1 - 7 * 4 / 16)  # n = 8, o_cr = 4, n_c = n_r = 4


class TestGold:
    """Gold items are served to every annotator once, look like routed items, score labels and stay out of stats."""

    def load(self, client: Any, clock: ManualClock, path: Path) -> GoldLoad:
        return load_gold(client, DB, read_gold_file(path, FLAGGED_TO_ONE_QUEUE), clock())

    def test_gold_items_score_each_annotator(self, client: Any, clock: ManualClock, tmp_path: Path) -> None:
        """With gold_share 1 each annotator gets both gold items first; the right verdicts count as correct."""
        seed(client, DB, [scored_sample(r) for r in IDS[:2]], clock=clock)
        assert self.load(client, clock, write_gold(tmp_path)) == GoldLoad(added=2)
        store = ReviewStore(client, DB, FLAGGED_TO_ONE_QUEUE, clock=clock, gold_share=1.0)
        answers: dict[str, dict[str, Verdict]] = {
            "alice": {RUDE: "confirm", POLITE: "reject"},
            "bob": {RUDE: "reject", POLITE: "reject"},
        }
        for who, verdicts in answers.items():
            got = []
            for _ in range(2):
                claim = store.claim_next("safety", who)
                assert claim is not None
                got.append(claim.record_id)
                label(store, who, claim.record_id, claim.claim_id, verdicts[claim.record_id])
            assert sorted(got) == sorted([RUDE, POLITE])
        nxt = store.claim_next("safety", "alice")
        assert nxt is not None and nxt.record_id == IDS[0]  # no gold left for alice: a routed item
        carol = drain(store, "carol")  # both gold items too (labeled by others), then the item alice does not hold
        assert sorted(carol[:2]) == sorted([RUDE, POLITE]) and carol[2:] == [IDS[1]]
        gold = {g.annotator: g for g in report(client, DB).gold}
        assert (gold["alice"].items, gold["alice"].verdicts, gold["alice"].correct) == (2, 2, 2)
        assert (gold["alice"].severities, gold["alice"].severity_correct) == (1, 1)
        assert (gold["bob"].correct, gold["bob"].accuracy) == (1, 0.5)
        assert (gold["bob"].severities, gold["bob"].severity_correct) == (1, 0)
        assert (gold["carol"].items, gold["carol"].correct) == (2, 1)

    def test_gold_item_looks_like_a_routed_item(self, client: Any, clock: ManualClock, tmp_path: Path) -> None:
        """Rule, priority, reasons, tenant, scores and flags are those of a routed item; nothing says gold."""
        seed(client, DB, [scored_sample("real")], clock=clock)
        self.load(client, clock, write_gold(tmp_path))
        store = ReviewStore(client, DB, FLAGGED_TO_ONE_QUEUE, clock=clock)
        gold, real = store.item("safety", RUDE), store.item("safety", "real")
        assert (gold.rule, gold.priority, gold.reasons, gold.control) == (real.rule, real.priority, real.reasons, False)
        assert (gold.tenant, gold.model, gold.route) == ("acme", "gpt-4o-mini", "chat")
        assert gold.response == "Figure it out yourself, idiot." and gold.flags == ("toxicity",)
        assert set(gold.scores) == set(real.scores) and gold.scores["toxicity"] == pytest.approx(0.93)
        assert gold.enqueued_at == clock.now and gold.ts == clock.now  # loaded now; the entry gives no ts

    def test_stats_and_exports_do_not_count_gold(self, client: Any, clock: ManualClock, tmp_path: Path) -> None:
        """After gold items are loaded and labeled, `lookout stats` and exports see only the routed records."""
        seed(client, DB, [scored_sample(r) for r in IDS[:3]], clock=clock)
        before = collect(client, DB)
        self.load(client, clock, write_gold(tmp_path))
        store = ReviewStore(client, DB, FLAGGED_TO_ONE_QUEUE, clock=clock, gold_share=1.0)
        claim = store.claim_next("safety", "alice")
        assert claim is not None and claim.record_id in (RUDE, POLITE)
        label(store, "alice", claim.record_id, claim.claim_id, "reject")
        real = store.claim_next("safety", "bob")
        assert real is not None
        while real is not None and real.record_id not in IDS:  # bob's gold items first
            label(store, "bob", real.record_id, real.claim_id)
            real = store.claim_next("safety", "bob")
        assert real is not None
        label(store, "bob", real.record_id, real.claim_id)
        after = collect(client, DB)
        assert after["samples"] == before["samples"] == 3
        assert after["review_queues"] == {"safety": {"items": 3, "labeled": 1}}
        status = next(q for q in store.overview() if q.queue == "safety")
        assert (status.backlog, status.claimed, status.labeled) == (2, 0, 1)
        held = store.claim_next("safety", "carol")
        assert held is not None and held.record_id in (RUDE, POLITE)  # carol holds a gold item, not a queue item
        assert next(q for q in store.overview() if q.queue == "safety").claimed == 0
        exported = [row.record_id for row in iter_rows(client, DB, ExportFilter(label_state="all"))]
        assert sorted(exported) == IDS[:3]

    def test_reload_changes_and_retires(self, client: Any, clock: ManualClock, tmp_path: Path) -> None:
        """Reloading: unchanged entries write nothing; a corrected answer replaces the old; a dropped entry retires."""
        path = write_gold(tmp_path)
        self.load(client, clock, path)
        assert self.load(client, clock, path) == GoldLoad(unchanged=2)
        clock.advance(60)
        first_only = GOLD.split("- queues")[1].replace("expected: {toxicity: confirm}", "expected: {toxicity: reject}")
        assert self.load(client, clock, write_gold(tmp_path, "- queues" + first_only)) == GoldLoad(changed=1, retired=1)
        store = ReviewStore(client, DB, FLAGGED_TO_ONE_QUEUE, clock=clock, gold_share=1.0)
        claim = store.claim_next("safety", "alice")
        assert claim is not None and claim.record_id == RUDE
        assert store.claim_next("safety", "bob") is not None
        label(store, "alice", RUDE, claim.claim_id, "reject")
        (alice,) = report(client, DB).gold
        assert (alice.verdicts, alice.correct) == (1, 1)  # scored against the corrected answer


class TestPages:
    """The labeling page says nothing of gold, and shows a second annotator none of the first one's labels."""

    def test_gold_page_and_blind_second_label(self, client: Any, tmp_path: Path) -> None:
        """Bob's first item is a gold item that reads like any other; on the overlap item Alice's note is hidden."""
        from conftest import csrf_of
        from fastapi.testclient import TestClient

        from agent.review.app import create_review_app

        seed(client, DB, [scored_sample("x", response="an ordinary answer")], overlap_rate=1.0)
        store = ReviewStore(client, DB, FLAGGED_TO_ONE_QUEUE, gold_share=1.0)
        load_gold(client, DB, read_gold_file(write_gold(tmp_path), FLAGGED_TO_ONE_QUEUE), store.now())
        first = store.claim("safety", "x", "alice")
        store.label(
            "alice",
            LabelInput("a-x", "safety", "x", {"toxicity": "reject"}, claim_id=first.claim_id),
        )
        http = TestClient(create_review_app(store), base_url="http://testserver.local")
        token = store.add_annotator("bob")
        login = http.get("/review/login")
        http.post("/review/login", data={"csrf": csrf_of(login.text), "token": token}, follow_redirects=False)
        csrf = csrf_of(http.get("/review/").text)
        page = http.post("/review/queues/safety/next", data={"csrf": csrf})
        assert page.status_code == 200 and "/review/claims/" in str(page.url)
        assert "Figure it out yourself" in page.text or "Paris." in page.text
        assert "gold" not in page.text.lower()
        mine = store.claim("safety", "x", "bob")
        page = http.get(f"/review/claims/{mine.claim_id}")
        assert page.status_code == 200 and "an ordinary answer" in page.text
        assert "Earlier labels" not in page.text and "alice" not in page.text
        # the JSON API is blind the same way: Bob's item has none of Alice's labels, an admin's has them all
        bearer = {"Authorization": f"Bearer {store.add_annotator('carol')}"}
        body = http.get("/review/api/v1/items/safety/x", headers=bearer).json()
        assert body["labels"] == [] and body["item"]["record_id"] == "x"
        admin = {"Authorization": f"Bearer {store.add_annotator('root', True)}"}
        assert [
            lab["annotator"] for lab in http.get("/review/api/v1/items/safety/x", headers=admin).json()["labels"]
        ] == ["alice"]


class TestAgreementCommand:
    """``lookout review agreement``: one JSON document; nothing to report is exit 0; an unknown queue is exit 1."""

    def test_json_and_nothing_to_report(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Empty store: the text says nothing to report, --json an empty document; a bad --queue is one line."""
        from conftest import seeded_data_dir

        from agent.cli import main

        data = seeded_data_dir(tmp_path / "data", lambda c: None)
        monkeypatch.setenv("LOOKOUT_CLICKHOUSE__DSN", f"chdb://{data}")
        assert main(["review", "agreement"]) == 0
        assert capsys.readouterr().out.startswith("nothing to report")
        assert main(["review", "agreement", "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == {"queue": None, "agreement": [], "gold": []}
        assert main(["review", "agreement", "--queue", "nope"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert err == ["lookout: error: unknown queue 'nope' (queues: none yet)"]
