"""``lookout report drift`` on the real embedded ClickHouse engine (chDB): evidently HTML from stored data only."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from conftest import open_chdb, seeded_data_dir

from agent.errors import LookoutError
from agent.sinks.clickhouse import RecordSink
from agent.sinks.embeddings import EmbeddingRow, EmbeddingSink
from agent.storage.client import Client
from agent.storage.records import ExportFilter
from agent.types import Sample, ScoredSample
from detectors.types import Vectors
from evaluators import drift_report

DB = "lookout"
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DIM = 32
PER_WINDOW = 60


def unit(rng: np.random.Generator, centre: Vectors, n: int) -> Vectors:
    rows = centre + 0.35 * rng.normal(size=(n, DIM))
    out: Vectors = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    return out


def seed(client: Client) -> None:
    """Tenant ``shift``: current prompts move to another topic, toxicity rises; ``calm``: nothing moves."""
    rng = np.random.default_rng(7)
    a, b = np.zeros(DIM, dtype=np.float32), np.zeros(DIM, dtype=np.float32)
    a[0], b[1] = 1.0, 1.0
    records: list[ScoredSample] = []
    rows: list[EmbeddingRow] = []
    for tenant, current_centre, current_tox in (("shift", b, (6, 4)), ("calm", a, (2, 8))):
        for window, centre, tox in (("ref", a, (2, 8)), ("cur", current_centre, current_tox)):
            prompts, responses = unit(rng, centre, PER_WINDOW), unit(rng, a, PER_WINDOW)
            toxicity = rng.beta(*tox, size=PER_WINDOW)
            for i in range(PER_WINDOW):
                ts = T0 - timedelta(days=6) + timedelta(hours=i) if window == "ref" else T0 + timedelta(minutes=i)
                s = Sample(id=f"{tenant}-{window}-{i}", ts=ts, prompt="p", response="r" * (20 + i % 7),
                           tenant=tenant, model="m1", route="chat")  # fmt: skip
                records.append(ScoredSample(s, {"toxicity": float(toxicity[i])}, {"toxicity": "v1"}, (), None))
                rows.append(EmbeddingRow(s.id, ts, tenant, "m1", "chat", "prompt", prompts[i].astype(np.float32)))
                rows.append(EmbeddingRow(s.id, ts, tenant, "m1", "chat", "response", responses[i].astype(np.float32)))
    RecordSink(client, DB, ["toxicity"]).write(records)
    EmbeddingSink(client, DB, "synthetic", ("prompt", "response")).write(rows)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seeded_data_dir(tmp_path_factory.mktemp("drift-report") / "data", seed)


@pytest.fixture
def client(data_dir: Path) -> Iterator[Client]:
    with open_chdb(data_dir) as c:
        yield c


def self_contained(html: str) -> bool:
    """No script, stylesheet or image loaded from elsewhere."""
    return not re.search(r"<(script|link|img)[^>]+(src|href)=[\"']?(https?:)?//", html, re.IGNORECASE)


class TestDriftReport:
    """Reference vs current window of one stream."""

    def test_windows_default_to_the_latest_record(self, client: Client) -> None:
        """Current = the day up to the stream's latest record; reference = the 7 days before."""
        w = drift_report.resolve_windows(client, DB, ExportFilter(tenants=("calm",)), None, "1d", "7d")
        assert w.until == T0 + timedelta(minutes=PER_WINDOW - 1, milliseconds=1)
        assert w.current_since == w.until - timedelta(days=1)
        assert w.reference_since == w.current_since - timedelta(days=7)

    def test_same_distribution_shows_no_drift(self, client: Client, tmp_path: Path) -> None:
        """The calm stream's windows match: neither the prompt embeddings nor toxicity drift."""
        stream = ExportFilter(tenants=("calm",))
        windows = drift_report.resolve_windows(client, DB, stream, None, "1d", "7d")
        out = tmp_path / "calm.html"
        result = drift_report.build_report(client, DB, stream, windows, out, fields=("prompt",))
        assert (result.reference_n, result.current_n) == (PER_WINDOW, PER_WINDOW)
        drifted = {c.column: c.drifted for c in result.columns}
        assert drifted["prompt_embedding"] is False
        assert drifted["toxicity"] is False
        html = out.read_text(encoding="utf-8")
        assert self_contained(html)
        assert "toxicity" in html and "prompt" in html

    def test_empty_stream_says_what_to_check(self, client: Client, tmp_path: Path) -> None:
        """A stream with no records is a one-line error naming the filters."""
        with pytest.raises(LookoutError, match="no stored records match"):
            drift_report.resolve_windows(client, DB, ExportFilter(tenants=("nobody",)), None, "1d", "7d")


class TestReportDriftCli:
    """`lookout report drift` end to end."""

    def test_shifted_stream_reports_drift(self, data_dir: Path, tmp_path: Path) -> None:
        """The shifted stream's HTML exists, is self-contained, names the columns; drift is detected."""
        out = tmp_path / "report.html"
        env = {"LOOKOUT_CLICKHOUSE__DSN": f"chdb://{data_dir}", "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
        done = subprocess.run(
            [sys.executable, "-m", "agent", "report", "drift", "shift/m1/*", "--out", str(out)],
            env=env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        html = out.read_text(encoding="utf-8")
        assert self_contained(html)
        for name in ("toxicity", "response_length", "prompt", "response"):
            assert name in html
        lines = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if line.count("│") >= 4}
        assert "yes" in lines["prompt_embedding"]
        assert "yes" in lines["toxicity"]
        assert "no" in lines["response_embedding"]  # responses did not move
