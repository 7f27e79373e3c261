"""The HH-RLHF transcript parser shared by the bench, the demo sample builder and relevance training."""

from __future__ import annotations

from agent.hh import alternating, hh_turns


class TestHHTurns:
    """``hh_turns`` splits on the speaker tags; ``alternating`` is the strict reading."""

    def test_turns_in_order_stripped(self) -> None:
        """Each tag opens a turn; text is stripped; a tag without the space after the colon still splits."""
        text = "\n\nHuman: hi \n\nAssistant: hello\n\nHuman:capital of France?\n\nAssistant: Paris."
        assert hh_turns(text) == [
            ("user", "hi"), ("assistant", "hello"), ("user", "capital of France?"), ("assistant", "Paris."),
        ]  # fmt: skip

    def test_text_before_the_first_tag_is_dropped(self) -> None:
        """A preamble is not a turn; a transcript without tags has none."""
        assert hh_turns("note\n\nHuman: a\n\nAssistant: b") == [("user", "a"), ("assistant", "b")]
        assert hh_turns("no tags at all") == []

    def test_alternating_is_strict(self) -> None:
        """User first, strictly alternating, no empty turn, assistant last."""
        assert alternating([("user", "a"), ("assistant", "b")])
        assert not alternating([])
        assert not alternating([("assistant", "b")])
        assert not alternating([("user", "a"), ("user", "b"), ("assistant", "c")])
        assert not alternating([("user", "a"), ("assistant", "")])
        assert not alternating([("user", "a"), ("assistant", "b"), ("user", "c")])
