"""The redact step: PII and secrets in text → typed placeholders, identifiers hashed, before scoring and storage.

Text: the detectors of :mod:`agent.redact_patterns` find candidate spans in the original text; overlapping spans
are resolved by priority (extra patterns, then the built-ins in :func:`~agent.redact_patterns.builtin_detectors`
order, then the optional NER finder); allow-listed and UUID-shaped spans are kept. Identifiers (``user_id``,
``trace_id``, ``session_id`` and the metadata values named in ``redact.identifier_metadata``) are kept, replaced
by a stable keyed hash, or emptied (:class:`Identifiers`), in records, feedback events and dead letters alike, so
joins between them still work. Span ids are not identifiers (random per call) and are kept.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from agent import metrics
from agent.redact_patterns import (
    NER_TYPES,
    PII_TYPES,
    UUID,
    Detector,
    NerFinder,
    PresidioNer,
    builtin_detectors,
    shannon_entropy,
)
from agent.sinks.base import BatchingSink
from agent.step import BatchState
from agent.types import DecodeFailure, FeedbackEvent, Message, Sample, ScoringFailure

if TYPE_CHECKING:
    from agent.config import RedactSettings

PLACEHOLDERS: Mapping[str, str] = {t: f"[{t.upper()}]" for t in (*PII_TYPES, *NER_TYPES)}

IdentifierMode = Literal["keep", "hash", "drop"]
"""``keep`` identifiers as they are, ``hash`` them (``h:`` + 16 hex digits), or ``drop`` them (empty string)."""

Counts = dict[str, int]
"""PII type (or extra pattern name) → number of spans replaced."""
_T = TypeVar("_T")
_Failure = TypeVar("_Failure", bound=DecodeFailure | ScoringFailure)
_HASHED = re.compile(r"h:[0-9a-f]{16}")

RECORD_IDENTIFIERS = ("user_id", "trace_id", "session_id")
"""Record fields that are identifiers: kept, hashed or dropped as ``redact.identifiers`` says (span ids are not:
they are random per call)."""


class Identifiers:
    """What becomes of identifiers: kept, replaced by a stable hash, or emptied.

    A hash is ``h:`` and the first 16 hex digits of HMAC-SHA256(key, value), or of SHA-256(value) without a key.
    The same value always gives the same hash, so grouping by user or session and joining feedback to records by
    ``trace_id`` keep working; a value that already is such a hash is kept (a replayed dead letter is not
    hashed twice).

    Args:
        mode: ``keep``, ``hash`` or ``drop``.
        key: HMAC key. Without one anybody can hash a guessed value (an e-mail address) and compare.
        metadata_keys: Metadata keys whose (string) values are identifiers too.
    """

    def __init__(
        self, mode: IdentifierMode = "hash", key: str | None = None, metadata_keys: Iterable[str] = ()
    ) -> None:
        self.mode: IdentifierMode = mode
        self.metadata_keys = tuple(metadata_keys)
        self._key = key.encode("utf-8") if key else None
        names = "|".join(re.escape(k) for k in (*RECORD_IDENTIFIERS, *self.metadata_keys))
        self._json_field = re.compile(rf'"(?:{names})"\s*:\s*"((?:[^"\\\r\n]|\\.)*)"')

    def __repr__(self) -> str:
        key = "'***'" if self._key else "None"
        return f"Identifiers(mode={self.mode!r}, key={key}, metadata_keys={self.metadata_keys!r})"

    def apply(self, value: str) -> str:
        """``value`` kept, hashed or dropped; an empty value stays empty."""
        if self.mode == "keep" or not value:
            return value
        if self.mode == "drop":
            return ""
        if _HASHED.fullmatch(value):
            return value
        data = value.encode("utf-8", errors="surrogateescape")
        digest = hmac.new(self._key, data, hashlib.sha256) if self._key else hashlib.sha256(data)
        return "h:" + digest.hexdigest()[:16]

    def owns(self, metadata_key: str) -> bool:
        """True when the value under ``metadata_key`` is replaced as an identifier (and so not redacted as text)."""
        return self.mode != "keep" and metadata_key in self.metadata_keys

    def sample(self, sample: Sample) -> Sample:
        """``sample`` with ``user_id``, ``trace_id``, ``session_id`` and the named metadata values replaced.

        Returns ``sample`` itself when nothing changed.
        """
        if self.mode == "keep":
            return sample
        named = {k: self.apply(v) for k, v in sample.metadata.items() if self.owns(k) and isinstance(v, str)}
        named = {k: v for k, v in named.items() if v != sample.metadata[k]}
        ids = (self.apply(sample.user_id), self.apply(sample.trace_id), self.apply(sample.session_id))
        if not named and ids == (sample.user_id, sample.trace_id, sample.session_id):
            return sample
        user_id, trace_id, session_id = ids
        metadata = {**sample.metadata, **named}
        return replace(sample, user_id=user_id, trace_id=trace_id, session_id=session_id, metadata=metadata)

    def event(self, event: FeedbackEvent) -> FeedbackEvent:
        """``event`` with ``user_id`` and ``trace_id`` replaced the same way as a record's (itself if unchanged)."""
        user_id, trace_id = self.apply(event.user_id), self.apply(event.trace_id)
        if user_id == event.user_id and trace_id == event.trace_id:
            return event
        return replace(event, user_id=user_id, trace_id=trace_id)

    def json_text(self, text: str) -> str:
        """``text`` (a record's JSON, maybe malformed) with the string values of identifier fields replaced."""
        if self.mode == "keep" or '"' not in text:
            return text

        def one(m: re.Match[str]) -> str:
            try:
                value = json.loads(f'"{m.group(1)}"')
            except ValueError:
                value = m.group(1)
            start, end = m.span(1)
            new = json.dumps(self.apply(value), ensure_ascii=False)[1:-1]
            return m.group()[: start - m.start()] + new + m.group()[end - m.start() :]

        return self._json_field.sub(one, text)


class Redactor:
    """Replaces PII and secrets in text with typed placeholders, and identifiers as :class:`Identifiers` says.

    Args:
        types: Built-in types to detect (see :data:`~agent.redact_patterns.PII_TYPES`).
        extra_patterns: Name → regex of more things to replace; a match becomes ``[NAME]`` (upper-cased)
            and is counted under ``name``. Tried before the built-ins.
        allow: Regexes whose matches are kept: a span is kept when an allow regex matches all of it, or
            when it lies inside a match of an allow regex in the text.
        entropy_threshold: Bits per character above which a token of 32+ ``[A-Za-z0-9+/=_-]`` characters
            that mixes letters and digits is a secret (hex-only tokens such as hashes are kept; one with a
            ``/`` must also mix upper and lower case, so paths and URLs are kept).
        identifiers: What becomes of ``user_id``, ``trace_id``, ``session_id`` and named metadata values (default:
            hashed).
        ner: Finds names and street addresses after every pattern (``[NAME]``, ``[ADDRESS]``); None: not run.
    """

    def __init__(
        self,
        types: Iterable[str] = PII_TYPES,
        extra_patterns: Mapping[str, str] | None = None,
        allow: Iterable[str] = (),
        entropy_threshold: float = 4.0,
        *,
        identifiers: Identifiers | None = None,
        ner: NerFinder | None = None,
    ) -> None:
        self.types = tuple(types)
        unknown = sorted(set(self.types) - set(PII_TYPES))
        if unknown:
            raise ValueError(f"unknown PII types {unknown}; valid: {', '.join(PII_TYPES)}")
        self.extra_patterns = dict(extra_patterns or {})
        self.allow = tuple(allow)
        self.entropy_threshold = entropy_threshold
        self.identifiers = identifiers if identifiers is not None else Identifiers()
        self.ner = ner
        self._allow = [re.compile(p) for p in self.allow]
        self._placeholders = {**PLACEHOLDERS, **{n: f"[{n.upper()}]" for n in self.extra_patterns}}
        self._detectors = [Detector(n, re.compile(p)) for n, p in self.extra_patterns.items()]
        self._detectors += [d for d in builtin_detectors(self._high_entropy) if d.kind in self.types]

    def __repr__(self) -> str:
        return (
            f"Redactor(types={self.types!r}, extra_patterns={self.extra_patterns!r}, allow={self.allow!r}, "
            f"entropy_threshold={self.entropy_threshold!r}, identifiers={self.identifiers!r}, ner={self.ner!r})"
        )

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
        found = [(start, end, det.kind) for det in self._detectors for start, end in det.spans(text)]
        if self.ner is not None:
            found += self.ner.find(text)
        spans: list[tuple[int, int, str]] = []
        for start, end, kind in found:  # in priority order: the first of overlapping spans wins
            if not any(s < end and start < e for s, e, _ in spans):
                spans.append((start, end, kind))
        if not spans:
            return text, {}
        kept = self._kept(text)
        spans = sorted(s for s in spans if not self._is_kept(text, s[0], s[1], kept))
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
        kept = [m.span() for m in UUID.finditer(text)] if "-" in text else []
        for pattern in self._allow:
            kept += [m.span() for m in pattern.finditer(text) if m.end() > m.start()]
        return kept

    def _is_kept(self, text: str, start: int, end: int, kept: list[tuple[int, int]]) -> bool:
        if any(s <= start and end <= e for s, e in kept):
            return True
        return any(p.fullmatch(text, start, end) for p in self._allow)

    def redact_sample(self, sample: Sample) -> tuple[Sample, Counts]:
        """The sample with its text redacted and its identifiers replaced; the counts are of text spans.

        Text: prompt, response, history, context and string metadata values (other than identifier ones).
        ``id``, ``tenant``, ``route`` and ``model`` are kept as they are.
        """
        total: Counts = {}

        def red(text: str) -> str:
            out, counts = self.redact(text)
            for kind, n in counts.items():
                total[kind] = total.get(kind, 0) + n
            return out

        owns = self.identifiers.owns
        redacted = replace(
            sample,
            prompt=red(sample.prompt),
            response=red(sample.response),
            history=tuple(Message(m.role, red(m.content)) for m in sample.history),
            context=tuple(red(c) for c in sample.context),
            metadata={k: red(v) if isinstance(v, str) and not owns(k) else v for k, v in sample.metadata.items()},
        )
        return self.identifiers.sample(redacted if total else sample), total

    def redact_event(self, event: FeedbackEvent) -> tuple[FeedbackEvent, Counts]:
        """A feedback event with its comment redacted and ``user_id``/``trace_id`` replaced like a record's."""
        comment, counts = self.redact(event.comment)
        return self.identifiers.event(replace(event, comment=comment) if counts else event), counts

    def redact_failure(self, failure: _Failure) -> tuple[_Failure, Counts]:
        """The failure with its reason and original bytes redacted.

        The bytes are read as UTF-8 with invalid bytes escaped (``surrogateescape``), their identifier fields
        replaced, redacted, and written back the same way: valid text is redacted and invalid bytes come back
        unchanged.
        """
        text = failure.raw.decode("utf-8", errors="surrogateescape")
        raw_text, counts = self.redact(self.identifiers.json_text(text))
        reason, reason_counts = self.redact(failure.reason)
        if raw_text == text and not reason_counts:
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
    """The redactor the ``redact`` settings ask for; None when redaction is disabled.

    Raises:
        ConfigError: ``redact.ner`` is on and presidio-analyzer or the spaCy model is not installed.
    """
    if not settings.enabled:
        return None
    key = settings.identifier_key.get_secret_value() if settings.identifier_key is not None else None
    identifiers = Identifiers(settings.identifiers, key, settings.identifier_metadata)
    ner = _ner(settings.ner_model) if settings.ner else None
    return Redactor(
        settings.types, settings.extra_patterns, settings.allow, settings.entropy_threshold,
        identifiers=identifiers, ner=ner,
    )  # fmt: skip


@functools.cache
def _ner(model: str) -> PresidioNer:
    """One finder per model per process (the record path and the feedback step share it)."""
    return PresidioNer(model)


def redact_sample(sample: Sample, redactor: Redactor | None = None) -> tuple[Sample, Counts]:
    """Redact ``sample`` with ``redactor`` (default: every built-in type, no extras, identifiers hashed)."""
    return (redactor or _default()).redact_sample(sample)


_DEFAULT: list[Redactor] = []


def _default() -> Redactor:
    if not _DEFAULT:
        _DEFAULT.append(Redactor())
    return _DEFAULT[0]
