"""Repetition: does the response repeat itself (repeated n-grams, a degenerate loop at the end)?

Text only, no model, no embeddings: tens of microseconds per record. The response (its first ``MAX_CHARS``
characters) is cut into tokens: runs of letters/digits, runs of punctuation, and single CJK/kana/hangul
characters (scripts written without spaces), lowercased. Two measures, each in 0..1:

* **repeated n-gram rate**: the share of the response's word 4-grams that already occurred earlier in it
  (``1 - distinct / total``). Ordinary prose repeats few 4-grams ("one of the", "as well as" are 3-grams); a
  response that says the same sentence or paragraph again repeats most of them. Mapped linearly from
  ``NGRAM_FLOOR`` (0) to ``NGRAM_FLOOR + NGRAM_SPAN`` (1): a rate of 0.35 scores 0.5.
* **tail loop**: the longest stretch at the end of the response that is one unit (1..``MAX_PERIOD`` tokens)
  repeated back to back at least ``MIN_LOOPS`` times ("I don't know. I don't know. I don't know."), as a share
  of all tokens; a loop covering half the response scores 1.0. This catches a generation that fell into a loop
  after a normal start, which the n-gram rate only sees once the loop dominates.

The score is the larger of the two; 0.5 flags. Responses with fewer than ``MIN_TOKENS`` tokens score 0.0 (too
short to repeat anything); a blank response scores 0.0. Lists and tables with a fixed template ("| 1 | yes |")
raise the n-gram rate; most stay below the threshold, but song choruses and long code listings can cross it
(``scripts/eval_signals.py`` measures the flag rate on real outputs). A loop inside one token
(``hahahaha`` without spaces) is one token and is not seen.

Across records ("the same answer to different prompts") is a property of a stream, not of one response: the
agent's drift step does it (``near_duplicate``, see ``detectors/duplicates.py``).
"""

from __future__ import annotations

import re

from detectors.types import Batch, Score, TextField

MAX_CHARS = 20_000
"""Characters of the response that are read."""
MIN_TOKENS = 12
"""Responses shorter than this score 0.0."""
N = 4
"""n of the repeated n-gram rate."""
NGRAM_FLOOR = 0.10
"""Repeated 4-gram rate that scores 0 (ordinary prose sits below it)."""
NGRAM_SPAN = 0.50
"""Rate above the floor that scores 1."""
MAX_PERIOD = 60
"""Longest loop unit looked for, in tokens."""
MIN_LOOPS = 3
"""A tail loop needs this many back-to-back copies of its unit."""

_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+|[^\w\s]+")


def tokens(text: str) -> list[str]:
    """Lowercased tokens: words, runs of punctuation (``-----`` is one token), single CJK characters."""
    return _TOKEN.findall(text[:MAX_CHARS].lower())


def ngram_repeat_rate(toks: list[str], n: int = N) -> float:
    """Share of the n-grams that repeat an earlier one (0.0 when there are none)."""
    grams = [tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def tail_loop_share(toks: list[str], max_period: int = MAX_PERIOD, min_loops: int = MIN_LOOPS) -> float:
    """Share of the tokens covered by the longest back-to-back repetition of one unit at the end."""
    n = len(toks)
    best = 0
    for period in range(1, min(max_period, n // min_loops) + 1):
        run = period  # the last unit matches itself; extend while each token equals the one a period earlier
        i = n - period - 1
        while i >= 0 and toks[i] == toks[i + period]:
            run += 1
            i -= 1
        loops = run // period
        if loops >= min_loops:
            best = max(best, loops * period)
    return best / n if n else 0.0


def repetition_score(response: str) -> float:
    """The larger of the n-gram and tail-loop scores (see the module docstring)."""
    toks = tokens(response)
    if len(toks) < MIN_TOKENS:
        return 0.0
    ngram = min(1.0, max(0.0, (ngram_repeat_rate(toks) - NGRAM_FLOOR) / NGRAM_SPAN))
    loop = min(1.0, 2.0 * tail_loop_share(toks))
    return round(max(ngram, loop), 6)


class RepetitionDetector:
    """Whether the response repeats itself: repeated 4-gram rate and a degenerate loop at the end."""

    name = "repetition"
    version = "ngram4-loop-v1"
    needs: frozenset[TextField] = frozenset()
    higher_is_worse = True
    default_threshold = 0.5

    def __repr__(self) -> str:
        return "RepetitionDetector()"

    def score(self, batch: Batch) -> list[Score]:
        """One repetition score per record (0.0 for short or blank responses)."""
        return [Score(repetition_score(item.response)) for item in batch.items]
