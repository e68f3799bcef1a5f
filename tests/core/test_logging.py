"""The log format: one parseable line per event, whatever the values and whoever logs it."""

import copy
import json
import logging
import logging.config
import warnings
from datetime import UTC, datetime

import pytest
from uvicorn.config import LOGGING_CONFIG

from app.core.logging import REQUEST_CONTEXT, configure_logging, get_logger


@pytest.fixture(autouse=True)
def json_logs() -> None:
    configure_logging("INFO", "json")


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_a_line_carries_an_rfc3339_utc_timestamp_and_the_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = REQUEST_CONTEXT.set({"request_id": "r-7", "client_ip": "198.51.100.4"})
    try:
        before = datetime.now(UTC)
        get_logger("app.test").info("something", status=200)
    finally:
        REQUEST_CONTEXT.reset(token)
    (line,) = _lines(capsys)
    stamp = str(line["timestamp"])
    assert stamp.endswith("Z")
    assert datetime.fromisoformat(stamp) >= before.replace(microsecond=0)
    assert line["request_id"] == "r-7"
    assert line["client_ip"] == "198.51.100.4"
    assert (line["event"], line["level"], line["logger"], line["status"]) == (
        "something",
        "info",
        "app.test",
        200,
    )


def test_values_json_cannot_hold_still_give_one_valid_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logger = get_logger("app.test")
    logger.info("huge", count=2**70)
    logger.info("odd keys", mapping={1: "one"}, thing=object())
    huge, odd = _lines(capsys)
    assert huge["count"] == 2**70
    assert str(huge["timestamp"]).endswith("Z")
    assert odd["mapping"] == {"1": "one"}
    assert str(odd["thing"]).startswith("<object object")


def test_below_the_level_nothing_is_written(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("WARNING", "json")
    get_logger("app.test").info("quiet")
    assert capsys.readouterr().err == ""


def test_a_standard_library_error_is_one_object_with_its_traceback_and_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = REQUEST_CONTEXT.set({"request_id": "r-9", "client_ip": "198.51.100.4"})
    try:
        try:
            raise RuntimeError("a bug\nover two lines")
        except RuntimeError:
            logging.getLogger("app.errors").exception("unhandled error")
    finally:
        REQUEST_CONTEXT.reset(token)
    (line,) = _lines(capsys)
    assert (line["event"], line["level"], line["logger"]) == (
        "unhandled error",
        "error",
        "app.errors",
    )
    assert (line["request_id"], line["client_ip"]) == ("r-9", "198.51.100.4")
    assert str(line["timestamp"]).endswith("Z")
    exception = str(line["exception"])
    assert exception.startswith("Traceback (most recent call last):")
    assert exception.endswith("RuntimeError: a bug\nover two lines")


def test_uvicorn_asyncio_and_warnings_log_through_the_same_format(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # uvicorn started by hand gives its loggers plain-text handlers of their own.
    logging.config.dictConfig(copy.deepcopy(LOGGING_CONFIG))
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        configure_logging("INFO", "json")
        logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
        logging.getLogger("uvicorn.access").info("an access line")
        logging.getLogger("asyncio").error("Task exception was never retrieved")
        logging.getLogger("some.library").info("informational chatter is left out")
        warnings.warn("this call is going away", DeprecationWarning, stacklevel=1)
    lines = _lines(capsys)
    assert [(line["logger"], line["level"]) for line in lines] == [
        ("uvicorn.error", "info"),
        ("uvicorn.access", "info"),
        ("asyncio", "error"),
        ("py.warnings", "warning"),
    ]
    assert lines[0]["event"] == "Started server process [42]"
    assert "DeprecationWarning: this call is going away" in str(lines[3]["event"])
    assert "request_id" not in lines[0]


def test_text_mode_writes_one_line_per_event(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "text")
    token = REQUEST_CONTEXT.set({"request_id": "r-5", "client_ip": None})
    try:
        try:
            raise ValueError("first\nsecond")
        except ValueError:
            logging.getLogger("app.errors").exception("unhandled\nerror")
            get_logger("app.test").exception("handled", note="a\nb")
    finally:
        REQUEST_CONTEXT.reset(token)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert all("request_id=r-5" in line for line in lines)
    for line in lines:
        assert "Traceback (most recent call last):" in line
        assert "ValueError: first\\nsecond" in line
