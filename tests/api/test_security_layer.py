"""Security headers, request ids, audit logs without secrets, body limits and login timing."""

import json
import statistics
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings, serve
from tests.factories import DEFAULT_PASSWORD, Api

ROUTES = [
    ("GET", "/"),
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/login-form"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/logout"),
    ("GET", "/api/v1/users/me"),
    ("PUT", "/api/v1/users/me"),
    ("GET", "/api/v1/users/"),
    ("PUT", "/api/v1/users/1"),
    ("GET", "/api/v1/sessions/"),
    ("DELETE", "/api/v1/sessions/abc"),
    ("GET", "/openapi.json"),
    ("GET", "/no-such-route"),
]


def _assert_hardened(response: httpx.Response) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-store"
    assert headers["x-request-id"]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_sends_security_headers(api: Api, method: str, path: str) -> None:
    response = await api.client.request(method, path)
    _assert_hardened(response)
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert "strict-transport-security" not in response.headers


async def test_token_responses_are_never_cached(api: Api) -> None:
    user = await api.new_user()
    response = await api.login(user.email, DEFAULT_PASSWORD)
    assert response.headers["cache-control"] == "no-store"
    assert (await api.refresh(user.tokens.refresh_token)).headers["cache-control"] == "no-store"


async def test_docs_get_a_csp_that_lets_swagger_load(api: Api) -> None:
    response = await api.client.get("/docs")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "https://cdn.jsdelivr.net" in csp
    assert "frame-ancestors 'none'" in csp


async def test_hsts_when_https_only(database_url: str) -> None:
    async with serve(make_settings(database_url, HTTPS_ONLY=True)) as (_, api):
        response = await api.client.get("/health")
        assert response.headers["strict-transport-security"].startswith("max-age=31536000")


async def test_request_id_is_echoed_or_generated(api: Api) -> None:
    echoed = await api.client.get("/health", headers={"X-Request-ID": "trace-abc.123"})
    assert echoed.headers["x-request-id"] == "trace-abc.123"
    generated = await api.client.get("/health")
    assert len(generated.headers["x-request-id"]) == 32
    hostile = await api.client.get("/health", headers={"X-Request-ID": "bad id\r\ninjected: 1"})
    assert hostile.headers["x-request-id"] != "bad id\r\ninjected: 1"
    assert "injected" not in hostile.headers


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
        "/api/v1/auth/logout",
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
    await api.client.get("/health?token=should-not-be-logged", headers={"X-Request-ID": "r-1"})
    text = _log_text(capsys)
    access = [event for event in _events(text) if event["event"] == "request"]
    assert access[-1]["path"] == "/health"
    assert access[-1]["status"] == 200
    assert access[-1]["request_id"] == "r-1"
    assert "should-not-be-logged" not in text


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/v1/auth/register", "application/json"),
        ("/api/v1/auth/login", "application/json"),
        ("/api/v1/auth/login-form", "application/x-www-form-urlencoded"),
        ("/api/v1/auth/refresh", "application/json"),
    ],
)
async def test_huge_bodies_are_refused_with_413(api: Api, path: str, content_type: str) -> None:
    body = b"{" + b'"a": "' + b"x" * 200_000 + b'"}'
    response = await api.client.post(path, content=body, headers={"Content-Type": content_type})
    assert response.status_code == 413
    assert response.json()["code"] == "content_too_large"


async def test_huge_chunked_bodies_are_refused_with_413(api: Api) -> None:
    async def chunks() -> httpx.AsyncByteStream:  # type: ignore[misc]
        for _ in range(100):
            yield b"x" * 10_000

    response = await api.client.post(
        "/api/v1/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "content_too_large"


async def test_unknown_email_and_wrong_password_take_the_same_time(database_url: str) -> None:
    settings = make_settings(database_url, ARGON2_MEMORY_COST_KIB=19456, ARGON2_TIME_COST=2)
    async with serve(settings) as (_, api):
        user = await api.new_user()

        async def timed(email: str) -> float:
            started = time.perf_counter()
            response = await api.login(email, "definitely not it")
            assert response.status_code == 401
            return time.perf_counter() - started

        for _ in range(3):
            await timed(user.email)
            await timed("warmup@example.com")
        known, unknown = [], []
        for index in range(25):
            known.append(await timed(user.email))
            unknown.append(await timed(f"ghost{index}@example.com"))
        ratio = statistics.median(known) / statistics.median(unknown)
        assert 0.8 < ratio < 1.25, (statistics.median(known), statistics.median(unknown))


async def test_an_unexpected_error_is_a_plain_500_with_the_security_headers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    async with serve(make_settings(f"sqlite:///{tmp_path}/auth.db")) as (app, _):

        async def broken() -> None:
            raise RuntimeError("a bug, with internals that must not reach the client")

        app.add_api_route("/api/v1/broken", broken)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
            response = await client.get("/api/v1/broken")
    assert response.status_code == 500
    assert response.json() == {"code": "internal_error", "detail": "An unexpected error occurred."}
    assert "internals" not in response.text
    _assert_hardened(response)
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
