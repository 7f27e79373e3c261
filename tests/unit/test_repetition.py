"""The repetition detector on real text: loops and repeated paragraphs score high, ordinary answers low."""

from __future__ import annotations

import pytest

from detectors.repetition import ngram_repeat_rate, repetition_score, tail_loop_share, tokens

NORMAL = [
    "To bake bread, mix 500 g of flour with 350 ml of warm water, 7 g of dried yeast and 10 g of salt. Knead the "
    "dough for ten minutes until it is smooth, cover it and let it rise for an hour. Shape it, let it rise again "
    "for 30 minutes, then bake it at 230 C for about 35 minutes, until the crust is brown and it sounds hollow.",
    "The French Revolution began in 1789 with the meeting of the Estates General and the storming of the Bastille. "
    "It abolished the monarchy, proclaimed a republic in 1792, and ended with Napoleon's coup in 1799.",
    "Here are three ideas:\n1. Visit the science museum, which has a free planetarium show on Sundays.\n2. Take a "
    "picnic to the botanical garden.\n3. Rent bikes and ride along the river path to the old lighthouse.",
    "Sorry, I don't know the answer to that question.",
]

LOOPS = [
    "The answer is 42. " * 12,
    "Sure! Here is the list you asked for: apples, pears, " + "and then the bananas and then the " * 15,
    "I think the best option is to wait. I don't know. I don't know. I don't know. I don't know. I don't know. "
    "I don't know. I don't know. I don't know. I don't know. I don't know.",
    "To reset your password, open Settings and choose Security. "
    "To reset your password, open Settings and choose Security. "
    "To reset your password, open Settings and choose Security.",
    "ha " * 300,
    "我不知道。" * 40,
]


class TestRepetition:
    """Scores in 0..1, high for degenerate loops and repeated paragraphs, low for ordinary answers."""

    @pytest.mark.parametrize("text", NORMAL)
    def test_ordinary_answers_score_low(self, text: str) -> None:
        """Ordinary prose and lists stay well under the 0.5 threshold."""
        assert repetition_score(text) < 0.2

    @pytest.mark.parametrize("text", LOOPS)
    def test_loops_and_repeated_paragraphs_flag(self, text: str) -> None:
        """A loop, a repeated sentence, a stutter and a CJK loop cross the threshold."""
        assert repetition_score(text) >= 0.5

    def test_loop_after_a_normal_start_is_caught_by_the_tail(self) -> None:
        """A long normal opening followed by a loop covering half the tokens flags through the tail loop."""
        text = NORMAL[0] + " " + "and so on " * 30
        toks = tokens(text)
        assert tail_loop_share(toks) >= 0.45
        assert repetition_score(text) >= 0.9

    def test_short_and_blank_responses_score_zero(self) -> None:
        """Too short to repeat anything: 0.0, even if the few words repeat."""
        assert repetition_score("") == 0.0
        assert repetition_score("no no no no") == 0.0

    def test_punctuation_runs_are_one_token(self) -> None:
        """A rule line (``----------``) or an ellipsis is one token, not a loop of dashes."""
        assert tokens("Done.\n----------\n...") == ["done", ".", "----------", "..."]
        assert repetition_score("Sorry I couldn't help you with the request you made today.\n----------") == 0.0

    def test_ngram_rate_counts_repeats_of_earlier_ngrams(self) -> None:
        """``a b c d a b c d``: 5 four-grams, 4 distinct: one in five repeats."""
        assert ngram_repeat_rate(list("abcdabcd")) == pytest.approx(0.2)
        assert ngram_repeat_rate(list("abc")) == 0.0
