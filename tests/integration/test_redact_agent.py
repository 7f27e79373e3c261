"""PII redaction end to end: no raw PII reaches ClickHouse, the DLQ topic or the review topic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
RAW = [*PII.values(), "4111111111111111", "DE89370400440532013000", "415-555-2671", "jane.doe"]
TEXT = (
    f"Write to {PII['email']} or call {PII['phone']}. Card {PII['card']}, IBAN {PII['iban']}, "
    f"from {PII['ipv4']} / {PII['ipv6']}, keys {PII['openai']} {PII['aws']} token {PII['jwt']}."
)
PLACEHOLDERS = ("[EMAIL]", "[PHONE]", "[CARD]", "[IBAN]", "[IP]", "[SECRET]")


def _records() -> list[dict[str, Any]]:
    """PII of every type in the prompt, the response, a context passage, metadata and a history turn."""
    return [
        record(0, prompt=TEXT),
        record(1, response=TEXT),
        record(2, context=["Clean passage.", TEXT]),
        record(3, metadata={"note": TEXT, "n": 3}),
        {**record(4), "messages": [{"role": "system", "content": TEXT}, {"role": "user", "content": "hello?"}]},
    ]


MALFORMED = (
    f'{{"ts": 1, "prompt": "contact {PII["email"]}", broken'.encode(),  # not JSON
    json.dumps({"ts": PII["email"], "prompt": "p", "response": "r"}).encode(),  # the reason quotes the value
    b"\xff\xfe not utf-8 " + PII["email"].encode(),  # invalid UTF-8 around an email
)


def _leaks(blob: str | bytes) -> list[str]:
    text = blob.decode("utf-8", "replace") if isinstance(blob, bytes) else blob
    return [raw for raw in RAW if raw in text]


def _read_topic(env: AgentEnv, name: str, at_least: int, timeout_s: float = 20) -> list[Any]:
    return read_topic(env.topic.broker, name, at_least, timeout_s)


class TestAgentRedaction:
    """``lookout run`` redacts right after decode: storage, DLQ and review topic only ever see placeholders."""

    def test_no_raw_pii_anywhere_downstream(self, agent_env: AgentEnv, tmp_path: Path) -> None:
        """Every table and view, the DLQ topic and the review topic hold placeholders and no raw PII."""
        rules = tmp_path / "rules.yaml"
        rules.write_text(RULES, encoding="utf-8")
        payloads = [json.dumps(r).encode() for r in _records()] + list(MALFORMED)
        agent_env.topic.produce(payloads)

        done = agent_env.run(
            "run", "--exit-when-idle", IDLE, LOOKOUT_REVIEW__RULES=str(rules),
            LOOKOUT_DETECTORS__TOXICITY_BACKEND="lexical",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        assert "consumed 8, stored 5, dead-lettered 3" in done.stderr
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
        reasons = [r[0] for r in agent_env.query("SELECT reason FROM lookout.v_dead_letters")]
        assert any("[EMAIL]" in r for r in reasons), reasons

        dlq = _read_topic(agent_env, f"{agent_env.topic.name}.dlq", 3)
        assert len(dlq) == 3
        for m in dlq:
            assert not _leaks(m.value) and not _leaks(b"".join(v for _, v in m.headers))
            assert b"[EMAIL]" in m.value
        assert any(m.value.startswith(b"\xff\xfe not utf-8 ") for m in dlq)  # invalid bytes kept as they were

        review = _read_topic(agent_env, f"{agent_env.topic.name}.review", 5)
        assert len(review) == 5
        published = b" ".join(m.value for m in review)
        assert not _leaks(published)
        for placeholder in PLACEHOLDERS:
            assert placeholder.encode() in published, placeholder
