"""The redact step: PII and secrets in record text → typed placeholders, before anything is scored or stored.

Pure and regex based. Each detector finds candidate spans in the original text; checksums (Luhn for cards,
mod-97 for IBANs, :mod:`ipaddress` for IPv6) and an entropy test weed out look-alikes; overlapping spans
are resolved by priority (extra patterns, prefixed secrets, email, IBAN, card, IP, phone, high-entropy);
allow-listed and UUID-shaped spans are kept. What it does not find: names, postal addresses, free-form
identifiers (national ids, passport numbers) and phone numbers written as bare digit runs.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from agent import metrics
from agent.sinks.base import BatchingSink
from agent.step import BatchState
from agent.types import DecodeFailure, Message, Sample, ScoringFailure

if TYPE_CHECKING:
    from agent.config import RedactSettings

PiiType = Literal["email", "phone", "card", "iban", "ip", "secret"]
"""The built-in kinds of PII; each is replaced by its placeholder, e.g. ``[EMAIL]``."""

PII_TYPES: tuple[PiiType, ...] = ("email", "phone", "card", "iban", "ip", "secret")

PLACEHOLDERS: Mapping[str, str] = {t: f"[{t.upper()}]" for t in PII_TYPES}

Counts = dict[str, int]
"""PII type (or extra pattern name) → number of spans replaced."""
_T = TypeVar("_T")
_Failure = TypeVar("_Failure", bound=DecodeFailure | ScoringFailure)

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
_BEARER = re.compile(r"\b[Bb][Ee][Aa][Rr][Ee][Rr]\s++([A-Za-z0-9._~+/=-]{16,}+)")
_HIGH_ENTROPY = re.compile(rf"(?<![{_TOKEN_CLASS}])[{_TOKEN_CLASS}]{{32,}}+")
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}"
    r"(?![A-Za-z0-9-])"
)
_IBAN = re.compile(r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])")
_CARD = re.compile(r"\d(?<![\w-]\d)(?<!\d[ -]\d)(?:[ -]?\d){12,18}(?![\w-])(?![ -]\d)")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\.?\d)(?![\w])")
_IPV6 = re.compile(
    r"(?<![\w:.])(?=[0-9A-Fa-f:]*[0-9A-Fa-f])(?=[0-9A-Fa-f]*:[0-9A-Fa-f]*:)[0-9A-Fa-f:]{2,39}"
    r"(?:(?<=:)\d{1,3}(?:\.\d{1,3}){3})?(?![\w:.])"
)
_PHONE = re.compile(
    r"(?<![\w+])(?<!\d[ .-])(?:"
    r"\+\d{1,3}+(?:[ .-]?(?:\(\d{1,4}+\)|\d{1,4}+)){2,6}"  # international: +CC then groups
    r"|(?:\(\d{2,4}\) ?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}"  # national with separators: (415) 555-2671
    r")(?![\w])(?![ .-]?\d)"
)
_UUID = re.compile(r"\b[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\b")
# Cheap pre-tests: most text has none of these, and then the full pattern is not run.
_SECRET_HINTS = (
    "sk-",
    "_live_",
    "_test_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "xox",
    "AKIA",
    "ASIA",
    "AIza",
    "eyJ",
)
_CARD_HINT = re.compile(r"\d[ -]?\d[ -]?\d[ -]?\d[ -]?\d[ -]?\d")
_IBAN_HINT = re.compile(r"[A-Z]{2}\d\d")
_IPV4_HINT = re.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d")
_PHONE_HINT = re.compile(r"\d{3}[ .-]\d{3}")


def _has_digit(text: str) -> bool:
    return any(d in text for d in "0123456789")


def _has_secret_hint(text: str) -> bool:
    return any(hint in text for hint in _SECRET_HINTS)


def _has_bearer(text: str) -> bool:
    return "earer" in text or "EARER" in text


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
    digits = sum(ch.isdigit() for ch in match.group())
    return 8 <= digits <= 15 if match.group().startswith("+") else 9 <= digits <= 12


def _bearer(match: re.Match[str]) -> bool:
    token = match.group(1)
    return not token.isalpha() or not token.islower()


@dataclass(frozen=True, slots=True)
class _Detector:
    kind: str
    pattern: re.Pattern[str]
    check: Callable[[re.Match[str]], bool] | None = None
    group: int = 0
    needs: Callable[[str], object] | None = None
    """A cheap pre-test on the whole text; the pattern is not run when it is falsy."""


class Redactor:
    """Replaces PII and secrets in text with typed placeholders.

    Args:
        types: Built-in types to detect (see :data:`PII_TYPES`).
        extra_patterns: Name → regex of more things to replace; a match becomes ``[NAME]`` (upper-cased)
            and is counted under ``name``. Tried before the built-ins.
        allow: Regexes whose matches are kept: a span is kept when an allow regex matches all of it, or
            when it lies inside a match of an allow regex in the text.
        entropy_threshold: Bits per character above which a token of 32+ ``[A-Za-z0-9+/=_-]`` characters
            that mixes letters and digits is a secret (hex-only tokens such as hashes are kept; one with a
            ``/`` must also mix upper and lower case, so paths and URLs are kept).
    """

    def __init__(
        self,
        types: Iterable[str] = PII_TYPES,
        extra_patterns: Mapping[str, str] | None = None,
        allow: Iterable[str] = (),
        entropy_threshold: float = 4.0,
    ) -> None:
        self.types = tuple(types)
        unknown = sorted(set(self.types) - set(PII_TYPES))
        if unknown:
            raise ValueError(f"unknown PII types {unknown}; valid: {', '.join(PII_TYPES)}")
        self.extra_patterns = dict(extra_patterns or {})
        self.allow = tuple(allow)
        self.entropy_threshold = entropy_threshold
        self._allow = [re.compile(p) for p in self.allow]
        self._placeholders = {**PLACEHOLDERS, **{n: f"[{n.upper()}]" for n in self.extra_patterns}}
        self._detectors = [_Detector(n, re.compile(p)) for n, p in self.extra_patterns.items()]
        self._detectors += [d for d in self._builtin() if d.kind in self.types]

    def __repr__(self) -> str:
        return (
            f"Redactor(types={self.types!r}, extra_patterns={self.extra_patterns!r}, allow={self.allow!r}, "
            f"entropy_threshold={self.entropy_threshold!r})"
        )

    def _builtin(self) -> list[_Detector]:
        return [
            _Detector("secret", _SECRET_PREFIXES, needs=_has_secret_hint),
            _Detector("secret", _BEARER, _bearer, group=1, needs=_has_bearer),
            _Detector("email", _EMAIL, needs=lambda t: "@" in t),
            _Detector("iban", _IBAN, _iban, needs=_has_iban_hint),
            _Detector("card", _CARD, _card, needs=_has_card_hint),
            _Detector("ip", _IPV6, _ipv6, needs=lambda t: "::" in t or t.count(":") >= 7),
            _Detector("ip", _IPV4, needs=_has_ipv4_hint),
            _Detector("phone", _PHONE, _phone, needs=_has_phone_hint),
            _Detector("secret", _HIGH_ENTROPY, self._high_entropy, needs=_has_long_token),
        ]

    def _high_entropy(self, match: re.Match[str]) -> bool:
        token = match.group()
        if all(ch in "0123456789abcdefABCDEF" for ch in token):
            return False
        has_digit = any(ch.isdigit() for ch in token)
        if "/" in token:  # a path or URL unless it mixes cases like base64 (an AWS secret key)
            mixed = has_digit and any(ch.isupper() for ch in token) and any(ch.islower() for ch in token)
        else:
            mixed = has_digit and any(ch.isalpha() for ch in token)
        return mixed and shannon_entropy(token) >= self.entropy_threshold

    def redact(self, text: str) -> tuple[str, Counts]:
        """``text`` with every detected span replaced by its placeholder, and the count per type."""
        if not text:
            return text, {}
        spans: list[tuple[int, int, str]] = []
        for det in self._detectors:
            if det.needs is not None and not det.needs(text):
                continue
            for m in det.pattern.finditer(text):
                start, end = m.span(det.group)
                if start == end or (det.check is not None and not det.check(m)):
                    continue
                if not any(s < end and start < e for s, e, _ in spans):
                    spans.append((start, end, det.kind))
        if not spans:
            return text, {}
        kept = self._kept(text)
        spans = [s for s in spans if not self._is_kept(text, s[0], s[1], kept)]
        spans.sort()
        out: list[str] = []
        counts: Counts = {}
        pos = 0
        for start, end, kind in spans:
            out += (text[pos:start], self._placeholders[kind])
            counts[kind] = counts.get(kind, 0) + 1
            pos = end
        out.append(text[pos:])
        return "".join(out), counts

    def _kept(self, text: str) -> list[tuple[int, int]]:
        kept = [m.span() for m in _UUID.finditer(text)] if "-" in text else []
        for pattern in self._allow:
            kept += [m.span() for m in pattern.finditer(text) if m.end() > m.start()]
        return kept

    def _is_kept(self, text: str, start: int, end: int, kept: list[tuple[int, int]]) -> bool:
        if any(s <= start and end <= e for s, e in kept):
            return True
        return any(p.fullmatch(text, start, end) for p in self._allow)

    def redact_sample(self, sample: Sample) -> tuple[Sample, Counts]:
        """The sample with its prompt, response, history, context and string metadata redacted.

        Identifiers (``id``, ``tenant``, ``user_id``, ``route``, ``trace_id``, ``model``) are kept as they are.
        """
        total: Counts = {}

        def red(text: str) -> str:
            out, counts = self.redact(text)
            for kind, n in counts.items():
                total[kind] = total.get(kind, 0) + n
            return out

        redacted = replace(
            sample,
            prompt=red(sample.prompt),
            response=red(sample.response),
            history=tuple(Message(m.role, red(m.content)) for m in sample.history),
            context=tuple(red(c) for c in sample.context),
            metadata={k: red(v) if isinstance(v, str) else v for k, v in sample.metadata.items()},
        )
        return (redacted, total) if total else (sample, total)

    def redact_failure(self, failure: _Failure) -> tuple[_Failure, Counts]:
        """The failure with its reason and original bytes redacted.

        The bytes are read as UTF-8 with invalid bytes escaped (``surrogateescape``), redacted, and written
        back the same way: valid text is redacted and invalid bytes come back unchanged.
        """
        text = failure.raw.decode("utf-8", errors="surrogateescape")
        raw_text, counts = self.redact(text)
        reason, reason_counts = self.redact(failure.reason)
        if not counts and not reason_counts:
            return failure, {}
        for kind, n in reason_counts.items():
            counts[kind] = counts.get(kind, 0) + n
        raw = raw_text.encode("utf-8", errors="surrogateescape") if raw_text != text else failure.raw
        return replace(failure, raw=raw, reason=reason), counts


class RedactStep:
    """The redact step: PII in each decoded record becomes placeholders before scoring and before any sink.

    Dead letters are redacted by the store step, with the same redactor, when it writes them.
    """

    name = "redact"

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    def __repr__(self) -> str:
        return f"RedactStep({self.redactor!r})"

    def apply(self, batch: BatchState) -> None:
        """Redact ``batch.samples``, counting what was replaced on /metrics."""
        batch.samples = redacted(batch.samples, self.redactor.redact_sample)

    def sinks(self) -> Sequence[BatchingSink[Any]]:
        """None."""
        return ()


def redacted(items: Iterable[_T], redact: Callable[[_T], tuple[_T, Counts]]) -> list[_T]:
    """Apply one redaction to every item, counting what it replaced on /metrics."""
    out = []
    for item in items:
        clean, counts = redact(item)
        for kind, n in counts.items():
            metrics.pii_redacted.labels(type=kind).inc(n)
        out.append(clean)
    return out


def redactor_from_settings(settings: RedactSettings) -> Redactor | None:
    """The redactor the ``redact`` settings ask for; None when redaction is disabled."""
    if not settings.enabled:
        return None
    return Redactor(settings.types, settings.extra_patterns, settings.allow, settings.entropy_threshold)


def redact_sample(sample: Sample, redactor: Redactor | None = None) -> tuple[Sample, Counts]:
    """Redact ``sample`` with ``redactor`` (default: every built-in type, no extras)."""
    return (redactor or _default()).redact_sample(sample)


_DEFAULT: list[Redactor] = []


def _default() -> Redactor:
    if not _DEFAULT:
        _DEFAULT.append(Redactor())
    return _DEFAULT[0]
