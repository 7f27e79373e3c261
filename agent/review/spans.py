"""Cheap flagged spans for the labeling page: response terms that the context does not contain.

When ``hallucination`` flagged or routed a record, numbers and capitalised words of the response that appear
nowhere in its context are marked: the unsupported details an annotator should check first. The page renders
the segments escaped, with ``<mark>`` around the marked ones; nothing here produces markup.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_TERM = re.compile(r"\b(?:\d[\d.,:/%-]*\d|\d|[A-Z][\w'-]*\w)\b")
_SENTENCE_START = re.compile(r"(?:^|[.!?]\s+|\n\s*)$")


def unsupported_terms(response: str, context: Sequence[str]) -> list[tuple[str, bool]]:
    """The response as (text, marked) segments; marked: a number or name absent from every passage."""
    known = " ".join(context).casefold()
    segments: list[tuple[str, bool]] = []
    last = 0
    for match in _TERM.finditer(response):
        term = match.group(0)
        if term[0].isalpha() and _SENTENCE_START.search(response[: match.start()]):
            continue  # a capital at the start of a sentence says nothing
        if term.casefold() in known:
            continue
        if match.start() > last:
            segments.append((response[last : match.start()], False))
        segments.append((term, True))
        last = match.end()
    if last < len(response) or not segments:
        segments.append((response[last:], False))
    return segments
