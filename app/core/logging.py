"""Structured logs: one JSON object per line, with the request id and client address bound."""

import logging
import sys
from typing import Literal

import structlog


def configure_logging(level: str, log_format: Literal["json", "console"]) -> None:
    """Route structlog through the standard library so servers and tests capture it alike."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    app_logger = logging.getLogger("app")
    app_logger.setLevel(level)
    if not any(getattr(handler, "_auth_service", False) for handler in app_logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._auth_service = True  # type: ignore[attr-defined]
        app_logger.addHandler(handler)
        app_logger.propagate = False


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger writing through the standard-library logger `name`."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
