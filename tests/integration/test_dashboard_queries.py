"""Every dashboard panel query, variable query and ClickHouse alert query, run on the real schema in chDB.

No Grafana runs here, so each query is expanded by :mod:`dashboards.macros` (the ClickHouse plugin's macros and
Grafana's variable formatting) and executed on a database migrated by ``agent.storage.migrations.migrate`` and
seeded with records, drift windows, dead letters, runs and review items.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.config import Settings
from agent.storage.client import Client
from agent.storage.migrations import migrate
from dashboards.build import bundle
from dashboards.common import SqlQuery
from dashboards.macros import ALL, QueryContext, expand

DB = "lookout"
NOW = datetime.now(UTC).replace(microsecond=0)
BUNDLE = bundle(Settings())
QUERIES = [q for board in BUNDLE.boards for q in board.queries]
CH_RULES = [r for r in BUNDLE.rules if r.source == "clickhouse"]

ALL_SELECTED = {"tenant": [ALL], "model": [ALL], "route": [ALL], "stream": [ALL], "queue": [ALL]}
SOME_SELECTED = {
    "tenant": ["acme", "globex"],
    "model": ["gpt-4o-mini"],
    "route": ["docs-qa", "chat"],
    "stream": ["embedding:response"],
    "queue": ["toxicity"],
}

RECORD_COLUMNS = [
    "id", "ts", "ingested_at", "tenant", "user_id", "model", "route", "prompt", "response", "prompt_tokens",
    "completion_tokens", "cost_usd", "toxicity", "prompt_toxicity", "relevance", "hallucination", "refusal", "flags",
    "src_topic", "src_partition", "src_offset",
]  # fmt: skip


def _record(i: int, ts: datetime, model: str, tenant: str, route: str, **over: Any) -> list[Any]:
    toxic = over.get("toxic", False)
    halluc = over.get("halluc", False)
    flags = [n for n, on in (("toxicity", toxic), ("hallucination", halluc)) if on]
    return [
        f"r-{i:05d}", ts, NOW, tenant, f"u-{i % 3}", model, route, f"prompt {i}", f"response {i}", 10, 20,
        over.get("cost", 0.001), 0.9 if toxic else 0.05, 0.1, 0.8, 0.9 if halluc else 0.1, 0.0, flags, "logs", 0, i,
    ]  # fmt: skip


def seed(client: Client) -> None:
    """Records over 26 hours, drift windows, dead letters, runs, and a review queue with an old item."""
    rows = []
    i = 0
    for k in range(40):  # last 5 minutes: 30% toxic on gpt-4o-mini, expensive for acme
        rows.append(_record(i, NOW - timedelta(seconds=5 + k * 5), "gpt-4o-mini", "acme", "docs-qa",
                            toxic=k % 10 < 3, cost=0.2))  # fmt: skip
        i += 1
    for k in range(60):  # last hour: claude hallucinates 30%
        rows.append(
            _record(i, NOW - timedelta(minutes=10 + k / 2), "claude-3-haiku", "globex", "chat", halluc=k % 10 < 3)
        )
        i += 1
    for k in range(60):  # same hour yesterday: 5%
        rows.append(_record(i, NOW - timedelta(hours=24, minutes=10 + k / 2), "claude-3-haiku", "globex", "chat",
                            halluc=k % 20 == 0))  # fmt: skip
        i += 1
    client.insert(f"{DB}.records", rows, column_names=RECORD_COLUMNS)
    signals = []  # last 10 min, llama for initech: a third loops and reads negative, a sixth of prompts is novel;
    for k in range(30):  # its calls are fast (p95 ~780 ms) and one of 30 failed (3.3%): no latency or error alert
        flags = [n for n, on in (("repetition", k % 3 == 0), ("tone", k % 3 == 1), ("novel", k % 6 == 2)) if on]
        signals.append(
            [f"s-{k:05d}", NOW - timedelta(seconds=10 + k * 20), NOW, "initech", "u-s", "llama-3-8b", "chat",
             f"prompt s{k}", f"response s{k}", 0.0, 0.8 if k % 3 == 0 else 0.05, 0.9 if k % 3 == 1 else 0.5,
             0.2 if k % 5 == 0 else 0.7, 1.0 if k % 6 == 2 else 0.4, 0.3, flags, "logs", 1, k, 500.0 + k * 10,
             "rate limited" if k == 7 else "", "sess-llama"]
        )  # fmt: skip
    client.insert(
        f"{DB}.records",
        signals,
        column_names=["id", "ts", "ingested_at", "tenant", "user_id", "model", "route", "prompt", "response",
                      "cost_usd", "repetition", "tone", "formality", "novelty", "near_duplicate", "flags",
                      "src_topic", "src_partition", "src_offset", "latency_ms", "error", "session_id"],
    )  # fmt: skip
    calls = []  # last 10 min: mistral is slow (p95 ~14.8 s) and fails 20% of calls (fires both call alerts);
    for k in range(30):  # o1 is slower and always fails, but with 5 calls it has too few records to alert
        calls.append(
            [f"c-{k:05d}", NOW - timedelta(seconds=20 + k * 20), NOW, "umbrella", "mistral-large", "support",
             f"prompt c{k}", f"response c{k}", 12_000.0 + k * 100, "upstream timeout" if k % 5 == 0 else "",
             f"sess-{k % 3}", [], 0.0, "logs", 2, k]
        )  # fmt: skip
    for k in range(5):
        calls.append(
            [f"o-{k:05d}", NOW - timedelta(seconds=30 + k * 60), NOW, "umbrella", "o1", "support", f"prompt o{k}",
             f"response o{k}", 30_000.0, "context length exceeded", "sess-o1", ["toxicity"], 0.0, "logs", 2, 100 + k]
        )  # fmt: skip
    client.insert(
        f"{DB}.records",
        calls,
        column_names=["id", "ts", "ingested_at", "tenant", "model", "route", "prompt", "response", "latency_ms",
                      "error", "session_id", "flags", "cost_usd", "src_topic", "src_partition", "src_offset"],
    )  # fmt: skip
    drift = []
    for stream, kind in (("embedding:response", "embedding"), ("score:toxicity", "score")):
        for w in range(6):
            end = NOW - timedelta(minutes=10 * w)
            drifted = int(stream == "embedding:response" and w == 0)
            score, p_value = (0.3, 0.01) if drifted else (0.05, 0.5)
            drift.append([stream, kind, "acme", "gpt-4o-mini", "docs-qa", end - timedelta(minutes=10), end, 100,
                          score, 0.2, p_value, drifted, "mmd", 500, NOW])  # fmt: skip
    client.insert(
        f"{DB}.drift_windows",
        drift,
        column_names=["stream", "kind", "tenant", "model", "route", "window_start", "window_end", "n", "score",
                      "threshold", "p_value", "drifted", "method", "reference_n", "computed_at"],
    )  # fmt: skip
    client.insert(
        f"{DB}.dead_letters",
        [["logs", 0, 1000 + k, NOW - timedelta(minutes=k), NOW - timedelta(minutes=k), "not JSON: x", 12, "logs.dlq"]
         for k in range(3)],
        column_names=["src_topic", "src_partition", "src_offset", "message_ts", "received_at", "reason", "size_bytes",
                      "dlq_topic"],
    )  # fmt: skip
    client.insert(
        f"{DB}.agent_runs",
        [["run-1", "host", "logs", "lookout", NOW - timedelta(hours=1), NOW, "running", 163, 160, 3, 0, 5, 0, 0,
          {"toxicity": 12}]],
        column_names=["run_id", "host", "topic", "group_id", "started_at", "updated_at", "status", "consumed", "stored",
                      "dead_lettered", "unpriced", "batches", "commit_failures", "write_retries", "flagged"],
    )  # fmt: skip
    items = [
        ["toxicity", f"r-{k:05d}", NOW - timedelta(hours=7 - k), NOW - timedelta(hours=7), "acme", "gpt-4o-mini",
         "docs-qa", k, ["toxicity"], "toxic", int(k == 3)]
        for k in range(4)
    ]  # fmt: skip
    client.insert(
        f"{DB}.review_items",
        items,
        column_names=["queue", "record_id", "enqueued_at", "record_ts", "tenant", "model", "route", "priority",
                      "reasons", "rule", "control"],
    )  # fmt: skip
    client.insert(
        f"{DB}.review_labels",
        [["l-1", "toxicity", "r-00000", "ann", NOW - timedelta(hours=1), {"toxicity": "confirm"}, 2, "", None, "none",
          "ui", "c-1"],
         ["l-2", "toxicity", "r-00001", "bob", NOW - timedelta(minutes=30),
          {"toxicity": "reject", "refusal": "confirm"}, 0, "", None, "none", "ui", "c-2"]],
        column_names=["label_id", "queue", "record_id", "annotator", "labeled_at", "verdicts", "severity", "note",
                      "corrected_response", "preference", "source", "claim_id"],
    )  # fmt: skip
    client.insert(  # second opinions (agreement) and a gold item's label (gold accuracy)
        f"{DB}.review_labels",
        [["l-3", "toxicity", "r-00000", "bob", NOW - timedelta(minutes=50), {"toxicity": "reject"}, 0, "", None,
          "none", "ui", "c-4"],
         ["l-4", "toxicity", "r-00001", "ann", NOW - timedelta(minutes=20), {"toxicity": "reject"}, 0, "", None,
          "none", "ui", "c-5"],
         ["l-5", "toxicity", "g-1", "ann", NOW - timedelta(minutes=10), {"toxicity": "confirm"}, 2, "", None,
          "none", "ui", "c-6"]],
        column_names=["label_id", "queue", "record_id", "annotator", "labeled_at", "verdicts", "severity", "note",
                      "corrected_response", "preference", "source", "claim_id"],
    )  # fmt: skip
    client.insert(
        f"{DB}.gold_items",
        [["toxicity", "g-1", NOW - timedelta(hours=2), NOW - timedelta(hours=2), "acme", "gpt-4o-mini", "docs-qa", 0,
          ["toxicity"], "toxic", 0, "p", "r", [], [], {"toxicity": 0.9}, ["toxicity"], {"toxicity": "confirm"}, 2,
          "d", 0, NOW]],
        column_names=["queue", "record_id", "enqueued_at", "ts", "tenant", "model", "route", "priority", "reasons",
                      "rule", "control", "prompt", "response", "context", "history", "scores", "flags", "expected",
                      "severity", "digest", "retired", "loaded_at"],
    )  # fmt: skip
    feedback = [  # last 30 min: gpt-4o-mini 40% thumbs-down (fires), claude 8% (does not); a report and a rating
        [f"fb-{k}", NOW - timedelta(minutes=k), NOW, f"r-{k % 40:05d}", "", "thumbs_down" if k % 5 < 2 else "thumbs_up",
         -1.0 if k % 5 < 2 else 1.0, "u", "", "logs.feedback", 0, k]
        for k in range(30)
    ] + [
        [f"fb-c{k}", NOW - timedelta(minutes=k), NOW, f"r-{40 + k:05d}", "", "thumbs_down" if k < 2 else "thumbs_up",
         -1.0 if k < 2 else 1.0, "u", "", "logs.feedback", 0, 100 + k]
        for k in range(25)
    ] + [
        ["fb-r", NOW, NOW, "r-00003", "", "report", None, "u", "rude", "logs.feedback", 0, 200],
        ["fb-g", NOW, NOW, "r-00004", "", "rating", 2.0, "u", "", "logs.feedback", 0, 201],
    ]  # fmt: skip
    client.insert(
        f"{DB}.feedback",
        feedback,
        column_names=["event_id", "ts", "received_at", "record_id", "trace_id", "kind", "value", "user_id", "comment",
                      "src_topic", "src_partition", "src_offset"],
    )  # fmt: skip
    client.insert(
        f"{DB}.review_items",
        [["missed", "r-00004", NOW - timedelta(minutes=5), NOW - timedelta(minutes=20), "acme", "gpt-4o-mini",
          "docs-qa", 90, ["rating"], "feedback", 0]],
        column_names=["queue", "record_id", "enqueued_at", "record_ts", "tenant", "model", "route", "priority",
                      "reasons", "rule", "control"],
    )  # fmt: skip
    client.insert(
        f"{DB}.review_claims",
        [["toxicity", "r-00002", "ann", NOW - timedelta(minutes=5), NOW + timedelta(minutes=5), 0, "c-3", NOW]],
        column_names=["queue", "record_id", "annotator", "claimed_at", "lease_until", "released", "claim_id",
                      "event_at"],
    )  # fmt: skip


def seed_cascade(client: Client) -> None:
    """Cascade scoring for phi-3 (hooli) in the last 40 min: 120 records, every other one audited, one in full mode.

    Audited records hold the escalation tier for each detector with a fast tier. toxicity escalates to the full
    tier (audited, or 1 in 3 of the rest: 80 of 120); its fast tier disagreed on 3 of 60 audited (95 % agreement:
    fires at 98 %). relevance escalates to the expensive tier (72 of 120) and disagreed once (98.33 %). tone (20
    records) disagreed on 2 of 10 audited (80 %, but below alerts.cascade_min_audited). refusal has no fast tier:
    always ``full``, never compared.
    """
    rows = []
    for k in range(120):
        audited = k % 2 == 0
        tiers = {"toxicity": "full" if audited or k % 3 == 0 else "fast",
                 "relevance": "expensive" if audited or k % 5 == 0 else "fast", "refusal": "full"}  # fmt: skip
        if k < 20:
            tiers["tone"] = "full" if audited else "fast"
        disagree = [d for d, at in (("toxicity", (0, 2, 4)), ("relevance", (10,)), ("tone", (6, 8))) if k in at]
        rows.append([f"k-{k:05d}", NOW - timedelta(seconds=30 + k * 20), NOW, "hooli", "phi-3", "chat", 0.0, [],
                     "logs", 3, k, tiers, int(audited), disagree])  # fmt: skip
    rows.append(
        ["k-full", NOW - timedelta(minutes=1), NOW, "hooli", "phi-3", "chat", 0.0, [], "logs", 3, 999, {}, 0, []]
    )
    client.insert(
        f"{DB}.records",
        rows,
        column_names=["id", "ts", "ingested_at", "tenant", "model", "route", "cost_usd", "flags", "src_topic",
                      "src_partition", "src_offset", "score_tiers", "audited", "audit_disagree"],
    )  # fmt: skip


@pytest.fixture(scope="module")
def ch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """ChDB migrated to the current schema and seeded; closed at the end (one chDB directory per process)."""
    import clickhouse_connect

    path: Path = tmp_path_factory.mktemp("dash") / "data"
    client = clickhouse_connect.get_client(dsn=f"chdb://{path}")
    client.command(f"CREATE DATABASE IF NOT EXISTS {DB}")
    migrate(client, DB)
    seed(client)
    seed_cascade(client)
    yield client
    client.close()


def _context(variables: dict[str, list[str]]) -> QueryContext:
    return QueryContext(NOW - timedelta(hours=26), NOW + timedelta(minutes=1), 300, variables)


def _run(client: Client, q: SqlQuery, variables: dict[str, list[str]]) -> Any:
    return client.query(expand(q.sql, _context(variables)))


class TestPanelQueries:
    """Each panel and variable query runs, returns rows, and has the columns its panel reads."""

    @pytest.mark.parametrize("q", QUERIES, ids=[f"{q.board}:{q.panel}:{q.ref_id}" for q in QUERIES])
    def test_query_with_all_selected(self, ch: Client, q: SqlQuery) -> None:
        """With every variable on All, the query returns rows with the expected columns (time first for series)."""
        result = _run(ch, q, ALL_SELECTED)
        assert result.result_rows, f"no rows for {q.panel}: {q.sql}"
        assert tuple(result.column_names) == q.columns
        if q.time_series:
            assert isinstance(result.result_rows[0][0], datetime)
            assert [r[0] for r in result.result_rows] == sorted(r[0] for r in result.result_rows)

    @pytest.mark.parametrize("q", QUERIES, ids=[f"{q.board}:{q.panel}:{q.ref_id}" for q in QUERIES])
    def test_query_with_values_selected(self, ch: Client, q: SqlQuery) -> None:
        """With multi-value selections the filters expand to valid SQL and the columns stay the same."""
        result = _run(ch, q, SOME_SELECTED)
        if result.result_rows:
            assert tuple(result.column_names) == q.columns

    def test_selection_filters_rows(self, ch: Client) -> None:
        """Selecting one model narrows the rows: the by-model table then holds only that model."""
        q = next(q for q in QUERIES if q.panel == "Flag rates by model")
        rows = _run(ch, q, {**ALL_SELECTED, "model": ["claude-3-haiku"]}).result_rows
        assert [r[0] for r in rows] == ["claude-3-haiku"]
        assert rows[0][1] == 120

    def test_sessions_table_counts_each_session(self, ch: Client) -> None:
        """One row per (tenant, session_id): records, flagged share, errors, first and last call; biggest first."""
        q = next(q for q in QUERIES if q.panel == "Sessions")
        rows = {r[0]: r[1:5] for r in _run(ch, q, ALL_SELECTED).result_rows}
        assert rows == {
            "sess-llama": ("initech", 30, 83.33, 1),  # 25 of 30 carry a flag (repetition, tone or novel)
            "sess-0": ("umbrella", 10, 0.0, 2),  # mistral's 6 failed calls, 2 in each of its sessions
            "sess-1": ("umbrella", 10, 0.0, 2),
            "sess-2": ("umbrella", 10, 0.0, 2),
            "sess-o1": ("umbrella", 5, 100.0, 5),
        }
        assert next(iter(rows)) == "sess-llama"

    def test_latency_quantiles_and_errors_by_model(self, ch: Client) -> None:
        """The latency panel reads only records with a latency; the error table counts each error per model."""
        q = next(q for q in QUERIES if q.panel == "Call latency by model (p50, p95, p99)")
        models = {r[1] for r in _run(ch, q, ALL_SELECTED).result_rows}
        assert models == {"llama-3-8b", "mistral-large", "o1"}
        q = next(q for q in QUERIES if q.panel == "Top call errors")
        rows = [r[:4] for r in _run(ch, q, ALL_SELECTED).result_rows]
        assert rows == [
            ("upstream timeout", "mistral-large", "support", 6),
            ("context length exceeded", "o1", "support", 5),
            ("rate limited", "llama-3-8b", "chat", 1),
        ]

    def test_agreement_panels_match_lookout_review_agreement(self, ch: Client) -> None:
        """Alpha per queue and detector and gold accuracy per annotator equal what the CLI computes in Python."""
        from evaluators.agreement import report

        expected = report(ch, DB)
        q = next(q for q in QUERIES if q.panel == "Agreement per queue and detector")
        rows = _run(ch, q, ALL_SELECTED).result_rows
        assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
            (a.queue, a.detector, a.items, a.verdicts) for a in expected.agreement
        ]
        assert [(r[0], r[1], r[4]) for r in rows] == [("toxicity", "toxicity", 0.0)]  # 1 of 4 verdicts confirms
        assert rows[0][4] == pytest.approx(expected.agreement[0].alpha, abs=5e-4)
        q = next(q for q in QUERIES if q.panel == "Gold accuracy per annotator")
        rows = _run(ch, q, ALL_SELECTED).result_rows
        assert rows == [("ann", 1, 1, 1, 100.0)]
        assert [(g.annotator, g.verdicts, g.correct) for g in expected.gold] == [("ann", 1, 1)]


class TestAlertQueries:
    """Each ClickHouse alert query returns its label columns and one numeric value; the seeded incidents fire."""

    @pytest.mark.parametrize("rule", CH_RULES, ids=[r.uid for r in CH_RULES])
    def test_alert_query_shape_and_firing(self, ch: Client, rule: Any) -> None:
        """Labels then the value column; on the seeded data at least one instance is above the threshold."""
        ctx = QueryContext(NOW - timedelta(seconds=rule.range_s), NOW, 60, {})
        result = ch.query(expand(rule.query, ctx))
        assert tuple(result.column_names) == (*rule.labels, rule.value)
        values = {tuple(r[:-1]): float(r[-1]) for r in result.result_rows}
        firing = {k for k, v in values.items() if v > rule.threshold}
        expected = {
            "lookout-toxicity-rate": {("gpt-4o-mini",)},
            "lookout-hallucination-spike": {("claude-3-haiku",)},
            "lookout-drift": {("embedding:response", "embedding")},
            "lookout-review-backlog": {("toxicity",)},
            "lookout-cost-burn": {("acme",)},
            "lookout-repetition-rate": {("llama-3-8b",)},
            "lookout-negative-tone": {("llama-3-8b",)},
            "lookout-novelty-rate": {("initech", "llama-3-8b", "chat")},
            "lookout-thumbs-down-rate": {("gpt-4o-mini",)},
            "lookout-latency-p95": {("mistral-large",)},
            "lookout-error-rate": {("mistral-large",)},
            "lookout-cascade-agreement": {("toxicity",)},
        }[rule.uid]
        assert firing == expected, values

    @pytest.mark.parametrize("uid", ["lookout-latency-p95", "lookout-error-rate"])
    def test_call_rules_need_min_records(self, ch: Client, uid: str) -> None:
        """o1 (5 slow, failed calls) is left out at alerts.latency_min_records 20 and fires at 5; llama never fires."""
        for min_records, expected in ((20, {"mistral-large"}), (5, {"mistral-large", "o1"})):
            settings = Settings().with_overrides(alerts={"latency_min_records": min_records})
            rule = next(r for r in bundle(settings).rules if r.uid == uid)
            ctx = QueryContext(NOW - timedelta(seconds=rule.range_s), NOW, 60, {})
            values = {r[0]: float(r[-1]) for r in ch.query(expand(rule.query, ctx)).result_rows}
            assert {m for m, v in values.items() if v > rule.threshold} == expected, values
            assert "llama-3-8b" in values and values["llama-3-8b"] <= rule.threshold
            assert ("o1" in values) == (min_records == 5)


class TestCascadeQueries:
    """The cascade row and alert read score_tiers, audited and audit_disagree as seed_cascade wrote them."""

    def test_agreement_table_and_audited_count(self, ch: Client) -> None:
        """Per fast-tier detector: audited, disagreed, agreement (lowest first); refusal (no fast tier) absent."""
        q = next(q for q in QUERIES if q.panel == "Audit agreement in the time range")
        assert _run(ch, q, ALL_SELECTED).result_rows == [
            ("tone", 10, 2, 80.0),
            ("toxicity", 60, 3, 95.0),
            ("relevance", 60, 1, 98.33),
        ]
        q = next(q for q in QUERIES if q.panel == "Audited records")
        assert _run(ch, q, ALL_SELECTED).result_rows == [(60,)]
        assert _run(ch, q, {**ALL_SELECTED, "model": ["gpt-4o-mini"]}).result_rows == [(0,)]

    def test_escalated_share_and_agreement_over_time(self, ch: Client) -> None:
        """Summed over the buckets, 80 of 120 toxicity, 72 of 120 relevance and 10 of 20 tone scores escalated."""
        q = next(q for q in QUERIES if q.panel == "Escalated scores by detector")
        sql = expand(q.sql, _context(ALL_SELECTED)).replace("AS escalated_pct", "AS escalated_pct, count() AS n")
        totals: dict[str, list[float]] = {}
        for _, detector, pct, n in ch.query(sql).result_rows:
            totals.setdefault(detector, []).append(pct * n / 100)
        assert {d: round(sum(v)) for d, v in totals.items()} == {"toxicity": 80, "relevance": 72, "tone": 10}
        q = next(q for q in QUERIES if q.panel == "Audit agreement by detector")
        rows = _run(ch, q, ALL_SELECTED).result_rows
        assert {r[1] for r in rows} == {"toxicity", "relevance", "tone"}
        assert min(r[2] for r in rows if r[1] == "toxicity") < 98.0 <= max(r[2] for r in rows if r[1] == "toxicity")

    def test_alert_follows_min_audited_and_agreement_min(self, ch: Client) -> None:
        """The agreement minimum moves the threshold; tone (10 audited) counts from cascade_min_audited 10."""
        for alerts, expected in (
            ({}, {"toxicity"}),
            ({"cascade_agreement_min": 0.99}, {"toxicity", "relevance"}),
            ({"cascade_min_audited": 10}, {"toxicity", "tone"}),
            ({"cascade_min_audited": 10, "cascade_agreement_min": 0.9}, {"tone"}),
            ({"cascade_min_audited": 61}, set()),
        ):
            rule = next(r for r in bundle(Settings().with_overrides(alerts=alerts)).rules
                        if r.uid == "lookout-cascade-agreement")  # fmt: skip
            ctx = QueryContext(NOW - timedelta(seconds=rule.range_s), NOW, 60, {})
            values = {r[0]: float(r[-1]) for r in ch.query(expand(rule.query, ctx)).result_rows}
            assert {d for d, v in values.items() if v > rule.threshold} == expected, values
            assert "refusal" not in values
