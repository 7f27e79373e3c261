"""``lookout score``: score a JSONL file of v1 records with no Kafka and no ClickHouse."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from agent.decode import decode
from agent.errors import LookoutError
from agent.redact import Redactor
from agent.score import Scorer
from agent.types import DecodeFailure, Origin, RawMessage, Sample

CHUNK = 256
TEXT_FIELDS = ("prompt", "response", "messages", "context", "metadata")
"""Top-level fields whose strings are redacted in the output (``user_id`` and ``trace_id`` follow
``redact.identifiers``; ``id`` is kept)."""


@dataclass(frozen=True, slots=True)
class ScoreCounts:
    """How a file went."""

    scored: int
    """Records written to the output."""
    rejected: int
    """Lines written to the DLQ file."""


def _numbered_lines(stream: IO[bytes], name: str) -> Iterator[RawMessage]:
    for number, line in enumerate(stream, start=1):
        line = line.rstrip(b"\r\n")
        if line.strip():
            yield RawMessage(origin=Origin(f"file:{name}", 0, number), value=line)


def _dlq_line(failure: DecodeFailure) -> str:
    return json.dumps(
        {
            "line": failure.origin.offset,
            "reason": failure.reason,
            "raw": failure.raw.decode("utf-8", errors="replace"),
        },
        ensure_ascii=False,
    )


def _redact_json(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, str):
        return redactor.redact(value)[0]
    if isinstance(value, list):
        return [_redact_json(v, redactor) for v in value]
    if isinstance(value, dict):
        return {k: _redact_json(v, redactor) for k, v in value.items()}
    return value


def _output_line(
    message: RawMessage,
    sample: Sample,
    scores: dict[str, float | None],
    flags: tuple[str, ...],
    redactor: Redactor | None,
    tiers: Mapping[str, str] | None = None,
) -> str:
    obj = json.loads(message.value or b"")
    if obj.get("id") is None:  # the id lookout derived (FILE/0/LINE), as `lookout run` would store it
        obj["id"] = sample.id
    if redactor is not None:
        obj.update({k: _redact_json(obj[k], redactor) for k in TEXT_FIELDS if k in obj})
        # identifiers as the redactor replaced them on the (redacted) sample
        obj.update({k: getattr(sample, k) for k in ("user_id", "trace_id") if isinstance(obj.get(k), str)})
        if isinstance(obj.get("metadata"), dict):
            obj["metadata"].update({k: v for k, v in sample.metadata.items() if redactor.identifiers.owns(k)})
    obj["scores"] = scores
    obj["flags"] = list(flags)
    if tiers:  # scoring.mode: cascade: which tier decided each score
        obj["tiers"] = dict(tiers)
    line = json.dumps(obj, ensure_ascii=False)
    if not line.isascii():
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate escape in a field lookout ignores: pass it on escaped
            return json.dumps(obj)
    return line


def score_file(
    scorer: Scorer,
    src: str,
    out: str,
    dlq: str | None = None,
    max_record_bytes: int = 1_048_576,
    redactor: Redactor | None = None,
) -> ScoreCounts:
    """Score ``src`` into ``out``; bad lines go to ``dlq`` (default ``<out>.dlq.jsonl``, stderr-adjacent for ``-``).

    With a ``redactor``, records are scored redacted and the output and DLQ lines carry redacted text.
    """
    dlq_path = dlq or (f"{out}.dlq.jsonl" if out != "-" else "lookout-score.dlq.jsonl")
    scored = rejected = 0
    with ExitStack() as stack:
        try:
            source = sys.stdin.buffer if src == "-" else stack.enter_context(Path(src).open("rb"))
            sink = sys.stdout if out == "-" else stack.enter_context(Path(out).open("w", encoding="utf-8"))
            dead = stack.enter_context(Path(dlq_path).open("w", encoding="utf-8"))
        except OSError as exc:
            raise LookoutError(f"cannot open {exc.filename}: {exc.strerror}") from None
        chunk: list[RawMessage] = []
        for message in _numbered_lines(source, Path(src).name if src != "-" else "stdin"):
            chunk.append(message)
            if len(chunk) >= CHUNK:
                s, r = _score_chunk(scorer, chunk, sink, dead, max_record_bytes, redactor)
                scored, rejected, chunk = scored + s, rejected + r, []
        if chunk:
            s, r = _score_chunk(scorer, chunk, sink, dead, max_record_bytes, redactor)
            scored, rejected = scored + s, rejected + r
    return ScoreCounts(scored, rejected)


def _score_chunk(
    scorer: Scorer,
    chunk: list[RawMessage],
    sink: IO[str],
    dead: IO[str],
    max_record_bytes: int,
    redactor: Redactor | None,
) -> tuple[int, int]:
    decoded = [(m, decode(m, max_record_bytes)) for m in chunk]
    good = [(m, d) for m, d in decoded if isinstance(d, Sample)]
    if redactor is not None:
        good = [(m, redactor.redact_sample(d)[0]) for m, d in good]
    results = scorer.score([d for _, d in good])
    for (message, sample), result in zip(good, results, strict=True):
        sink.write(_output_line(message, sample, dict(result.scores), result.flags, redactor, result.tiers) + "\n")
    bad = [d for _, d in decoded if isinstance(d, DecodeFailure)]
    if redactor is not None:
        bad = [redactor.redact_failure(d)[0] for d in bad]
    for failure in bad:
        dead.write(_dlq_line(failure) + "\n")
    return len(good), len(bad)
