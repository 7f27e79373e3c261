"""structlog setup: key=value lines for people, JSON lines for shippers, always on stderr."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import structlog

from agent.config import LogSettings, Settings, load_settings

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _stderr_logger(*_: object) -> structlog.PrintLogger:
    """A print logger on the current ``sys.stderr`` (tests and embedders may swap it after configure)."""
    return structlog.PrintLogger(sys.stderr)


def configure(settings: LogSettings) -> None:
    """Route structlog and stdlib logging (kafka-python) to stderr at the configured level."""
    level = _LEVELS[settings.level]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if settings.format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,  # sys.stderr as it is at each call, not at configure time
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(
        stream=sys.stderr, level=max(level, logging.WARNING), format="%(levelname)s %(name)s %(message)s"
    )
    # kafka-python, urllib3 and clickhouse-connect log every failed attempt; lookout reports the outcome in
    # one line of its own, so their lines only show with LOOKOUT_LOG__LEVEL=debug.
    quiet = logging.DEBUG if level == logging.DEBUG else logging.CRITICAL
    for name in ("kafka", "urllib3", "urllib3.connectionpool", "clickhouse_connect"):
        logging.getLogger(name).setLevel(quiet)


def configured(config_file: Path | None = None) -> Settings:
    """The settings (``config_file``, then ``LOOKOUT_*``), with logging configured from them: every command's start."""
    settings = load_settings(config_file)
    configure(settings.log)
    return settings
