"""Feedback storage against real chDB: idempotent events, the query-time join, and the missed queue."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from agent.errors import LookoutError
from agent.export.run import export
from agent.feedback.sink import FeedbackSink
from agent.review.rules import DETECTORS
from agent.review.store import LabelInput, ReviewStore
from agent.review.testing import FLAGGED_TO_ONE_QUEUE, ManualClock, scored_sample, seed
from agent.sinks.clickhouse import RecordSink
from agent.storage.feedback import feedback_for
from agent.storage.records import ExportFilter, iter_rows
from agent.types import FeedbackEvent, FeedbackKind, ScoredSample

DB = "lookout"
TS = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)


def fb(event_id: str, kind: FeedbackKind, record_id: str = "", trace_id: str = "", **kw: Any) -> FeedbackEvent:
    kw.setdefault("value", {"thumbs_up": 1.0, "thumbs_down": -1.0}.get(kind))
    return FeedbackEvent(id=event_id, ts=TS, kind=kind, record_id=record_id, trace_id=trace_id, **kw)


def with_trace(item: ScoredSample, trace_id: str) -> ScoredSample:
    return dataclasses.replace(item, sample=dataclasses.replace(item.sample, trace_id=trace_id))


def batch(client: Any, records: list[ScoredSample], events: list[FeedbackEvent], sink: FeedbackSink) -> None:
    """One agent batch: records flushed first, then the feedback sink with the events and the records."""
    record_sink = RecordSink(client, DB, DETECTORS)
    record_sink.extend(records)
    record_sink.flush()
    sink.extend(events)
    sink.extend(records)
    sink.flush()


def rows(client: Any, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in client.query(sql).result_rows]


class TestFeedbackSink:
    """Events are stored once; negative feedback on unflagged records enters ``missed`` whichever came first."""

    def test_missed_queue_in_every_arrival_order(self, client: Any) -> None:
        """Before, with and after its record; by trace; flagged and positive ones stay out; replays add nothing."""
        sink = FeedbackSink(client, DB, "missed", 2.0, clock=ManualClock())
        early = [fb("e1", "thumbs_down", "before"), fb("e2", "report", trace_id="t-late")]
        batch(client, [], early, sink)
        assert rows(client, "SELECT count() FROM lookout.v_review_items") == [(0,)]
        records = [
            scored_sample("before", flags=()),
            scored_sample("same", flags=()),
            scored_sample("flagged"),  # toxicity flagged: the detectors caught it
            scored_sample("praised", flags=()),
            with_trace(scored_sample("traced", flags=("drift",)), "t-late"),  # drift marks a stream only
        ]
        same_batch = [
            fb("e3", "thumbs_down", "same"),
            fb("e4", "thumbs_down", "flagged"),
            fb("e5", "thumbs_up", "praised"),
        ]
        batch(client, records, same_batch, sink)
        batch(client, [scored_sample("after", flags=())], [], sink)
        later = [fb("e6", "rating", "after", value=1.0), fb("e7", "rating", "praised", value=4.0)]
        batch(client, [], later, sink)
        batch(client, records, [*early, *same_batch, *later], sink)  # a replay of everything
        got = rows(
            client,
            "SELECT record_id, reasons, rule, priority FROM lookout.v_review_items WHERE queue = 'missed' "
            "ORDER BY record_id",
        )
        assert got == [
            ("after", ["rating"], "feedback", 90),
            ("before", ["thumbs_down"], "feedback", 90),
            ("same", ["thumbs_down"], "feedback", 90),
            ("traced", ["report"], "feedback", 90),
        ]
        assert rows(client, "SELECT count(), uniqExact(event_id) FROM lookout.v_feedback") == [(7, 7)]

    def test_disabled_queue_stores_events_only(self, client: Any) -> None:
        """With an empty queue name events are stored and nothing is enqueued."""
        sink = FeedbackSink(client, DB, "", 2.0)
        batch(client, [scored_sample("r", flags=())], [fb("e", "thumbs_down", "r")], sink)
        assert rows(client, "SELECT count() FROM lookout.v_feedback") == [(1,)]
        assert rows(client, "SELECT count() FROM lookout.v_review_items") == [(0,)]


class TestJoin:
    """Per record, its own events and its trace's, oldest first, joined when read."""

    def test_feedback_for_a_record(self, client: Any) -> None:
        """Direct and trace-level events are both returned; other records' are not."""
        sink = FeedbackSink(client, DB, "", 2.0)
        events = [
            fb("a", "thumbs_down", "r1", comment="wrong", user_id="u1"),
            dataclasses.replace(fb("b", "rating", trace_id="t1", value=3.0), ts=TS.replace(hour=13)),
            fb("c", "thumbs_up", "r2"),
        ]
        batch(client, [with_trace(scored_sample("r1"), "t1"), scored_sample("r2")], events, sink)
        got = [f.to_json() for f in feedback_for(client, DB, "r1")]
        assert got == [
            {"event_id": "a", "ts": "2026-11-25T12:30:00Z", "kind": "thumbs_down", "value": -1.0, "user_id": "u1",
             "comment": "wrong", "via_trace": False},
            {"event_id": "b", "ts": "2026-11-25T13:30:00Z", "kind": "rating", "value": 3.0, "user_id": "",
             "comment": "", "via_trace": True},
        ]  # fmt: skip
        assert feedback_for(client, DB, "nope") == []
        view = rows(client, "SELECT record_id, event_id FROM lookout.v_record_feedback ORDER BY event_id")
        assert view == [("r1", "a"), ("r1", "b"), ("r2", "c")]


class TestExport:
    """Exports carry each record's feedback and can be filtered by feedback kind."""

    @pytest.fixture
    def labeled(self, client: Any) -> None:
        """r1 (flagged, labeled with a preferred correction) has two feedback events; r2 is labeled, no feedback."""
        seed(client, DB, [scored_sample("r1"), scored_sample("r2")])
        store = ReviewStore(client, DB, FLAGGED_TO_ONE_QUEUE)
        for rid in ("r1", "r2"):
            held = store.claim("safety", rid, "ann")
            store.label(
                "ann",
                LabelInput(
                    f"l-{rid}", "safety", rid, {"toxicity": "reject"}, corrected_response="better",
                    preference="corrected", claim_id=held.claim_id,
                ),
            )  # fmt: skip
        events = [fb("a", "thumbs_down", "r1", comment="no"), fb("b", "rating", "r1", value=2.0)]
        batch(client, [], events, FeedbackSink(client, DB, "", 2.0))

    @pytest.mark.parametrize("fmt", ["sft", "dpo", "jsonl"])
    def test_json_formats_hold_feedback(self, client: Any, labeled: None, tmp_path: Path, fmt: str) -> None:
        """Each line has a ``feedback`` list: r1's two events oldest first (by time, then id), r2's empty."""
        m = export(client, DB, tmp_path, fmt, ExportFilter())
        lines = [json.loads(x) for x in (tmp_path / m.files[0].path).read_text().splitlines()]
        got = {o["id"]: [(f["event_id"], f["kind"], f["value"], f["comment"]) for f in o["feedback"]] for o in lines}
        assert got == {"r1": [("a", "thumbs_down", -1.0, "no"), ("b", "rating", 2.0, "")], "r2": []}

    def test_parquet_feedback_column(self, client: Any, labeled: None, tmp_path: Path) -> None:
        """Parquet has a list-of-struct ``feedback`` column."""
        export(client, DB, tmp_path, "parquet", ExportFilter())
        table = pq.read_table(tmp_path / "records.parquet").to_pylist()
        got = {r["id"]: [(f["event_id"], f["kind"], f["ts"]) for f in r["feedback"]] for r in table}
        assert got == {"r1": [("a", "thumbs_down", TS), ("b", "rating", TS)], "r2": []}

    def test_filter_by_feedback_kind(self, client: Any, labeled: None, tmp_path: Path) -> None:
        """--feedback thumbs_down keeps r1 only; a kind nobody gave keeps nothing; an unknown kind is an error."""
        assert [r.record_id for r in iter_rows(client, DB, ExportFilter(feedback_kinds=("thumbs_down",)))] == ["r1"]
        assert list(iter_rows(client, DB, ExportFilter(feedback_kinds=("report",)))) == []
        with pytest.raises(LookoutError, match=r"unknown feedback kind\(s\) love; choose from thumbs_up, thumbs_down"):
            ExportFilter(feedback_kinds=("love",))


class TestReviewUi:
    """The annotator page and the JSON API show an item's feedback."""

    def test_item_page_and_api_show_feedback(self, client: Any) -> None:
        """The claimed item's page lists the feedback (comment escaped); the API item carries it too."""
        from fastapi.testclient import TestClient

        from agent.review.app import create_review_app

        seed(client, DB, [scored_sample("r-0")])
        events = [fb("a", "report", "r-0", comment="<script>alert(1)</script>", user_id="u-9")]
        batch(client, [], events, FeedbackSink(client, DB, "", 2.0))
        store = ReviewStore(client, DB, FLAGGED_TO_ONE_QUEUE)
        token = store.add_annotator("alice")
        http = TestClient(create_review_app(store), base_url="http://testserver.local")
        page = http.get("/review/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        http.post("/review/login", data={"csrf": csrf.group(1), "token": token}, follow_redirects=False)
        overview = re.search(r'name="csrf" value="([^"]+)"', http.get("/review/").text)
        assert overview is not None
        item = http.post("/review/queues/safety/next", data={"csrf": overview.group(1)}, follow_redirects=True)
        assert item.status_code == 200
        assert "User feedback" in item.text and "u-9" in item.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in item.text and "<script>alert" not in item.text
        api = http.get("/review/api/v1/items/safety/r-0", headers={"Authorization": f"Bearer {token}"}).json()
        assert [(f["event_id"], f["kind"], f["comment"]) for f in api["feedback"]] == [
            ("a", "report", "<script>alert(1)</script>")
        ]
