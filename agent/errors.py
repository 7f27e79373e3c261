"""Errors for expected conditions: each carries one line that says what to do; the CLI prints it alone."""


class LookoutError(Exception):
    """An expected failure with a one-line, actionable message."""


class ConfigError(LookoutError):
    """A setting or config file is invalid."""


class StorageError(LookoutError):
    """ClickHouse cannot be reached, opened or written."""


class StorageBusyError(StorageError):
    """The embedded ClickHouse data directory is held by another process."""


class BrokerError(LookoutError):
    """The bundled broker cannot be found or started, or Kafka cannot be reached."""
