"""Tone (VADER sentiment per sentence) and formality (lexical F-score proxy) on real text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.types import Sample
from detectors.tone import FormalityDetector, ToneDetector, formality_score, sentences
from detectors.types import Batch

POSITIVE = "Great question! I'm really glad you asked, and I think you'll love the results. Happy baking!"
NEUTRAL = "The capital of France is Paris. It is on the Seine, in the north of the country."
NEGATIVE = "This is a terrible idea. I hate it, it is stupid, and the result will be awful and useless."

FORMAL = [
    "We regret to inform you that your application for the position has been declined. Further information "
    "regarding the decision is available upon request from the recruitment department.",
    "The French Revolution was a period of political and societal change in France that began with the Estates "
    "General of 1789 and ended with the formation of the French Consulate in November 1799.",
]
PLAIN = [
    "To bake bread, mix flour, water, yeast and salt, knead it for ten minutes, let it rise for an hour, then "
    "bake it at 230 C for about 30 minutes.",
    "I'm not sure what you mean. Could you tell me a bit more about what you're trying to do? I'd be happy to help.",
]
INFORMAL = [
    "lol yeah thats sooo cool!! gonna try it tmrw, thx dude 😂",
    "omg u r totally right haha, idk why i didnt think of that!!",
    "yeah i think it's fine, just try it and see lol",
]


def _batch(*responses: str) -> Batch:
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    return Batch([Sample(id=str(i), ts=ts, prompt="q", response=r) for i, r in enumerate(responses)])


class TestTone:
    """Negative sentiment in 0..1: positive < neutral < negative; neutral text sits at 0.5."""

    def test_orders_positive_neutral_negative(self) -> None:
        """Clearly positive, neutral and negative answers order as such, around the flag threshold."""
        detector = ToneDetector()
        pos, neu, neg = (s.value for s in detector.score(_batch(POSITIVE, NEUTRAL, NEGATIVE)))
        assert pos is not None and neu is not None and neg is not None
        assert pos < 0.3 and neu == pytest.approx(0.5) and neg >= detector.default_threshold

    def test_long_positive_text_does_not_saturate_one_negative_sentence(self) -> None:
        """The mean over sentences: one negative sentence among neutral ones is not a negative response."""
        text = NEUTRAL + " " + NEUTRAL + " Sadly, the weather there is terrible in November."
        value = ToneDetector().tone(text)
        assert value is not None and 0.5 < value < ToneDetector.default_threshold

    def test_no_words_is_none(self) -> None:
        """A response without a word gets no tone."""
        assert [s.value for s in ToneDetector().score(_batch("", "!!!", "123"))] == [None, None, None]

    def test_sentences_split_on_punctuation_and_lines(self) -> None:
        """Sentences end at . ! ? (and their CJK forms) followed by space, and at line breaks."""
        assert sentences("One. Two!\nThree?  Four") == ["One.", "Two!", "Three?", "Four"]


class TestFormality:
    """Register in 0..1: formal writing > plain assistant answers > chat with slang and emoji."""

    def test_orders_formal_plain_informal(self) -> None:
        """Every formal text beats every plain one, which beats every chatty one; chat is flagged."""
        formal, plain, informal = (
            [v for t in texts if (v := formality_score(t)) is not None] for texts in (FORMAL, PLAIN, INFORMAL)
        )
        assert (len(formal), len(plain), len(informal)) == (len(FORMAL), len(PLAIN), len(INFORMAL))
        assert min(formal) > max(plain) > min(plain) > max(informal)
        assert max(informal) < FormalityDetector.default_threshold <= min(plain)

    def test_contractions_and_pronouns_lower_the_score(self) -> None:
        """The same content with contractions and personal pronouns reads less formal."""
        formal = formality_score("The request cannot be completed because the account has been suspended.")
        chatty = formality_score("We can't do it because you've got your account suspended, I'm afraid.")
        assert formal is not None and chatty is not None and formal > chatty

    def test_too_short_or_non_latin_is_none(self) -> None:
        """Under three words, or no Latin-script words: no score."""
        assert formality_score("Thanks!") is None
        assert formality_score("小麦粉と水を混ぜて焼きます。") is None

    def test_emoji_flood_stays_in_range(self) -> None:
        """Thousands of emoji do not overflow the logistic."""
        value = formality_score("ok sure fine " + "😂" * 5000)
        assert value is not None and 0.0 <= value < 0.01
