"""``lookout evaluate ragas`` on the real embedded ClickHouse engine (chDB) with real ragas metrics.

The LLM metrics run against ``StubOpenAI``, a local OpenAI-compatible HTTP server this module starts: it is
the one mock here, standing in for the LLM endpoint that cannot run in tests. It answers each ragas prompt
with fixed JSON chosen by the prompt's output schema, so the expected scores are known exactly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import StubOpenAI, open_chdb, seeded_data_dir

from agent.config import ClickHouseSettings
from agent.errors import ConfigError
from agent.sinks.clickhouse import RecordSink
from agent.storage.client import Client, connect
from agent.storage.records import ExportFilter
from agent.types import Sample, ScoredSample
from evaluators import ragas_eval
from evaluators.stored import iter_pages

pytest.importorskip("ragas", reason="the eval extra (make test installs it)")

DB = "lookout"
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PARIS = "Paris is the capital of France."
BANANAS = "Bananas are yellow."
QUESTION = "What is the capital of France?"
LABEL_COLUMNS = [
    "label_id", "queue", "record_id", "annotator", "labeled_at", "verdicts", "severity", "note",
    "corrected_response", "preference", "source",
]  # fmt: skip


def scored(rid: str, minute: int, prompt: str, response: str, **extra: Any) -> ScoredSample:
    sample = Sample(id=rid, ts=T0 + timedelta(minutes=minute), prompt=prompt, response=response, tenant="acme",
                    model="m1", route="rag", **extra)  # fmt: skip
    return ScoredSample(sample, {"toxicity": 0.1}, {"toxicity": "v1"}, (), None)


def seed(client: Client) -> None:
    """Known pairs: identical (e1), kitten/sitting via a review correction (e2), no reference (e3), ..."""
    refs = json.dumps([PARIS])
    RecordSink(client, DB, ["toxicity"]).write(
        [
            scored(
                "e1",
                1,
                QUESTION,
                PARIS,
                context=(PARIS, BANANAS),
                metadata={"reference": PARIS, "reference_contexts": refs},
            ),
            scored("e2", 2, "Spell it", "kitten"),
            scored("e3", 3, "Tell me a joke", "Why did the chicken cross the road?"),
            scored("e4", 4, QUESTION, PARIS, context=(BANANAS, PARIS), metadata={"reference_contexts": refs}),
            scored("e5", 5, "Spell it again", "kitten"),
        ]
    )
    at = T0 + timedelta(days=1)
    client.insert(
        "lookout.review_labels",
        [
            ["l2", "q", "e2", "ann", at, {}, 0, "", "sitting", "corrected", "web"],
            ["l5", "q", "e5", "ann", at, {}, 0, "", "sitting", "original", "web"],  # original preferred: no reference
        ],
        column_names=LABEL_COLUMNS,
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, seeded chDB directory, closed again."""
    return seeded_data_dir(tmp_path_factory.mktemp("ragas") / "data", seed)


@pytest.fixture
def client(data_dir: Path) -> Iterator[Client]:
    with open_chdb(data_dir) as c:
        yield c


def values(client: Client, run_id: str) -> dict[tuple[str, str], float | None]:
    rows = client.query(
        "SELECT record_id, metric, value FROM lookout.v_eval_scores WHERE run_id = {r:String}",
        parameters={"r": run_id},
    ).result_rows
    return {(r[0], r[1]): r[2] for r in rows}


class TestStoredRecords:
    """The record pages every evaluator reads."""

    def test_pages_follow_ts_then_id_and_resume_after_a_cursor(self, client: Client) -> None:
        """Pages come in (ts, id) order; a cursor starts after it; filters narrow; nothing flagged → empty."""
        pages = [[r.id for r in page] for page in iter_pages(client, DB, ExportFilter(), 2)]
        assert pages == [["e1", "e2"], ["e3", "e4"], ["e5"]]
        after = (T0 + timedelta(minutes=2), "e2")
        assert [r.id for p in iter_pages(client, DB, ExportFilter(), 10, after) for r in p] == ["e3", "e4", "e5"]
        assert list(iter_pages(client, DB, ExportFilter(tenants=("other",)), 10)) == []
        assert list(iter_pages(client, DB, ExportFilter(detectors=("toxicity",)), 10)) == []


@pytest.fixture(scope="module")
def encoder() -> Any:
    from detectors.encoder import SentenceTransformerEncoder

    return SentenceTransformerEncoder()


class TestOfflineMetrics:
    """Non-LLM ragas metrics on known pairs, stored per record and per run."""

    def test_known_pairs_give_known_values(self, client: Client, encoder: Any) -> None:
        """Identical texts score 1; kitten/sitting has Levenshtein similarity 4/7; reference contexts rank."""
        scorers = ragas_eval.build_scorers(ragas_eval.OFFLINE, encoder, None)
        summary = ragas_eval.evaluate(client, DB, ExportFilter(), scorers)
        got = values(client, summary.run_id)
        assert len(got) == 5 * len(ragas_eval.OFFLINE)
        for metric in ("string_similarity", "bleu", "rouge"):
            assert got[("e1", metric)] == pytest.approx(1.0)
        assert got[("e1", "semantic_similarity")] == pytest.approx(1.0, abs=1e-5)
        assert got[("e2", "string_similarity")] == pytest.approx(1 - 3 / 7)
        assert got[("e2", "rouge")] == 0.0
        assert got[("e2", "semantic_similarity")] is not None and got[("e2", "semantic_similarity")] < 0.9
        assert got[("e1", "context_precision_nonllm")] == pytest.approx(1.0, abs=1e-6)
        assert got[("e4", "context_precision_nonllm")] == pytest.approx(0.5, abs=1e-6)
        assert got[("e1", "context_recall_nonllm")] == pytest.approx(1.0)
        assert got[("e4", "context_recall_nonllm")] == pytest.approx(1.0)

    def test_missing_inputs_are_null_and_counted_skipped(self, client: Client) -> None:
        """No reference (e3, e4; e5 whose label preferred the original) → NULL reference metrics, counted skipped."""
        scorers = ragas_eval.build_scorers(("string_similarity", "context_recall_nonllm"), None, None)
        summary = ragas_eval.evaluate(client, DB, ExportFilter(), scorers)
        got = values(client, summary.run_id)
        assert got[("e3", "string_similarity")] is None
        assert got[("e5", "string_similarity")] is None
        assert got[("e2", "context_recall_nonllm")] is None
        assert summary.metrics["string_similarity"].scored == 2  # e1 (metadata), e2 (review correction)
        assert summary.metrics["string_similarity"].skipped == 3
        assert summary.metrics["context_recall_nonllm"].scored == 2

    def test_run_row_holds_counts_and_means(self, client: Client) -> None:
        """eval_runs has the run, status done, per-metric counts and means; filters narrow the records."""
        scorers = ragas_eval.build_scorers(("string_similarity",), None, None)
        summary = ragas_eval.evaluate(client, DB, ExportFilter(since=T0 + timedelta(minutes=2)), scorers)
        row = client.query(
            "SELECT status, records, scored['string_similarity'], means['string_similarity'] "
            "FROM lookout.v_eval_runs WHERE run_id = {r:String}",
            parameters={"r": summary.run_id},
        ).result_rows[0]
        assert row[0] == "done"
        assert row[1] == 4  # e2..e5
        assert row[2] == 1  # only e2 has a reference among them
        assert row[3] == pytest.approx(1 - 3 / 7)

    def test_llm_metrics_without_endpoint_say_what_to_set(self) -> None:
        """Asking for an LLM metric with no endpoint names the setting."""
        with pytest.raises(ConfigError, match="LOOKOUT_EVAL__LLM_BASE_URL"):
            ragas_eval.resolve_metrics(["faithfulness"], None)


class TestLLMMetrics:
    """Faithfulness, answer relevancy and context precision through an OpenAI-compatible endpoint."""

    def test_llm_metrics_against_local_endpoint(self, client: Client, encoder: Any) -> None:
        """Scores follow the stub's verdicts; records without context get NULL; the key and model are sent."""
        stub = StubOpenAI(question=QUESTION, irrelevant=BANANAS)
        try:
            llm = ragas_eval.LLMEndpoint(stub.url, "stub-model", "test-key", timeout_s=10)
            scorers = ragas_eval.build_scorers(ragas_eval.LLM, encoder, llm, strictness=2)
            summary = ragas_eval.evaluate(client, DB, ExportFilter(), scorers, llm_model="stub-model")
        finally:
            stub.close()
        got = values(client, summary.run_id)
        assert got[("e1", "faithfulness")] == pytest.approx(0.5)
        assert got[("e3", "faithfulness")] is None  # no context
        assert got[("e1", "context_precision")] == pytest.approx(1.0, abs=1e-6)
        assert got[("e4", "context_precision")] == pytest.approx(0.5, abs=1e-6)
        assert got[("e1", "answer_relevancy")] == pytest.approx(1.0, abs=1e-4)  # generated question == prompt
        assert got[("e3", "answer_relevancy")] is not None and got[("e3", "answer_relevancy")] < 0.9
        assert summary.metrics["faithfulness"].scored == 2
        assert {r["model"] for r in stub.requests} == {"stub-model"}
        assert set(stub.auth) == {"Bearer test-key"}


class TestCli:
    """`lookout evaluate ragas` end to end."""

    def test_cli_prints_summary_and_stores_run(self, data_dir: Path) -> None:
        """The summary table goes to stdout, progress to stderr; the run is stored."""
        env = {"LOOKOUT_CLICKHOUSE__DSN": f"chdb://{data_dir}", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
        done = subprocess.run(
            [sys.executable, "-m", "agent", "evaluate", "ragas", "--metrics", "bleu", "rouge", "--tenant", "acme"],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "bleu" in done.stdout and "rouge" in done.stdout and "5 records" in done.stdout
        assert "evaluate ragas: 5/5 records" in done.stderr
        run_id = done.stdout.split("ragas run ", 1)[1].split(":", 1)[0]
        c = connect(ClickHouseSettings(dsn=f"chdb://{data_dir}"))
        try:
            assert len(values(c, run_id)) == 10
        finally:
            c.close()
