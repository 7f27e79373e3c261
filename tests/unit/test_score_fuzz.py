"""Fuzzing ``lookout score`` (:func:`agent.score_file.score_file`): hostile JSONL files never crash it.

Each file mixes valid records with broken lines (mutated bytes, wrong types, invalid UTF-8, lone surrogate
escapes, NaN, CR/LF and NUL bytes). Every line that decodes is scored and written, in order; every other
non-blank line is in the DLQ file with its line number; both outputs are valid JSON lines.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from test_decode_fuzz import INVALID_UTF8, JSON_ANY, JSON_ONLY_LITERALS, valid

from agent.decode import decode
from agent.redact import Redactor
from agent.score import Scorer
from agent.score_file import score_file
from agent.types import Origin, RawMessage, Sample
from detectors.toxicity import LexicalToxicity

MAX_BYTES = 8_192


class ConstantClassifier:
    """A stand-in for the profanity model: 0.1 for every text (the fuzz is about input handling, not scores)."""

    def predict_proba(self, texts: Sequence[str]) -> NDArray[np.float64]:
        return np.full(len(texts), 0.1)


SCORER = Scorer([LexicalToxicity(ConstantClassifier())], None)

GOOD = st.builds(
    lambda i, text: json.dumps(valid(id=f"good-{i}", response=text)).encode(),
    st.integers(0, 10**6),
    st.text(max_size=60),
)
WRONG_TYPE = st.builds(
    lambda field, value: json.dumps(valid(**{field: value})).encode(),
    st.sampled_from(["id", "ts", "messages", "response", "model", "usage", "metadata", "context"]),
    JSON_ANY,
)
MUTATED = st.builds(
    lambda raw, at, junk: raw[:at] + junk + raw[at:],
    GOOD,
    st.integers(0, 200),
    st.one_of(
        INVALID_UTF8,
        st.sampled_from([b"\x00", b"\r", b'"', b"\\", b"\\ud800", b"{", b"]", b","]),
        st.binary(max_size=6),
    ),
)
LITERAL = st.builds(
    lambda lit: f'{{"id": "x", "ts": 1, "prompt": "p", "response": {lit}}}'.encode(), JSON_ONLY_LITERALS
)
SURROGATE = st.sampled_from(
    [
        b'{"id": "s", "ts": 1, "prompt": "\\ud800", "response": "r"}',
        b'{"id": "s", "ts": 1, "prompt": "p", "response": "\\udfff x"}',
    ]
)
LINE = st.one_of(GOOD, GOOD, WRONG_TYPE, MUTATED, LITERAL, SURROGATE, st.binary(max_size=40))


def _lines(data: bytes) -> list[tuple[int, bytes]]:
    """The lines ``score_file`` reads, numbered from 1: split after LF, line endings dropped, blanks skipped."""
    out = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        stripped = line.rstrip(b"\r\n")
        if stripped.strip():
            out.append((number, stripped))
    return out


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(LINE, min_size=1, max_size=12), redact=st.booleans())
def test_every_good_line_is_scored_every_bad_one_dead_lettered(
    tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], redact: bool
) -> None:
    """300 files of 1-12 lines: no exception; JSON lines out; good lines scored in order; the rest in the DLQ."""
    work: Path = tmp_path_factory.mktemp("score")
    src, out, dlq = work / "in.jsonl", work / "out.jsonl", work / "dlq.jsonl"
    data = b"\n".join(lines) + b"\n"
    src.write_bytes(data)
    counts = score_file(SCORER, str(src), str(out), str(dlq), MAX_BYTES, Redactor() if redact else None)

    read = _lines(data)
    decoded = [decode(RawMessage(Origin("file:in.jsonl", 0, number), raw), MAX_BYTES) for number, raw in read]
    good = [i for i, d in enumerate(decoded) if isinstance(d, Sample)]
    # JSON lines end at LF only: U+0085 or U+2028 inside a string are data (str.splitlines would cut there)
    scored = [json.loads(line) for line in out.read_text(encoding="utf-8").split("\n")[:-1]]
    dead = [json.loads(line) for line in dlq.read_text(encoding="utf-8").split("\n")[:-1]]
    assert (counts.scored, counts.rejected) == (len(good), len(read) - len(good))
    assert len(scored) == len(good) and len(dead) == len(read) - len(good)
    assert [s["id"] for s in scored] == [d.id for d in decoded if isinstance(d, Sample)]
    assert all(set(s["scores"]) == {"toxicity"} and isinstance(s["flags"], list) for s in scored)
    assert all(d["reason"] for d in dead)
    bad_lines = [number for (number, _), d in zip(read, decoded, strict=True) if not isinstance(d, Sample)]
    assert [d["line"] for d in dead] == bad_lines


def test_lone_surrogate_in_an_ignored_field_passes_through_escaped(tmp_path: Path) -> None:
    r"""A lone surrogate escape in a key lookout ignores: the record is scored, the line written with escapes.

    Found by the fuzz above (a ``\ud800`` escape put before ``model``): the output line carries the input object
    on, and a UTF-8 file cannot hold the surrogate, so that line is written with ASCII escapes.
    """
    raw = json.dumps(valid(id="s-0")).encode().replace(b'"model"', b'"\\ud800model"')
    src, out, dlq = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "dlq.jsonl"
    src.write_bytes(raw + b"\n")
    counts = score_file(SCORER, str(src), str(out), str(dlq), MAX_BYTES)
    assert (counts.scored, counts.rejected) == (1, 0)
    line = out.read_text(encoding="utf-8")
    assert "\\ud800model" in line and json.loads(line)["id"] == "s-0"


def test_record_without_id_is_written_with_the_derived_one(tmp_path: Path) -> None:
    """A record with no id is written with the id lookout derives, ``FILE/0/LINE``.

    Also found by the fuzz (an escaped surrogate put before ``id`` makes an id-less record).
    """
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    record = valid()
    del record["id"]
    src.write_bytes(b"\n" + json.dumps(record).encode() + b"\n")
    assert score_file(SCORER, str(src), str(out), str(tmp_path / "dlq.jsonl"), MAX_BYTES).scored == 1
    assert json.loads(out.read_text(encoding="utf-8"))["id"] == "file:in.jsonl/0/2"
