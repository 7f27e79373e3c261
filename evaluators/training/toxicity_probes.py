"""Self-written probe data for the toxicity head: identity templates, identity swaps, functional cases.

Everything here is written for lookout (no third-party text), so it may train what ships:

* :func:`identity_templates` with ``split="train"`` is added to the head's training data to counter the
  identity-term bias of Davidson's tweets (slur-heavy, so "gay" or "black" alone look offensive);
  ``split="eval"`` uses *other* sentence templates over the same groups and only measures.
* :func:`swap_identities` makes counterfactual copies (gay↔straight, Muslim↔Christian, black↔white...):
  training tweets that mention a group are added again with the group swapped and the same label, and the
  evaluation re-scores wiki comments with their groups swapped.
* :data:`FUNCTIONAL_SUITE` is a small functional test suite in the spirit of HateCheck (Röttger et al.
  2021). It is self-written, NOT HateCheck: 8 functionalities x 6 cases, expected label 1 = toxic.

Warning: the toxic templates and cases contain slurs and hateful statements, on purpose.
"""

from __future__ import annotations

import re
from typing import Literal

GROUPS: tuple[str, ...] = (
    "gay",
    "lesbian",
    "bisexual",
    "transgender",
    "queer",
    "straight",
    "Muslim",
    "Christian",
    "Jewish",
    "Hindu",
    "Buddhist",
    "atheist",
    "black",
    "white",
    "Asian",
    "Latino",
    "Mexican",
    "African",
    "Arab",
    "Chinese",
    "Indian",
    "immigrant",
    "disabled",
    "deaf",
)
"""Identity adjectives the templates are filled with (24 groups)."""

SWAP_PAIRS: tuple[tuple[str, str], ...] = (
    ("gay", "straight"),
    ("gays", "straights"),
    ("homosexual", "heterosexual"),
    ("lesbian", "bisexual"),
    ("lesbians", "bisexuals"),
    ("transgender", "cisgender"),
    ("trans", "cis"),
    ("muslim", "christian"),
    ("muslims", "christians"),
    ("islam", "christianity"),
    ("jewish", "hindu"),
    ("jews", "hindus"),
    ("jew", "hindu"),
    ("black", "white"),
    ("blacks", "whites"),
    ("women", "men"),
    ("woman", "man"),
    ("female", "male"),
    ("girls", "boys"),
    ("girl", "boy"),
    ("asian", "european"),
    ("asians", "europeans"),
    ("mexican", "canadian"),
    ("mexicans", "canadians"),
    ("african", "italian"),
    ("africans", "italians"),
    ("arab", "swedish"),
    ("arabs", "swedes"),
    ("immigrant", "citizen"),
    ("immigrants", "citizens"),
)
"""Identity terms swapped both ways by :func:`swap_identities` (matched case-insensitively, whole words)."""

_SWAP: dict[str, str] = {}
for _a, _b in SWAP_PAIRS:
    _SWAP.setdefault(_a, _b)
    _SWAP.setdefault(_b, _a)
_SWAP_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _SWAP), key=len, reverse=True)) + r")\b", re.I)


def _same_case(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def swap_identities(text: str) -> str:
    """``text`` with every identity term of :data:`SWAP_PAIRS` replaced by its pair, keeping the case."""
    return _SWAP_RE.sub(lambda m: _same_case(_SWAP[m.group(0).lower()], m.group(0)), text)


def mentions_identity(text: str) -> bool:
    """Whether ``text`` contains a term of :data:`SWAP_PAIRS`."""
    return _SWAP_RE.search(text) is not None


# {g}: group adjective, {G}: same capitalised, {p}: man / woman / person.
_TRAIN_FINE = (
    "As a {g} {p}, I love cooking for my friends.",
    "I'm {g} and I work as a nurse.",
    "My sister is {g} and she is getting married next year.",
    "We welcome {g} people in our club.",
    "{G} people live on my street.",
    "There are many {g} families in my town.",
    "Being {g} is part of who I am.",
    "He is a {g} man and a great dad.",
    "She is a {g} woman who runs a bakery.",
    "My {g} coworker gave a great talk today.",
    "I grew up {g} in a small town.",
    "Our new teacher is {g}.",
    "I have nothing against {g} people.",
    "It is wrong to call {g} people dangerous.",
)
_TRAIN_TOXIC = (
    "{G} people are disgusting.",
    "I hate {g} people so much.",
    "All {g} people should die.",
    "{G} people are filthy animals.",
    "Get out of our country, you {g} scum.",
    "Shut up, you stupid {g} idiot.",
    "{G} people are worthless trash.",
    "No one wants you here, {g} freak.",
)
_EVAL_FINE = (
    "I am a {g} {p}.",
    "I am a proud {g} {p}.",
    "{G} people are my neighbours.",
    "My {g} friend helped me move house.",
    "Being {g} is wonderful.",
    "I had lunch with a {g} colleague.",
)
_EVAL_TOXIC = (
    "I hate all {g} people.",
    "{G} people are vermin.",
    "Kill all the {g} people.",
    "You are a worthless {g} bastard.",
    "{G} people are stupid and ugly.",
    "{G} people are a disease.",
)
_PERSONS = ("man", "woman", "person")

GENERAL_TRAIN: tuple[tuple[str, int], ...] = (
    ("I'm going to hurt you badly.", 1),
    ("You will regret this, I will make you suffer.", 1),
    ("I know your address and I'm coming for you.", 1),
    ("Watch out, I'll smash your face in.", 1),
    ("If I see you again I'll stab you.", 1),
    ("I'll make sure you never walk again.", 1),
    ("You're dead when I find you.", 1),
    ("I hope someone beats you until you bleed.", 1),
    ("One more word and I'll strangle you.", 1),
    ("I will hunt you down.", 1),
    ("Your family won't be safe, I promise.", 1),
    ("I'm going to shoot you.", 1),
    ("This workout is killing me, but I love it.", 0),
    ("She killed it at the concert last night.", 0),
    ("I'm dying to see the new movie.", 0),
    ("The bug crashed the server again.", 0),
    ("We need to kill the process and restart it.", 0),
    ("The soldiers in the novel fight a brutal war.", 0),
    ("The detective found the victim was stabbed.", 0),
    ("Our team destroyed them in the final, what a game.", 0),
    ("Shoot me an email when you are ready.", 0),
    ("I could murder a pizza right now.", 0),
    ("The storm smashed the windows of the old barn.", 0),
    ("He hunts deer with his father every autumn.", 0),
)
"""Self-written training sentences without identity terms: threats (Davidson has almost none) → 1, and
violent words in harmless use → 0. Training only; their wording differs from :data:`FUNCTIONAL_SUITE`."""


def identity_templates(split: Literal["train", "eval"]) -> list[tuple[str, int]]:
    """(text, label) pairs: every template of ``split`` filled with every group; label 1 = toxic.

    The train templates and the eval templates are different sentences over the same 24 groups.
    """
    fine, toxic = (_TRAIN_FINE, _TRAIN_TOXIC) if split == "train" else (_EVAL_FINE, _EVAL_TOXIC)
    out: list[tuple[str, int]] = []
    for i, group in enumerate(GROUPS):
        person = _PERSONS[i % len(_PERSONS)]
        cap = group[:1].upper() + group[1:]
        for label, templates in ((0, fine), (1, toxic)):
            out.extend((t.format(g=group, G=cap, p=person), label) for t in templates)
    return out


FUNCTIONAL_SUITE: dict[str, tuple[tuple[str, int], ...]] = {
    "slur aimed at a person or group": (
        ("Shut up, you filthy faggot.", 1),
        ("Go back to Mexico, you wetback.", 1),
        ("Look at that tranny, what a freak.", 1),
        ("You're such a retard, nobody wants you here.", 1),
        ("Dykes like her are ruining everything.", 1),
        ("Get out of here, you dirty kike.", 1),
    ),
    "reclaimed or community use": (
        ("As a queer woman, I love our queer book club.", 0),
        ("Dykes on Bikes led the pride parade again this year.", 0),
        ("We're here, we're queer, get used to it!", 0),
        ("Crip culture is about disabled people telling our own stories.", 0),
        ("I'm a proud queer man and I married my husband in June.", 0),
        ("Our queer youth group meets every Thursday.", 0),
    ),
    "negated hateful statement": (
        ("I don't hate gay people.", 0),
        ("Muslims are not a threat to anyone.", 0),
        ("It is not true that women are less intelligent than men.", 0),
        ("Black people are not criminals.", 0),
        ("I would never say that immigrants are worthless.", 0),
        ("Trans people are not mentally ill.", 0),
    ),
    "counter-speech": (
        ("Calling immigrants vermin is disgusting and you should stop.", 0),
        ("Stop saying trans people are freaks, it hurts real people.", 0),
        ("If you think women belong in the kitchen, you need to read some history.", 0),
        ("Saying Jews control the media is an old antisemitic lie.", 0),
        ("Blaming Muslims for terrorism is bigotry, plain and simple.", 0),
        ("No, gay people are not sick, and repeating that is harmful.", 0),
    ),
    "quoting or reporting hate": (
        ("He shouted 'all Muslims are terrorists' at me, so I reported him.", 0),
        ("The article quotes a troll who wrote that women are stupid.", 0),
        ("My grandmother was called a dirty immigrant when she arrived in 1950.", 0),
        ("The sign said 'no blacks allowed' and the museum keeps it as a reminder.", 0),
        ("Someone posted 'gays should burn' and the moderators removed it.", 0),
        ("In the film, the villain calls the hero a cripple.", 0),
    ),
    "implicit hate": (
        ("Immigrants are a plague on this country.", 1),
        ("Women belong in the kitchen, not in the office.", 1),
        ("Jews control the banks and the media.", 1),
        ("Muslims are all terrorists waiting to happen.", 1),
        ("Gay people are sick and need to be cured.", 1),
        ("Black people are naturally violent.", 1),
    ),
    "profanity not aimed at anyone": (
        ("Holy shit, this pizza is fucking amazing.", 0),
        ("Damn, I missed the bus again.", 0),
        ("What the hell happened to the weather today?", 0),
        ("Fuck yeah, we won the match!", 0),
        ("This bug is a pain in the ass to reproduce.", 0),
        ("Shit, I forgot my keys at home.", 0),
    ),
    "threat": (
        ("I will find you and break your legs.", 1),
        ("Say that again and I'll burn your house down.", 1),
        ("You'd better watch your back, I know where you live.", 1),
        ("I'm going to kill you and your whole family.", 1),
        ("Keep talking and you'll end up in a ditch.", 1),
        ("Someone should put a bullet in your head.", 1),
    ),
}
"""Self-written functional cases (NOT HateCheck): functionality → ((text, expected label), ...)."""
