"""``lookout export`` on the real embedded ClickHouse engine (chDB), seeded with records, queue items and labels."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from conftest import open_chdb, seeded_data_dir

from agent.errors import LookoutError
from agent.export.formats import NAMES, JsonlWriter
from agent.export.run import export
from agent.export.sessions import export_sessions
from agent.export.writer import ExportOptions
from agent.sinks.clickhouse import RecordSink
from agent.storage.client import Client
from agent.storage.records import ExportFilter, Row, iter_rows, parse_time
from agent.types import Message, Origin, Sample, ScoredSample

DB = "lookout"
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SCORES = ["toxicity", "prompt_toxicity", "relevance", "hallucination", "refusal"]
SPAN = {"trace_id": "tr-1", "span_id": "sp-1", "parent_span_id": "sp-0", "error": "APITimeoutError: 30 s"}
ITEM_COLUMNS = [
    "queue", "record_id", "enqueued_at", "record_ts", "tenant", "model", "route", "priority", "reasons", "rule",
    "control",
]  # fmt: skip
LABEL_COLUMNS = [
    "label_id", "queue", "record_id", "annotator", "labeled_at", "verdicts", "severity", "note",
    "corrected_response", "preference", "source",
]  # fmt: skip


def scored(
    rid: str, hours: int, tenant: str = "acme", model: str = "m1", toxicity: float = 0.1, session: str = "",
    span: bool = False,
) -> ScoredSample:  # fmt: skip
    """A stored record; with ``span``, the trace and span ids and the error of a failed call (:data:`SPAN`)."""
    sample = Sample(
        id=rid,
        ts=T0 + timedelta(hours=hours),
        prompt=f"prompt of {rid}",
        response=f"response of {rid}",
        history=(Message("system", "Be brief."), Message("user", "hi"), Message("assistant", "hello")),
        model=model,
        tenant=tenant,
        route="chat",
        context=("a passage",),
        metadata={"app": "x"},
        origin=Origin("logs", 0, hours),
        session_id=session,
    )
    if span:
        sample = dataclasses.replace(
            sample, trace_id=SPAN["trace_id"], span_id=SPAN["span_id"], parent_span_id=SPAN["parent_span_id"],
            error=SPAN["error"],
        )  # fmt: skip
    flags = ("toxicity",) if toxicity >= 0.5 else ()
    return ScoredSample(sample, {"toxicity": toxicity, "relevance": 0.9}, {"toxicity": "v1"}, flags, 0.001)


def item(queue: str, rid: str, hours: int, reasons: list[str], tenant: str = "acme") -> list[Any]:
    return [queue, rid, T0 + timedelta(days=10), T0 + timedelta(hours=hours), tenant, "m1", "chat", 1, reasons, "r", 0]


def label(
    lid: str, queue: str, rid: str, minutes: int, corrected: str | None, preference: str, **verdicts: str
) -> list[Any]:
    at = T0 + timedelta(days=11, minutes=minutes)
    return [lid, queue, rid, "ann", at, verdicts, 2, f"note {lid}", corrected, preference, "ui"]


def seed(client: Client) -> None:
    """r1..r7 reviewed (r6's record is missing, r4 is unlabeled), r8 never queued; r5 stored twice with two ts.

    Sessions: acme/s-a holds t-a0, r1, t-a2 (the t-* never queued), beta/s-a holds r3 (another tenant's session
    of the same id), acme/s-b holds r4 and r7; r2, r5 and r8 belong to no session.
    """
    sink = RecordSink(client, DB, SCORES)
    sink.write(
        [
            scored("t-a0", 0, session="s-a"),
            scored("r1", 1, toxicity=0.9, session="s-a", span=True),
            scored("r2", 2, model="m2"),
            scored("r3", 3, tenant="beta", session="s-a"),
            scored("r4", 4, session="s-b"),
            scored("r5", 5),
            scored("r7", 7, toxicity=0.8, session="s-b"),
            scored("r8", 8),
            scored("t-a2", 9, model="m2", session="s-a"),
        ]
    )
    sink.write([scored("r5", 6)])  # the same id re-delivered with another ts: a second row in v_records
    client.insert(
        f"{DB}.review_items",
        [
            item("tox", "r1", 1, ["toxicity"]),
            item("tox", "r2", 2, ["toxicity"]),
            item("tox", "r3", 3, ["toxicity"], tenant="beta"),
            item("rel", "r4", 4, ["relevance"]),
            item("tox", "r5", 5, ["toxicity"]),
            item("tox", "r7", 7, ["toxicity"]),
            item("rel", "r7", 7, ["relevance"]),
        ],
        column_names=ITEM_COLUMNS,
    )
    client.insert(
        f"{DB}.review_labels",
        [
            label("l1a", "tox", "r1", 1, "first fix of r1", "corrected", toxicity="confirm"),
            label("l1b", "tox", "r1", 2, "better fix of r1", "corrected", toxicity="confirm"),
            label("l2", "tox", "r2", 3, "worse than r2", "original", toxicity="reject"),
            label("l3", "tox", "r3", 4, None, "none", toxicity="reject"),
            label("l5", "tox", "r5", 5, "fix of r5", "none"),
            label("l6", "tox", "r6", 6, "fix of a missing record", "corrected"),
            label("l7a", "rel", "r7", 7, None, "none", relevance="confirm"),
            label("l7b", "tox", "r7", 8, "fix of r7", "corrected", toxicity="confirm"),
        ],
        column_names=LABEL_COLUMNS,
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, seeded chDB directory, closed again (tests open it, or run ``lookout`` on it)."""
    return seeded_data_dir(tmp_path_factory.mktemp("export") / "data", seed)


@pytest.fixture
def client(data_dir: Path) -> Iterator[Client]:
    """A client on the seeded directory, closed after the test."""
    with open_chdb(data_dir) as c:
        yield c


def ids(client: Client, filt: ExportFilter) -> list[str]:
    return [r.record_id for r in iter_rows(client, DB, filt)]


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def manifest(out: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return loaded


class TestParseTime:
    """--since/--until values."""

    def test_relative_ages_count_back_from_now(self) -> None:
        """7d, 12h, 30m, 2w and 45s are that long before now."""
        now = datetime(2026, 11, 27, tzinfo=UTC)
        assert parse_time("7d", now) == now - timedelta(days=7)
        assert parse_time("12h", now) == now - timedelta(hours=12)
        assert parse_time("30m", now) == now - timedelta(minutes=30)
        assert parse_time("2w", now) == now - timedelta(weeks=2)
        assert parse_time("45s", now) == now - timedelta(seconds=45)

    def test_rfc3339_with_z_offset_or_none(self) -> None:
        """Z and offsets convert to UTC; a time without offset is UTC."""
        assert parse_time("2026-11-25T08:00:00Z") == datetime(2026, 11, 25, 8, tzinfo=UTC)
        assert parse_time("2026-11-25T10:00:00+02:00") == datetime(2026, 11, 25, 8, tzinfo=UTC)
        assert parse_time("2026-11-25T08:00:00") == datetime(2026, 11, 25, 8, tzinfo=UTC)

    def test_garbage_is_a_one_line_error(self) -> None:
        """An unparseable value says which forms are accepted."""
        with pytest.raises(LookoutError, match=r"invalid time 'yesterday'; use RFC 3339 .* 7d"):
            parse_time("yesterday")


class TestSelect:
    """Which rows an export holds, once per record id, in (ts, id) order."""

    def test_default_is_labeled_records_in_ts_order_with_missing_records_last(self, client: Client) -> None:
        """Labeled ids only; r6 (no record) comes after the records."""
        assert ids(client, ExportFilter()) == ["r1", "r2", "r3", "r5", "r7", "r6"]

    def test_include_unlabeled_adds_queued_items_without_a_label(self, client: Client) -> None:
        """label_state all adds r4; unlabeled gives only r4; r8 was never queued and never appears."""
        assert ids(client, ExportFilter(label_state="all")) == ["r1", "r2", "r3", "r4", "r5", "r7", "r6"]
        assert ids(client, ExportFilter(label_state="unlabeled")) == ["r4"]

    def test_latest_label_wins_and_labels_are_counted(self, client: Client) -> None:
        """r1 has two labels: the later one is exported, n_labels says 2."""
        row = next(r for r in iter_rows(client, DB, ExportFilter()) if r.record_id == "r1")
        assert row.label is not None
        assert (row.label.label_id, row.label.corrected_response, row.label.n_labels) == ("l1b", "better fix of r1", 2)

    def test_record_stored_twice_with_two_ts_is_one_row_the_latest_copy(self, client: Client) -> None:
        """r5 appears once, with the ts of its latest ingested copy."""
        rows = [r for r in iter_rows(client, DB, ExportFilter()) if r.record_id == "r5"]
        assert len(rows) == 1
        assert rows[0].record is not None and rows[0].record["ts"] == "2026-11-20T18:00:00Z"

    def test_record_in_two_queues_is_one_row_with_both_queues(self, client: Client) -> None:
        """r7 is queued in tox and rel: one row, both queues, both reasons."""
        row = next(r for r in iter_rows(client, DB, ExportFilter()) if r.record_id == "r7")
        assert row.queued is not None
        assert (row.queued.queues, row.queued.reasons) == (("rel", "tox"), ("relevance", "toxicity"))

    def test_time_tenant_model_route_filters(self, client: Client) -> None:
        """since/until bound ts (until exclusive); tenant, model and route match exactly."""
        assert ids(client, ExportFilter(since=T0 + timedelta(hours=2), until=T0 + timedelta(hours=5))) == ["r2", "r3"]
        assert ids(client, ExportFilter(tenants=("beta",))) == ["r3"]
        assert ids(client, ExportFilter(models=("m2",))) == ["r2"]
        assert ids(client, ExportFilter(routes=("chat",))) == ["r1", "r2", "r3", "r5", "r7"]
        assert ids(client, ExportFilter(routes=("other",))) == []

    def test_queue_filter_scopes_labels_and_items(self, client: Client) -> None:
        """In queue rel only r7's rel label counts (l7a), and r4 is its unlabeled item."""
        assert ids(client, ExportFilter(queues=("rel",), label_state="all")) == ["r4", "r7"]
        row = next(r for r in iter_rows(client, DB, ExportFilter(queues=("rel",))) if r.record_id == "r7")
        assert row.label is not None and row.label.label_id == "l7a"

    def test_detector_filter_matches_flags_reasons_and_verdicts(self, client: Client) -> None:
        """relevance: r7 (verdict and reason) and r4 (reason); toxicity flags, reasons or verdicts elsewhere."""
        assert ids(client, ExportFilter(detectors=("relevance",), label_state="all")) == ["r4", "r7"]
        assert ids(client, ExportFilter(detectors=("toxicity",))) == ["r1", "r2", "r3", "r5", "r7"]

    def test_unknown_detector_lists_valid_names(self) -> None:
        """A detector name that is not registered is a one-line error naming the valid ones."""
        with pytest.raises(LookoutError, match=r"unknown detector\(s\) toxic; choose from toxicity, "):
            ExportFilter(detectors=("toxic",))


class TestFormats:
    """Each format on the seeded data: rows written plus rows skipped equal the query rows."""

    def test_sft_default_drops_earlier_turns_keeping_system(self, client: Client, tmp_path: Path) -> None:
        """Default (none): system turns, the prompt, the corrected response; the unreviewed turns are gone."""
        m = export(client, DB, tmp_path, "sft", ExportFilter())
        out = lines(tmp_path / "sft.jsonl")
        assert [o["id"] for o in out] == ["r1", "r5", "r7"]
        assert out[0]["messages"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "prompt of r1"},
            {"role": "assistant", "content": "better fix of r1"},
        ]
        assert all(o["messages"][-1]["role"] == "assistant" for o in out)
        assert [t for o in out for t in o["messages"][:-1] if t["role"] == "assistant"] == []
        assert m.skipped == {"no_corrected_response": 1, "original_preferred": 1, "record_missing": 1}
        assert manifest(tmp_path)["exports"]["sft"]["options"] == {"sft_history": "none"}

    def test_sft_context_is_a_prompt_completion_row(self, client: Client, tmp_path: Path) -> None:
        """context: the whole conversation is the prompt, the correction the only completion (TRL's format)."""
        export(client, DB, tmp_path, "sft", ExportFilter(), options=ExportOptions(sft_history="context"))
        first = lines(tmp_path / "sft.jsonl")[0]
        assert set(first) == {"id", "prompt", "completion", "feedback"}
        assert first["prompt"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "prompt of r1"},
        ]
        assert first["completion"] == [{"role": "assistant", "content": "better fix of r1"}]
        assert manifest(tmp_path)["exports"]["sft"]["options"] == {"sft_history": "context"}

    def test_sft_weighted_marks_earlier_assistant_turns_weight_0(self, client: Client, tmp_path: Path) -> None:
        """weighted: earlier assistant turns carry weight 0, the correction weight 1 (OpenAI's chat format)."""
        export(client, DB, tmp_path, "sft", ExportFilter(), options=ExportOptions(sft_history="weighted"))
        first = lines(tmp_path / "sft.jsonl")[0]
        assert first["messages"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello", "weight": 0},
            {"role": "user", "content": "prompt of r1"},
            {"role": "assistant", "content": "better fix of r1", "weight": 1},
        ]

    def test_dpo_chosen_follows_the_preference(self, client: Client, tmp_path: Path) -> None:
        """corrected: chosen is the correction; original: chosen is the logged response; none: skipped."""
        m = export(client, DB, tmp_path, "dpo", ExportFilter())
        out = {o["id"]: o for o in lines(tmp_path / "dpo.jsonl")}
        assert sorted(out) == ["r1", "r2", "r7"]
        assert out["r1"]["chosen"] == [{"role": "assistant", "content": "better fix of r1"}]
        assert out["r1"]["rejected"] == [{"role": "assistant", "content": "response of r1"}]
        assert out["r2"]["chosen"] == [{"role": "assistant", "content": "response of r2"}]
        assert out["r2"]["rejected"] == [{"role": "assistant", "content": "worse than r2"}]
        assert out["r1"]["prompt"][-1] == {"role": "user", "content": "prompt of r1"}
        assert m.skipped == {"no_corrected_response": 1, "no_preference": 1, "record_missing": 1}

    def test_jsonl_holds_records_scores_queues_and_labels(self, client: Client, tmp_path: Path) -> None:
        """Every record field, float32 scores as short decimals, the review block and the latest label."""
        m = export(client, DB, tmp_path, "jsonl", ExportFilter())
        out = {o["id"]: o for o in lines(tmp_path / "records.jsonl")}
        r1 = out["r1"]
        assert r1["scores"] == {
            "toxicity": 0.9, "prompt_toxicity": None, "relevance": 0.9, "hallucination": None, "refusal": None,
            "repetition": None, "tone": None, "formality": None,
        }  # fmt: skip
        assert (r1["ts"], r1["tenant"], r1["flags"]) == ("2026-11-20T13:00:00Z", "acme", ["toxicity"])
        assert r1["metadata"] == {"app": "x"} and r1["history"][0] == {"role": "system", "content": "Be brief."}
        assert r1["label"]["verdicts"] == {"toxicity": "confirm"}
        assert r1["label"]["labeled_at"] == "2026-12-01T12:02:00Z"
        assert r1["review"]["queues"] == ["tox"]
        assert m.skipped == {"record_missing": 1}

    def test_parquet_has_one_typed_row_per_record(self, client: Client, tmp_path: Path) -> None:
        """Same rows as jsonl, flattened: one float32 column per detector, label columns prefixed."""
        m = export(client, DB, tmp_path, "parquet", ExportFilter())
        table = pq.read_table(tmp_path / "records.parquet")
        assert table.column("id").to_pylist() == ["r1", "r2", "r3", "r5", "r7"]
        assert str(table.schema.field("toxicity").type) == "float"
        assert table.column("label_id").to_pylist() == ["l1b", "l2", "l3", "l5", "l7b"]
        assert m.files[0].rows == 5 and m.skipped == {"record_missing": 1}

    def test_labelstudio_tasks_carry_record_id_and_the_label_as_annotation(
        self, client: Client, tmp_path: Path
    ) -> None:
        """A JSON array of tasks; a labeled record's label is an annotation result in the config's names."""
        export(client, DB, tmp_path, "labelstudio", ExportFilter())
        tasks = json.loads((tmp_path / "labelstudio_tasks.json").read_text(encoding="utf-8"))
        assert [t["data"]["record_id"] for t in tasks] == ["r1", "r2", "r3", "r5", "r7"]
        result = {r["from_name"]: r["value"] for r in tasks[0]["annotations"][0]["result"]}
        assert result == {
            "verdict_toxicity": {"choices": ["confirm"]},
            "severity": {"rating": 2},
            "note": {"text": ["note l1b"]},
            "corrected_response": {"text": ["better fix of r1"]},
            "preference": {"choices": ["corrected"]},
        }

    def test_argilla_records_follow_the_v2_record_dict(self, client: Client, tmp_path: Path) -> None:
        """id, fields, metadata, suggestions (the lookout label), responses, vectors, _server_id."""
        export(client, DB, tmp_path, "argilla", ExportFilter())
        records = json.loads((tmp_path / "argilla_records.json").read_text(encoding="utf-8"))
        first = records[0]
        assert set(first) == {"id", "fields", "metadata", "suggestions", "responses", "vectors", "_server_id"}
        assert first["fields"]["prompt"] == "prompt of r1"
        assert first["suggestions"]["corrected_response"] == {
            "value": "better fix of r1", "score": None, "agent": "lookout:ann",
        }  # fmt: skip
        assert first["metadata"]["toxicity"] == 0.9

    @pytest.mark.parametrize("fmt", NAMES)
    def test_written_plus_skipped_equals_query_rows(self, client: Client, tmp_path: Path, fmt: str) -> None:
        """No row is silently dropped, with or without unlabeled items."""
        for state in ("labeled", "all"):
            m = export(client, DB, tmp_path / state, fmt, ExportFilter(label_state=state))
            assert m.query_rows == (6 if state == "labeled" else 7)
            assert m.files[0].rows + sum(m.skipped.values()) == m.query_rows

    def test_unlabeled_rows_are_skipped_by_training_formats(self, client: Client, tmp_path: Path) -> None:
        """With --include-unlabeled, sft and dpo count r4 as unlabeled; jsonl writes it with label null."""
        assert export(client, DB, tmp_path / "s", "sft", ExportFilter(label_state="all")).skipped["unlabeled"] == 1
        export(client, DB, tmp_path / "j", "jsonl", ExportFilter(label_state="all"))
        r4 = next(o for o in lines(tmp_path / "j" / "records.jsonl") if o["id"] == "r4")
        assert r4["label"] is None and r4["review"]["reasons"] == ["relevance"]

    def test_span_session_and_error_fields_in_jsonl_and_parquet(self, client: Client, tmp_path: Path) -> None:
        """trace_id, span_id, parent_span_id, session_id, error and latency_ms are record fields in both files."""
        export(client, DB, tmp_path, "jsonl", ExportFilter())
        export(client, DB, tmp_path, "parquet", ExportFilter())
        fields = ("trace_id", "span_id", "parent_span_id", "session_id", "error")
        out = {o["id"]: o for o in lines(tmp_path / "records.jsonl")}
        assert {f: out["r1"][f] for f in fields} == {**SPAN, "session_id": "s-a"}
        assert {f: out["r2"][f] for f in fields} == dict.fromkeys(fields, "")
        table = pq.read_table(tmp_path / "records.parquet").to_pylist()
        r1 = next(r for r in table if r["id"] == "r1")
        assert {f: r1[f] for f in fields} == {**SPAN, "session_id": "s-a"}
        assert str(pq.read_schema(tmp_path / "records.parquet").field("session_id").type) == "string"


def turn_ids(session: dict[str, Any]) -> list[tuple[str, bool]]:
    return [(t["id"], t["matched"]) for t in session["turns"]]


class TestSessions:
    """``--group-by session``: one conversation per session, every stored turn, sessions chosen by the filters."""

    def test_one_line_per_session_with_every_turn_in_ts_order(self, client: Client, tmp_path: Path) -> None:
        """Sessions by first turn; turns in ts order; unreviewed turns included, unmatched; a tenant splits an id."""
        m = export_sessions(client, DB, tmp_path, "jsonl", ExportFilter())
        out = lines(tmp_path / "sessions.jsonl")
        assert [(o["tenant"], o["session_id"]) for o in out] == [("acme", "s-a"), ("beta", "s-a"), ("acme", "s-b")]
        assert all(set(o) == {"session_id", "tenant", "turns"} for o in out)
        assert turn_ids(out[0]) == [("t-a0", False), ("r1", True), ("t-a2", False)]
        assert turn_ids(out[1]) == [("r3", True)]
        assert turn_ids(out[2]) == [("r4", False), ("r7", True)]  # r4 is unlabeled: not matched by default
        t_a0, r1, t_a2 = out[0]["turns"]
        assert [t["ts"] for t in out[0]["turns"]] == sorted(t["ts"] for t in out[0]["turns"])
        assert (r1["prompt"], r1["response"], r1["model"], r1["flags"]) == (
            "prompt of r1", "response of r1", "m1", ["toxicity"]
        )  # fmt: skip
        assert r1["label"]["label_id"] == "l1b" and r1["review"]["queues"] == ["tox"] and r1["span_id"] == "sp-1"
        assert (t_a0["label"], t_a0["review"], t_a0["feedback"]) == (None, None, [])
        assert t_a2["model"] == "m2" and t_a2["scores"]["toxicity"] == 0.1
        assert (m.query_rows, m.skipped, m.files[0].rows) == (6, {"no_session": 2, "record_missing": 1}, 3)
        entry = manifest(tmp_path)["exports"]["jsonl:session"]
        assert (entry["format"], entry["options"], entry["written"]) == ("jsonl", {"group_by": "session"}, 3)

    def test_filters_choose_sessions_and_whole_sessions_are_written(self, client: Client, tmp_path: Path) -> None:
        """--since matches r5 and r7 only: r7's session comes with r4, from before --since; r5 has no session."""
        m = export_sessions(client, DB, tmp_path, "jsonl", ExportFilter(since=T0 + timedelta(hours=5)))
        (only,) = lines(tmp_path / "sessions.jsonl")
        assert (only["session_id"], turn_ids(only)) == ("s-b", [("r4", False), ("r7", True)])
        assert m.skipped == {"no_session": 1}
        export_sessions(client, DB, tmp_path, "jsonl", ExportFilter(tenants=("beta",)))
        assert [(o["tenant"], turn_ids(o)) for o in lines(tmp_path / "sessions.jsonl")] == [("beta", [("r3", True)])]
        export_sessions(client, DB, tmp_path, "jsonl", ExportFilter(label_state="all"))
        assert turn_ids(lines(tmp_path / "sessions.jsonl")[2]) == [("r4", True), ("r7", True)]

    def test_parquet_has_one_row_per_session_with_turn_structs(self, client: Client, tmp_path: Path) -> None:
        """sessions.parquet: session_id, tenant and turns (the records.parquet columns plus matched) per row."""
        export_sessions(client, DB, tmp_path, "parquet", ExportFilter())
        table = pq.read_table(tmp_path / "sessions.parquet")
        assert table.column_names == ["session_id", "tenant", "turns"]
        rows = table.to_pylist()
        assert [(r["tenant"], r["session_id"]) for r in rows] == [("acme", "s-a"), ("beta", "s-a"), ("acme", "s-b")]
        assert [(t["id"], t["matched"]) for t in rows[0]["turns"]] == [("t-a0", False), ("r1", True), ("t-a2", False)]
        r1 = rows[0]["turns"][1]
        assert (r1["label_id"], r1["error"], r1["session_id"], r1["toxicity"]) == (
            "l1b", "APITimeoutError: 30 s", "s-a", pytest.approx(0.9)
        )  # fmt: skip
        assert rows[0]["turns"][0]["label_id"] is None

    def test_rerun_is_byte_identical(self, client: Client, tmp_path: Path) -> None:
        """The same filters on the same data give the same session files."""
        for fmt in ("jsonl", "parquet"):
            a = export_sessions(client, DB, tmp_path / "a", fmt, ExportFilter(label_state="all"))
            b = export_sessions(client, DB, tmp_path / "b", fmt, ExportFilter(label_state="all"))
            assert [f.sha256 for f in a.files] == [f.sha256 for f in b.files]

    def test_only_jsonl_and_parquet_hold_sessions(self, client: Client, tmp_path: Path) -> None:
        """Another format is a one-line error, before any file is written."""
        with pytest.raises(LookoutError, match=r"^--group-by session writes jsonl or parquet, not sft$"):
            export_sessions(client, DB, tmp_path / "out", "sft", ExportFilter())
        assert not (tmp_path / "out").exists()


class TestExportRun:
    """Files, manifest, determinism, atomicity."""

    @pytest.mark.parametrize("fmt", NAMES)
    def test_rerun_gives_byte_identical_files(self, client: Client, tmp_path: Path, fmt: str) -> None:
        """Same filters and data twice: identical data files and sha256; only created_at may differ."""
        a = export(client, DB, tmp_path / "a", fmt, ExportFilter(label_state="all"))
        b = export(client, DB, tmp_path / "b", fmt, ExportFilter(label_state="all"))
        assert [f.sha256 for f in a.files] == [f.sha256 for f in b.files]
        for f in a.files:
            assert (tmp_path / "a" / f.path).read_bytes() == (tmp_path / "b" / f.path).read_bytes()
        ma, mb = manifest(tmp_path / "a"), manifest(tmp_path / "b")
        ma["exports"][fmt].pop("created_at"), mb["exports"][fmt].pop("created_at")
        assert ma == mb

    def test_manifest_lists_files_with_rows_and_sha256(self, client: Client, tmp_path: Path) -> None:
        """manifest.json: the format's entry (files with rows and sha256, filters, counts, version) and all files."""
        since = T0 - timedelta(days=1)
        export(client, DB, tmp_path, "jsonl", ExportFilter(since=since, tenants=("acme",)))
        doc = manifest(tmp_path)
        data = (tmp_path / "records.jsonl").read_bytes()
        files = [{"path": "records.jsonl", "rows": 4, "sha256": hashlib.sha256(data).hexdigest()}]
        assert doc["manifest_version"] == 2 and list(doc["exports"]) == ["jsonl"]
        m = doc["exports"]["jsonl"]
        assert m["files"] == files and doc["files"] == [{**files[0], "format": "jsonl"}]
        assert m["filters"]["since"] == "2026-11-19T12:00:00Z" and m["filters"]["tenants"] == ["acme"]
        assert (m["format"], m["query_rows"], m["written"], m["skipped"], m["options"]) == ("jsonl", 4, 4, {}, {})
        assert m["lookout_version"] and m["created_at"].endswith("Z")

    def test_formats_exported_into_one_directory_share_one_manifest(self, client: Client, tmp_path: Path) -> None:
        """jsonl, sft and dpo into one --out: one manifest with three entries and every file, each verifiable."""
        for fmt in ("jsonl", "sft", "dpo"):
            export(client, DB, tmp_path, fmt, ExportFilter())
        doc = manifest(tmp_path)
        assert sorted(doc["exports"]) == ["dpo", "jsonl", "sft"]
        assert [(f["path"], f["format"], f["rows"]) for f in doc["files"]] == [
            ("dpo.jsonl", "dpo", 3), ("records.jsonl", "jsonl", 5), ("sft.jsonl", "sft", 3),
        ]  # fmt: skip
        for f in doc["files"]:
            assert hashlib.sha256((tmp_path / f["path"]).read_bytes()).hexdigest() == f["sha256"]
            assert len((tmp_path / f["path"]).read_text(encoding="utf-8").splitlines()) == f["rows"]

    def test_exporting_a_format_again_replaces_only_its_entry(self, client: Client, tmp_path: Path) -> None:
        """A second sft export (other filters) replaces the sft entry; the jsonl entry stays as it was."""
        export(client, DB, tmp_path, "jsonl", ExportFilter())
        export(client, DB, tmp_path, "sft", ExportFilter())
        jsonl_before = manifest(tmp_path)["exports"]["jsonl"]
        export(client, DB, tmp_path, "sft", ExportFilter(tenants=("beta",)))
        doc = manifest(tmp_path)
        assert doc["exports"]["jsonl"] == jsonl_before
        assert doc["exports"]["sft"]["filters"]["tenants"] == ["beta"]
        assert doc["exports"]["sft"]["files"][0]["rows"] == 0

    def test_a_version_1_manifest_is_kept_as_an_entry(self, client: Client, tmp_path: Path) -> None:
        """A manifest written before (one export at the top level) becomes that format's entry."""
        old = {"format": "dpo", "files": [{"path": "dpo.jsonl", "rows": 3, "sha256": "ab"}], "query_rows": 5}
        (tmp_path / "manifest.json").write_text(json.dumps(old), encoding="utf-8")
        export(client, DB, tmp_path, "sft", ExportFilter())
        doc = manifest(tmp_path)
        assert doc["exports"]["dpo"] == old and sorted(doc["exports"]) == ["dpo", "sft"]

    @pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"some": "other file"}'])
    def test_a_foreign_manifest_stops_the_export_before_any_file(
        self, client: Client, tmp_path: Path, content: str
    ) -> None:
        """A manifest.json lookout did not write is an error naming the file; nothing in DIR changes."""
        (tmp_path / "manifest.json").write_text(content, encoding="utf-8")
        with pytest.raises(LookoutError, match="is not a lookout export manifest; move it away"):
            export(client, DB, tmp_path, "sft", ExportFilter())
        assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]

    def test_a_planted_manifest_link_is_not_followed(self, client: Client, tmp_path: Path) -> None:
        """A symlink at manifest.json is neither read nor written through: the export stops, the target is intact."""
        victim = tmp_path / "victim.json"
        victim.write_text('{"format": "jsonl", "files": []}', encoding="utf-8")
        out = tmp_path / "out"
        out.mkdir()
        (out / "manifest.json").symlink_to(victim)
        with pytest.raises(LookoutError, match=r"cannot read .*manifest\.json"):
            export(client, DB, out, "sft", ExportFilter())
        assert victim.read_text(encoding="utf-8") == '{"format": "jsonl", "files": []}'

    def test_failure_leaves_no_partial_file(
        self, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An error mid-export removes the temp file and writes no manifest; an earlier export stays intact."""
        export(client, DB, tmp_path, "jsonl", ExportFilter())
        before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
        original = JsonlWriter.add

        def add(self: JsonlWriter, row: Row) -> str | None:
            if self.out.rows == 2:
                raise OSError("disk full")
            return original(self, row)

        monkeypatch.setattr(JsonlWriter, "add", add)
        with pytest.raises(OSError, match="disk full"):
            export(client, DB, tmp_path, "jsonl", ExportFilter(label_state="all"))
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before

    def test_progress_reports_rows(self, client: Client, tmp_path: Path) -> None:
        """The progress callback ends with the total row count."""
        seen: list[int] = []
        export(client, DB, tmp_path, "sft", ExportFilter(), progress=seen.append)
        assert seen[-1] == 6

    def test_unknown_format_lists_valid_names(self, client: Client, tmp_path: Path) -> None:
        """A wrong format name is a one-line error with the choices."""
        with pytest.raises(LookoutError, match="unknown export format 'csv'; choose from sft, dpo, jsonl"):
            export(client, DB, tmp_path, "csv", ExportFilter())


class TestExportCommand:
    """``lookout export`` as a process, settings only through LOOKOUT_* variables."""

    def test_export_writes_files_and_prints_counts(self, data_dir: Path, tmp_path: Path) -> None:
        """Exit 0, a manifest matching the files, one summary line on stderr."""
        env = {"LOOKOUT_CLICKHOUSE__DSN": f"chdb://{data_dir}", "PATH": "/usr/bin:/bin"}
        out = tmp_path / "out"
        proc = subprocess.run(
            [sys.executable, "-m", "agent", "export", "--out", str(out), "--format", "dpo", "--detector", "toxicity",
             "--since", "2026-11-20T00:00:00Z", "--include-unlabeled"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.strip().splitlines()[-1] == (
            f"wrote dpo.jsonl (3 rows) to {out}; 5 records matched, 2 skipped (no_corrected_response 1, "
            "no_preference 1)"
        )
        assert manifest(out)["exports"]["dpo"]["filters"]["label_state"] == "all"

    def test_sft_history_option_reaches_the_rows_and_is_refused_for_other_formats(
        self, data_dir: Path, tmp_path: Path
    ) -> None:
        """--sft-history context writes prompt-completion rows; with --format dpo it is a one-line error."""
        env = {"LOOKOUT_CLICKHOUSE__DSN": f"chdb://{data_dir}", "PATH": "/usr/bin:/bin"}
        out = tmp_path / "out"
        base = [sys.executable, "-m", "agent", "export", "--out", str(out), "--tenant", "beta", "--sft-history"]
        proc = subprocess.run(
            [*base, "context", "--format", "sft"], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.strip().splitlines()[-1] == (
            f"wrote sft.jsonl (0 rows) to {out}; 1 record matched, 1 skipped (no_corrected_response 1)"
        )
        assert manifest(out)["exports"]["sft"]["options"] == {"sft_history": "context"}
        refused = subprocess.run(
            [*base, "none", "--format", "dpo"], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert refused.returncode == 1
        assert refused.stderr.strip().splitlines() == [
            "lookout: error: --sft-history applies to --format sft only, not dpo"
        ]

    def test_group_by_session_says_what_was_left_out(self, data_dir: Path, tmp_path: Path) -> None:
        """--group-by session: one stderr line for records without a session_id, then the summary; sft refused."""
        env = {"LOOKOUT_CLICKHOUSE__DSN": f"chdb://{data_dir}", "PATH": "/usr/bin:/bin"}
        out = tmp_path / "out"
        base = [sys.executable, "-m", "agent", "export", "--out", str(out), "--group-by", "session", "--format"]
        proc = subprocess.run([*base, "jsonl"], env=env, capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.strip().splitlines()[-2:] == [
            "2 matched records have no session_id; left out",
            f"wrote sessions.jsonl (3 rows) to {out}; 6 records matched, 3 skipped (no_session 2, record_missing 1)",
        ]
        assert len(lines(out / "sessions.jsonl")) == 3
        refused = subprocess.run([*base, "sft"], env=env, capture_output=True, text=True, timeout=120, check=False)
        assert refused.returncode == 1
        assert refused.stderr.strip().splitlines() == [
            "lookout: error: --group-by session applies to --format jsonl or parquet, not sft"
        ]

    def test_bad_time_is_one_line_and_exit_1(self, data_dir: Path, tmp_path: Path) -> None:
        """An invalid --since prints lookout: error: ... and exits 1."""
        env = {"LOOKOUT_CLICKHOUSE__DSN": f"chdb://{data_dir}", "PATH": "/usr/bin:/bin"}
        proc = subprocess.run(
            [sys.executable, "-m", "agent", "export", "--out", str(tmp_path), "--format", "sft", "--since", "soon"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert proc.returncode == 1
        assert proc.stderr.strip().splitlines() == [
            "lookout: error: invalid time 'soon'; use RFC 3339 (2026-11-25T08:00:00Z) or an age such as 7d, 12h, 30m"
        ]
