"""PII redaction end to end: no raw PII reaches ClickHouse, the DLQ topic, the review topic or an export."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from conftest import AgentEnv, read_topic, record

IDLE = "4"
RULES = """
queues:
  everything: {description: all traffic, sla_hours: 1}
rules:
  - {name: all, queue: everything, priority: 1, when: {detector: relevance, above: -1}}
"""

PII = {
    "email": "jane.doe@example.com",
    "phone": "+1 415-555-2671",
    "card": "4111 1111 1111 1111",
    "iban": "DE89 3704 0044 0532 0130 00",
    "ipv4": "203.0.113.7",
    "ipv6": "2001:db8::8a2e:370:7334",
    "openai": "sk-proj-abcdefghijklmnopqrstuvwxyz123456",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
}
"""One value per type; the raw strings that must appear nowhere downstream."""
PROBES = {  # security finding 6: each passed the redactor before
    "ssn": ("SSN 123-45-6789", "123-45-6789"),
    "password": ("password: hunter2", "hunter2"),
    "json_secret": ("{'api_key': 'k-778899'}", "k-778899"),
    "bearer": ("Bearer abcdef123456", "abcdef123456"),
    "basic": ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
    "userinfo": ("https://alice:s3cretpw@db.example.com/x", "s3cretpw"),
    "query": ("https://api.example.com/v1?api_key=abc123def456ghi789&sig=s1gn4ture", "abc123def456ghi789"),
    "query_sig": ("https://api.example.com/v1?sig=s1gn4ture", "s1gn4ture"),
    "intl": ("0044 7700 900123", "7700 900123"),
}
"""Probe text and the raw part of it that must not pass."""
USER_ID, TRACE_ID = "jane.doe@example.com", "4bf92f3577b34da6a3ce929d0e0e4736"
RAW = [
    *PII.values(), *(raw for _, raw in PROBES.values()), "4111111111111111", "DE89370400440532013000", "415-555-2671",
    "jane.doe", TRACE_ID,
]  # fmt: skip
TEXT = (
    f"Write to {PII['email']} or call {PII['phone']}. Card {PII['card']}, IBAN {PII['iban']}, "
    f"from {PII['ipv4']} / {PII['ipv6']}, keys {PII['openai']} {PII['aws']} token {PII['jwt']}. "
    + " ; ".join(text for text, _ in PROBES.values())
)
PLACEHOLDERS = ("[EMAIL]", "[PHONE]", "[CARD]", "[IBAN]", "[IP]", "[SECRET]", "[SSN]")


def _hashed(value: str) -> str:
    """``redact.identifiers: hash`` without a key: ``h:`` + 16 hex digits of SHA-256."""
    return "h:" + hashlib.sha256(value.encode()).hexdigest()[:16]


def _records() -> list[dict[str, Any]]:
    """PII of every type in the prompt, the response, a context passage, metadata and a history turn."""
    ids = {"user_id": USER_ID, "trace_id": TRACE_ID}
    return [
        record(0, prompt=TEXT, **ids),
        record(1, response=TEXT, **ids),
        record(2, context=["Clean passage.", TEXT], **ids),
        record(3, metadata={"note": TEXT, "n": 3}, **ids),
        {**record(4, **ids), "messages": [{"role": "system", "content": TEXT}, {"role": "user", "content": "hello?"}]},
    ]


MALFORMED = (
    f'{{"ts": 1, "prompt": "contact {PII["email"]}", broken'.encode(),  # not JSON
    json.dumps({"ts": PII["email"], "prompt": "p", "response": "r"}).encode(),  # the reason quotes the value
    b"\xff\xfe not utf-8 " + PII["email"].encode(),  # invalid UTF-8 around an email
    # not JSON, with identifiers and the probes
    f'{{"user_id": "{USER_ID}", "trace_id": "{TRACE_ID}", "prompt": "{TEXT.replace(chr(34), "`")}", x'.encode(),
)


def _leaks(blob: str | bytes) -> list[str]:
    text = blob.decode("utf-8", "replace") if isinstance(blob, bytes) else blob
    return [raw for raw in RAW if raw in text]


def _export_text(out: Path) -> str:
    """Every file of an export directory as text (parquet tables read back, not their compressed bytes)."""
    parts = []
    for path in sorted(out.iterdir()):
        if path.suffix == ".parquet":
            parts.append(repr(pq.read_table(path).to_pylist()))
        elif path.is_file():
            parts.append(path.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(parts)


def _read_topic(env: AgentEnv, name: str, at_least: int, timeout_s: float = 20) -> list[Any]:
    return read_topic(env.topic.broker, name, at_least, timeout_s)


class TestAgentRedaction:
    """``lookout run`` redacts right after decode: storage, DLQ, review topic and exports only see placeholders."""

    def test_no_raw_pii_anywhere_downstream(self, agent_env: AgentEnv, tmp_path: Path) -> None:
        """Tables, views, the DLQ and review topics and exports hold placeholders and hashes, never raw PII."""
        rules = tmp_path / "rules.yaml"
        rules.write_text(RULES, encoding="utf-8")
        payloads = [json.dumps(r).encode() for r in _records()] + list(MALFORMED)
        agent_env.topic.produce(payloads)

        done = agent_env.run(
            "run", "--exit-when-idle", IDLE, LOOKOUT_REVIEW__RULES=str(rules),
            LOOKOUT_DETECTORS__TOXICITY_BACKEND="lexical",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        assert "consumed 9, stored 5, dead-lettered 4" in done.stderr
        assert not _leaks(done.stderr)

        tables = [r[0] for r in agent_env.query("SELECT name FROM system.tables WHERE database = 'lookout'")]
        assert {"records", "v_records", "review_items", "v_review_items", "dead_letters", "v_dead_letters"} <= set(
            tables
        )
        for table in tables:
            rows = agent_env.query(f"SELECT * FROM lookout.{table}")  # noqa: S608 - names from system.tables
            assert not _leaks(repr(rows)), table
        joined = agent_env.query(
            "SELECT r.prompt, r.response, r.context, r.metadata, r.history FROM lookout.v_review_items AS i "
            "INNER JOIN lookout.v_records AS r ON r.id = i.record_id ORDER BY r.id"
        )
        assert len(joined) == 5
        stored = repr(joined)
        assert not _leaks(stored)
        for placeholder in PLACEHOLDERS:
            assert stored.count(placeholder) >= 5, placeholder  # once per record: prompt, response, ...
        ids = agent_env.query("SELECT DISTINCT user_id, trace_id FROM lookout.v_records")
        assert ids == [(_hashed(USER_ID), _hashed(TRACE_ID))]
        reasons = [r[0] for r in agent_env.query("SELECT reason FROM lookout.v_dead_letters")]
        assert any("[EMAIL]" in r for r in reasons), reasons

        dlq = _read_topic(agent_env, f"{agent_env.topic.name}.dlq", 4)
        assert len(dlq) == 4
        for m in dlq:
            assert not _leaks(m.value) and not _leaks(b"".join(v for _, v in m.headers))
            assert b"[EMAIL]" in m.value
        assert any(m.value.startswith(b"\xff\xfe not utf-8 ") for m in dlq)  # invalid bytes kept as they were
        assert any(f'"user_id": "{_hashed(USER_ID)}"'.encode() in m.value for m in dlq)

        review = _read_topic(agent_env, f"{agent_env.topic.name}.review", 5)
        assert len(review) == 5
        published = b" ".join(m.value for m in review)
        assert not _leaks(published)
        for placeholder in PLACEHOLDERS:
            assert placeholder.encode() in published, placeholder

        for fmt in ("jsonl", "parquet", "labelstudio"):
            out = tmp_path / f"export-{fmt}"
            exported = agent_env.run(
                "export", "--out", str(out), "--format", fmt, "--include-unlabeled", "--queue", "everything"
            )
            assert exported.returncode == 0, exported.stderr[-2000:]
            text = _export_text(out)
            assert not _leaks(text), (fmt, _leaks(text))
            assert "[SECRET]" in text and "[SSN]" in text, fmt
        assert _hashed(USER_ID) in _export_text(tmp_path / "export-jsonl")
