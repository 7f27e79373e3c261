"""Injection strings in every field that reaches SQL are stored and filtered literally; tables survive.

The records go through the real agent (tansu → ``lookout run`` → chDB); then every read path that takes a value
from outside (export filters, stats, the review store and JSON API, annotator names, ``lookout query``) is
driven with the same strings.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from conftest import AgentEnv, Topic, record
from fastapi.testclient import TestClient

from agent.broker import Broker, ensure_topic
from agent.cli import main
from agent.config import ClickHouseSettings
from agent.review.app import create_review_app
from agent.review.rules import load_rules
from agent.review.store import ReviewError, ReviewStore
from agent.storage.client import connect

HOSTILE = (
    "'; DROP TABLE lookout.records; --",
    "\\' OR 1=1 --",
    "x\\",
    "{db}",
    "{q:String}",
    "\u2019 OR \u20181\u2019=\u20181",
    '" OR ""="',
    "a' UNION SELECT name FROM system.tables --",
)
"""Quotes, backslashes, parameter and template placeholders, unicode quotes, a UNION."""

ENABLED = '["toxicity", "prompt_toxicity", "relevance", "hallucination", "refusal"]'
EVERYTHING_TO_ONE_QUEUE = "queues: {all: {}}\nrules:\n  - {name: everything, queue: all, priority: 1}\n"


def _rid(i: int) -> str:
    return f"r-{i}-{HOSTILE[i]}"


def _tables(env: AgentEnv) -> list[str]:
    return sorted(r[0] for r in env.query("SELECT name FROM system.tables WHERE database = 'lookout'"))


@pytest.fixture(scope="module")
def hostile_env(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> AgentEnv:
    """The agent has stored one record per hostile string, in every text field, each queued in ``all``."""
    name = f"logs-{uuid.uuid4().hex[:8]}"
    ensure_topic(broker.bootstrap, name, 3)
    tmp_path = tmp_path_factory.mktemp("hostile")
    agent_env = AgentEnv(Topic(broker, name, 3), tmp_path / "lookout-data", f"g-{uuid.uuid4().hex[:8]}")
    rules = tmp_path / "rules.yaml"
    rules.write_text(EVERYTHING_TO_ONE_QUEUE)
    records = [
        record(i, id=_rid(i), tenant=h, model=h, route=h, user_id=h, prompt=f"p {h}", response=f"r {h}",
               metadata={h: h})
        for i, h in enumerate(HOSTILE)
    ]  # fmt: skip
    agent_env.topic.produce_records(records)
    done = agent_env.run(
        "run", "--exit-when-idle", "4", LOOKOUT_REVIEW__RULES=str(rules), LOOKOUT_DETECTORS__ENABLED=ENABLED,
        LOOKOUT_DETECTORS__TOXICITY_BACKEND="lexical", LOOKOUT_REDACT__ENABLED="false",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return agent_env


class TestInjectionStrings:
    """Hostile values are data, never SQL."""

    def test_record_fields_stored_literally(self, hostile_env: AgentEnv) -> None:
        """id, tenant, model, route, user_id, texts and metadata come back byte for byte."""
        rows = hostile_env.query(
            "SELECT id, tenant, model, route, user_id, prompt, response, metadata FROM lookout.v_records"
        )
        got = {r[0]: r[1:] for r in rows}
        assert got == {_rid(i): (h, h, h, h, f"p {h}", f"r {h}", {h: h}) for i, h in enumerate(HOSTILE)}
        assert "records" in _tables(hostile_env)

    def test_export_filters_match_literally(self, hostile_env: AgentEnv, tmp_path: Path) -> None:
        """``lookout export --tenant X --model X --route X`` returns exactly the one record holding X."""
        before = _tables(hostile_env)
        for i, h in enumerate(HOSTILE):
            out = tmp_path / f"export-{i}"
            done = hostile_env.run(
                "export", "--out", str(out), "--format", "jsonl", "--include-unlabeled",
                "--tenant", h, "--model", h, "--route", h, "--queue", "all",
            )  # fmt: skip
            assert done.returncode == 0, done.stderr[-2000:]
            ids = [json.loads(line)["id"] for line in (out / "records.jsonl").read_text().splitlines()]
            assert ids == [_rid(i)], h
        assert _tables(hostile_env) == before

    def test_stats_shows_hostile_models_as_names(self, hostile_env: AgentEnv) -> None:
        """``lookout stats`` counts every record and lists the hostile model names as plain names."""
        stats = hostile_env.run("stats", "--json")
        assert stats.returncode == 0, stats.stderr[-2000:]
        data = json.loads(stats.stdout)
        assert data["samples"] == len(HOSTILE)
        assert {m["model"] for m in data["cost_by_model"]} == set(HOSTILE)

    def test_review_store_and_api_take_hostile_values_literally(self, hostile_env: AgentEnv) -> None:
        """Claims, labels, item lookups and tokens with injection strings: stored as given, or a clean 4xx."""
        client = connect(ClickHouseSettings(dsn=hostile_env.dsn))
        try:
            store = ReviewStore(client, "lookout", load_rules(None))
            for h in HOSTILE:
                with pytest.raises(ReviewError, match="must be 1-64"):
                    store.add_annotator(h)
                assert store.authenticate(h) is None
            token = store.add_annotator("ann")
            http = TestClient(create_review_app(store), base_url="http://testserver.local")
            auth = {"Authorization": f"Bearer {token}"}
            for i, h in enumerate(HOSTILE):
                claimed = http.post("/review/api/v1/claims", json={"queue": "all", "record_id": _rid(i)}, headers=auth)
                assert claimed.status_code == 201, claimed.text
                assert claimed.json()["item"]["tenant"] == h
                body: dict[str, Any] = {
                    "label_id": f"l-{h}", "queue": "all", "record_id": _rid(i), "note": h, "corrected_response": h,
                    "claim_id": claimed.json()["claim"]["claim_id"],
                }  # fmt: skip
                labeled = http.post("/review/api/v1/labels", json=body, headers=auth)
                assert labeled.status_code == 201, labeled.text
                assert labeled.json()["label"]["note"] == h
                found = http.get(f"/review/api/v1/items/all/{quote(_rid(i), safe='')}", headers=auth)
                assert found.status_code == 200, found.text
                assert (found.json()["item"]["record_id"], found.json()["labels"][0]["note"]) == (_rid(i), h)
                missing = http.post("/review/api/v1/claims", json={"queue": h, "record_id": h}, headers=auth)
                assert missing.status_code == 404
                nothing = http.post(f"/review/api/v1/queues/{quote(h, safe='')}/next", headers=auth)
                assert nothing.status_code == 204, (h, nothing.text)
                bearer = f"Bearer {h}".encode()  # raw UTF-8 bytes: a header is bytes on the wire
                assert http.get("/review/api/v1/queues", headers={b"Authorization": bearer}).status_code == 401
            labels = client.query(
                "SELECT record_id, label_id, note, corrected_response FROM lookout.v_review_labels"
            ).result_rows
            assert sorted(labels) == sorted((_rid(i), f"l-{h}", h, h) for i, h in enumerate(HOSTILE))
            assert client.query("SELECT count() FROM lookout.v_records").result_rows == [(len(HOSTILE),)]
        finally:
            client.close()


READ_ONLY_REFUSED = (
    "DROP TABLE lookout.records",
    "INSERT INTO lookout.dead_letters (reason) VALUES ('x')",
    "ALTER TABLE lookout.records DELETE WHERE 1",
    "TRUNCATE TABLE lookout.records",
    "CREATE TABLE lookout.pwn (a Int8) ENGINE = Memory",
    "SYSTEM DROP MARK CACHE",
    "SELECT count() FROM lookout.records SETTINGS readonly = 0",
)

REFUSED_BEFORE_RUNNING = (
    "SELECT 1; DROP TABLE lookout.records",
    "SELECT 0; INSERT INTO lookout.annotators (name, token_sha256, created_at, is_admin, disabled, updated_at) "
    "VALUES ('x', 'abc', now64(3), 1, 0, now64(6)); SELECT 1",
    "SELECT 0; CREATE TABLE lookout.pwn (a Int8) ENGINE = Memory; SELECT 1",
    "SELECT 0; DROP TABLE lookout.records; SELECT 1",
    "SELECT * FROM file('/etc/passwd', 'LineAsString'); SELECT 1",
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "INSERT INTO FUNCTION file('pwn.csv', 'CSV') SELECT 1",
)


class TestQueryIsReadOnly:
    """``lookout query`` runs with ClickHouse ``readonly=1``: writes, DDL, SYSTEM and file access are refused."""

    def test_write_statements_refused_select_answers(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Each write, DDL, SYSTEM, multi-statement or file statement fails with one line; tables stay; SELECT works."""
        monkeypatch.setenv("LOOKOUT_CLICKHOUSE__DSN", f"chdb://{tmp_path / 'data'}")
        monkeypatch.chdir(tmp_path)
        assert main(["migrate"]) == 0
        capsys.readouterr()
        tables = "SELECT groupArraySorted(1000)(name) AS t FROM system.tables WHERE database = 'lookout'"
        assert main(["query", tables, "--json"]) == 0
        before = json.loads(capsys.readouterr().out)["t"]
        assert "records" in before
        for sql in READ_ONLY_REFUSED:
            assert main(["query", sql]) == 1, sql
            err = capsys.readouterr().err
            assert err.startswith("lookout: error: query failed:") and "readonly" in err.lower(), (sql, err)
            assert err.count("\n") == 1
        for sql in REFUSED_BEFORE_RUNNING:  # several statements, or a table function reaching outside
            assert main(["query", sql]) == 1, sql
            err = capsys.readouterr().err
            assert err.startswith("lookout: error: lookout query r") and err.count("\n") == 1, (sql, err)
        assert main(["query", tables, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["t"] == before
        assert not (tmp_path / "pwn.csv").exists()
        assert main(["query", "SELECT count() AS n FROM lookout.annotators", "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == {"n": 0}  # the probe's admin was never created
        assert main(["query", "SELECT count() AS n FROM lookout.v_records", "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == {"n": 0}
