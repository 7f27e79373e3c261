"""Hallucination: how little of the response is supported by the record's context passages (RAG).

The score is a trained logistic head (``detectors/heads/hallucination.json``) over eight features computed
from the response, the context passages and the shared sentence encoder's embeddings:

``sent_cos_min`` / ``sent_cos_mean``
    The response and the context are split into sentences (a regex splitter; at most ``max_sentences`` of
    each, each at most 300 characters). For every response sentence, the highest cosine to any context
    sentence; then the minimum and the mean of those over the response's sentences. One unsupported
    sentence pulls the minimum down.
``whole_cos``
    Cosine of the whole response to the whole context (each cut to its first 2,000 characters).
``novel_numbers``
    Fraction of the numbers in the response (``1998``, ``3.5``, ``1,200``) that never occur in the context;
    0 when the response has none.
``novel_entities``
    Fraction of capitalised, non-stopword tokens in the response (names, places, titles) whose lowercase
    form never occurs in the context; 0 when there are none. A sentence's first word is not counted (it is
    capitalised whatever it is: "Annual rainfall...", "Running sync..."), unless the sentence is that one word
    (a short answer such as "Mumbai").
``content_recall``
    Fraction of the response's content words (lowercase, non-stopword, 3+ characters, plural ``s``
    stripped) that occur in the context: lexical overlap.
``negation_mismatch``
    Fraction of response sentences that carry a negation cue (``not``, ``never``, ``no``, ``n't``...) while
    their best-matching context sentence carries none: a cheap contradiction cue.
``log_tokens``
    ``log(1 + number of word tokens of the response)``.

Records whose context is empty (or only blank passages) or whose response is blank score ``None``.
All embeddings of a batch are fetched with ONE ``batch.encode`` call. Texts are cut before splitting, and the
context sentences kept are those sharing the most words with the response, so a 100 KB text costs at most
``2 * max_sentences + 2`` encoder inputs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from detectors.head import LogisticHead
from detectors.types import Batch, Score, TextField, Vectors

FEATURES: tuple[str, ...] = (
    "sent_cos_min",
    "sent_cos_mean",
    "whole_cos",
    "novel_numbers",
    "novel_entities",
    "content_recall",
    "negation_mismatch",
    "log_tokens",
)
"""Feature columns, in the head's order."""

MAX_SENTENCE_CHARS = 300
"""Longer sentences are cut into pieces of this many characters."""
MAX_WHOLE_CHARS = 2000
"""Characters of the whole response / whole context embedded for ``whole_cos``."""
MAX_SPLIT_CHARS = 60_000
"""Characters of a response or of the joined context that are split into sentences."""
MAX_LEXICAL_CHARS = 200_000
"""Characters of the joined context searched for the response's words and numbers."""

_SENTENCE_END = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])\s+|\s*\n+\s*|(?<=[a-z)\]][.!?])(?=[A-Z])")
_APOSTROPHE = "\u2019"
"""Typographic apostrophe, folded to ASCII."""
_WORD = re.compile(r"\w[\w'\u2019-]*")
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


_NEGATIONS = _wordset(
    "not no never none nobody nothing neither nor cannot without nowhere isnt arent wasnt werent dont doesnt "
    "didnt wont cant couldnt shouldnt wouldnt hasnt havent hadnt"
)
STOPWORDS = _wordset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having he
    her here hers herself him himself his how i if in into is it its itself just let me more most my myself no nor
    not of off on once only or other our ours ourselves out over own same she should so some such than that the
    their theirs them themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves yes yeah oh well
    really think know like one two many much get got make made say said go going went see seen way thing things
    lot pretty sure good great"""
)
"""English function and filler words ignored by the lexical features."""


def split_sentences(text: str, max_sentences: int) -> list[str]:
    """At most ``max_sentences`` non-blank sentences of ``text``, each cut to ``MAX_SENTENCE_CHARS``."""
    out: list[str] = []
    for part in _SENTENCE_END.split(text[:MAX_SPLIT_CHARS]):
        part = part.strip()
        for start in range(0, len(part), MAX_SENTENCE_CHARS):
            piece = part[start : start + MAX_SENTENCE_CHARS].strip()
            if piece:
                out.append(piece)
                if len(out) >= max_sentences:
                    return out
    return out


def _norm(word: str) -> str:
    word = word.lower().replace(_APOSTROPHE, "'")
    return word[:-1] if len(word) > 4 and word.endswith("s") else word


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _content(words: Sequence[str]) -> list[str]:
    out = []
    for w in words:
        low = w.lower()
        if len(low) >= 3 and low not in STOPWORDS and not low.isdigit():
            out.append(_norm(low))
    return out


def _entities(text: str) -> list[str]:
    """Capitalised non-stopword words of ``text``, normalised, skipping each sentence's first word (see FEATURES)."""
    out = []
    for sentence in _SENTENCE_END.split(text):
        words = _words(sentence)
        for i, w in enumerate(words):
            if (i > 0 or len(words) == 1) and w[0].isupper() and len(w) > 1 and w.lower() not in STOPWORDS:
                out.append(_norm(w))
    return out


def _has_negation(text: str) -> bool:
    for w in _words(text.lower()):
        w = w.replace(_APOSTROPHE, "'")
        if w in _NEGATIONS or w.replace("'", "") in _NEGATIONS or w.endswith("n't"):
            return True
    return False


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def _fraction_absent(found: Sequence[str] | set[str], support: set[str]) -> float:
    if not found:
        return 0.0
    return sum(1 for x in found if x not in support) / len(found)


@dataclass(frozen=True, slots=True)
class _Prepared:
    """One record's texts to embed and its lexical features."""

    response_sentences: list[str]
    context_sentences: list[str]
    whole_response: str
    whole_context: str
    lexical: tuple[float, float, float, float]
    """novel_numbers, novel_entities, content_recall, log_tokens."""


def _prepare(response: str, context: Sequence[str], max_sentences: int) -> _Prepared | None:
    passages = [p for p in context if p.strip()]
    if not passages or not response.strip():
        return None
    joined = "\n".join(passages)
    resp_words = _words(response[:MAX_LEXICAL_CHARS])
    ctx_text = joined[:MAX_LEXICAL_CHARS]
    ctx_words = {_norm(w) for w in _words(ctx_text)}
    ctx_numbers = _numbers(ctx_text)

    resp_sents = split_sentences(response, max_sentences)
    all_ctx = split_sentences(joined, 50 * max_sentences)
    if len(all_ctx) > max_sentences:  # keep the context sentences sharing most content words with the response
        wanted = set(_content(resp_words))
        overlap = [len(wanted.intersection(_content(_words(s)))) for s in all_ctx]
        keep = sorted(sorted(range(len(all_ctx)), key=lambda i: (-overlap[i], i))[:max_sentences])
        all_ctx = [all_ctx[i] for i in keep]

    numbers = sorted(_numbers(response[:MAX_LEXICAL_CHARS]))
    entities = _entities(response[:MAX_LEXICAL_CHARS])
    content = _content(resp_words)
    recall = 1.0 if not content else sum(1 for w in content if w in ctx_words) / len(content)
    lexical = (
        _fraction_absent(numbers, ctx_numbers),
        _fraction_absent(entities, ctx_words),
        recall,
        math.log1p(len(resp_words)),
    )
    return _Prepared(resp_sents, all_ctx, response[:MAX_WHOLE_CHARS], joined[:MAX_WHOLE_CHARS], lexical)


def compute_features(
    records: Sequence[tuple[str, Sequence[str]]],
    encode: Callable[[list[str]], Vectors],
    max_sentences: int,
) -> tuple[NDArray[np.float64], list[bool]]:
    """Feature rows (``FEATURES`` order) for ``(response, context)`` records, and which records apply.

    ``encode`` is called once with every distinct text of every applicable record. Rows of records that do
    not apply (blank response or no context) are all zero.
    """
    prepared = [_prepare(response, context, max_sentences) for response, context in records]
    index: dict[str, int] = {}
    for p in prepared:
        if p is not None:
            for text in (*p.response_sentences, *p.context_sentences, p.whole_response, p.whole_context):
                index.setdefault(text, len(index))
    features = np.zeros((len(records), len(FEATURES)), dtype=np.float64)
    if not index:
        return features, [False] * len(records)
    vectors = np.asarray(encode(list(index)), dtype=np.float64)
    for row, p in enumerate(prepared):
        if p is None:
            continue
        resp = vectors[[index[s] for s in p.response_sentences]]
        ctx = vectors[[index[s] for s in p.context_sentences]]
        sims = resp @ ctx.T
        best = sims.max(axis=1)
        best_ctx = sims.argmax(axis=1)
        negated = [
            _has_negation(s) and not _has_negation(p.context_sentences[int(j)])
            for s, j in zip(p.response_sentences, best_ctx, strict=True)
        ]
        whole = float(vectors[index[p.whole_response]] @ vectors[index[p.whole_context]])
        novel_numbers, novel_entities, recall, log_tokens = p.lexical
        features[row] = (
            float(best.min()),
            float(best.mean()),
            whole,
            novel_numbers,
            novel_entities,
            recall,
            float(np.mean(negated)),
            log_tokens,
        )
    features = np.nan_to_num(features, nan=0.0, posinf=1.0, neginf=-1.0)
    return features, [p is not None for p in prepared]


class HeadHallucination:
    """Hallucination against the record's context: a logistic head over support features.

    Args:
        head: The trained head; None loads the bundled ``detectors/heads/hallucination.json``.
        max_sentences: Most sentences of the response, and of the context, that are embedded per record.
    """

    name = "hallucination"
    needs: frozenset[TextField] = frozenset()
    higher_is_worse = True
    default_threshold = 0.68
    """Flags at most 10 % of genuine traffic (15.5 % of BEGIN's faithful rows at 0.5); it catches 61 % of HaluEval's
    hallucinated answers, against 76 % at 0.5 (docs/detectors.md#operating-points)."""

    def __init__(self, head: LogisticHead | None = None, max_sentences: int = 24) -> None:
        if max_sentences < 1:
            raise ValueError("max_sentences must be at least 1")
        self.head = head if head is not None else LogisticHead.bundled("hallucination")
        if self.head.feature_names != FEATURES:
            raise ValueError(
                f"head {self.head.name} has features {list(self.head.feature_names)}, expected {list(FEATURES)}; "
                "retrain it with `lookout train-heads`"
            )
        self.max_sentences = max_sentences
        self.version = f"head-{self.head.version}-s{max_sentences}"

    def __repr__(self) -> str:
        return f"HeadHallucination(head={self.head.name}@{self.head.version}, max_sentences={self.max_sentences})"

    def score(self, batch: Batch) -> list[Score]:
        """One probability of unsupported content per record; None without context or response."""
        if not len(batch):
            return []
        records = [(item.response, tuple(item.context)) for item in batch.items]
        features, applies = compute_features(records, lambda texts: batch.encode(texts), self.max_sentences)
        probs = self.head.predict_proba(features)
        return [
            Score(float(np.clip(p, 0.0, 1.0)) if ok and math.isfinite(p) else None)
            for p, ok in zip(probs, applies, strict=True)
        ]
