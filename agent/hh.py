"""HH-RLHF transcripts (Anthropic, MIT): the one parser for the bench, the demo sample and relevance training.

A transcript is turns each opened by a blank line and ``Human:`` or ``Assistant:``; callers decide how strict to
be about the turns it yields (alternation, empty turns).
"""

from __future__ import annotations

import re
from typing import Literal

Role = Literal["user", "assistant"]

_TURN = re.compile(r"\n\n(Human|Assistant): ?")


def hh_turns(transcript: str) -> list[tuple[Role, str]]:
    """The transcript's turns in order as (role, stripped text); text before the first speaker tag is dropped."""
    parts = _TURN.split(transcript)[1:]
    return [
        ("user" if speaker == "Human" else "assistant", text.strip())
        for speaker, text in zip(parts[::2], parts[1::2], strict=True)
    ]


def alternating(turns: list[tuple[Role, str]]) -> bool:
    """True when the turns go user, assistant, user, ... none empty, and end with the assistant."""
    return (
        bool(turns)
        and all(role == ("user" if i % 2 == 0 else "assistant") and text for i, (role, text) in enumerate(turns))
        and turns[-1][0] == "assistant"
    )
