"""Settings: defaults, environment, YAML file, validation errors as one line, frozen, secrets masked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from agent.config import KafkaSettings, Settings, describe_validation_error, load_settings, setting_rows
from agent.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No LOOKOUT_* variable from the outer environment reaches a test."""
    for name in list(os.environ):
        if name.upper().startswith("LOOKOUT_"):
            monkeypatch.delenv(name)


def write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` and return it."""
    path.write_text(text, encoding="utf-8")
    return path


def section_fields() -> list[tuple[str, str]]:
    """(section, field) for every field of every settings section, from the models themselves."""
    out: list[tuple[str, str]] = []
    for section_name, field in Settings.model_fields.items():
        section = field.annotation
        assert isinstance(section, type) and issubclass(section, BaseModel)
        out.extend((section_name, name) for name in section.model_fields)
    return out


class TestDefaults:
    """Without environment or file, settings are the documented defaults."""

    def test_kafka_defaults(self) -> None:
        """Topic llm-logs, group lookout, DLQ <topic>.dlq."""
        kafka = load_settings().kafka
        assert kafka.topic == "llm-logs"
        assert kafka.group_id == "lookout"
        assert kafka.bootstrap_servers == "127.0.0.1:9092"
        assert kafka.dlq_topic is None
        assert kafka.dead_letter_topic == "llm-logs.dlq"

    def test_clickhouse_defaults(self) -> None:
        """The embedded engine in ./lookout-data, database lookout."""
        clickhouse = load_settings().clickhouse
        assert clickhouse.dsn == "chdb://./lookout-data"
        assert clickhouse.database == "lookout"

    def test_other_defaults(self) -> None:
        """Batch, limits and log defaults."""
        settings = load_settings()
        assert settings.batch.max_records == 256
        assert settings.limits.max_record_bytes == 1_048_576
        assert settings.log.level == "info"
        assert settings.cost.price_table is None

    def test_dead_letter_topic_follows_topic(self) -> None:
        """The DLQ defaults to the configured topic plus .dlq; an explicit dlq_topic wins."""
        assert load_settings(kafka={"topic": "in"}).kafka.dead_letter_topic == "in.dlq"
        assert load_settings(kafka={"topic": "in", "dlq_topic": "bad"}).kafka.dead_letter_topic == "bad"


class TestEnvironment:
    """LOOKOUT_<SECTION>__<FIELD> variables set fields."""

    def test_kafka_and_clickhouse_vars(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Bootstrap servers, topic, group id and DSN are read from the environment."""
        monkeypatch.setenv("LOOKOUT_KAFKA__BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
        monkeypatch.setenv("LOOKOUT_KAFKA__TOPIC", "prod-logs")
        monkeypatch.setenv("LOOKOUT_KAFKA__GROUP_ID", "lookout-prod")
        monkeypatch.setenv("LOOKOUT_CLICKHOUSE__DSN", "http://default:pw@ch:8123")
        settings = load_settings()
        assert settings.kafka.bootstrap_servers == "k1:9092,k2:9092"
        assert settings.kafka.topic == "prod-logs"
        assert settings.kafka.group_id == "lookout-prod"
        assert settings.kafka.dead_letter_topic == "prod-logs.dlq"
        assert settings.clickhouse.dsn == "http://default:pw@ch:8123"

    def test_numbers_parsed(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Numeric variables are parsed to their field types."""
        monkeypatch.setenv("LOOKOUT_BATCH__MAX_RECORDS", "1000")
        monkeypatch.setenv("LOOKOUT_CLICKHOUSE__RETRY_BACKOFF_MAX_S", "2.5")
        settings = load_settings()
        assert settings.batch.max_records == 1000
        assert settings.clickhouse.retry_backoff_max_s == 2.5

    def test_keyword_overrides_win_over_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Keyword overrides in code take precedence over the environment."""
        monkeypatch.setenv("LOOKOUT_KAFKA__TOPIC", "from-env")
        assert load_settings(kafka={"topic": "from-code"}).kafka.topic == "from-code"

    def test_every_row_env_var_is_read(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The env var that setting_rows names for a string field is the one load_settings reads."""
        rows = {name: env for name, env, _, _ in setting_rows()}
        monkeypatch.setenv(rows["kafka.client_id"], "cid")
        monkeypatch.setenv(rows["encoder.device"], "cuda:1")
        settings = load_settings()
        assert (settings.kafka.client_id, settings.encoder.device) == ("cid", "cuda:1")


class TestConfigFile:
    """A YAML file given with --config sets fields under the environment."""

    def test_file_read(self, tmp_path: Path) -> None:
        """Fields in the YAML file are read; others keep their defaults."""
        path = write(tmp_path / "lookout.yaml", "kafka:\n  topic: from-file\nbatch:\n  max_records: 10\n")
        settings = load_settings(path)
        assert settings.kafka.topic == "from-file"
        assert settings.batch.max_records == 10
        assert settings.kafka.group_id == "lookout"

    def test_env_overrides_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """An environment variable wins over the same field in the file; the file's other fields stay."""
        path = write(tmp_path / "lookout.yaml", "kafka:\n  topic: from-file\n  group_id: g-file\n")
        monkeypatch.setenv("LOOKOUT_KAFKA__TOPIC", "from-env")
        settings = load_settings(path)
        assert settings.kafka.topic == "from-env"
        assert settings.kafka.group_id == "g-file"

    def test_unknown_key_rejected(self, tmp_path: Path) -> None:
        """An unknown field in a section of the file is a ConfigError naming it."""
        path = write(tmp_path / "lookout.yaml", "kafka:\n  topic: t\n  bogus: 1\n")
        with pytest.raises(ConfigError) as info:
            load_settings(path)
        assert str(info.value) == "invalid setting kafka.bogus (LOOKOUT_KAFKA__BOGUS): Extra inputs are not permitted"

    def test_unknown_section_rejected(self, tmp_path: Path) -> None:
        """An unknown top-level section in the file is a ConfigError naming it."""
        path = write(tmp_path / "lookout.yaml", "kafak:\n  topic: t\n")
        with pytest.raises(ConfigError, match=r"^invalid setting kafak \(LOOKOUT_KAFAK\): Extra inputs"):
            load_settings(path)

    def test_missing_file(self, tmp_path: Path) -> None:
        """A config path that does not exist is a ConfigError naming it."""
        path = tmp_path / "absent.yaml"
        with pytest.raises(ConfigError) as info:
            load_settings(path)
        assert str(info.value) == f"config file {path} not found"

    @pytest.mark.parametrize(
        ("content", "reason"),
        [
            (b"kafka: [\n", "while parsing a flow node expected the node content"),
            (b"- kafka\n", "dictionary update sequence"),
            (b"\xff\xfe", "'utf-8' codec can't decode byte 0xff"),
        ],
        ids=["invalid-yaml", "top-level-list", "not-utf8"],
    )
    def test_unreadable_file(self, tmp_path: Path, content: bytes, reason: str) -> None:
        """A file that is not a YAML mapping is a one-line ConfigError, not a traceback."""
        path = tmp_path / "lookout.yaml"
        path.write_bytes(content)
        with pytest.raises(ConfigError) as info:
            load_settings(path)
        message = str(info.value)
        assert message.startswith(f"config file {path} is not a readable YAML mapping: ")
        assert reason in message
        assert "\n" not in message

    def test_section_not_a_mapping(self, tmp_path: Path) -> None:
        """A section given a scalar names the section and its env var."""
        path = write(tmp_path / "lookout.yaml", "kafka: 3\n")
        with pytest.raises(ConfigError, match=r"^invalid setting kafka \(LOOKOUT_KAFKA\): Input should be a valid"):
            load_settings(path)

    def test_empty_file_means_defaults(self, tmp_path: Path) -> None:
        """An empty config file changes nothing."""
        assert load_settings(write(tmp_path / "lookout.yaml", "")) == load_settings()

    def test_file_not_reused(self, tmp_path: Path) -> None:
        """A later load without a file does not see the earlier file's values."""
        load_settings(write(tmp_path / "lookout.yaml", "kafka:\n  topic: from-file\n"))
        assert load_settings().kafka.topic == "llm-logs"


class TestValidationErrors:
    """Invalid values raise ConfigError with one line naming the setting and its env var."""

    def test_not_a_number(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A non-integer batch size names LOOKOUT_BATCH__MAX_RECORDS."""
        monkeypatch.setenv("LOOKOUT_BATCH__MAX_RECORDS", "lots")
        with pytest.raises(ConfigError) as info:
            load_settings()
        message = str(info.value)
        assert message.startswith("invalid setting batch.max_records (LOOKOUT_BATCH__MAX_RECORDS): ")
        assert "valid integer" in message
        assert "\n" not in message

    def test_below_minimum(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A batch size of 0 is out of range."""
        monkeypatch.setenv("LOOKOUT_BATCH__MAX_RECORDS", "0")
        with pytest.raises(ConfigError) as info:
            load_settings()
        assert str(info.value) == (
            "invalid setting batch.max_records (LOOKOUT_BATCH__MAX_RECORDS): Input should be greater than or equal to 1"
        )

    def test_literal_choice(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A log level outside the choices names LOOKOUT_LOG__LEVEL."""
        monkeypatch.setenv("LOOKOUT_LOG__LEVEL", "verbose")
        with pytest.raises(ConfigError, match=r"^invalid setting log\.level \(LOOKOUT_LOG__LEVEL\): Input should be"):
            load_settings()

    def test_several_errors_one_line(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Several invalid values are reported together on one line, joined by '; '."""
        monkeypatch.setenv("LOOKOUT_BATCH__MAX_RECORDS", "0")
        monkeypatch.setenv("LOOKOUT_CLICKHOUSE__DATABASE", "bad-name")
        with pytest.raises(ConfigError) as info:
            load_settings()
        message = str(info.value)
        assert "\n" not in message
        assert message.count("; ") == 1
        assert "(LOOKOUT_BATCH__MAX_RECORDS)" in message
        assert "(LOOKOUT_CLICKHOUSE__DATABASE)" in message

    def test_list_setting_not_json(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A list setting given as plain text in the environment is a one-line ConfigError saying to use JSON."""
        monkeypatch.setenv("LOOKOUT_DETECTORS__ENABLED", "toxicity")
        with pytest.raises(ConfigError) as info:
            load_settings()
        message = str(info.value)
        assert message.startswith('error parsing value for field "detectors" from source "EnvSettingsSource"; ')
        assert "list and mapping settings take JSON" in message
        assert "\n" not in message

    def test_list_setting_as_json(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A list setting given as JSON in the environment is read."""
        monkeypatch.setenv("LOOKOUT_DETECTORS__ENABLED", '["toxicity", "relevance"]')
        monkeypatch.setenv("LOOKOUT_DETECTORS__THRESHOLDS", '{"toxicity": 0.8}')
        detectors = load_settings().detectors
        assert detectors.enabled == ("toxicity", "relevance")
        assert detectors.thresholds == {"toxicity": 0.8}

    def test_heartbeat_below_session_timeout(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A heartbeat interval at or above the session timeout is rejected."""
        monkeypatch.setenv("LOOKOUT_KAFKA__SESSION_TIMEOUT_MS", "6000")
        monkeypatch.setenv("LOOKOUT_KAFKA__HEARTBEAT_INTERVAL_MS", "6000")
        with pytest.raises(ConfigError) as info:
            load_settings()
        assert str(info.value) == (
            "invalid setting kafka (LOOKOUT_KAFKA): Value error, heartbeat_interval_ms must be below session_timeout_ms"
        )
        monkeypatch.setenv("LOOKOUT_KAFKA__HEARTBEAT_INTERVAL_MS", "5999")
        assert load_settings().kafka.heartbeat_interval_ms == 5999

    def test_describe_validation_error(self) -> None:
        """describe_validation_error turns a pydantic error into 'invalid setting NAME (ENV): why'."""
        with pytest.raises(ValidationError) as info:
            Settings.model_validate({"kafka": {"auto_offset_reset": "middle"}})
        assert describe_validation_error(info.value) == (
            "invalid setting kafka.auto_offset_reset (LOOKOUT_KAFKA__AUTO_OFFSET_RESET): "
            "Input should be 'earliest' or 'latest'"
        )


class TestFrozenAndSecrets:
    """Settings cannot change after loading, and secrets do not leak into dumps."""

    def test_settings_frozen(self) -> None:
        """Assigning a section or a field raises."""
        settings = load_settings()
        with pytest.raises(ValidationError, match="frozen"):
            settings.kafka = KafkaSettings(topic="other")  # type: ignore[misc]  # frozen: must fail at run time
        with pytest.raises(ValidationError, match="frozen"):
            settings.kafka.topic = "other"  # type: ignore[misc]  # frozen: must fail at run time
        assert settings.kafka.topic == "llm-logs"

    def test_password_masked(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The SASL password is masked in JSON dumps and repr, and readable only on request."""
        monkeypatch.setenv("LOOKOUT_KAFKA__SASL_PASSWORD", "hunter2")
        settings = load_settings()
        masked = "*" * 10
        assert settings.model_dump(mode="json")["kafka"]["sasl_password"] == masked
        assert "hunter2" not in repr(settings)
        assert "hunter2" not in settings.model_dump_json()
        assert settings.kafka.sasl_password is not None
        assert settings.kafka.sasl_password.get_secret_value() == "hunter2"


class TestSettingRows:
    """setting_rows is the reference table: every field, its env var, default and description."""

    def test_every_field_listed_once(self) -> None:
        """Each field of each section has exactly one row, with env var LOOKOUT_<SECTION>__<FIELD>."""
        rows = setting_rows()
        expected = [(f"{s}.{f}", f"LOOKOUT_{s.upper()}__{f.upper()}") for s, f in section_fields()]
        assert [(name, env) for name, env, _, _ in rows] == expected
        assert len({name for name, _, _, _ in rows}) == len(rows)

    def test_every_row_described(self) -> None:
        """No row has an empty description."""
        undescribed = [name for name, _, _, description in setting_rows() if not description.strip()]
        assert undescribed == []

    def test_known_rows(self) -> None:
        """Rows carry the default as text, empty for None."""
        rows = {row[0]: row for row in setting_rows()}
        assert rows["kafka.topic"] == (
            "kafka.topic",
            "LOOKOUT_KAFKA__TOPIC",
            "llm-logs",
            "Topic of prompt/response records (schema v1).",
        )
        assert rows["kafka.dlq_topic"][1:3] == ("LOOKOUT_KAFKA__DLQ_TOPIC", "")
        assert rows["clickhouse.dsn"][1:3] == ("LOOKOUT_CLICKHOUSE__DSN", "chdb://./lookout-data")
        assert rows["batch.max_records"][1:3] == ("LOOKOUT_BATCH__MAX_RECORDS", "256")


class TestWithOverrides:
    """with_overrides builds a new, validated Settings and leaves the original alone."""

    def test_copy_with_changes(self) -> None:
        """Overridden fields change, the rest of the section and other sections are kept."""
        base = load_settings(kafka={"group_id": "g"})
        copy = base.with_overrides(kafka={"topic": "t2"}, batch={"max_records": 5})
        assert isinstance(copy, Settings)
        assert (copy.kafka.topic, copy.kafka.group_id, copy.batch.max_records) == ("t2", "g", 5)
        assert copy.batch.max_wait_ms == base.batch.max_wait_ms
        assert (base.kafka.topic, base.batch.max_records) == ("llm-logs", 256)

    def test_invalid_override_rejected(self) -> None:
        """An invalid override raises a validation error instead of returning a copy."""
        with pytest.raises(ValidationError, match=r"batch\.max_records"):
            load_settings().with_overrides(batch={"max_records": 0})
        with pytest.raises(ValidationError, match="heartbeat_interval_ms must be below session_timeout_ms"):
            load_settings().with_overrides(kafka={"heartbeat_interval_ms": 20_000})

    def test_environment_not_reread(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The copy starts from the original's values, not from the environment as it is now."""
        monkeypatch.setenv("LOOKOUT_KAFKA__TOPIC", "first")
        base = load_settings()
        monkeypatch.setenv("LOOKOUT_KAFKA__TOPIC", "second")
        assert base.with_overrides(batch={"max_records": 7}).kafka.topic == "first"

    def test_secret_kept(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The SASL password survives the copy unmasked."""
        monkeypatch.setenv("LOOKOUT_KAFKA__SASL_PASSWORD", "hunter2")
        copy = load_settings().with_overrides(kafka={"topic": "t"})
        assert copy.kafka.sasl_password is not None
        assert copy.kafka.sasl_password.get_secret_value() == "hunter2"
