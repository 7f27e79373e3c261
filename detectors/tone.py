"""Tone of the response: sentiment (``tone``) and formality (``formality``), from shipped lexicons, no encoder.

Both are per-record signals meant to be watched as distributions: the drift step tests each stream's ``tone`` and
``formality`` scores against the stream's reference (``drift.scores``), so a model or prompt change that makes
answers curt, gloomy or chatty shows up as score drift even when no single record is bad.

**tone** (higher is more negative) uses VADER (Hutto & Gilbert, ICWSM 2014; the ``vaderSentiment`` package,
MIT, lexicon shipped in the wheel). VADER's compound score of a whole text saturates on long texts (it sums word
valences), so the response is split into sentences, each gets its compound in -1..1, and the score is
``(1 - mean compound) / 2``: 0 very positive, 0.5 neutral, 1 very negative. The authors recommend exactly this
sentence-level use. 0.75 flags (a mean compound of -0.5 or lower: most sentences clearly negative). English only:
text in another language mostly has no lexicon words and scores 0.5 (neutral).

**formality** (higher is more formal; low is flagged) is a lexical proxy of Heylighen & Dewaele's F-score
("Variation in the contextuality of language", 2002): formal text is rich in nouns, adjectives, prepositions and
articles, informal text in pronouns, verbs, adverbs and interjections. Without a POS tagger (no model may be
downloaded), the closed word classes are counted exactly (articles, prepositions, personal pronouns) and the open
ones approximated (nominal suffixes ``-tion -ment -ness -ity -ance -ence -ism``, words of 9+ letters), plus the
markers of chat register that F does not see: contractions, slang and texting words (``lol``, ``gonna``, ``u``),
interjections, emoji and emoticons, repeated ``!!``/``??``, stretched words (``soooo``) and a lowercase ``i``.
Per 100 words::

    z = (articles + prepositions + nominal + long words) - (pronouns + contractions)
        - 4 * (slang + interjections + emoji + !!/?? + stretched + lowercase i)
    formality = 1 / (1 + exp(-z / 25))

The weights were set by hand on the labelled texts in ``tests/unit/test_tone.py`` (business letters and
encyclopedic answers score about 0.9, plain assistant answers 0.4-0.75, chat with slang and emoji under 0.05);
it orders texts by register, it is not a calibrated probability. 0.2 flags (clearly chatty). Responses under
``MIN_WORDS`` words score None (too little text to say), as does text with no Latin-script words.
"""

from __future__ import annotations

import math
import re
from typing import Any

from detectors.types import Batch, Score, TextField

MAX_CHARS = 5_000
"""Characters of the response that are read (tone is a property of the opening, and VADER is per sentence)."""
MIN_WORDS = 3
"""Responses with fewer words score None."""

_SENTENCE = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])\s+|\n+")
_WORD = re.compile(r"[A-Za-z]+(?:['\u2019][A-Za-z]+)?")


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


_ARTICLES = _wordset("a an the")
_PREPOSITIONS = _wordset(
    """about above across after against along among around at before behind below beneath beside between beyond by
    concerning despite during except for from in inside into like near of off on onto out outside over per regarding
    since through throughout till to toward towards under underneath until upon via with within without"""
)
_PRONOUNS = _wordset(
    """i me my mine myself you your yours yourself yourselves we us our ours ourselves he him his himself she her hers
    herself they them their theirs themselves it its itself"""
)
_SLANG = _wordset(
    """lol lmao lmfao rofl omg omfg wtf btw idk imo imho tbh smh fyi brb ttyl ikr np nvm thx thnx ty pls plz ppl
    gonna wanna gotta kinda sorta dunno lemme gimme ya yall y'all u ur r yeah yea yep yup nope nah ok okay k kk
    cool awesome dude bro guys haha hahaha hehe lmk tmrw tmr cuz coz bc tho thru gotcha ain't"""
)
_INTERJECTIONS = _wordset("oh ah aw aww wow whoa ugh hmm hmmm huh hey hi yay oops yikes meh phew ooh uh um")
_NOMINAL = re.compile(r"(?:tion|sion|ment|ness|ity|ance|ence|ism)s?$")
_CONTRACTION = re.compile(r"['\u2019](?:s|re|ll|ve|m|d|t)$|n['\u2019]t$")
_EMOJI = re.compile(r"[\U0001F300-\U0001FAFF\u2600-\u27BF]|(?<!\w)[:;]-?[)(DPp](?!\w)")
_REPEATED_PUNCT = re.compile(r"[!?]{2,}")
_STRETCHED = re.compile(r"([a-z])\1{2,}", re.IGNORECASE)
_LOWER_I = re.compile(r"(?<![\w'\u2019])i(?![\w'\u2019])")

FORMALITY_CENTER = 0.0
"""z (per 100 words) that scores 0.5."""
FORMALITY_SCALE = 25.0
"""Logistic scale of z."""


def formality_score(response: str) -> float | None:
    """The lexical formality of one response in 0..1 (see the module docstring); None for under 3 words."""
    text = response[:MAX_CHARS]
    words = _WORD.findall(text)
    if len(words) < MIN_WORDS:
        return None
    lower = [w.lower().replace("\u2019", "'") for w in words]
    n = len(lower)
    formal = sum(
        (w in _ARTICLES) + (w in _PREPOSITIONS) + (len(w) > 5 and bool(_NOMINAL.search(w))) + (len(w) >= 9)
        for w in lower
    )
    deictic = sum((w in _PRONOUNS) + bool(_CONTRACTION.search(w)) for w in lower)
    chat = (
        sum((w in _SLANG) + (w in _INTERJECTIONS) + bool(_STRETCHED.search(w)) for w in lower)
        + len(_EMOJI.findall(text))
        + len(_REPEATED_PUNCT.findall(text))
        + len(_LOWER_I.findall(text))
    )
    z = 100.0 * (formal - deictic - 4 * chat) / n
    logit = min(50.0, max(-50.0, (z - FORMALITY_CENTER) / FORMALITY_SCALE))  # emoji floods make z unbounded
    return round(1.0 / (1.0 + math.exp(-logit)), 6)


class _Vader:
    """VADER's analyzer, loaded on first use (it reads its lexicon files from the installed package)."""

    def __init__(self) -> None:
        self._analyzer: Any = None

    def compound(self, sentence: str) -> float:
        if self._analyzer is None:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # untyped, imported lazily

            self._analyzer = SentimentIntensityAnalyzer()
        return float(self._analyzer.polarity_scores(sentence)["compound"])


def sentences(text: str) -> list[str]:
    """Non-blank sentences of ``text`` (split after . ! ? and at line breaks)."""
    return [s.strip() for s in _SENTENCE.split(text[:MAX_CHARS]) if s.strip()]


class ToneDetector:
    """Negative sentiment of the response: VADER's compound averaged over sentences, mapped to 0..1."""

    name = "tone"
    version = "vader-3.3.2-sentence-mean-v1"
    needs: frozenset[TextField] = frozenset()
    higher_is_worse = True
    default_threshold = 0.75

    def __init__(self) -> None:
        self._vader = _Vader()

    def __repr__(self) -> str:
        return "ToneDetector()"

    def tone(self, response: str) -> float | None:
        """``(1 - mean sentence compound) / 2``; None for a response without a word."""
        parts = [s for s in sentences(response) if _WORD.search(s)]
        if not parts:
            return None
        mean = sum(self._vader.compound(s) for s in parts) / len(parts)
        return round(min(1.0, max(0.0, (1.0 - mean) / 2.0)), 6)

    def score(self, batch: Batch) -> list[Score]:
        """One tone score per record (None when the response has no words)."""
        return [Score(self.tone(item.response)) for item in batch.items]


class FormalityDetector:
    """Register of the response: a lexical Heylighen-Dewaele formality proxy in 0..1 (low is chatty)."""

    name = "formality"
    version = "lexical-f-v1"
    needs: frozenset[TextField] = frozenset()
    higher_is_worse = False
    default_threshold = 0.2

    def __repr__(self) -> str:
        return "FormalityDetector()"

    def score(self, batch: Batch) -> list[Score]:
        """One formality score per record (None under 3 words)."""
        return [Score(formality_score(item.response)) for item in batch.items]
