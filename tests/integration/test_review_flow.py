"""The review flow end to end: Kafka → ``lookout run`` routes → annotator labels in Chromium → ``lookout export``.

Everything is real and runs as the user would run it: tansu broker, chDB directory, ``lookout`` subprocesses,
the review server on a loopback port and Debian's headless Chromium.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
from conftest import AgentEnv, record, wait_for_port

from agent.broker import free_port

CHROMIUM = Path("/usr/bin/chromium")

TOXIC = [
    ("What do you think of my essay?", "It's garbage, you stupid fucking idiot."),
    ("Can you review my code?", "Your code is shit and you are a worthless moron."),
    ("Any feedback on my song?", "Shut up, you pathetic fucking loser, it sucks."),
]
BENIGN = [
    ("How do I boil an egg?", "Put the egg in boiling water for about nine minutes, then cool it in cold water."),
    ("What is the capital of France?", "The capital of France is Paris."),
]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="the browser flow needs /usr/bin/chromium")
class TestReviewFlow:
    """What an operator, an annotator and an ML engineer do, one after the other."""

    def test_demo_to_queue_to_browser_label_to_export(self, agent_env: AgentEnv, tmp_path: Path) -> None:
        """Toxic responses land in the safety queue, get labeled with the keyboard, and export with their labels."""
        pairs = TOXIC + BENIGN
        records = [record(i, prompt=p, response=r) for i, (p, r) in enumerate(pairs)]
        agent_env.topic.produce([json.dumps(r).encode() for r in records])
        done = agent_env.run("run", "--exit-when-idle", "4")
        assert done.returncode == 0, done.stderr[-2000:]
        queued = agent_env.query("SELECT record_id FROM lookout.v_review_items WHERE queue = 'safety' ORDER BY 1")
        assert [r[0] for r in queued] == ["r-00000", "r-00001", "r-00002"]

        added = agent_env.run("review", "add-annotator", "alice")
        assert added.returncode == 0, added.stderr[-2000:]
        token = added.stdout.strip().split()[-1]
        again = agent_env.run("review", "add-annotator", "ALICE")  # the same name in another case
        assert again.returncode == 1 and again.stdout == ""
        assert "already exists; re-issue their token with --reissue" in again.stderr
        assert len(again.stderr.strip().splitlines()) == 1, again.stderr

        port = free_port()
        server = agent_env.start("review", "serve", "--port", str(port))
        try:
            wait_for_port(port)
            self._label_three_in_browser(f"http://127.0.0.1:{port}", token)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)

        labels = agent_env.query(
            "SELECT record_id, annotator, verdicts, severity, verdict_flagged, source FROM lookout.v_review_labels "
            "ORDER BY 1"
        )
        confirmed = {"toxicity": "confirm"}
        assert [tuple(r) for r in labels] == [
            (f"r-0000{i}", "alice", confirmed, 1, {"toxicity": 1}, "ui") for i in range(3)
        ]

        out = tmp_path / "export"
        exported = agent_env.run("export", "--out", str(out), "--format", "jsonl", "--queue", "safety")
        assert exported.returncode == 0, exported.stderr[-2000:]
        manifest = json.loads((out / "manifest.json").read_text())
        assert [f["rows"] for f in manifest["files"]] == [3]
        lines = [json.loads(x) for x in (out / manifest["files"][0]["path"]).read_text().splitlines()]
        assert [line["id"] for line in lines] == ["r-00000", "r-00001", "r-00002"]
        assert [line["response"] for line in lines] == [r for _, r in TOXIC]
        assert all(line["label"]["annotator"] == "alice" for line in lines)

    @staticmethod
    def _label_three_in_browser(url: str, token: str) -> None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(CHROMIUM),
                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page: Any = browser.new_page()
            try:
                page.goto(f"{url}/review/login")
                page.fill("#token", token)
                with page.expect_navigation():
                    page.keyboard.press("Enter")
                names = page.locator("table.queues tbody tr td:nth-child(2) strong").all_inner_texts()
                safety = names.index("safety") + 1  # the row's number key
                with page.expect_navigation():
                    page.keyboard.press(str(safety))
                for _ in range(3):
                    assert "/review/claims/" in page.url
                    page.keyboard.press("a")  # confirm the routing reason (toxicity)
                    page.keyboard.press("]")  # severity 1: a confirmed harm needs one
                    with page.expect_navigation():
                        page.keyboard.press("Enter")
                assert "empty=safety" in page.url
            finally:
                browser.close()
