"""Two service instances on different ports sharing one PostgreSQL and one Redis."""

import asyncio
import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REDIS_TEST_PREFIX, REDIS_TEST_URL
from tests.factories import DEFAULT_PASSWORD
from tests.routes import LOGIN, ME, REFRESH, REGISTER, SESSIONS
from tests.servers import running_server

_emails = itertools.count()


@pytest.fixture
def instances(postgres_database: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    shared = {
        "DATABASE_URL": postgres_database,
        "REDIS_URL": REDIS_TEST_URL,
        "REDIS_KEY_PREFIX": f"{REDIS_TEST_PREFIX}:pair{time.monotonic_ns()}",
        "RATE_LIMIT_LOGIN": "4/minute",
        "LOGIN_LOCKOUT_THRESHOLD": "0",
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        running_server(tmp_path / "a", shared) as (url_a, _),
        running_server(tmp_path / "b", shared) as (url_b, _),
    ):
        yield url_a, url_b


def _new_user(base_url: str) -> tuple[str, dict[str, str]]:
    email = f"pair{next(_emails)}.{time.monotonic_ns()}@example.com"
    registered = httpx.post(
        f"{base_url}{REGISTER}",
        json={"email": email, "username": f"p{time.monotonic_ns()}", "password": DEFAULT_PASSWORD},
    )
    assert registered.status_code == 201, registered.text
    login = httpx.post(f"{base_url}{LOGIN}", json={"email": email, "password": DEFAULT_PASSWORD})
    assert login.status_code == 200, login.text
    return email, login.json()


def test_revocation_on_b_is_enforced_by_a_within_a_second(instances: tuple[str, str]) -> None:
    url_a, url_b = instances
    _, tokens = _new_user(url_a)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert httpx.get(f"{url_a}{ME}", headers=headers).status_code == 200
    sessions = httpx.get(f"{url_b}{SESSIONS}", headers=headers).json()
    revoked_at = time.monotonic()
    deleted = httpx.delete(f"{url_b}{SESSIONS}{sessions[0]['id']}", headers=headers)
    assert deleted.status_code == 204
    while httpx.get(f"{url_a}{ME}", headers=headers).status_code == 200:
        assert time.monotonic() - revoked_at < 1.2, "A still accepts a revoked session"
        time.sleep(0.02)
    assert time.monotonic() - revoked_at < 1.2


def test_rate_limit_is_shared_by_both_instances(instances: tuple[str, str]) -> None:
    statuses = []
    for url in (*instances, *instances, instances[0]):
        response = httpx.post(
            f"{url}{LOGIN}",
            json={"email": "nobody@example.com", "password": "wrong password"},
        )
        statuses.append(response.status_code)
    assert statuses == [401, 401, 401, 401, 429]


def test_a_refresh_race_between_instances_has_one_winner(instances: tuple[str, str]) -> None:
    url_a, url_b = instances
    _, tokens = _new_user(url_a)

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient() as client:
            return list(
                await asyncio.gather(
                    *(
                        client.post(
                            f"{url}{REFRESH}",
                            json={"refresh_token": tokens["refresh_token"]},
                        )
                        for url in (url_a, url_b, url_a, url_b)
                    )
                )
            )

    responses = asyncio.run(race())
    assert {response.status_code for response in responses} == {200}
    children = {response.json()["refresh_token"] for response in responses}
    assert len(children) == 1
    (child,) = children
    assert httpx.post(f"{url_b}{REFRESH}", json={"refresh_token": child}).status_code == 200
