"""Structured logs: one JSON object per line on stderr, with the request id and client bound."""

import logging
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any, Literal

import structlog

# The request being served: one context variable, set once per request. structlog's own
# contextvars support scans every context variable on each log call, which cost more than
# the rest of the access log line together.
REQUEST_CONTEXT: ContextVar[dict[str, str | None] | None] = ContextVar(
    "request_context", default=None
)


def _add_request_context(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    context = REQUEST_CONTEXT.get()
    if context:
        for key, value in context.items():
            event_dict.setdefault(key, value)
    return event_dict


_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING}


class StderrLogger:
    """Writes each rendered line to the current sys.stderr (looked up per call, so that test
    capture and redirection keep working)."""

    def msg(self, message: str) -> None:
        sys.stderr.write(message + "\n")

    info = debug = warning = error = critical = exception = msg


def _stderr_logger(*_: Any) -> StderrLogger:
    return StderrLogger()


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A standard-library handler bound to the current sys.stderr, like StderrLogger."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def configure_logging(level: str, log_format: Literal["json", "console"]) -> None:
    """Configure structlog's fast path (no standard-library logging on the request path)."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            _add_request_context,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.ERROR)),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=True,
    )
    stdlib_logger = logging.getLogger("app")
    stdlib_logger.setLevel(level)
    if not stdlib_logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        stdlib_logger.addHandler(handler)


def get_logger(name: str) -> Any:
    """A structlog logger whose lines carry `logger=name`."""
    return structlog.get_logger().bind(logger=name)
