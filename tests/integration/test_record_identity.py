"""A record is identified by (tenant, id): a re-send with another ``ts`` (or model) is one record everywhere.

Real tansu broker, real chDB, ``lookout run`` as a subprocess; every read path a user has is checked: the
``v_records`` view, ``lookout stats``, a dashboard panel's query, ``lookout export`` and the review item.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from conftest import AgentEnv, open_chdb, record

from agent.config import Settings
from agent.review.rules import load_rules
from agent.review.store import ReviewStore
from dashboards.build import bundle
from dashboards.macros import ALL, QueryContext, expand

IDLE = "4"
EVERY_RECORD = str(Path(__file__).resolve().parents[1] / "data" / "review_every_record.yaml")
DAY_MS = 86_400_000


def _resent(i: int, shift_days: int, **fields: Any) -> dict[str, Any]:
    """Record ``i`` sent again ``shift_days`` later, with a new response (a correction)."""
    original = record(i)
    return record(i, ts=original["ts"] + shift_days * DAY_MS, response=f"corrected answer {i}", **fields)


def _run_agent(env: AgentEnv) -> None:
    """``lookout run`` until idle, every record routed to review (so that export sees every record)."""
    done = env.run(
        "run",
        "--exit-when-idle",
        IDLE,
        LOOKOUT_REVIEW__RULES=EVERY_RECORD,
        LOOKOUT_DETECTORS__TOXICITY_BACKEND="lexical",
    )
    assert done.returncode == 0, done.stderr[-2000:]


def _dashboard_count(env: AgentEnv) -> int:
    """The quality board's "Records scored" panel, as Grafana runs it over a range holding every record."""
    query = next(q for b in bundle(Settings()).boards for q in b.queries if q.panel == "Records scored")
    first = datetime.fromtimestamp(record(0)["ts"] / 1000, tz=UTC)
    variables = {"tenant": [ALL], "model": [ALL], "route": [ALL]}
    sql = expand(query.sql, QueryContext(first - timedelta(days=1), first + timedelta(days=60), 300, variables))
    return int(env.query(sql)[0][0])


class TestResentRecord:
    """Latest ingested copy wins; every count sees one record per (tenant, id)."""

    def test_resent_id_with_another_ts_or_model_counts_once(self, agent_env: AgentEnv, tmp_path: Path) -> None:
        """Re-sent across a month and a day, with another model, within one batch: 11 records, newest copies."""
        first = [record(i) for i in range(10)] + [_resent(3, 2)]  # r-00003 again, later in the same batch
        agent_env.topic.produce([json.dumps(r).encode() for r in first], key=b"acme")
        _run_agent(agent_env)

        again = [
            _resent(1, 40),  # another month: another partition of records
            _resent(2, 1, model="gpt-4o"),  # another model too
            record(5, tenant="globex"),  # the same id under another tenant is another record
        ]
        agent_env.topic.produce([json.dumps(r).encode() for r in again], key=b"acme")
        _run_agent(agent_env)

        assert agent_env.query("SELECT count(), uniqExact(tenant, id) FROM lookout.v_records") == [(11, 11)]
        rows = agent_env.query(
            "SELECT id, toUnixTimestamp64Milli(ts), model, response FROM lookout.v_records "
            "WHERE tenant = 'acme' AND id IN ('r-00001', 'r-00002', 'r-00003') ORDER BY id"
        )
        assert rows == [
            ("r-00001", _resent(1, 40)["ts"], "gpt-4o-mini", "corrected answer 1"),
            ("r-00002", _resent(2, 1)["ts"], "gpt-4o", "corrected answer 2"),
            ("r-00003", _resent(3, 2)["ts"], "gpt-4o-mini", "corrected answer 3"),
        ]

        stats = json.loads(agent_env.run("stats", "--json").stdout)
        assert stats["samples"] == 11
        assert sum(m["records"] for m in stats["cost_by_model"]) == 11
        assert _dashboard_count(agent_env) == 11

        out = tmp_path / "export"
        exported = agent_env.run("export", "--out", str(out), "--format", "jsonl", "--include-unlabeled")
        assert exported.returncode == 0, exported.stderr[-2000:]
        lines = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
        assert len(lines) == len({line["id"] for line in lines})
        by_id = {line["id"]: line for line in lines}
        assert by_id["r-00001"]["response"] == "corrected answer 1"

        with open_chdb(agent_env.data_dir) as client:
            item = ReviewStore(client, "lookout", load_rules(Path(EVERY_RECORD))).item("all", "r-00001")
        assert (item.response, item.model) == ("corrected answer 1", "gpt-4o-mini")
        assert item.ts == datetime.fromtimestamp(_resent(1, 40)["ts"] / 1000, tz=UTC)
