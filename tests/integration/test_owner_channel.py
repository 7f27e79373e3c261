"""One owner, many clients (issue 24, part 1): commands beside the process that holds an embedded store.

Real processes on a real chDB directory: ``lookout review serve`` holds it; ``stats``, ``query``, ``export`` and
``review add-annotator`` run from another process and print what they print without it; ``lookout run`` gets one
line naming the holder, never chDB's own lock error; after kill -9 the next command opens the store itself.
The channel itself is tested in-process (codec, read-only rule, errors, streaming).
"""

from __future__ import annotations

import json
import signal
import urllib.request
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from conftest import AgentEnv, csrf_of, seeded_data_dir, wait_for_port
from fastapi.testclient import TestClient

from agent.broker import free_port
from agent.errors import LookoutError
from agent.review.app import create_review_app
from agent.review.store import ReviewStore
from agent.review.testing import FLAGGED_TO_ONE_QUEUE, scored_sample, seed
from agent.storage.owner import OwnerChannel, OwnerClient, OwnerQueryError, decode, encode, socket_path

DB = "lookout"


def _commands(env: AgentEnv, out: Path) -> list[tuple[int, str]]:
    """(exit code, stdout) of the read commands, and the export's file."""
    results = []
    for args in (
        ("stats", "--json"),
        ("query", "SELECT id, tenant, toString(ts) AS ts FROM v_records ORDER BY id", "--json"),  # unqualified view
        ("query", "SELECT 1; DROP TABLE lookout.records"),
    ):
        done = env.run(*args)
        results.append((done.returncode, done.stdout))
    done = env.run("export", "--out", str(out), "--format", "jsonl", "--include-unlabeled")
    results.append((done.returncode, (out / "records.jsonl").read_text() if done.returncode == 0 else done.stderr))
    return results


class TestBesideTheOwner:
    """While ``lookout review serve`` holds the store, other commands work through it."""

    def test_same_output_same_exit_codes(self, agent_env: AgentEnv, tmp_path: Path) -> None:
        def three_flagged(c: Any) -> None:
            seed(c, DB, [scored_sample(f"r-{i}") for i in range(3)])

        seeded_data_dir(agent_env.data_dir, three_flagged)
        alone = _commands(agent_env, tmp_path / "alone")
        assert [code for code, _ in alone] == [0, 0, 1, 0]
        assert len(json.loads(alone[0][1].splitlines()[-1])) > 0 and alone[1][1].count("\n") == 3

        port = free_port()
        server = agent_env.start("review", "serve", "--port", str(port))
        try:
            wait_for_port(port)
            assert socket_path(agent_env.data_dir).exists()
            beside = _commands(agent_env, tmp_path / "beside")
            assert beside == alone

            added = agent_env.run("review", "add-annotator", "bob")
            assert added.returncode == 0, added.stderr
            token = added.stdout.strip().split()[-1]
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/review/api/v1/queues", headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - a loopback URL
                assert "safety" in [q["queue"] for q in json.loads(answer.read())]

            refused = agent_env.run("run", "--exit-when-idle", "1")
            assert refused.returncode == 1
            lines = refused.stderr.strip().splitlines()
            assert lines[-1].startswith("lookout: error: ClickHouse data directory") and "review serve" in lines[-1]
            assert f"(pid {server.pid})" in lines[-1]
            assert "Code: 76" not in refused.stderr and "DB::Exception" not in refused.stderr
        finally:
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=30)

        after = agent_env.run("stats", "--json")  # the killed owner's socket is left behind: replaced, not trusted
        assert after.returncode == 0, after.stderr
        assert agent_env.query("SELECT name FROM lookout.v_annotators") == [("bob",)]


class TestChannel:
    """The channel in-process: values round-trip, the read-only rule holds, errors keep their text."""

    @pytest.fixture
    def remote(self, client: Any, tmp_path: Path) -> Any:
        channel = OwnerChannel(client, tmp_path / "store").start()
        remote = OwnerClient(channel.path, tmp_path / "store")
        yield remote
        remote.close()
        channel.close()
        assert not channel.path.exists()

    def test_values_round_trip(self, remote: OwnerClient) -> None:
        """Every ClickHouse type lookout stores comes back as the client library gives it."""
        remote.command(
            "CREATE TABLE lookout.t (a UInt64, ts DateTime64(3, 'UTC'), d Date, m Map(String, Float32), "
            "h Array(Tuple(String, String)), n Nullable(Float64), dec Decimal(10, 3), u UUID, s String) "
            "ENGINE = MergeTree ORDER BY a"
        )
        row = [2**63, datetime(2026, 12, 3, 1, 2, 3, 456000, tzinfo=UTC), date(2026, 12, 3), {"x": 0.5},
               [("user", "hi \u202e"), ("assistant", "")], None, Decimal("1.250"),
               UUID("12345678-1234-5678-1234-567812345678"), "line\nbreak"]  # fmt: skip
        remote.insert("lookout.t", [row], column_names=["a", "ts", "d", "m", "h", "n", "dec", "u", "s"])
        result = remote.query("SELECT * FROM lookout.t WHERE a = {a:UInt64}", parameters={"a": 2**63})
        assert result.column_names == ("a", "ts", "d", "m", "h", "n", "dec", "u", "s")
        (got,) = result.result_rows
        assert got[0] == 2**63 and got[2:] == tuple(row[2:])
        assert got[1].replace(tzinfo=UTC) == row[1]

    def test_codec_tags(self) -> None:
        """Values JSON lacks are tagged; a dict that looks like a tag is not mistaken for one."""
        values = [float("inf"), b"\x00\xff", (1, "a"), {1: "x"}, {"$dt": "not a tag"}, [None, True]]
        back = decode(json.loads(json.dumps(encode(values))))
        assert back[0] == float("inf") and back[1:4] == [b"\x00\xff", (1, "a"), {1: "x"}]
        assert back[4] == {"$dt": "not a tag"} and back[5] == [None, True]

    def test_read_only_rule_holds_on_the_channel(self, remote: OwnerClient, client: Any) -> None:
        """A read-only request is checked by the owner too: several statements or file() are refused there."""
        client.command("CREATE TABLE lookout.keep (a UInt8) ENGINE = MergeTree ORDER BY a")
        with pytest.raises(LookoutError, match="exactly one statement"):
            remote.query("SELECT 0; DROP TABLE lookout.keep; SELECT 1", settings={"readonly": "1"})
        with pytest.raises(LookoutError, match="file"):
            remote.query("SELECT * FROM file('/etc/passwd', 'LineAsString')", settings={"readonly": "1"})
        assert client.query("EXISTS TABLE lookout.keep").result_rows == [(1,)]

    def test_database_errors_keep_their_text_and_the_connection(self, remote: OwnerClient) -> None:
        """A failing query raises with ClickHouse's text; the same connection then works."""
        with pytest.raises(OwnerQueryError, match=r"UNKNOWN_TABLE|Unknown table"):
            remote.query("SELECT * FROM lookout.nope")
        assert remote.query("SELECT 41 + 1").result_rows == [(42,)]

    def test_stream_in_blocks_and_early_exit(self, remote: OwnerClient) -> None:
        """A streamed query arrives in blocks; leaving early drains the rest so the next call works."""
        with remote.query_row_block_stream("SELECT number FROM numbers(200000)") as blocks:
            sizes = [len(b) for b in blocks]
        assert sum(sizes) == 200_000 and len(sizes) > 1
        with remote.query_row_block_stream("SELECT number FROM numbers(200000)") as blocks:
            first = next(iter(blocks))
        assert first[0] == (0,)
        assert remote.query("SELECT 1").result_rows == [(1,)]

    def test_long_data_dir_gets_a_private_socket(self, tmp_path: Path) -> None:
        """A directory too deep for a socket path gets one in a per-user temp folder, the same for every process."""
        deep = tmp_path / ("d" * 60) / ("e" * 60)
        path = socket_path(deep)
        assert len(str(path)) < 108 and path == socket_path(deep) and path.parent.name.startswith("lookout-")


class TestReviewRestart:
    """A review server restart keeps open forms valid."""

    def test_form_from_before_a_restart_is_accepted(self, client: Any) -> None:
        """The label form of one server process saves on the next (same session, same CSRF token)."""
        seed(client, DB, [scored_sample("r-0")])
        store = ReviewStore(client, DB, FLAGGED_TO_ONE_QUEUE)
        token = store.add_annotator("alice")
        before = TestClient(create_review_app(store), base_url="http://testserver.local")
        login = before.get("/review/login")
        csrf = csrf_of(login.text)
        before.post("/review/login", data={"csrf": csrf, "token": token})
        overview_csrf = csrf_of(before.get("/review/").text)
        item = before.post("/review/queues/safety/next", data={"csrf": overview_csrf})
        form_csrf = csrf_of(item.text)
        label_id = item.text.split('name="label_id" value="')[1].split('"')[0]
        action = item.text.split('id="label-form"')[0].rsplit('action="', 1)[1].split('"')[0]

        after = TestClient(create_review_app(store), base_url="http://testserver.local", cookies=before.cookies)
        saved = after.post(
            action, data={"csrf": form_csrf, "label_id": label_id, "verdict.toxicity": "confirm", "severity": "2",
                          "note": "typed before the restart"}, follow_redirects=False,
        )  # fmt: skip
        assert saved.status_code == 303
        assert [lab.note for lab in store.labels("safety", "r-0")] == ["typed before the restart"]
