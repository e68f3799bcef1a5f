"""Structured logs: one JSON object (or one plain line) per event on stderr, from structlog and
the standard library alike, with the request id and client of the request being served."""

import json
import logging
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
import structlog
from structlog.typing import Processor

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


def _add_utc_now(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # The renderer writes the datetime as RFC 3339 in C; formatting it here as structlog's
    # TimeStamper does cost about as much as rendering the rest of the line.
    event_dict["timestamp"] = datetime.now(UTC)
    return event_dict


_ORJSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def _render_json(event_dict: MutableMapping[str, Any], **_: Any) -> str:
    """One JSON line. orjson renders an access line in a third of the time of the standard
    library; what it refuses (integers past 64 bits) falls back to the standard library."""
    try:
        return orjson.dumps(event_dict, default=str, option=_ORJSON_OPTIONS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(event_dict, default=_plain)


def _plain(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


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


_ONE_LINE = str.maketrans({"\n": "\\n", "\r": "\\r"})


def _text_renderer() -> Processor:
    console = structlog.dev.ConsoleRenderer(colors=False)

    def render(logger: Any, name: str, event_dict: MutableMapping[str, Any]) -> str:
        # A traceback or a multi-line message stays on its line, so that each line is one event.
        return console(logger, name, event_dict).translate(_ONE_LINE)

    return render


# uvicorn's own loggers, which its default configuration gives handlers of their own.
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def configure_logging(level: str, log_format: Literal["json", "text"]) -> None:
    """Configure structlog's fast path for the service's own lines (no standard-library logging
    on the request path), and the standard library's logging (uvicorn, asyncio, Python warnings,
    every library) to render its records through the same processors, on the same stream."""
    timestamp, renderer = (
        (_add_utc_now, structlog.processors.JSONRenderer(serializer=_render_json))
        if log_format == "json"
        else (structlog.processors.TimeStamper(fmt="iso", utc=True), _text_renderer())
    )
    shared: list[Processor] = [_add_request_context, structlog.processors.add_log_level, timestamp]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.ERROR)),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=True,
    )
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for previous in [each for each in root.handlers if isinstance(each, _StderrHandler)]:
        root.removeHandler(previous)
    root.addHandler(handler)
    # Other libraries' informational chatter stays out, as it did without a root handler.
    numeric_level = logging.getLevelNamesMapping()[level]
    root.setLevel(max(numeric_level, logging.WARNING))
    for name in ("app", "uvicorn"):
        logging.getLogger(name).setLevel(numeric_level)
    for name in _UVICORN_LOGGERS:
        # When uvicorn configured its loggers (run by hand), they write plain lines of their own.
        uvicorn_logger = logging.getLogger(name)
        if uvicorn_logger.handlers:
            for own in list(uvicorn_logger.handlers):
                uvicorn_logger.removeHandler(own)
            uvicorn_logger.propagate = True
    # Re-installed every time: a warnings.catch_warnings() block puts back the hook it found.
    logging.captureWarnings(False)
    logging.captureWarnings(True)


def get_logger(name: str) -> Any:
    """A structlog logger whose lines carry `logger=name`."""
    return structlog.get_logger().bind(logger=name)
