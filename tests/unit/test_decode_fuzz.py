"""Fuzzing decode: 10,000+ malformed messages, none raises; each is a Sample or a DecodeFailure with a reason.

Messages start from valid records and are broken the ways producers break them: byte-level mutations of the
JSON text, fields of the wrong type, huge strings, deep nesting, invalid UTF-8, NUL bytes, NaN/Infinity and odd
timestamps. The redact step runs on every result too, so it never raises on what decode lets through.
"""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.decode import decode
from agent.redact import Redactor
from agent.types import DecodeFailure, Origin, RawMessage, Sample

ORIGIN = Origin("llm-logs", 1, 99)
MAX_BYTES = 8_192
REDACTOR = Redactor()


def fuzz(examples: int) -> settings:
    """Hypothesis settings: ``examples`` derandomized examples, no deadline.

    Messages per test: examples times messages per example; the five tests below decode 12,500 messages.
    """
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def valid(**fields: Any) -> dict[str, Any]:
    """A valid record touching every field, with ``fields`` replaced."""
    base: dict[str, Any] = {
        "id": "rec-1",
        "ts": "2026-01-02T03:04:05Z",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi bob@x.io"}],
        "response": "hello",
        "model": "gpt-4o-mini",
        "tenant": "acme",
        "context": ["passage"],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
        "latency_ms": 12.5,
        "metadata": {"k": "v", "n": 1},
    }
    base.update(fields)
    return base


FIELDS = st.sampled_from(sorted(valid()))
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)
JSON_ANY = st.recursive(
    JSON_SCALARS,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=6,
)
PART_KEYS = ("prompt_tokens", "completion_tokens", "role", "content", "type", "text", "k")
SCALARS: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    2**70,
    1.5,
    -0.0,
    1e308,
    math.nan,
    math.inf,
    -math.inf,
    "",
    "x",
    "\x00",
)


def random_json(rng: random.Random, depth: int = 0) -> Any:
    """A JSON value of any type, shaped like the nested fields (usage, messages, metadata) often enough."""
    kind = rng.randrange(6 if depth < 3 else 3)
    if kind == 0:
        return rng.choice(SCALARS)
    if kind == 1:
        return rng.uniform(-1e12, 1e13) if rng.random() < 0.5 else rng.randint(-(2**40), 2**40)
    if kind == 2:
        return "".join(chr(rng.randrange(0x20, 0x2FFF)) for _ in range(rng.randrange(12)))
    if kind == 3:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 4:
        return {rng.choice(PART_KEYS): random_json(rng, depth + 1) for _ in range(rng.randrange(4))}
    return [{"role": rng.choice(["user", "", 3]), "content": random_json(rng, depth + 1)}]


ODD_TS = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "now",
            "2026-13-01T00:00:00Z",
            "2026-02-30",
            "0000-01-01",
            "9999-12-31T23:59:59+14:00",
            "0001-01-01T00:00:00-23:59",
            "1969-12-31T23:59:59Z",
            "2200-01-01T00:00:00Z",
            "2026-01-02T03:04:05.1234567Z",
            "2026-01-02 03:04:05",
            "20260102T030405Z",
            "2026-W01-1",
            "+002026-01-02",
            "2026-01-02T03:04:05\x00Z",
            "1e999",
            "NaN",
            "١٢٣",
        ]
    ),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    JSON_ANY,
)
INVALID_UTF8 = st.sampled_from(
    [b"\xff", b"\xfe\xff", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\xe2\x82"]
)
JSON_ONLY_LITERALS = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1" * 400, '"\\u0000"'])


def assert_result(result: Sample | DecodeFailure, message: RawMessage) -> None:
    """A Sample within the schema's rules, or a DecodeFailure with a one-line reason and the original bytes."""
    if isinstance(result, DecodeFailure):
        assert result.reason.strip(), "empty reason"
        assert "\n" not in result.reason
        assert result.raw == (message.value or b"")
        assert result.origin == message.origin
        REDACTOR.redact_failure(result)
        return
    assert isinstance(result, Sample), type(result)
    assert datetime(1970, 1, 1, tzinfo=UTC) <= result.ts < datetime(2200, 1, 1, tzinfo=UTC)
    texts = [result.prompt, result.response, *result.context, *(m.content for m in result.history)]
    assert all("\x00" not in t for t in texts)
    for text in [*texts, result.id, *(v for v in result.metadata.values() if isinstance(v, str))]:
        text.encode("utf-8")  # writable by every sink: no lone surrogates
    assert result.id.strip()
    REDACTOR.redact_sample(result)


def run(value: bytes | None) -> None:
    """Decode ``value`` and check the result."""
    message = RawMessage(origin=ORIGIN, value=value, key=b"k", timestamp_ms=1)
    assert_result(decode(message, MAX_BYTES), message)


class TestDecodeFuzz:
    """Property: decode returns a value, never raises, for 10,000 generated malformed messages."""

    @fuzz(2_000)  # 2,000 messages
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["cut", "insert", "delete", "flip", "dup"]),
                st.integers(0, 10_000),
                st.binary(max_size=4),
            ),
            min_size=1,
            max_size=4,
        )
    )
    def test_byte_mutations_of_valid_json(self, edits: list[tuple[str, int, bytes]]) -> None:
        """Truncated, spliced, flipped and duplicated bytes of a valid record (bad JSON, bad UTF-8, stray NULs)."""
        data = bytearray(json.dumps(valid()).encode())
        for op, pos, blob in edits:
            i = pos % (len(data) + 1)
            if op == "cut":
                del data[i:]
            elif op == "insert":
                data[i:i] = blob
            elif op == "delete":
                del data[i : i + len(blob) + 1]
            elif op == "flip" and i < len(data):
                data[i] ^= blob[0] if blob else 0xFF
            elif op == "dup":
                data[i:i] = data[: i % 64]
        run(bytes(data))

    @fuzz(1_500)  # 1,500 messages
    @given(st.randoms(use_true_random=False))
    def test_wrong_types_and_missing_fields(self, rng: random.Random) -> None:
        """Fields replaced by values of any type (NaN, Infinity, huge ints included) or removed.

        Values come from a seeded ``random.Random``: a small search space makes Hypothesis spend its time
        avoiding duplicates instead of testing.
        """
        names = sorted(valid())
        obj = valid(**{rng.choice([*names, "extra"]): random_json(rng) for _ in range(rng.randint(1, 3))})
        for name in rng.sample(names, rng.randint(0, 3)):
            obj.pop(name, None)
        run(json.dumps(obj).encode())

    @fuzz(1_500)  # 3,000 messages
    @given(ODD_TS, st.sampled_from(["ts", "latency_ms", "usage", "metadata"]), JSON_ONLY_LITERALS)
    def test_odd_timestamps_and_number_literals(self, ts: Any, field: str, literal: str) -> None:
        """Odd timestamps, and NaN/Infinity/overflowing literals spliced where numbers go."""
        run(json.dumps(valid(ts=ts)).encode())
        spliced = {"ts": literal, "latency_ms": literal, "usage": f'{{"prompt_tokens": {literal}}}'}
        spliced["metadata"] = f'{{"x": {literal}}}'
        text = json.dumps(valid(**{field: "@@"})).replace('"@@"', spliced[field])
        run(text.encode())

    @fuzz(1_000)  # 2,000 messages
    @given(
        st.sampled_from(["[", '{"a":', '{"messages":[', '{"metadata":{"k":']),
        st.integers(1, 20_000),
        st.integers(0, 2 * MAX_BYTES),
        st.sampled_from(["prompt", "response", "id", "model", "context"]),
    )
    def test_deep_nesting_and_huge_strings(self, opener: str, depth: int, size: int, field: str) -> None:
        """Nesting up to 20,000 levels; strings up to twice the size limit in any text field."""
        run((opener * depth).encode())
        big = "é" * (size // 2)
        run(json.dumps(valid(**{field: [big] if field == "context" else big}), ensure_ascii=False).encode())

    @fuzz(1_000)  # 4,000 messages
    @given(
        st.sampled_from(["prompt", "response", "id", "tenant", "context", "metadata", "messages"]),
        INVALID_UTF8,
        st.sampled_from(["\x00", "\\u0000", "\ud800", "\\ud800", "\\udc00\\ud800", "\u2028", "\ufeff"]),
        st.integers(0, 50),
    )
    def test_invalid_utf8_nul_and_surrogates(self, field: str, bad: bytes, odd: str, at: int) -> None:
        """Invalid UTF-8 bytes, raw and escaped NULs, lone surrogates and BOMs inside each text field."""
        text = json.dumps(valid(**{field: "@@"}))
        inner = {
            "context": '["x@@y"]',
            "metadata": '{"k": "x@@y"}',
            "messages": '[{"role": "user", "content": "x@@y"}]',
        }
        text = text.replace('"@@"', inner.get(field, '"x@@y"'))
        head, tail = text.split("@@")
        run(head.encode() + bad + tail.encode())
        run(head.encode("utf-8", "surrogatepass") + odd.encode("utf-8", "surrogatepass") + tail.encode())
        raw = text.encode()
        run(raw[: at % len(raw)] + b"\x00" + raw[at % len(raw) :])
        run(b"\xef\xbb\xbf" + raw)
