"""Relevance: does the response address the prompt? A trained logistic head over three cheap features.

The head (``detectors/heads/relevance.json``, model card ``relevance.md``) reads, per record:

``cosine``
    Cosine of the prompt's and the response's shared MiniLM embeddings (already in the batch: no extra
    encoder call). Topic similarity; it cannot tell an answer from a sentence that only shares the topic.
``prompt_recall``
    Fraction of the prompt's content words (lowercase, non-stopword, plural ``s`` stripped) that occur in
    the response: does the response speak about what was asked, in its words (the count features of
    WikiQA's CNN-Cnt, Yang et al. 2015). 0 when the prompt has no content word.
``answer_type``
    +1 when the prompt asks for a kind of answer (``when``/``what year`` → a year or date, ``how many``/
    ``how much``/``how long``/``how old`` → a number, ``who``/``where``/``which`` → a name) and the response
    contains one; -1 when it asks and the response has none; 0 when the prompt asks for no such type.

Conversations: when the record has earlier turns (``history``), a follow-up like "So how much water?" is read
with the turn before it. ``cosine`` is the larger of the prompt's cosine and the cosine to the normalised sum
of the prompt's, the previous user turn's and the previous assistant turn's embeddings; ``prompt_recall`` the
larger of the prompt's recall and that of the previous user turn joined with the prompt. The earlier turns are
embedded through the batch (a conversation logged turn by turn has them in the encoder cache already: they were
the previous record's prompt and response). One-shot records score exactly as before.

Features tried and dropped are listed in the model card. Blank prompts or responses score ``None``. Texts longer
than ``MAX_LEXICAL_CHARS`` are cut for the lexical features (the encoder truncates its own input), so a very long
text costs no more than one of that length.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from detectors.head import LogisticHead
from detectors.types import Batch, Score, TextField, Turn, Vectors

HEAD_NAME = "relevance"
"""The bundled head's file stem (``detectors/heads/relevance.json``)."""

FEATURES: tuple[str, ...] = ("cosine", "prompt_recall", "answer_type")
"""Feature columns, in the head's order."""

MAX_LEXICAL_CHARS = 20_000
"""Characters of each text read by the lexical features."""

_WORD = re.compile(r"\w[\w'\u2019-]*")
_NUMBER = re.compile(r"\b\d[\d,.:]*\b")
_YEAR_OR_DATE = re.compile(
    r"\b(1[0-9]{3}|20[0-9]{2})s?\b|\b\d{1,2}(st|nd|rd|th)?\s+(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
    r"|\b(january|february|march|april|may|june|july|august|september|october|november|december)\b"
    r"|\b(century|centuries|decade|bc|ad|bce|ce|today|yesterday|ago|season)\b",
    re.IGNORECASE,
)


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


_STOPWORDS = _wordset(
    """a about above after again against all am an and any are aren't as at be because been before being below
    between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each
    few for from further had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers
    herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself let's me more
    most mustn't my myself no nor not of off on once only or other ought our ours ourselves out over own same
    shan't she she'd she'll she's should shouldn't so some such than that that's the their theirs them
    themselves then there there's these they they'd they'll they're they've this those through to too under
    until up very was wasn't we we'd we'll we're we've were weren't what what's when when's where where's which
    while who who's whom why why's with won't would wouldn't you you'd you'll you're you've your yours yourself
    yourselves also just does tell explain give please know want like get make many much us one use used"""
)


def _content_words(text: str) -> set[str]:
    words = (w.lower().replace("\u2019", "'") for w in _WORD.findall(text[:MAX_LEXICAL_CHARS]))
    out = set()
    for word in words:
        if word in _STOPWORDS or (len(word) < 3 and not word.isdigit()):
            continue
        if word.endswith("'s"):
            word = word[:-2]
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        out.add(word)
    return out


def _expected_type(prompt: str) -> str | None:
    """``date``, ``number``, ``name`` or None, from the prompt's question words."""
    p = prompt[:MAX_LEXICAL_CHARS].lower()
    if re.search(r"\b(when|what year|which year|what date|what century|what decade)\b", p):
        return "date"
    if re.search(r"\bhow (many|much|long|old|far|tall|big|high|large|often|fast)\b|\bwhat percent", p):
        return "number"
    if re.search(r"\b(who|whom|whose|where|which)\b", p):
        return "name"
    return None


def _answer_type(prompt: str, response: str) -> float:
    kind = _expected_type(prompt)
    if kind is None:
        return 0.0
    text = response[:MAX_LEXICAL_CHARS]
    if kind == "date":
        found = _YEAR_OR_DATE.search(text) is not None
    elif kind == "number":
        found = (
            _NUMBER.search(text) is not None
            or re.search(
                r"\b(one|two|three|four|five|six|seven|eight|nine|ten|hundred|thousand|million|billion|dozen)\b",
                text,
                re.IGNORECASE,
            )
            is not None
        )
    else:
        prompt_words = {w.lower() for w in _WORD.findall(prompt[:MAX_LEXICAL_CHARS])}
        names = {w.lower() for w in _WORD.findall(text) if w[:1].isupper()}
        found = bool(names - prompt_words - _STOPWORDS)
    return 1.0 if found else -1.0


def _recall(asked: set[str], answered: set[str]) -> float:
    return len(asked & answered) / len(asked) if asked else 0.0


def compute_features(
    prompts: Sequence[str],
    responses: Sequence[str],
    cosines: Sequence[float] | NDArray[np.float64],
    earlier: Sequence[str] | None = None,
) -> NDArray[np.float64]:
    """One row of :data:`FEATURES` per (prompt, response, cosine of their embeddings).

    ``earlier`` holds, per record, the previous user turn ('' for none); ``cosines`` must then already be the
    conversation cosine of :func:`conversation_cosine`.
    """
    before = [""] * len(prompts) if earlier is None else earlier
    rows = []
    for prompt, response, cos, prev in zip(prompts, responses, cosines, before, strict=True):
        answered = _content_words(response)
        asked = _content_words(prompt)
        recall = _recall(asked, answered)
        if prev:
            recall = max(recall, _recall(asked | _content_words(prev), answered))
        rows.append([float(cos), recall, _answer_type(prompt, response)])
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))


def previous_turns(history: Sequence[Turn]) -> tuple[str, str]:
    """The last user turn and the last assistant turn of ``history`` ('' when there is none)."""
    user = next((t.content for t in reversed(history) if t.role == "user" and t.content.strip()), "")
    assistant = next((t.content for t in reversed(history) if t.role == "assistant" and t.content.strip()), "")
    return user, assistant


def conversation_cosine(prompt: Vectors, response: Vectors, user: Vectors, assistant: Vectors) -> NDArray[np.float64]:
    """Per row, the larger of cos(prompt, response) and cos(prompt + user + assistant, response).

    ``user``/``assistant`` are the previous turns' embeddings, zero rows where a record has no such turn (a
    record with neither gets its plain cosine).
    """
    plain = np.einsum("ij,ij->i", prompt, response).astype(np.float64)
    joined = (prompt + user + assistant).astype(np.float64)
    norms = np.linalg.norm(joined, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ctx = np.einsum("ij,ij->i", joined, response) / norms
    out: NDArray[np.float64] = np.where(np.isfinite(ctx), np.maximum(plain, ctx), plain)
    return out


def conversation_features(
    prompts: Sequence[str],
    responses: Sequence[str],
    before: Sequence[tuple[str, str]],
    prompt_vectors: Vectors,
    response_vectors: Vectors,
    encode: Callable[[list[str]], Vectors],
) -> NDArray[np.float64]:
    """Feature rows with each record's previous (user, assistant) turns; ``encode`` embeds the turns in one call."""
    users = [u for u, _ in before]
    texts = [*users, *(a for _, a in before)]
    turns = np.zeros((len(texts), prompt_vectors.shape[1]), dtype=np.float32)
    rows = [i for i, text in enumerate(texts) if text]
    if rows:
        turns[rows] = encode([texts[i] for i in rows])
    n = len(users)
    cos = conversation_cosine(prompt_vectors, response_vectors, turns[:n], turns[n:])
    return compute_features(prompts, responses, cos, users)


class EmbeddingRelevance:
    """Relevance of response to prompt: a logistic head over embedding cosine and lexical features.

    Args:
        head: The trained head; None loads the bundled ``detectors/heads/relevance.json``.
    """

    name = "relevance"
    needs: frozenset[TextField] = frozenset({"prompt", "response"})
    higher_is_worse = False
    default_threshold = 0.26
    """Flags at most 10 % of genuine traffic (held-out HH-RLHF replies, HaluEval right answers, BEGIN's faithful
    rows); it catches 37 % of answers to other questions, against 96 % at 0.5 (docs/detectors.md#operating-points)."""

    def __init__(self, head: LogisticHead | None = None) -> None:
        self.head = head if head is not None else LogisticHead.bundled(HEAD_NAME)
        if tuple(self.head.feature_names) != FEATURES:
            raise ValueError(f"head {self.head.name!r} is not a relevance head (features {self.head.feature_names})")
        self.version = f"head-{self.head.version}"

    def __repr__(self) -> str:
        return f"EmbeddingRelevance(head={self.head.name!r}@{self.head.version})"

    def score(self, batch: Batch) -> list[Score]:
        """One relevance probability per record; None when prompt or response is blank."""
        if not len(batch):
            return []
        prompts = [item.prompt for item in batch.items]
        responses = [item.response for item in batch.items]
        before = [previous_turns(item.history) for item in batch.items]
        x = conversation_features(
            prompts, responses, before, batch.embeddings("prompt"), batch.embeddings("response"), batch.encode
        )
        probs = self.head.predict_proba(x)
        out = []
        for prompt, response, value in zip(prompts, responses, probs, strict=True):
            blank = not prompt.strip() or not response.strip()
            out.append(Score(None if blank or not math.isfinite(value) else float(np.clip(value, 0.0, 1.0))))
        return out
