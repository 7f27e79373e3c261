"""The redact step: each PII type replaced by its placeholder, near misses kept, samples and dead letters redacted."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.config import RedactSettings
from agent.decode import DecodeStep
from agent.redact import Redactor, RedactStep, redact_sample, redactor_from_settings
from agent.redact_patterns import PII_TYPES, iban_ok, luhn_ok
from agent.route import RouteStep
from agent.score import ScoreStep
from agent.step import Step
from agent.store import StoreStep
from agent.testing import loop
from agent.types import DeadLetter, DecodeFailure, Message, Origin, Sample

R = Redactor()
ORIGIN = Origin("llm-logs", 0, 7)

POSITIVES: list[tuple[str, str]] = [
    ("email", "john.doe+tag@example.co.uk"),
    ("email", "a_b-c%d@mail-server.example.org"),
    ("phone", "+1 415-555-2671"),
    ("phone", "+14155552671"),
    ("phone", "+44 20 7946 0958"),
    ("phone", "+49 (30) 1234 5678"),
    ("phone", "(415) 555-2671"),
    ("phone", "415-555-2671"),
    ("phone", "415.555.2671"),
    ("phone", "020 7946 0958"),
    ("card", "4111 1111 1111 1111"),
    ("card", "4111-1111-1111-1111"),
    ("card", "5555555555554444"),
    ("card", "378282246310005"),
    ("iban", "DE89 3704 0044 0532 0130 00"),
    ("iban", "DE89370400440532013000"),
    ("iban", "GB82WEST12345698765432"),
    ("iban", "FR1420041010050500013M02606"),
    ("ip", "192.168.1.10"),
    ("ip", "8.8.8.8"),
    ("ip", "2001:db8::8a2e:370:7334"),
    ("ip", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
    ("ip", "::1"),
    ("ip", "::ffff:192.0.2.128"),
    ("secret", "sk-proj-abcdefghijklmnopqrstuvwxyz123456"),
    ("secret", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz"),
    ("secret", "sk_live_abcdefghijklmnop1234"),
    ("secret", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
    ("secret", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"),
    ("secret", "xoxb-123456789012-abcdefghijkl"),
    ("secret", "AKIAIOSFODNN7EXAMPLE"),
    ("secret", "AIzaSyA-1234567890abcdefghijklmnopqrstu"),
    ("secret", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
    ("secret", "Zx9qL2mN8vB4cX7kJ3hG5fD1sA6pO0iU"),
    ("secret", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("ssn", "123-45-6789"),
    ("phone", "0044 7700 900123"),
]

NEGATIVES: list[tuple[str, str]] = [
    ("Luhn-invalid card", "4111 1111 1111 1112"),
    ("Luhn-invalid card, no spaces", "4111111111111112"),
    ("IBAN with a bad check digit", "DE89 3704 0044 0532 0130 01"),
    ("ISO date", "2024-01-15"),
    ("European date", "15.01.2024"),
    ("timestamp", "2024-01-15T10:30:00Z"),
    ("time of day", "12:30:45"),
    ("three-part version", "1.2.3"),
    ("v-prefixed four-part version", "v1.2.3.4"),
    ("five-part version", "1.2.3.4.5"),
    ("UUID", "123e4567-e89b-12d3-a456-426614174000"),
    ("all-digit UUID", "12345678-1234-1234-1234-123456789012"),
    ("MAC address", "00:1A:2B:3C:4D:5E"),
    ("C++ scope", "std::vector"),
    ("bare digit run (order number)", "4155552671"),
    ("short number", "123456789"),
    ("git SHA", "3f786850e387550fdab836ed7e6dc881de23001b"),
    ("URL path", "https://example.com/docs/api/v2/reference/endpoints/users1234"),
    ("file path", "/usr/local/lib/python3.11/site-packages"),
    ("long word", "Pneumonoultramicroscopicsilicovolcanoconiosis"),
    ("snake_case identifier", "compute_relevance_score_for_batch_items"),
    ("prose bearer", "the bearer of bad news"),
    ("price", "$1,299.99"),
    ("at sign without domain", "meet @ noon, ping @alice"),
    ("word with sk- inside", "disk-abcdefghijklmnopqrstuvwxyz"),
]


class TestRedactorTypes:
    """Each built-in type is replaced by its placeholder; near misses are kept."""

    @pytest.mark.parametrize(("kind", "value"), POSITIVES, ids=[f"{k}:{v[:24]}" for k, v in POSITIVES])
    def test_positive_in_sentence(self, kind: str, value: str) -> None:
        """The value inside a sentence becomes exactly one placeholder of its type; the rest is kept."""
        text, counts = R.redact(f"Contact: {value}, thanks.")
        assert text == f"Contact: [{kind.upper()}], thanks."
        assert counts == {kind: 1}

    @pytest.mark.parametrize(("why", "value"), NEGATIVES, ids=[w for w, _ in NEGATIVES])
    def test_near_miss_kept(self, why: str, value: str) -> None:
        """Near misses (bad checksums, dates, versions, UUIDs, hashes, paths) are not redacted."""
        text = f"see {value} here"
        assert R.redact(text) == (text, {})

    def test_bearer_keeps_scheme(self) -> None:
        """``Bearer <token>`` keeps the scheme word and replaces the token."""
        assert R.redact("Authorization: Bearer abc123def456ghi789jkl012") == (
            "Authorization: Bearer [SECRET]",
            {"secret": 1},
        )

    def test_counts_per_type(self) -> None:
        """Several spans of several types are counted per type, left to right replaced."""
        text = "a@b.io, c@d.io, 10.0.0.1 and 4111 1111 1111 1111"
        assert R.redact(text) == ("[EMAIL], [EMAIL], [IP] and [CARD]", {"email": 2, "ip": 1, "card": 1})

    def test_empty_and_clean_text_unchanged(self) -> None:
        """Text without PII comes back as is, with no counts."""
        assert R.redact("") == ("", {})
        assert R.redact("What is the capital of France?") == ("What is the capital of France?", {})

    def test_secret_wins_over_inner_matches(self) -> None:
        """A token is one [SECRET], not split into phone or card pieces."""
        assert R.redact("key sk-proj-4111111111111111-1234567890abc") == ("key [SECRET]", {"secret": 1})


class TestChecksums:
    """The validators behind CARD and IBAN."""

    def test_luhn(self) -> None:
        """Known good numbers pass; one changed digit fails."""
        assert luhn_ok("4111111111111111") and luhn_ok("378282246310005")
        assert not luhn_ok("4111111111111112")

    def test_iban(self) -> None:
        """Mod-97 and length 15..34."""
        assert iban_ok("GB82 WEST 1234 5698 7654 32")
        assert not iban_ok("GB83WEST12345698765432")
        assert not iban_ok("GB82WEST")


class TestRedactorOptions:
    """Types, extra patterns and the allow-list."""

    def test_types_subset(self) -> None:
        """Only the enabled types are replaced."""
        r = Redactor(types=("email",))
        assert r.redact("a@b.io from 10.0.0.1") == ("[EMAIL] from 10.0.0.1", {"email": 1})

    def test_unknown_type_rejected(self) -> None:
        """An unknown type name is an error that lists the valid ones."""
        with pytest.raises(ValueError, match="valid: email, phone"):
            Redactor(types=("passport",))

    def test_extra_pattern(self) -> None:
        """An extra pattern's matches become ``[NAME]`` and are counted under its name, before the built-ins."""
        r = Redactor(extra_patterns={"employee_id": r"\bEMP-\d{6}\b"})
        assert r.redact("EMP-123456 wrote to a@b.io") == (
            "[EMPLOYEE_ID] wrote to [EMAIL]",
            {"employee_id": 1, "email": 1},
        )

    def test_allow_whole_match(self) -> None:
        """An allow regex matching a detected span keeps it."""
        r = Redactor(allow=[r"support@acme\.com"])
        assert r.redact("support@acme.com or bob@acme.com") == ("support@acme.com or [EMAIL]", {"email": 1})

    def test_allow_surrounding_match(self) -> None:
        """A detected span inside an allow match in the text is kept."""
        r = Redactor(allow=[r"test card \S+"])
        text = "test card 4111111111111111 vs 5555555555554444"
        assert r.redact(text) == ("test card 4111111111111111 vs [CARD]", {"card": 1})

    def test_entropy_threshold(self) -> None:
        """A high threshold keeps random-looking tokens; prefixed secrets are still caught."""
        r = Redactor(entropy_threshold=7.9)
        assert r.redact("Zx9qL2mN8vB4cX7kJ3hG5fD1sA6pO0iU") == ("Zx9qL2mN8vB4cX7kJ3hG5fD1sA6pO0iU", {})
        assert r.redact("AKIAIOSFODNN7EXAMPLE")[0] == "[SECRET]"

    def test_from_settings(self) -> None:
        """Disabled settings give no redactor; enabled ones carry every option."""
        assert redactor_from_settings(RedactSettings(enabled=False)) is None
        r = redactor_from_settings(RedactSettings(types=("ip",), extra_patterns={"x": "X+"}, allow=["10\\.\\S*"]))
        assert r is not None
        assert r.redact("XX 10.0.0.1 8.8.8.8") == ("[X] 10.0.0.1 [IP]", {"x": 1, "ip": 1})

    def test_settings_reject_bad_regex(self) -> None:
        """An extra pattern or allow entry that does not compile is a settings error naming it."""
        with pytest.raises(ValueError, match=r"redact.extra_patterns.bad"):
            RedactSettings(extra_patterns={"bad": "("})
        with pytest.raises(ValueError, match=r"redact.allow"):
            RedactSettings(allow=["[a-"])

    def test_every_type_listed(self) -> None:
        """Every built-in type has a positive example above."""
        assert {k for k, _ in POSITIVES} == set(PII_TYPES)


def _sample() -> Sample:
    return Sample(
        id="rec-1",
        ts=datetime(2026, 1, 2, tzinfo=UTC),
        prompt="I am jane@corp.example, call +1 415-555-2671",
        response="Your card 4111 1111 1111 1111 is noted.",
        history=(Message("system", "Server 10.1.2.3"), Message("user", "no pii")),
        context=("IBAN DE89370400440532013000", "plain passage"),
        metadata={"ip": "8.8.8.8", "n": 3.0, "note": "fine"},
        user_id="u-1",
        origin=ORIGIN,
    )


class TestRedactSample:
    """A Sample's text fields are redacted; ``user_id`` is hashed; other identifiers and numbers are kept."""

    def test_every_text_field(self) -> None:
        """Prompt, response, history, context and string metadata are redacted; counts add up; user_id hashed."""
        out, counts = redact_sample(_sample())
        assert out.prompt == "I am [EMAIL], call [PHONE]"
        assert out.response == "Your card [CARD] is noted."
        assert out.history == (Message("system", "Server [IP]"), Message("user", "no pii"))
        assert out.context == ("IBAN [IBAN]", "plain passage")
        assert out.metadata == {"ip": "[IP]", "n": 3.0, "note": "fine"}
        hashed = "h:" + hashlib.sha256(b"u-1").hexdigest()[:16]  # redact.identifiers: hash (the default)
        assert (out.id, out.user_id, out.origin, out.ts) == ("rec-1", hashed, ORIGIN, _sample().ts)
        assert counts == {"email": 1, "phone": 1, "card": 1, "ip": 2, "iban": 1}

    def test_clean_sample_is_same_object(self) -> None:
        """A sample without PII comes back unchanged, with no counts."""
        s = Sample(id="x", ts=datetime(2026, 1, 1, tzinfo=UTC), prompt="hi", response="hello")
        out, counts = redact_sample(s)
        assert out is s and counts == {}


class TestRedactFailure:
    """Dead letters: reason and bytes redacted; invalid UTF-8 bytes kept as they are."""

    def test_valid_utf8_bytes_and_reason(self) -> None:
        """Valid UTF-8 is redacted and re-encoded; the reason too; coordinates kept."""
        f = DecodeFailure(b'{"ts": "bob@x.io"}', "field 'ts' is not an RFC 3339 timestamp: 'bob@x.io'", ORIGIN, b"k", 5)
        out, counts = R.redact_failure(f)
        assert out.raw == b'{"ts": "[EMAIL]"}'
        assert out.reason == "field 'ts' is not an RFC 3339 timestamp: '[EMAIL]'"
        assert (out.origin, out.key, out.timestamp_ms) == (ORIGIN, b"k", 5)
        assert counts == {"email": 2}

    def test_invalid_utf8_keeps_bad_bytes(self) -> None:
        """Invalid bytes come back unchanged around the redacted text."""
        f = DecodeFailure(b"\xff\xfe mail bob@x.io \xc3", "invalid UTF-8 at byte 0", ORIGIN)
        out, counts = R.redact_failure(f)
        assert out.raw == b"\xff\xfe mail [EMAIL] \xc3"
        assert counts == {"email": 1}

    def test_clean_failure_unchanged(self) -> None:
        """A failure without PII is the same object."""
        f = DecodeFailure(b"\xff\xfe", "invalid UTF-8 at byte 0", ORIGIN)
        assert R.redact_failure(f) == (f, {})


class TestAgentRedactStep:
    """The agent redacts right after decode: sinks, route sinks and the DLQ only see placeholders; /metrics counts."""

    def test_sinks_see_placeholders_and_metrics_count(self) -> None:
        """Records, routed records and dead letters carry placeholders; the counter grows per type."""
        from prometheus_client import REGISTRY

        from agent.metrics import PII_REDACTED
        from agent.score import Scorer
        from agent.testing import ListSink, ListSource, messages
        from agent.types import ScoredSample
        from detectors.toxicity import LexicalToxicity

        def emails() -> float:
            return REGISTRY.get_sample_value(PII_REDACTED, {"type": "email"}) or 0.0

        good = json.dumps({"id": "a", "ts": 1000, "prompt": "mail bob@x.io", "response": "ok 10.0.0.1"}).encode()
        bad = b'{"ts": "bob@x.io", "prompt": "p", "response": "r"}'
        records: ListSink[ScoredSample] = ListSink()
        routed: ListSink[ScoredSample] = ListSink()
        dead: ListSink[DeadLetter] = ListSink()
        redactor = Redactor()
        steps: list[Step] = [
            DecodeStep(), RedactStep(redactor), ScoreStep(Scorer([LexicalToxicity()], None)),
            StoreStep(records, [dead], redactor), RouteStep([routed]),
        ]  # fmt: skip
        agent = loop(ListSource(messages([good, bad])), steps, max_wait_ms=1000)
        before = emails()
        agent.run(exit_when_idle=0.05)
        for sink in (records, routed):
            (item,) = sink.written
            assert (item.sample.prompt, item.sample.response) == ("mail [EMAIL]", "ok [IP]")
        (failure,) = dead.written
        assert b"bob@x.io" not in failure.raw and b"[EMAIL]" in failure.raw
        assert "bob@x.io" not in failure.reason
        assert emails() - before == 3  # prompt, DLQ bytes, DLQ reason


class TestScoreFileRedacts:
    """``lookout score`` writes redacted records and dead letters."""

    def test_output_and_dlq_redacted(self, tmp_path: Path) -> None:
        """Text fields of the output and the DLQ file's raw line carry placeholders; ids are kept."""
        from agent.score import Scorer
        from agent.score_file import score_file
        from detectors.toxicity import LexicalToxicity

        src, out, dlq = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "dlq.jsonl"
        good = {
            "id": "a",
            "ts": 1000,
            "messages": [{"role": "system", "content": "ip 10.0.0.1"}, {"role": "user", "content": "mail bob@x.io"}],
            "response": "card 4111 1111 1111 1111",
            "context": ["iban DE89370400440532013000"],
            "metadata": {"k": "+1 415-555-2671"},
        }
        src.write_text(json.dumps(good) + "\n" + '{"ts": "bob@x.io", broken\n', encoding="utf-8")
        counts = score_file(Scorer([LexicalToxicity()], None), str(src), str(out), str(dlq), redactor=Redactor())
        assert (counts.scored, counts.rejected) == (1, 1)
        written = json.loads(out.read_text(encoding="utf-8"))
        assert written["id"] == "a"
        assert written["messages"][0]["content"] == "ip [IP]" and written["messages"][1]["content"] == "mail [EMAIL]"
        assert (written["response"], written["context"], written["metadata"]) == (
            "card [CARD]",
            ["iban [IBAN]"],
            {"k": "[PHONE]"},
        )
        dead = json.loads(dlq.read_text(encoding="utf-8"))
        assert "bob@x.io" not in dead["raw"] and "[EMAIL]" in dead["raw"]
