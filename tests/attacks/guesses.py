"""Sign-in guesses from one address or many, the settings that count them exactly, and what a
refusal looks like."""

from typing import Any

import httpx

from app.core.config import Settings
from tests.conftest import make_settings
from tests.factories import Api
from tests.routes import LOGIN


def assert_429(response: httpx.Response, code: str = "rate_limited") -> None:
    """Refused by a budget, or by the lockout with its own code, with the RateLimit headers."""
    assert response.status_code == 429, response.text
    assert response.json()["code"] == code
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["ratelimit-policy"].count(";") == 2
    assert response.headers["ratelimit"].endswith(f"t={response.headers['retry-after']}")


async def logins(api: Api, count: int, **headers: str) -> list[httpx.Response]:
    """`count` failed sign-ins, each with another unknown email."""
    return [
        await api.client.post(
            LOGIN, json={"email": f"nobody{i}@example.com", "password": "x" * 10}, headers=headers
        )
        for i in range(count)
    ]


def exact_budgets(database_url: str, **overrides: Any) -> Settings:
    """Settings whose budgets count exactly, as the tests assert them.

    The default sliding-window counter floors the previous window's weighted count, so a test
    that straddles a minute boundary would be let one request further.
    """
    return make_settings(database_url, RATE_LIMIT_STRATEGY="moving-window", **overrides)


def behind_proxy(database_url: str, **overrides: Any) -> Settings:
    """Settings trusting the test transport's address as a proxy, so that X-Forwarded-For
    chooses the client address of each request."""
    return make_settings(database_url, TRUSTED_PROXIES=["203.0.113.0/24"], **overrides)


async def login_from(api: Api, ip: str, email: str, password: str) -> httpx.Response:
    """A sign-in from `ip`, as the trusted proxy reports it."""
    return await api.client.post(
        LOGIN, json={"email": email, "password": password}, headers={"X-Forwarded-For": ip}
    )
