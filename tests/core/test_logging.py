"""The JSON log renderer: one parseable line per event, whatever the values."""

import json
from datetime import UTC, datetime

import pytest

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
