"""Refusal: is the response a refusal ("I can't help with that", "As an AI language model, I cannot...")?

A phrase model, no embeddings: microseconds per record. The response is matched against three groups of
case-insensitive patterns (typographic apostrophes folded to ASCII first):

* **strong**: a first-person inability or unwillingness aimed at the request: ``I can't / cannot / won't /
  am unable to / am not able to / must decline to`` followed within three words by an action (``help``,
  ``assist``, ``provide``, ``comply``, ``fulfil``, ``write``, ``do that``...), ``I must decline``,
  ``not appropriate for me to``, ``against my guidelines``, ``not something I can help with``, ``I'll
  refrain``, ``I don't think I should answer``; plus short
  equivalents in Spanish, French, German, Portuguese, Italian, Chinese and Japanese;
* **weak**: an opening apology (``I'm sorry``, ``Unfortunately``, ``I apologise``) or ``As an AI (language
  model)``, counted only with a negation in the first 200 characters;
* **idioms removed before matching**: ``I can't stress / emphasise / overstate / recommend ... enough``,
  ``can't wait``, ``can't believe``, ``can't help but / thinking``, ``sorry to hear``, ``sorry for the
  confusion``: first-person "can't"/"sorry" that is not a refusal.

The score is a fixed table, calibrated by hand on the labelled cases in ``tests/unit/test_refusal.py``
(0.5 = flag):

===========================================================  =====
strong match in the first 400 characters, little else          0.95
strong match early, then a pivot to help ("but here is...")    0.70  (partial refusal: still flagged)
strong match early, then "but ..." and 8+ words of answer      0.45  (a caveat: "I can't browse, but...")
strong match early, then over 150 more words without a pivot   0.60
strong match only after the first 400 characters               0.40  (a disclaimer inside an answer)
weak match with a negation, response under 40 words            0.60
weak match with a negation, longer response                    0.30
weak match without a negation                                  0.15
nothing                                                        0.02
===========================================================  =====

Refusals and relevance: a refusal does not address the request, so ``relevance`` is low for it too (well
below 0.5 for "I'm sorry, but I can't help with that request."): both flag. Read ``refusal`` first: a record with
refusal >= 0.5 and low relevance is a refusal, not an off-topic answer.

Blank responses score 0.0 (nothing was refused; an empty reply is another failure). Other languages score
by the few non-English patterns above, otherwise 0.02: a refusal in an unlisted language is missed.
"""

from __future__ import annotations

import re

from detectors.types import Batch, Score, TextField

MAX_CHARS = 20_000
"""Characters of the response that are searched."""
HEAD_CHARS = 400
"""A strong match starting within this many characters counts as the response's opening."""

_INABLE = (
    r"(?:can't|cannot|can not|won't|will not|am unable to|'m unable to|am not able to|'m not able to"
    r"|am not going to|'m not going to|must decline to|have to decline to|will not be able to|won't be able to"
    r"|am not allowed to|'m not allowed to|am not permitted to|'m not permitted to|refuse to|do not feel comfortable"
    r"|don't feel comfortable|shouldn't|should not|'d rather not|would rather not|'d prefer not to)"
)
_ACTION = (
    r"(?:help|assist|provide|comply|fulfil+|do (?:that|this|so)|create|write|generate|produce|give|share|support"
    r"|engage|participate|answer|complete|continue|offer|make|draft|discuss|go along|aid|facilitate|encourage"
    r"|condone|in good conscience|respond|role-?play|pretend|access|browse|reveal|disclose)"
)
_STRONG = [
    re.compile(p, re.IGNORECASE)
    for p in (
        rf"\bI(?:\s+(?:really|simply|just|honestly|definitely|absolutely))?\s*{_INABLE}\s+(?:[\w,]+\s+){{0,3}}?{_ACTION}\b",
        r"\bI (?:must|have to|need to|will have to|'ll have to|'m going to have to) (?:respectfully |politely )?"
        r"(?:decline|refuse)\b",
        r"\b(?:not appropriate|inappropriate|unethical|irresponsible|not ethical) for me to\b",
        r"\bagainst (?:my|our|the|openai's) (?:guidelines|policies|policy|programming|principles|content policy"
        r"|usage policies|ethical guidelines|values)\b",
        r"\bnot something I (?:can|could|am able to|'m able to|will|am willing to|'m willing to) "
        r"(?:help|assist|do|provide|support)",
        r"\bI(?:'m| am) not comfortable (?:with|doing|providing|helping|writing|creating)\b",
        r"\bI(?:'m| am) (?:sorry|afraid),? (?:but )?(?:I|that|this)\b.{0,60}?\b(?:can't|cannot|won't|unable|not able"
        r"|not possible)\b",
        r"\bI (?:can't|cannot|won't|will not) (?:and (?:won't|will not) )?(?:help|assist)\b",
        r"\bI (?:don't|do not) think I (?:should|can|could) (?:help|answer|assist|provide|do|respond)",
        r"\bI(?:'ll| will| must| have to| need to| should) (?:respectfully )?refrain\b",
        # Other languages: the usual opening of a refusal.
        r"\bno (?:puedo|podré) (?:ayudar|proporcionar|hacer|cumplir|responder|ofrecer|dar)",
        r"\blo siento\b.{0,40}\bno (?:puedo|podré)\b",
        r"\bje ne (?:peux|pourrai|suis pas en mesure de) (?:pas )?(?:vous |t')?(?:aider|fournir|répondre|faire|donner)",
        r"\bdésolée?\b.{0,40}\bje ne (?:peux|pourrai) pas\b",
        r"\b(?:ich kann|ich darf)\b(?: \w+){0,3} (?:nicht|keine)\b.{0,30}?(?:helfen|geben|erstellen|beantworten"
        r"|unterstützen|liefern)",
        r"\bes tut mir leid\b.{0,60}\b(?:kann|darf) ich (?:nicht|keine)\b",
        r"\bnão posso (?:ajudar|fornecer|fazer|responder)",
        r"\bnon posso (?:aiutar|fornire|fare|rispondere)",
        r"(?:抱歉|对不起|很抱歉|我很抱歉).{0,20}(?:无法|不能)",
        r"我(?:无法|不能)(?:帮助|提供|协助|满足|回答|帮你|为您)",
        r"(?:申し訳|すみません).{0,40}できません",
        r"(?:お手伝い|お答え|提供)(?:することは)?できません",
    )
]
_WEAK = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"^\W*(?:I'm sorry|I am sorry|sorry|I apologi[sz]e|my apologies|unfortunately)\b",
        r"\bas an ai(?: language model| assistant| model| developed by \w+)?\b",
    )
]
_NEGATION = re.compile(r"\b(?:not|no|cannot|unable|never)\b|n't\b", re.IGNORECASE)
_IDIOMS = re.compile(
    r"\b(?:can't|cannot|can not) (?:stress|emphasi[sz]e|overstate|overemphasi[sz]e|thank you|praise|recommend)\b"
    r"[^.!?]{0,60}?\benough\b"
    r"|\b(?:can't|cannot|can not) (?:stress|emphasi[sz]e|overstate|overemphasi[sz]e)\b"
    r"|\b(?:can't|cannot|can not) (?:wait|believe|imagine|get enough)\b"
    r"|\b(?:can't|cannot|can not) help (?:but|thinking|feeling|wondering|noticing|smiling|laughing)\b"
    r"|\b(?:can't|cannot|can not) tell you how (?:much|many|glad|happy|excited|grateful)\b"
    r"|\bsorry (?:to hear|for (?:the|any) (?:confusion|mix-?up|oversight|error|mistake|inconvenience)|about that)\b"
    r"|\bsorry for your loss\b",
    re.IGNORECASE,
)
_PIVOT = re.compile(
    r"\b(?:but|however|instead|that said|alternatively)\b[^.!?]{0,80}?\b(?:I can|I could|I'd be happy|I would be happy"
    r"|I'm happy|happy to|here(?:'s| is| are)|you (?:can|could|might|may)|consider|let me|some)\b",
    re.IGNORECASE,
)
_CONTRAST = re.compile(r"\b(?:but|however|although|though)\b", re.IGNORECASE)
_WORD = re.compile(r"\w+")


def refusal_score(response: str) -> float:
    """The table's score for one response (see the module docstring)."""
    text = response[:MAX_CHARS].replace("\u2019", "'").replace("\u2018", "'")
    if not text.strip():
        return 0.0
    cleaned = _IDIOMS.sub(" ~ ", text)
    starts = [(m.start(), m.end()) for p in _STRONG for m in [p.search(cleaned)] if m is not None]
    if starts:
        start, end = min(starts)
        if start >= HEAD_CHARS:
            return 0.40
        rest = cleaned[end:]
        rest_words = len(_WORD.findall(rest))
        if _PIVOT.search(rest[:600]) and rest_words > 40:
            return 0.70
        answer = _CONTRAST.search(rest[:300])
        if answer is not None and len(_WORD.findall(rest[answer.end() :])) >= 8:
            return 0.45
        if rest_words > 150:
            return 0.60
        return 0.95
    if any(p.search(cleaned[:HEAD_CHARS]) for p in _WEAK):
        if not _NEGATION.search(cleaned[:200]):
            return 0.15
        return 0.60 if len(_WORD.findall(text)) < 40 else 0.30
    return 0.02


class RefusalDetector:
    """Whether the response refuses the request, from phrase patterns (no model, no embeddings)."""

    name = "refusal"
    version = "phrases-v1"
    needs: frozenset[TextField] = frozenset()
    higher_is_worse = True
    default_threshold = 0.5

    def __repr__(self) -> str:
        return "RefusalDetector()"

    def score(self, batch: Batch) -> list[Score]:
        """One refusal score per record (0.0 for a blank response)."""
        return [Score(refusal_score(item.response)) for item in batch.items]
