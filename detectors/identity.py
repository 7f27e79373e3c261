"""Identity terms, and masking them out of text before a lexical model sees it.

alt-profanity-check learned from Davidson's tweets that words such as "gay", "black" or "Muslim" predict
offensiveness (it scores "I am a gay man" as offensive). :func:`mask_identity` removes those words so that the lexical
probability measures the rest of the sentence (insults, slurs, profanity); slurs are not identity terms and stay.
The list is general (groups by sexuality, gender, religion, ethnicity, nationality, migration, disability), not a
copy of any evaluation set.
"""

from __future__ import annotations

import re

IDENTITY_TERMS: frozenset[str] = frozenset(
    {
        # sexuality and gender
        *("gay", "gays", "lesbian", "lesbians", "bisexual", "bisexuals", "homosexual", "homosexuals"),
        *("heterosexual", "heterosexuals", "straight", "straights", "queer", "queers", "lgbt", "lgbtq"),
        *("transgender", "transgenders", "trans", "cisgender", "cis", "nonbinary", "non-binary"),
        *("woman", "women", "man", "men", "female", "females", "male", "males", "girl", "girls", "boy", "boys"),
        # religion
        *("muslim", "muslims", "islam", "islamic", "christian", "christians", "christianity", "catholic"),
        *("catholics", "jewish", "jew", "jews", "judaism", "hindu", "hindus", "buddhist", "buddhists", "sikh"),
        *("sikhs", "atheist", "atheists", "mormon", "mormons"),
        # ethnicity, nationality, migration
        *("black", "blacks", "white", "whites", "asian", "asians", "latino", "latinos", "latina", "latinas"),
        *("hispanic", "hispanics", "african", "africans", "arab", "arabs", "european", "europeans"),
        *("mexican", "mexicans", "chinese", "indian", "indians", "japanese", "korean", "koreans"),
        *("canadian", "canadians", "italian", "italians", "swedish", "swedes", "american", "americans"),
        *("immigrant", "immigrants", "migrant", "migrants", "refugee", "refugees", "citizen", "citizens"),
        # disability and age
        *("disabled", "deaf", "blind", "autistic", "old", "elderly", "young"),
    }
)
"""Lower-case whole words removed by :func:`mask_identity`."""

_IDENTITY_RE = re.compile(
    r"\b(?:" + "|".join(sorted(map(re.escape, IDENTITY_TERMS), key=len, reverse=True)) + r")\b", re.IGNORECASE
)


_WORD = re.compile(r"\w+")
_FIRST_RUNS = frozenset(m.group() for m in map(_WORD.match, IDENTITY_TERMS) if m is not None)
"""The leading word of each term ("non" of "non-binary"): any match of a term is a text word equal to one."""
_CASE_ODD = re.compile("[\u0130\u0131\u017f\u212a]")
"""The only non-ASCII characters ``re.IGNORECASE`` equates with ASCII letters (dotted I, dotless i, long s, Kelvin)."""


def mask_identity(text: str) -> str:
    """``text`` with every identity term removed (whole words, any case).

    Most texts name no group: a match needs a word of the text (lower-cased) to be some term's leading word,
    so a text without one is returned as is, without running the alternation of every term over it. Exact: a
    match starts at a word boundary and ends at one or at the term's hyphen, so the text's word there is the
    term's leading word (in ASCII letters unless the text has one of :data:`_CASE_ODD`, checked first).
    """
    if _CASE_ODD.search(text) is None and _FIRST_RUNS.isdisjoint(w.lower() for w in _WORD.findall(text)):
        return text
    return _IDENTITY_RE.sub("", text)
