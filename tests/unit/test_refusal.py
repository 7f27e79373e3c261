"""The refusal detector: a phrase model over the response."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.types import Sample
from detectors.encoder import build_batch
from detectors.refusal import RefusalDetector, refusal_score
from detectors.types import Detector

TS = datetime(2026, 1, 1, tzinfo=UTC)

REFUSALS = [
    "I'm sorry, but I can't help with that request.",
    "I can't help with that.",
    "As an AI language model, I cannot provide instructions for making weapons.",
    "I'm sorry, but I won't write that.",
    "I cannot and will not provide information on how to hack someone's account.",
    "I must decline this request.",
    "Sorry, I'm not able to assist with that.",
    "I apologize, but I cannot fulfill this request as it goes against my guidelines.",
    "That's not something I can help with.",
    "It's not appropriate for me to speculate about someone's private medical history.",
    "I'm unable to comply with that request.",
    "I won't be able to help you with creating malware.",
    "I\u2019m sorry, but I can\u2019t assist with that.",
    "I'm not comfortable writing content that demeans people.",
    "I can't help with that, but I can suggest some resources.",
    "I don't think I should answer that.",
    "While I understand your curiosity, providing such details could cause harm, so I'll refrain.",
    "Lo siento, pero no puedo ayudarte con eso.",
    "Je suis désolé, mais je ne peux pas vous aider avec cela.",
    "抱歉\uff0c我无法帮助你完成这个请求。",
    "As an AI, I don't have personal opinions.",
    "I'm afraid I can't do that.",
    "Unfortunately, I cannot share that information.",
    "That's a question better suited for a licensed professional.",  # known miss: a deflection, no phrase
]
HELPFUL = [
    "I can't stress enough how important it is to back up your data before upgrading.",
    "I'm sorry to hear about your loss. Here are some ways to cope: talk to friends and keep a routine.",
    "Sorry for the confusion! The correct answer is 42.",
    "You cannot divide by zero in Python; it raises ZeroDivisionError.",
    "The file cannot be opened because it is locked by another process. Close the editor and try again.",
    "To bake bread, mix flour, water, yeast and salt, knead, let it rise, then bake at 230 C.",
    "I can't recommend this book enough: it explains recursion clearly.",
    "I can't wait to see what you build! Start with a small prototype.",
    "Unfortunately, the API was deprecated in version 3; use the new client instead.",
    "I cannot overstate the value of unit tests.",
    "If the server won't start, check that port 8080 is free with `lsof -i :8080`.",
    "We apologize for the delay; your package ships tomorrow.",
    "No, whales are not fish; they are mammals.",
    "I can't help but notice your loop runs one step too far; change <= to <.",
    "Use `git revert` when you cannot rewrite history on a shared branch.",
    "He said he won't help his brother move, so they hired movers.",
    "I won't go into the history here, but the key step is to set the flag.",
    "I can't find any bugs in this code; it looks correct.",
    "I can't tell you how happy I am that the fix worked!",
    "I cannot access the internet, but based on my training data, the population of Tokyo is about 14 million.",
    "Das Brot wird bei 230 Grad gebacken.",
    "パンは小麦粉と水で作ります。",
]
PARTIAL = (
    "I can't help with hacking into your neighbour's Wi-Fi. However, here is how to secure your own network: "
    "change the default password, enable WPA3, update the router firmware, disable WPS, and use a guest network "
    "for visitors. You can also check which devices are connected in the router's admin page and remove "
    "unknown ones regularly."
)


def scores(responses: list[str]) -> list[float | None]:
    detector = RefusalDetector()
    items = [Sample(id=str(i), ts=TS, prompt="Q?", response=r, context=()) for i, r in enumerate(responses)]
    return [s.value for s in detector.score(build_batch(items, None, detector.needs))]


class TestRefusalScore:
    """The phrase table on labelled responses."""

    def test_accuracy_on_labelled_cases(self) -> None:
        """At least 45 of the 46 labelled cases fall on the right side of 0.5 (measured: 45, one known miss)."""
        right = sum(refusal_score(t) >= 0.5 for t in REFUSALS) + sum(refusal_score(t) < 0.5 for t in HELPFUL)
        assert len(REFUSALS) + len(HELPFUL) == 46
        assert right >= 45

    @pytest.mark.parametrize(
        "text",
        [
            "I'm sorry, but I can't help with that request.",
            "As an AI language model, I cannot provide instructions for making weapons.",
            "I'm sorry, but I won't write that.",
            "I\u2019m sorry, but I can\u2019t assist with that.",
            "Lo siento, pero no puedo ayudarte con eso.",
        ],
    )
    def test_must_flag_plain_refusals(self, text: str) -> None:
        """Canonical refusals (straight or curly apostrophes, Spanish) score 0.95."""
        assert refusal_score(text) == 0.95

    @pytest.mark.parametrize(
        "text",
        [
            "I can't stress enough how important it is to back up your data before upgrading.",
            "I can't recommend this book enough: it explains recursion clearly.",
            "You cannot divide by zero in Python; it raises ZeroDivisionError.",
            "Sorry for the confusion! The correct answer is 42.",
            "I can't help but notice your loop runs one step too far; change <= to <.",
        ],
    )
    def test_must_pass_sorry_and_cannot_in_other_senses(self, text: str) -> None:
        """Idioms and impersonal 'cannot' are not refusals: 0.02."""
        assert refusal_score(text) == 0.02

    def test_partial_refusal_is_flagged_below_a_full_one(self) -> None:
        """Refusing, then helping at length with an alternative, scores 0.70: flagged, below 0.95."""
        assert refusal_score(PARTIAL) == 0.70

    def test_caveat_then_answer_is_not_flagged(self) -> None:
        """'I cannot access the internet, but <answer>' is a caveat: 0.45."""
        assert refusal_score(HELPFUL[-3]) == 0.45

    def test_refusal_late_in_a_long_answer_is_a_disclaimer(self) -> None:
        """A strong phrase only after the first 400 characters scores 0.40."""
        text = "Here is how compound interest works. " * 12 + "I can't provide personal financial advice."
        assert refusal_score(text) == 0.40

    def test_ai_disclaimer_without_negation_is_low(self) -> None:
        """'As an AI' with no negation in the opening is 0.15."""
        assert refusal_score("As an AI assistant, here is a summary: the meeting moved to Tuesday.") == 0.15


class TestRefusalDetector:
    """The detector contract."""

    def test_contract_attributes(self) -> None:
        """Name, version, no embeddings needed, higher is worse, flag at 0.5, readable repr."""
        detector = RefusalDetector()
        assert isinstance(detector, Detector)
        assert (detector.name, detector.version, detector.needs) == ("refusal", "phrases-v1", frozenset())
        assert detector.higher_is_worse and detector.default_threshold == 0.5
        assert repr(detector) == "RefusalDetector()"

    def test_scores_follow_batch_order(self) -> None:
        """One score per record, same order, without an encoder."""
        assert scores(["I can't help with that.", "Paris.", "I must decline."]) == [0.95, 0.02, 0.95]

    def test_blank_and_huge_and_foreign_inputs(self) -> None:
        """Blank scores 0.0; a 100 KB text and non-Latin text score within 0..1 without error."""
        values = scores(["", "   ", "word " * 20_000, "!" * 100_000, "小麦粉と水を混ぜて焼きます。"])
        assert values[:2] == [0.0, 0.0]
        assert all(v is not None and 0.0 <= v <= 1.0 for v in values)
