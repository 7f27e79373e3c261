"""Kafka SASL/SSL and ClickHouse credentials/TLS settings reach the clients; secrets stay masked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from agent.config import ClickHouseSettings, KafkaSettings, Settings
from agent.errors import StorageError
from agent.source import kafka_client_config
from agent.storage import client as storage_client
from agent.storage.client import mask_dsn, reason, server_options

SECURE_KAFKA = KafkaSettings(
    bootstrap_servers="k1:9093, k2:9093",
    security_protocol="SASL_SSL",
    sasl_mechanism="SCRAM-SHA-512",
    sasl_username="lookout",
    sasl_password=SecretStr("sasl-pw"),
    ssl_cafile=Path("/etc/kafka/ca.pem"),
    ssl_certfile=Path("/etc/kafka/client.pem"),
    ssl_keyfile=Path("/etc/kafka/client.key"),
    ssl_password=SecretStr("key-pw"),
)


class TestKafkaClientConfig:
    """What KafkaConsumer, KafkaProducer and the admin client are built with."""

    def test_sasl_ssl_settings_are_passed_through(self) -> None:
        """Protocol, mechanism, user, password and the three PEM paths arrive as kafka-python options."""
        assert kafka_client_config(SECURE_KAFKA) == {
            "bootstrap_servers": ["k1:9093", "k2:9093"],
            "client_id": "lookout",
            "security_protocol": "SASL_SSL",
            "bootstrap_timeout_ms": 10_000,
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": "lookout",
            "sasl_plain_password": "sasl-pw",
            "ssl_cafile": "/etc/kafka/ca.pem",
            "ssl_certfile": "/etc/kafka/client.pem",
            "ssl_keyfile": "/etc/kafka/client.key",
            "ssl_password": "key-pw",
        }

    def test_plaintext_default_sets_no_security_options(self) -> None:
        """The default (a local broker) passes no SASL or SSL option."""
        config = kafka_client_config(KafkaSettings())
        assert config["security_protocol"] == "PLAINTEXT"
        assert not [k for k in config if k.startswith(("sasl_", "ssl_"))]

    @pytest.mark.parametrize("client", ["KafkaConsumer", "KafkaProducer", "KafkaAdminClient"])
    def test_every_option_is_one_kafka_python_knows(self, client: str) -> None:
        """Each key is in the client's DEFAULT_CONFIG, so none is silently dropped or rejected."""
        import kafka

        known = getattr(kafka, client).DEFAULT_CONFIG
        assert set(kafka_client_config(SECURE_KAFKA)) <= set(known)


class TestClickHouseServerOptions:
    """Credentials and TLS for ``http(s)://`` DSNs."""

    def test_credentials_and_tls_are_passed_through(self) -> None:
        """User, password (unmasked only here), verify and the CA bundle become clickhouse-connect options."""
        settings = ClickHouseSettings(
            dsn="https://ch:8443", username="writer", password=SecretStr("ch-pw"), verify=False, ca_cert=Path("/ca.pem")
        )
        assert server_options(settings) == {
            "username": "writer",
            "password": "ch-pw",
            "verify": False,
            "ca_cert": "/ca.pem",
        }

    def test_connect_hands_them_to_clickhouse_connect(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A mock of ``clickhouse_connect.get_client`` (no ClickHouse server runs here) records the call."""
        import clickhouse_connect

        calls: list[dict[str, Any]] = []

        def get_client(**kwargs: Any) -> Any:
            calls.append(kwargs)
            raise ConnectionRefusedError("Connection refused")

        monkeypatch.setattr(clickhouse_connect, "get_client", get_client)
        settings = ClickHouseSettings(dsn="https://ch:8443", username="writer", password=SecretStr("ch-pw"))
        with pytest.raises(StorageError, match="ClickHouse unreachable at https://ch:8443 \\(connection refused\\)"):
            storage_client.connect(settings)
        assert calls == [
            {"dsn": "https://ch:8443", "settings": None, "username": "writer", "password": "ch-pw", "verify": True}
        ]


class TestSecretsMasked:
    """Secrets print as ``**********`` and DSN passwords as ``***``."""

    def test_settings_repr_and_dump_mask_every_secret(self) -> None:
        """repr, str and the JSON dump of the settings never contain a secret value."""
        settings = Settings(
            kafka=SECURE_KAFKA,
            clickhouse=ClickHouseSettings(password=SecretStr("ch-pw")),
        )
        for text in (repr(settings), str(settings), settings.model_dump_json()):
            for secret in ("sasl-pw", "key-pw", "ch-pw"):
                assert secret not in text

    def test_dsn_password_masked(self) -> None:
        """A password inside the DSN is replaced; a DSN without one is unchanged."""
        assert mask_dsn("http://u:p%40ss@ch:8123/db") == "http://u:***@ch:8123/db"
        assert mask_dsn("chdb://./lookout-data") == "chdb://./lookout-data"
        assert (
            mask_dsn("https://ch:8443/?user=u&password=s3cret&secure=1")
            == "https://ch:8443/?user=u&password=***&secure=1"
        )
        assert mask_dsn("http://a:b@ch/?Token=t&x") == "http://a:***@ch/?Token=***&x"


class TestErrorReason:
    """ClickHouse errors become one line saying what went wrong."""

    def test_nested_exception_gives_the_inner_message(self) -> None:
        """``Code: 164. DB::Exception: Code: 164. DB::Exception: X. (READONLY)`` reads as X, not ``Code: 164``."""
        exc = RuntimeError(
            "Code: 164. DB::Exception: Code: 164. DB::Exception: Cannot modify 'readonly' setting in readonly "
            "mode. (READONLY) (version 26.9.2.1). (READONLY)"
        )
        assert reason(exc) == "Cannot modify 'readonly' setting in readonly mode"

    def test_plain_exception_message(self) -> None:
        """A single DB::Exception keeps its first sentence."""
        exc = RuntimeError("Code: 60. DB::Exception: Unknown table expression identifier 'x'. (UNKNOWN_TABLE)")
        assert reason(exc) == "Unknown table expression identifier 'x'"
