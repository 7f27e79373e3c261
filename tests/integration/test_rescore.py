"""``lookout rescore`` on the real embedded ClickHouse engine (chDB): idempotent, resumable, compared with the old."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import open_chdb, seeded_data_dir

from agent.sinks.clickhouse import RecordSink
from agent.sinks.embeddings import EmbeddingSink, embedding_rows
from agent.storage.client import Client
from agent.storage.records import ExportFilter
from agent.types import Message, Sample, ScoredSample
from detectors.encoder import build_batch
from detectors.relevance import EmbeddingRelevance
from detectors.testing import HashingEncoder
from detectors.types import Batch, Detector, Score, Vectors
from evaluators import rescore
from evaluators.stored import iter_pages

DB = "lookout"
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
N = 12
NO_TEXT = "r-05"
NO_EMBEDDING = "r-11"
SPEC = {"since": "2026-11-20T00:00:00Z"}


class CountingRelevance(EmbeddingRelevance):
    """The real relevance detector, counting the records it scores."""

    scored = 0

    def score(self, batch: Batch) -> list[Score]:
        CountingRelevance.scored += len(batch)
        return super().score(batch)


class CountingEncoder(HashingEncoder):
    """The hashing test encoder, counting texts encoded (to tell stored embeddings from fresh ones)."""

    @property
    def texts(self) -> int:
        return sum(len(c) for c in self.calls)


def sample(i: int) -> Sample:
    text = i != int(NO_TEXT[2:])  # NO_TEXT's text expired (TTL): empty prompt and response
    answer = f"open settings and reset the password number {i}" if i % 2 else "bananas are yellow"
    return Sample(
        id=f"r-{i:02d}",
        ts=T0 + timedelta(minutes=i),
        prompt=f"how do I reset my password number {i}" if text else "",
        response=answer if text else "",
        tenant="acme",
        model="m1",
        route="chat",
    )


def seed(client: Client) -> None:
    """N records stored with relevance 0.9 by version old-1; embeddings for all but NO_EMBEDDING."""
    samples = [sample(i) for i in range(N)]
    scored = [ScoredSample(s, {"relevance": 0.9}, {"relevance": "old-1"}, (), None) for s in samples]
    RecordSink(client, DB, ["relevance"]).write(scored)
    enc = HashingEncoder()
    keep = [x for x in scored if x.sample.id != NO_EMBEDDING]
    vectors: dict[Any, Vectors] = {
        "prompt": enc.encode([x.sample.prompt for x in keep]),
        "response": enc.encode([x.sample.response for x in keep]),
    }
    sink = EmbeddingSink(client, DB, enc.name, ("prompt", "response"))
    sink.write(embedding_rows(keep, vectors, ("prompt", "response")))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return seeded_data_dir(tmp_path / "data", seed)


@pytest.fixture
def client(data_dir: Path) -> Iterator[Client]:
    with open_chdb(data_dir) as c:
        yield c


def raw_rows(client: Client) -> int:
    """Rows physically written to record_scores (duplicates included, before any merge)."""
    return int(client.query("SELECT count() FROM lookout.record_scores").result_rows[0][0])


def final_scores(client: Client) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in client.query(
        "SELECT record_id, detector_version, score FROM lookout.v_record_scores ORDER BY record_id"
    ).result_rows]  # fmt: skip


def run(client: Client, encoder: HashingEncoder, detector: Detector | None = None, **kw: Any) -> rescore.RescoreOutcome:
    since = datetime(2026, 11, 20, tzinfo=UTC)
    det = detector or EmbeddingRelevance()
    return rescore.rescore(client, DB, det, encoder, ExportFilter(since=since), SPEC, page_size=4, **kw)


class TestRescore:
    """Re-running a detector version over stored records."""

    def test_scores_every_record_with_text_beside_the_old_ones(self, client: Client) -> None:
        """Every record with text gets one row of the new version; the stored column is untouched."""
        encoder = CountingEncoder()
        out = run(client, encoder)
        assert out.complete and not out.resumed
        assert (out.scored, out.skipped_no_text) == (N - 1, 1)
        rows = final_scores(client)
        assert [r[0] for r in rows] == [f"r-{i:02d}" for i in range(N) if f"r-{i:02d}" != NO_TEXT]
        assert {r[1] for r in rows} == {EmbeddingRelevance().version}
        stored = client.query("SELECT DISTINCT relevance FROM lookout.v_records").result_rows
        assert [round(r[0], 3) for r in stored] == [0.9]

    def test_stored_embeddings_are_used_and_missing_ones_encoded(self, client: Client) -> None:
        """Pages whose records all have stored vectors encode nothing; the page missing one is encoded."""
        encoder = CountingEncoder()
        out = run(client, encoder)
        assert out.from_stored_embeddings == 4 + 3  # page 1, page 2 without the no-text record
        assert encoder.texts == 2 * 4  # last page (r-08..r-11): prompts and responses

    def test_running_twice_writes_nothing_new(self, client: Client) -> None:
        """A finished run asked again does no work; with --restart it rewrites the same keys (same final rows)."""
        encoder = CountingEncoder()
        run(client, encoder)
        first, written = final_scores(client), raw_rows(client)
        again = run(client, encoder)
        assert again.complete and raw_rows(client) == written
        redo = run(client, encoder, restart=True)
        assert redo.complete and not redo.resumed
        assert final_scores(client) == first  # rewritten keys replace the earlier rows

    def test_interrupted_run_resumes_without_duplicates(self, client: Client) -> None:
        """Stopped after a page, the same arguments resume at the cursor; no record is scored twice."""
        encoder = CountingEncoder()
        CountingRelevance.scored = 0
        part = run(client, encoder, max_records=4, detector=CountingRelevance())
        assert not part.complete and part.scored == 4
        assert raw_rows(client) == 4
        rest = run(client, encoder, detector=CountingRelevance())
        assert rest.resumed and rest.complete
        assert CountingRelevance.scored == N - 1
        assert rest.scored == N - 1
        assert raw_rows(client) == N - 1
        status = client.query("SELECT status, cursor_id FROM lookout.v_rescore_runs").result_rows
        assert [tuple(s) for s in status] == [("done", f"r-{N - 1:02d}")]

    def test_comparison_of_old_and_new(self, client: Client) -> None:
        """The summary compares the stored 0.9 (old-1) with the new scores on the same records."""
        out = run(client, CountingEncoder())
        since = datetime(2026, 11, 20, tzinfo=UTC)
        cmp = rescore.compare(client, DB, "relevance", out.version, ExportFilter(since=since, until=out.until))
        new = [r[2] for r in final_scores(client)]
        assert cmp.n == N - 1
        assert cmp.old_versions == ("old-1",)
        assert cmp.old_mean == pytest.approx(0.9, abs=1e-6)
        assert cmp.new_mean == pytest.approx(sum(new) / len(new), abs=1e-6)
        assert cmp.old_flag_rate == 0.0
        flagged = sum(v < 0.5 for v in new) / len(new)
        assert cmp.new_flag_rate == pytest.approx(flagged)
        assert cmp.agreement == pytest.approx(1 - flagged)


class TestRescoreCli:
    """`lookout rescore` end to end."""

    def test_cli_runs_resumes_and_prints_comparison(self, data_dir: Path) -> None:
        """--max-records stops early; the same command resumes and finishes; the comparison table is printed."""

        def cli(*extra: str) -> subprocess.CompletedProcess[str]:
            env = {"LOOKOUT_CLICKHOUSE__DSN": f"chdb://{data_dir}", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin",
                   "LOOKOUT_EVAL__BATCH_SIZE": "5"}  # fmt: skip
            args: Sequence[str] = ["rescore", "--since", "2026-11-20T00:00:00Z", "--detector", "relevance", *extra]
            return subprocess.run([sys.executable, "-m", "agent", *args], env=env, capture_output=True, text=True,
                                  timeout=300, check=False)  # fmt: skip

        first = cli("--max-records", "5")
        assert first.returncode == 0, first.stderr
        assert "stopped early" in first.stderr
        second = cli()
        assert second.returncode == 0, second.stderr
        assert "resumed, complete: scored 11, skipped (text expired) 1" in second.stderr
        assert "flag agreement" in second.stdout and "old-1" in second.stdout


class TestStoredHistory:
    """Stored records carry their earlier turns, so re-scoring a conversation matches scoring it live."""

    def test_history_is_read_back_and_scores_as_at_ingest(self, client: Client) -> None:
        """A record with two earlier turns reads back with them; relevance on it equals relevance on the Sample."""
        turns = (Message("user", "What's a good name for my puppy?"), Message("assistant", "Biscuit, Luna or Max?"))
        live = Sample(id="h-1", ts=T0, prompt="I like the second one.", response="Luna is a fine name.", history=turns)
        RecordSink(client, DB, ["relevance"]).write(
            [ScoredSample(live, {"relevance": 0.9}, {"relevance": "x"}, (), None)]
        )
        (stored,) = [r for page in iter_pages(client, DB, ExportFilter(), 100) for r in page if r.id == "h-1"]
        assert [(t.role, t.content) for t in stored.history] == [(m.role, m.content) for m in turns]
        detector, encoder = EmbeddingRelevance(), HashingEncoder()
        again = detector.score(build_batch([stored], encoder, detector.needs))
        bare = Sample(id="h-2", ts=T0, prompt=live.prompt, response=live.response)
        assert again == detector.score(build_batch([live], encoder, detector.needs))
        assert again != detector.score(build_batch([bare], encoder, detector.needs))
