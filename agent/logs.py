"""structlog setup: key=value lines for people, JSON lines for shippers, always on stderr."""

from __future__ import annotations

import logging
import sys

import structlog

from agent.config import LogSettings

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


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
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(
        stream=sys.stderr, level=max(level, logging.WARNING), format="%(levelname)s %(name)s %(message)s"
    )
    # kafka-python logs every reconnect attempt at WARNING/ERROR; keep the agent's own lines readable.
    logging.getLogger("kafka").setLevel(max(level, logging.ERROR))
