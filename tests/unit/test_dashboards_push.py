"""``lookout dashboards push`` against a fake Grafana.

The fake is a stand-in because Grafana cannot be installed on this machine: a stdlib ``http.server`` on
127.0.0.1 that records every request and implements only the endpoints push uses (data sources by uid,
folders, ``/api/dashboards/db``, the alert-rule provisioning API), with Grafana's 404/409 answers, so a push
that posted blindly would duplicate or fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from agent.broker import free_port
from agent.config import Settings
from dashboards.build import bundle
from dashboards.push import PushError, connect, push

TOKEN = "glsa_test"  # noqa: S105  # the fake server's test token


class FakeGrafana(ThreadingHTTPServer):
    """Stores objects by uid and records (method, path) of every request."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[tuple[str, str]] = []
        self.datasources: dict[str, dict[str, Any]] = {}
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.rules: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    """Routes the few Grafana API paths push uses."""

    server: FakeGrafana

    def log_message(self, *_: Any) -> None:
        """Quiet."""

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        s = self.server
        s.requests.append((method, self.path))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._send(401, {"message": "Unauthorized"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        body: dict[str, Any] = json.loads(self.rfile.read(length)) if length else {}
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts == ["api", "frontend", "settings"]:
            self._send(200, {"buildInfo": {"version": "11.6.0"}})
        elif parts[:3] == ["api", "datasources", "uid"]:
            self._object(method, s.datasources, parts[3], body)
        elif parts == ["api", "datasources"] and method == "POST":
            self._create(s.datasources, body["uid"], body, "data source with the same uid already exists")
        elif parts[:2] == ["api", "folders"] and len(parts) == 3:
            self._object(method, s.folders, parts[2], body)
        elif parts == ["api", "folders"] and method == "POST":
            self._create(s.folders, body["uid"], body, "a folder with the same uid already exists")
        elif parts[:3] == ["api", "dashboards", "uid"]:
            self._object(method, s.dashboards, parts[3], body)
        elif parts == ["api", "dashboards", "db"] and method == "POST":
            s.dashboards[body["dashboard"]["uid"]] = body
            self._send(200, {"status": "success", "uid": body["dashboard"]["uid"]})
        elif parts[:4] == ["api", "v1", "provisioning", "alert-rules"] and len(parts) == 5:
            self._object(method, s.rules, parts[4], body)
        elif parts == ["api", "v1", "provisioning", "alert-rules"] and method == "POST":
            self._create(s.rules, body["uid"], body, "a rule with this uid already exists")
        elif parts[:4] == ["api", "v1", "provisioning", "folder"] and method == "PUT":
            s.groups[f"{parts[4]}/{parts[6]}"] = body
            self._send(200, body)
        else:
            self._send(404, {"message": "Not found"})

    def _object(self, method: str, store: dict[str, dict[str, Any]], uid: str, body: Any) -> None:
        if uid not in store:
            self._send(404, {"message": "not found"})
        elif method == "GET":
            self._send(200, store[uid])
        else:
            store[uid] = {**store[uid], **body}
            self._send(200, store[uid])

    def _create(self, store: dict[str, dict[str, Any]], uid: str, body: Any, conflict: str) -> None:
        if uid in store:
            self._send(409, {"message": conflict})
        else:
            store[uid] = body
            self._send(200, body)

    def do_GET(self) -> None:  # http.server's naming
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    """A running fake Grafana."""
    server = FakeGrafana()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class TestPush:
    """Push upserts everything by uid; errors are one line."""

    def test_first_push_creates_everything(self, grafana: FakeGrafana) -> None:
        """Two data sources, the folder, five dashboards and fourteen alert rules are created, in the folder."""
        report = push(connect(grafana.url, TOKEN), grafana.url, bundle(Settings()))
        assert len(report.created) == 2 + 1 + 5 + 14 and report.updated == []
        assert set(grafana.datasources) == {"lookout-clickhouse", "lookout-prometheus"}
        assert set(grafana.folders) == {"lookout"}
        assert {b["folderUid"] for b in grafana.dashboards.values()} == {"lookout"}
        assert len(grafana.rules) == 14
        assert {r["folderUID"] for r in grafana.rules.values()} == {"lookout"}
        assert grafana.groups["lookout/lookout"]["interval"] == 60

    def test_second_push_updates_without_duplicates(self, grafana: FakeGrafana) -> None:
        """Pushing twice updates each object in place: no second POST of anything that exists."""
        api = connect(grafana.url, TOKEN)
        push(api, grafana.url, bundle(Settings()))
        first = len(grafana.requests)
        report = push(api, grafana.url, bundle(Settings().with_overrides(alerts={"toxicity_rate_pct": 9.0})))
        assert report.created == [] and len(report.updated) == 22
        second = grafana.requests[first:]
        posts = [p for m, p in second if m == "POST"]
        assert posts == ["/api/dashboards/db"] * 5  # Grafana's dashboard save is itself an upsert (overwrite)
        assert len(grafana.rules) == 14 and len(grafana.datasources) == 2
        rule = grafana.rules["lookout-toxicity-rate"]
        assert rule["data"][1]["model"]["conditions"][0]["evaluator"]["params"] == [9.0]

    def test_wrong_token_is_one_line(self, grafana: FakeGrafana) -> None:
        """A 401 says the credentials were refused and how to pass a token."""
        with pytest.raises(PushError, match=r"refused the credentials \(401 Unauthorized\).*--token"):
            push(connect(grafana.url, "wrong"), grafana.url, bundle(Settings()))

    def test_unreachable_is_one_line(self) -> None:
        """Nothing listening: 'Grafana unreachable at URL'."""
        url = f"http://127.0.0.1:{free_port()}"
        with pytest.raises(PushError, match=rf"Grafana unreachable at {url} .*check --url"):
            push(connect(url, TOKEN, timeout_s=2), url, bundle(Settings()))

    def test_cli_prints_summary_and_errors(self, grafana: FakeGrafana) -> None:
        """`lookout dashboards push` prints one summary line, or `lookout: error: ...` and exits 1."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOOKOUT_")}

        def cli(token: str) -> subprocess.CompletedProcess[str]:
            argv = [sys.executable, "-m", "agent", "dashboards", "push", "--url", grafana.url, "--token", token]
            return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)

        ok = cli(TOKEN)
        assert ok.returncode == 0 and f"pushed to {grafana.url}: created 22, updated 0" in ok.stderr
        bad = cli("nope")
        lines = bad.stderr.strip().splitlines()
        assert bad.returncode == 1 and len(lines) == 1 and lines[0].startswith("lookout: error: Grafana at")
