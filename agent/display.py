r"""Stored text on a terminal: never read as Rich markup, and no control or bidi character reaches the screen.

Record text is hostile: ``[/]`` made Rich raise ``MarkupError``, ``[x](javascript:...)`` lost text, and raw
``ESC`` sequences retitled or recoloured the terminal. :func:`shown` makes any value a plain
:class:`rich.text.Text` with every C0/C1 control (but tab and newline), DEL and bidi or invisible format
character written as a visible ``\x..``/``\u....`` escape. ``--json`` output stays exact and never goes
through here.
"""

from __future__ import annotations

import re

from rich.text import Text

_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ufff9-\ufffb]"
)
"""Controls (tab and newline kept), DEL, C1 (CSI included), and bidi/zero-width/invisible format characters."""


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with every unsafe character written as a visible escape."""
    return _UNSAFE.sub(_escape, text)


def shown(value: object, none: str = "") -> Text:
    """Any value as plain terminal text: ``none`` for None, ``str()`` otherwise, escaped, never markup."""
    return Text(none if value is None else visible(str(value)))
