"""The Label Studio round trip against a real Label Studio 1.23.2 on 127.0.0.1 (slow; ``make labelstudio`` first).

push (twice) → annotate through Label Studio's API as an annotator would → pull (twice) → edit → pull → export.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.broker import free_port
from agent.config import ClickHouseSettings
from agent.review.labelstudio import label_config
from agent.sinks.clickhouse import RecordSink
from agent.storage import migrations
from agent.storage.client import connect
from agent.types import Message, Origin, Sample, ScoredSample

REPO = Path(__file__).resolve().parents[2]
LS_BIN = REPO / ".venv-labelstudio" / "bin" / "label-studio"
TOKEN = "lookout-slow-test-token"  # noqa: S105 - a throwaway token for a throwaway local server
PROJECT = "lookout round trip"
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not LS_BIN.exists(), reason="Label Studio venv missing: run `make labelstudio` (~1 GB, ~3 min)"),
]


@dataclass
class Server:
    """A running Label Studio."""

    url: str
    http: httpx.Client


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Label Studio on a free loopback port with a fresh data dir, an admin user and a legacy API token."""
    data = tmp_path_factory.mktemp("labelstudio")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOKOUT_", "LABEL_STUDIO_"))}
    env.update(
        {
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            "LABEL_STUDIO_BASE_DATA_DIR": str(data),
            "LATEST_VERSION_CHECK": "false",
            "COLLECT_ANALYTICS": "false",
        }
    )
    log = (data / "server.log").open("w")
    proc = subprocess.Popen(
        [str(LS_BIN), "start", "--internal-host", "127.0.0.1", "--port", str(port), "--no-browser",
         "--data-dir", str(data), "--username", "admin@lookout.test", "--password", "lookout-slow-test",
         "--user-token", TOKEN, "--enable-legacy-api-token"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    http = httpx.Client(base_url=url, headers={"Authorization": f"Token {TOKEN}"}, timeout=30)
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                pytest.fail(f"Label Studio exited with {proc.returncode}: {(data / 'server.log').read_text()[-2000:]}")
            try:
                if http.get("/api/projects").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"Label Studio not ready in 300 s: {(data / 'server.log').read_text()[-2000:]}")
            time.sleep(1)
        yield Server(url, http)
    finally:
        http.close()
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def scored(rid: str, hours: int) -> ScoredSample:
    sample = Sample(
        id=rid,
        ts=T0 + timedelta(hours=hours),
        prompt=f"prompt of {rid}",
        response=f"response of {rid}",
        history=(Message("system", "Be brief."),),
        model="m1",
        tenant="acme",
        origin=Origin("logs", 0, hours),
    )
    return ScoredSample(sample, {"toxicity": 0.9}, {"toxicity": "v1"}, ("toxicity",), None)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A chDB directory with r1, r2 queued (unlabeled) and r3 queued and already labeled in lookout."""
    path = tmp_path_factory.mktemp("ls-chdb") / "data"
    client = connect(ClickHouseSettings(dsn=f"chdb://{path}"))
    migrations.migrate(client, "lookout")
    RecordSink(client, "lookout", ["toxicity"]).write([scored("r1", 1), scored("r2", 2), scored("r3", 3)])
    client.insert(
        "lookout.review_items",
        [["tox", r, T0 + timedelta(days=1), T0 + timedelta(hours=h), "acme", "m1", "", 1, ["toxicity"], "toxic", 0]
         for r, h in (("r1", 1), ("r2", 2), ("r3", 3))],
        column_names=["queue", "record_id", "enqueued_at", "record_ts", "tenant", "model", "route", "priority",
                      "reasons", "rule", "control"],
    )  # fmt: skip
    client.insert(
        "lookout.review_labels",
        [["ui-1", "tox", "r3", "ann", T0 + timedelta(days=2), {"toxicity": "reject"}, 0, "", None, "none", "ui"]],
        column_names=["label_id", "queue", "record_id", "annotator", "labeled_at", "verdicts", "severity", "note",
                      "corrected_response", "preference", "source"],
    )  # fmt: skip
    client.close()
    return path


def lookout(data_dir: Path, *args: str) -> str:
    """Run ``lookout ARGS`` on the chDB directory; returns its last stderr line (exit 0 asserted)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOKOUT_")}
    env["LOOKOUT_CLICKHOUSE__DSN"] = f"chdb://{data_dir}"
    proc = subprocess.run(
        [sys.executable, "-m", "agent", *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stderr.strip().splitlines()[-1]


def labels(data_dir: Path) -> list[tuple[Any, ...]]:
    client = connect(ClickHouseSettings(dsn=f"chdb://{data_dir}"))
    try:
        rows = client.query(
            "SELECT label_id, queue, record_id, annotator, verdicts, severity, note, corrected_response, "
            "toString(preference) FROM lookout.v_review_labels WHERE source = 'labelstudio' ORDER BY labeled_at"
        ).result_rows
    finally:
        client.close()
    return [tuple(r) for r in rows]


SEVERITY_2 = {"from_name": "severity", "to_name": "response", "type": "rating", "value": {"rating": 2}}


def choice(name: str, value: str) -> dict[str, Any]:
    return {"from_name": name, "to_name": "response", "type": "choices", "value": {"choices": [value]}}


def text(name: str, value: str) -> dict[str, Any]:
    return {"from_name": name, "to_name": "response", "type": "textarea", "value": {"text": [value]}}


class TestLabelStudioRoundTrip:
    """push → annotate → pull → export, idempotent at every step, against a real Label Studio."""

    def test_round_trip(self, label_studio: Server, data_dir: Path, tmp_path: Path) -> None:
        """Push sends unlabeled items once; pull stores each annotation version once; export sees the labels."""
        ls = ["--url", label_studio.url, "--token", TOKEN, "--project", PROJECT]
        first = lookout(data_dir, "review", "push-labelstudio", *ls)
        assert first.endswith("created): sent 2, already there 0, skipped: none"), first
        again = lookout(data_dir, "review", "push-labelstudio", *ls, "--include-labeled")
        assert again.endswith("updated): sent 1, already there 2, skipped: none"), again

        http = label_studio.http
        (project,) = [p for p in http.get("/api/projects").json()["results"] if p["title"] == PROJECT]
        assert project["label_config"] == label_config()
        tasks = http.get(
            f"/api/projects/{project['id']}/export", params={"exportType": "JSON", "download_all_tasks": "true"}
        ).json()
        by_record = {t["data"]["record_id"]: t for t in tasks}
        assert sorted(by_record) == ["r1", "r2", "r3"]
        assert by_record["r1"]["data"]["prompt"] == "prompt of r1"

        r1 = http.post(
            f"/api/tasks/{by_record['r1']['id']}/annotations",
            json={"result": [choice("verdict_toxicity", "confirm"), text("corrected_response", "A kind reply."),
                             choice("preference", "corrected"), text("note", "insult"), SEVERITY_2]},
        )  # fmt: skip
        assert r1.status_code == 201, r1.text
        r2 = http.post(
            f"/api/tasks/{by_record['r2']['id']}/annotations", json={"result": [choice("verdict_toxicity", "reject")]}
        )
        assert r2.status_code == 201, r2.text
        cancelled = http.post(
            f"/api/tasks/{by_record['r3']['id']}/annotations", json={"result": [], "was_cancelled": True}
        )
        assert cancelled.status_code == 201, cancelled.text

        pulled = lookout(data_dir, "review", "pull-labelstudio", *ls)
        assert pulled.endswith("new labels 2, already stored 0, skipped: cancelled 1"), pulled
        stored = labels(data_dir)
        ann1 = r1.json()
        assert stored[0] == (
            f"ls-{ann1['id']}-{ann1['updated_at']}", "tox", "r1", "admin@lookout.test", {"toxicity": "confirm"}, 2,
            "insult", "A kind reply.", "corrected",
        )  # fmt: skip
        assert stored[1][2:5] == ("r2", "admin@lookout.test", {"toxicity": "reject"})
        assert lookout(data_dir, "review", "pull-labelstudio", *ls).endswith(
            "new labels 0, already stored 2, skipped: cancelled 1"
        )

        time.sleep(0.01)
        edited = http.patch(
            f"/api/annotations/{ann1['id']}",
            json={"result": [choice("verdict_toxicity", "confirm"), text("corrected_response", "A kinder reply."),
                             choice("preference", "corrected")]},
        )  # fmt: skip
        assert edited.status_code == 200, edited.text
        assert lookout(data_dir, "review", "pull-labelstudio", *ls).endswith(
            "new labels 1, already stored 1, skipped: cancelled 1"
        )
        assert len(labels(data_dir)) == 3

        out = tmp_path / "sft"
        lookout(data_dir, "export", "--out", str(out), "--format", "sft")
        sft = [json.loads(line) for line in (out / "sft.jsonl").read_text(encoding="utf-8").splitlines()]
        assert [(s["id"], s["messages"][-1]["content"]) for s in sft] == [("r1", "A kinder reply.")]
