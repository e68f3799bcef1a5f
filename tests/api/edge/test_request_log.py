"""What a request leaves in the logs: one access line, its security events (with the request's
id and client, never a secret), and an unhandled error once, with its traceback, answered 500."""

import json
from pathlib import Path

import httpx
import pytest

from app.api.v1.prefix import API_V1
from tests.api.edge.hardening import assert_hardened
from tests.conftest import make_settings, serve
from tests.factories import Api
from tests.routes import HEALTH, LOGOUT


def _log_text(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().err


def _events(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


async def test_security_events_are_logged_without_secrets(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    password = "an unmistakable pass phrase 4242"
    user = await api.new_user(password=password)
    await api.login(user.email, "a wrong pass phrase 9999")
    pair = (await api.refresh(user.tokens.refresh_token)).json()
    await api.client.post(
        LOGOUT,
        headers={"Authorization": f"Bearer {pair['access_token']}"},
        json={"refresh_token": pair["refresh_token"]},
    )
    text = _log_text(capsys)
    events = _events(text)
    names = {event["event"] for event in events}
    assert {"registered", "login_succeeded", "login_failed", "refreshed", "session_revoked"} <= (
        names
    )
    security = [event for event in events if event.get("category") == "security"]
    assert all(event["request_id"] and event["client_ip"] == "203.0.113.7" for event in security)
    failed = next(event for event in security if event["event"] == "login_failed")
    assert failed["user_id"] == user.id
    secrets = [
        password,
        "a wrong pass phrase 9999",
        user.tokens.access_token,
        user.tokens.refresh_token,
        pair["access_token"],
        pair["refresh_token"],
    ]
    for secret in secrets:
        assert secret not in text
    for token in (user.tokens.access_token, pair["refresh_token"]):
        assert token.split(".")[1] not in text


async def test_access_log_has_one_line_per_request(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    await api.client.get(f"{HEALTH}?token=should-not-be-logged", headers={"X-Request-ID": "r-1"})
    text = _log_text(capsys)
    access = [event for event in _events(text) if event["event"] == "request"]
    assert access[-1]["path"] == HEALTH
    assert access[-1]["status"] == 200
    assert access[-1]["request_id"] == "r-1"
    assert "should-not-be-logged" not in text


async def test_an_unexpected_error_is_a_plain_500_with_the_security_headers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    async with serve(make_settings(f"sqlite:///{tmp_path}/auth.db")) as (app, _):

        async def broken() -> None:
            raise RuntimeError("a bug, with internals that must not reach the client")

        app.add_api_route(f"{API_V1}/broken", broken)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
            response = await client.get(f"{API_V1}/broken")
    assert response.status_code == 500
    assert response.json() == {"code": "internal_error", "detail": "An unexpected error occurred."}
    assert "internals" not in response.text
    assert_hardened(response)
    # The operator still gets the error, with its traceback.
    [logged] = [record for record in caplog.records if record.message == "unhandled error"]
    assert logged.exc_info is not None
    assert "internals" in str(logged.exc_info[1])
    # Once, as one JSON line that carries the request's id.
    lines = capsys.readouterr().err.splitlines()
    [line] = [json.loads(text) for text in lines if "unhandled" in text]
    assert line["event"] == "unhandled error"
    assert line["request_id"] == response.headers["x-request-id"]
    assert "RuntimeError" in line["exception"]
