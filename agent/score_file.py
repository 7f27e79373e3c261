"""``lookout score``: score a JSONL file of v1 records with no Kafka and no ClickHouse."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from agent.decode import decode
from agent.errors import LookoutError
from agent.pipeline import Scorer
from agent.types import DecodeFailure, Origin, RawMessage, Sample

CHUNK = 256


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


def _output_line(message: RawMessage, scores: dict[str, float | None], flags: tuple[str, ...]) -> str:
    obj = json.loads(message.value or b"")
    obj["scores"] = scores
    obj["flags"] = list(flags)
    return json.dumps(obj, ensure_ascii=False)


def score_file(
    scorer: Scorer, src: str, out: str, dlq: str | None = None, max_record_bytes: int = 1_048_576
) -> ScoreCounts:
    """Score ``src`` into ``out``; bad lines go to ``dlq`` (default ``<out>.dlq.jsonl``, stderr-adjacent for ``-``)."""
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
                s, r = _score_chunk(scorer, chunk, sink, dead, max_record_bytes)
                scored, rejected, chunk = scored + s, rejected + r, []
        if chunk:
            s, r = _score_chunk(scorer, chunk, sink, dead, max_record_bytes)
            scored, rejected = scored + s, rejected + r
    return ScoreCounts(scored, rejected)


def _score_chunk(
    scorer: Scorer, chunk: list[RawMessage], sink: IO[str], dead: IO[str], max_record_bytes: int
) -> tuple[int, int]:
    decoded = [(m, decode(m, max_record_bytes)) for m in chunk]
    good = [(m, d) for m, d in decoded if isinstance(d, Sample)]
    results = scorer.score([d for _, d in good])
    for (message, _), result in zip(good, results, strict=True):
        sink.write(_output_line(message, dict(result.scores), result.flags) + "\n")
    bad = [d for _, d in decoded if isinstance(d, DecodeFailure)]
    for failure in bad:
        dead.write(_dlq_line(failure) + "\n")
    return len(good), len(bad)
