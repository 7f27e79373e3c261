"""Review routing inside ``lookout run``: real broker, real chDB, the agent as a subprocess."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from conftest import AgentEnv, read_topic, record

from agent.broker import free_port

IDLE = "4"
RULES = """
queues:
  everything: {description: all traffic, sla_hours: 1}
rules:
  - {name: all, queue: everything, priority: 1, when: {detector: relevance, above: 0}}
"""


def review_messages(env: AgentEnv, at_least: int, timeout_s: float = 20) -> list[Any]:
    """Read the review topic from the start until ``at_least`` messages arrived (or timeout)."""
    return read_topic(env.topic.broker, f"{env.topic.name}.review", at_least, timeout_s)


def rules_file(tmp_path: Path) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    return str(path)


class TestAgentRouting:
    """Routing runs after scoring and before the commit; replays enter each queue once."""

    def test_crash_before_commit_then_restart_routes_each_record_once(
        self, agent_env: AgentEnv, tmp_path: Path
    ) -> None:
        """Killed after the first write: on restart every record is in the queue once and on the topic."""
        n = 60
        agent_env.topic.produce_records([record(i) for i in range(n)])
        rules, backend = rules_file(tmp_path), "lexical"
        crashed = agent_env.run_crashing(1, LOOKOUT_REVIEW__RULES=rules, LOOKOUT_DETECTORS__TOXICITY_BACKEND=backend)
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
        again = agent_env.run(
            "run", "--exit-when-idle", IDLE, LOOKOUT_REVIEW__RULES=rules, LOOKOUT_DETECTORS__TOXICITY_BACKEND=backend
        )
        assert again.returncode == 0, again.stderr[-2000:]
        rows = agent_env.query(
            "SELECT count(), uniqExact(record_id), min(rule), max(control) FROM lookout.v_review_items "
            "WHERE queue = 'everything'"
        )
        assert rows == [(n, n, "all", 0)]
        messages = review_messages(agent_env, n)
        keys = {m.key.decode() for m in messages}
        assert keys == {f"everything/r-{i:05d}" for i in range(n)}
        first = json.loads(messages[0].value)
        assert first["queue"] == "everything" and first["rule"] == "all" and "relevance" in first["scores"]


class TestServeInProcess:
    """With ``review.serve_ui`` the agent itself serves the review UI next to /metrics (one chDB owner)."""

    def test_review_api_answers_from_the_running_agent(self, agent_env: AgentEnv, tmp_path: Path) -> None:
        """While ``lookout run`` holds the embedded directory, its /review API shows the queue it fills."""
        added = agent_env.run("review", "add-annotator", "alice")
        assert added.returncode == 0, added.stderr[-2000:]
        token = added.stdout.strip()
        n = 20
        agent_env.topic.produce_records([record(i) for i in range(n)])
        port = free_port()
        proc = agent_env.start(
            "run", "--exit-when-idle", "6", LOOKOUT_REVIEW__RULES=rules_file(tmp_path), LOOKOUT_REVIEW__SERVE_UI="true",
            LOOKOUT_METRICS__PORT=str(port), LOOKOUT_DETECTORS__TOXICITY_BACKEND="lexical",
        )  # fmt: skip
        backlog = None
        try:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/review/api/v1/queues", headers={"Authorization": f"Bearer {token}"}
            )
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and backlog != n:
                try:
                    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
                        backlog = {q["queue"]: q["backlog"] for q in json.load(response)}.get("everything")
                except (urllib.error.URLError, ConnectionError):
                    pass
                time.sleep(0.3)
        finally:
            _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        assert backlog == n
