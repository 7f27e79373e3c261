"""kafka-python's optional parts that lookout depends on: the C CRC-32C and the compression codecs."""

from __future__ import annotations

import sys

import pytest

from agent.source import missing_client_speedups


def test_the_installed_dependencies_leave_nothing_missing() -> None:
    """The install (kafka-python[crc32c,lz4,snappy,zstd]) gives kafka-python every codec and the C CRC."""
    assert missing_client_speedups() == []


def test_a_dropped_crc32c_or_codec_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the crc32c module or a codec library, the check names them (the agent then logs a warning)."""
    from kafka import codec

    monkeypatch.setitem(sys.modules, "crc32c", None)  # import crc32c raises ImportError
    monkeypatch.setattr(codec, "snappy", None)
    assert missing_client_speedups() == ["snappy", "crc32c"]


def test_the_c_crc_is_the_one_kafka_python_uses() -> None:
    """kafka-python picked the C CRC-32C at import (pure Python checks about 5 MB/s: a 5,000 records/s ceiling)."""
    from kafka.record import util

    assert util.calc_crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert util.calc_crc32c.__defaults__ is not None
    assert util.calc_crc32c.__defaults__[0].__module__ != "kafka.record._crc32c"
