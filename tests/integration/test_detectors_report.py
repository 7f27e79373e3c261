"""Detector quality and calibration on a simulated site stored in real chDB, and the thresholds file in an agent.

``lookout detectors report`` and ``lookout calibrate`` run in-process on the stored site; a running ``lookout run``
applies a thresholds file (its version on every record, a tenant override) and shows the quality gauges.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import AgentEnv, http_get, open_chdb, record, seeded_data_dir
from prometheus_client.parser import text_string_to_metric_families
from site_sim import Site, StreamSpec, simulate, store

from agent import metrics
from agent.broker import free_port
from agent.cli import main
from agent.config import Settings
from agent.thresholds import ThresholdsFile, load_thresholds
from evaluators.calibrate import label_set
from evaluators.detector_quality import report
from evaluators.labeled import label_set_hash

DB = "lookout"
ENABLED = Settings().detectors.enabled
SINCE = "2026-11-01T00:00:00Z"
SPECS = {
    ("acme", "gpt-4o-mini", "chat"): StreamSpec(n=700, prevalence={"toxicity": 0.2, "relevance": 0.15}, separation=2.5),
    ("globex", "claude-3-haiku", "docs-qa"): StreamSpec(n=500, prevalence={"toxicity": 0.1, "relevance": 0.2}),
}


@pytest.fixture
def site() -> Site:
    """The simulated site (seeded)."""
    return simulate(21, SPECS, label_share=0.6, control_rate=0.1)


@pytest.fixture
def lookout_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings from LOOKOUT_* only (a chDB directory in tmp_path), run from tmp_path; yields the data directory."""
    for name in [k for k in os.environ if k.startswith("LOOKOUT_")]:
        monkeypatch.delenv(name)
    data = tmp_path / "data"
    monkeypatch.setenv("LOOKOUT_CLICKHOUSE__DSN", f"chdb://{data}")
    monkeypatch.chdir(tmp_path)
    yield data


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:  # type: ignore[type-arg]  # a JSON document
    assert main(list(argv)) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out  # one JSON document
    return json.loads(out)  # type: ignore[no-any-return]


class TestDetectorsReport:
    """The report read from storage equals the estimates computed from the site itself."""

    def test_json_matches_the_simulated_site(self, site: Site, lookout_env: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
        """Per detector and per stream: the same counts, precision, miss rate and recall as the pure estimates."""
        seeded_data_dir(lookout_env, lambda c: store(c, DB, site))
        doc = _json(capsys, "detectors", "report", "--json", "--since", SINCE)
        expected = report(ENABLED, site.traffic(), site.labeled)
        assert doc["labels"] == expected.labels > 0
        assert [d["detector"] for d in doc["detectors"]] == sorted(ENABLED)  # control labels speak for all of them
        assert [d["precision"] is not None for d in doc["detectors"]] == [d in site.detectors for d in sorted(ENABLED)]
        for got, want in zip([*doc["detectors"], *doc["streams"]], [*expected.overall, *expected.streams],
                             strict=True):  # fmt: skip
            assert (got["detector"], got["tenant"], got["model"], got["route"]) == (
                want.detector, want.tenant, want.model, want.route)  # fmt: skip
            assert got["counts"] == want.as_json()["counts"]
            for key in ("precision", "miss_rate", "recall", "control_rate"):
                assert got[key] == pytest.approx(getattr(want, key)), key
            assert got["precision_ci"] == (pytest.approx(list(want.precision_ci)) if want.precision_ci else None)
        assert doc["control_rule_rate"] == pytest.approx(0.02)  # the default rules' control-sample rule

    def test_tenant_and_table(self, site: Site, lookout_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """--tenant narrows to one tenant's streams; without --json the tables name each detector and stream."""
        seeded_data_dir(lookout_env, lambda c: store(c, DB, site))
        doc = _json(capsys, "detectors", "report", "--json", "--since", SINCE, "--tenant", "globex")
        assert {s["tenant"] for s in doc["streams"]} == {"globex"}
        assert main(["detectors", "report", "--since", SINCE]) == 0
        out = capsys.readouterr().out
        assert "detector quality from review labels" in out and "per stream" in out
        assert "acme/gpt-4o-mini/chat" in out and "toxicity" in out and "relevance" in out

    def test_nothing_labeled(self, lookout_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """No label: the JSON has no estimate and the table says there is nothing to report; both exit 0."""
        seeded_data_dir(lookout_env, lambda c: None)
        doc = _json(capsys, "detectors", "report", "--json", "--since", SINCE)
        assert (doc["labels"], doc["detectors"], doc["streams"]) == (0, [], [])
        assert main(["detectors", "report"]) == 0
        assert capsys.readouterr().out.startswith("nothing to report")

    def test_list_stays_the_default(self, capsys: pytest.CaptureFixture[str]) -> None:
        """``lookout detectors`` and ``lookout detectors list`` both list the registered detectors."""
        assert main(["detectors"]) == 0
        bare = capsys.readouterr().out
        assert main(["detectors", "list"]) == 0
        assert capsys.readouterr().out == bare
        assert "relevance\t" in bare and "lower is worse" in bare and len(bare.splitlines()) == 8

    def test_bad_time_is_one_line(self, lookout_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """An unreadable --since is a one-line error and exit 1."""
        assert main(["detectors", "report", "--json", "--since", "yesterday"]) == 1
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.startswith("lookout: error: invalid time 'yesterday'")


class TestCalibrateCommand:
    """``lookout calibrate`` writes a versioned file, never replacing one silently."""

    def test_writes_a_versioned_file_with_its_label_set(self, site: Site, lookout_env: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
        """The file holds the proposals, the target and the labels' count, hash and time range."""
        seeded_data_dir(lookout_env, lambda c: store(c, DB, site))
        out = tmp_path / "cal.yaml"
        doc = _json(capsys, "calibrate", "--target-precision", "0.8", "--json", "--since", SINCE, "--out", str(out))
        file = load_thresholds(out)
        assert doc["written"] == {"path": str(out), "version": file.version}
        rows = {(d["detector"], d["tenant"]): d for d in doc["detectors"]}
        tox = rows[("toxicity", "*")]
        assert tox["status"] == "calibrated" and tox["proposed"] == file.thresholds["toxicity"] > 0.5
        assert tox["precision_ci"][0] >= 0.8
        assert file.target_precision == 0.8 and file.labels is not None
        assert file.labels.count == len(site.labeled)
        assert file.labels.label_ids_sha256 == label_set_hash(site.labeled) == label_set(site.labeled).label_ids_sha256
        assert file.labels.since is not None and file.labels.since.startswith("2026-11-20T00:00")

    def test_never_overwrites_silently(self, site: Site, lookout_env: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
        """Default path: thresholds-<version>.yaml, not rewritten when it exists; --out over a file says what it was."""
        seeded_data_dir(lookout_env, lambda c: store(c, DB, site))
        argv = ["calibrate", "--target-precision", "0.8", "--since", SINCE]
        assert main(argv) == 0
        err = capsys.readouterr().err
        (path,) = tmp_path.glob("thresholds-cal-*.yaml")
        assert f"wrote {path}" in err and "LOOKOUT_DETECTORS__THRESHOLDS_FILE" in err
        written_at = path.stat().st_mtime_ns
        assert main(argv) == 0
        assert "already holds version" in capsys.readouterr().err and path.stat().st_mtime_ns == written_at
        other = tmp_path / "other.yaml"
        other.write_text(ThresholdsFile(version="hand-1", thresholds={"toxicity": 0.7}).to_yaml())
        assert main([*argv, "--out", str(other), "--target-precision", "0.85"]) == 0
        assert f"replaced {other} (was version hand-1)" in capsys.readouterr().err
        assert load_thresholds(other).version != "hand-1"

    def test_nothing_to_calibrate(self, lookout_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """No labels: one JSON document, nothing written, exit 0."""
        seeded_data_dir(lookout_env, lambda c: None)
        doc = _json(capsys, "calibrate", "--target-precision", "0.9", "--json")
        assert (doc["written"], doc["detectors"], doc["labels"]["count"]) == (None, [], 0)

    @pytest.mark.parametrize("value", ["1.5", "0", "x"])
    def test_bad_target(self, value: str, capsys: pytest.CaptureFixture[str]) -> None:
        """A target outside (0, 1) is a usage error naming the value."""
        with pytest.raises(SystemExit) as info:
            main(["calibrate", "--target-precision", value])
        assert info.value.code == 2 and "is not a precision between 0 and 1" in capsys.readouterr().err


def _gauges(base: str) -> dict[tuple[str, str], float]:
    status, body = http_get(f"{base}/metrics")
    if status != 200:
        return {}
    return {
        (s.name, s.labels.get("detector", "")): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
        if s.name in (metrics.DETECTOR_PRECISION, metrics.DETECTOR_MISS_RATE)
    }


class TestAgentWithThresholdsFile:
    """A running agent applies the file (globally and per tenant), stores its version, shows the quality gauges."""

    def test_version_stored_tenant_override_applied_gauges_shown(self, agent_env: AgentEnv, tmp_path: Path) -> None:
        """Tenant acme's override flags every record for toxicity, the global threshold none; all carry the version."""
        recent = datetime.now(UTC) - timedelta(hours=2)
        labeled_site = simulate(5, {("acme", "gpt-4o-mini", "chat"): StreamSpec(n=300)}, label_share=0.5,
                                control_rate=0.2, start=recent)  # fmt: skip
        seeded_data_dir(agent_env.data_dir, lambda c: store(c, DB, labeled_site, labeled_at=recent))
        expected = {e.detector: e for e in report(ENABLED, labeled_site.traffic(), labeled_site.labeled).overall}
        file = tmp_path / "thresholds.yaml"
        file.write_text(ThresholdsFile(version="cal-test-1", thresholds={"toxicity": 0.999},
                                       tenants={"acme": {"toxicity": 0.0}}).to_yaml())  # fmt: skip
        n = 12
        agent_env.topic.produce_records([record(i, tenant="acme" if i % 2 else "globex") for i in range(n)])
        port = free_port()
        proc = agent_env.start("run", "--exit-when-idle", "8", LOOKOUT_METRICS__PORT=str(port),
                               LOOKOUT_DETECTORS__THRESHOLDS_FILE=str(file))  # fmt: skip
        gauges: dict[tuple[str, str], float] = {}
        try:
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline and proc.poll() is None:
                gauges = _gauges(f"http://127.0.0.1:{port}") or gauges
                if {(metrics.DETECTOR_PRECISION, d) for d in labeled_site.detectors} <= set(gauges):
                    break
                time.sleep(0.5)
            _, err = proc.communicate(timeout=180)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
        assert {d for _, d in gauges} == set(ENABLED)  # miss rates for all: control labels speak for every detector
        for detector in labeled_site.detectors:
            assert gauges[(metrics.DETECTOR_PRECISION, detector)] == pytest.approx(expected[detector].precision)
            assert gauges[(metrics.DETECTOR_MISS_RATE, detector)] == pytest.approx(expected[detector].miss_rate)
        rows = agent_env.query(
            "SELECT tenant, has(flags, 'toxicity'), thresholds_version FROM lookout.v_records "
            "WHERE id LIKE 'r-%' ORDER BY id"
        )
        assert len(rows) == n
        assert {(t, bool(f), v) for t, f, v in rows} == {("acme", True, "cal-test-1"), ("globex", False, "cal-test-1")}

    def test_bad_file_stops_the_agent_with_one_line(self, agent_env: AgentEnv, tmp_path: Path) -> None:
        """A thresholds file naming an unknown detector: exit 1 and one line naming the file and the field."""
        file = tmp_path / "bad.yaml"
        file.write_text("version: v1\nthresholds: {toxcity: 0.5}\n")
        result = agent_env.run("run", "--exit-when-idle", "1", LOOKOUT_DETECTORS__THRESHOLDS_FILE=str(file))
        assert result.returncode == 1
        lines = [line for line in result.stderr.splitlines() if line.startswith("lookout: error:")]
        assert len(lines) == 1, result.stderr[-2000:]
        assert lines[0].startswith(f"lookout: error: thresholds file {file}: thresholds: unknown detector 'toxcity'")


def test_stored_records_read_back_unlabeled(tmp_path: Path) -> None:
    """Records stored without a thresholds file read '' as their version (migration 15's default)."""
    site = simulate(1, {("acme", "m", "chat"): StreamSpec(n=5)})
    with open_chdb(tmp_path / "data", migrate=True) as c:
        store(c, DB, site)
        rows = c.query("SELECT DISTINCT thresholds_version FROM lookout.v_records").result_rows
    assert rows == [("",)]


def test_dashboard_panel_agrees_with_the_report(site: Site, tmp_path: Path) -> None:
    """The Review dashboard's quality table shows the report's precision and miss rate, with the same intervals."""
    from dashboards.build import bundle
    from dashboards.macros import ALL, QueryContext, expand

    (query,) = [q for b in bundle(Settings()).boards for q in b.queries if q.panel == "Detector quality from labels"]
    context = QueryContext(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC), 300,
                           {"queue": [ALL]})  # fmt: skip
    with open_chdb(tmp_path / "data", migrate=True) as c:
        store(c, DB, site)
        result = c.query(expand(query.sql, context))
    rows = {r[0]: dict(zip(result.column_names, r, strict=True)) for r in result.result_rows}
    expected = {e.detector: e for e in report(site.detectors, site.traffic(), site.labeled).overall}
    assert set(rows) == set(expected) == {"toxicity", "relevance"}
    for detector, e in expected.items():
        row = rows[detector]
        assert e.precision is not None and e.precision_ci is not None and e.miss_rate_ci is not None
        assert (row["labeled_flags"], row["control_labeled"]) == (e.counts.labeled_flags, e.counts.control)
        assert row["precision_pct"] == pytest.approx(100 * e.precision, abs=0.05)
        assert (row["precision_low_pct"], row["precision_high_pct"]) == pytest.approx(
            (100 * e.precision_ci[0], 100 * e.precision_ci[1]), abs=0.05)  # fmt: skip
        assert row["miss_rate_high_pct"] == pytest.approx(100 * e.miss_rate_ci[1], abs=0.05)
