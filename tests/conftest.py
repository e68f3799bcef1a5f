"""Fixtures: real apps on real stores, driven over ASGI by httpx.

Every test that uses a database runs twice: on the embedded backends (a SQLite file, in-process
rate limits) and on the production ones (PostgreSQL and Redis on 127.0.0.1), each wiped first.
"""

import asyncio
import atexit
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from redis import Redis
from sqlalchemy.engine import make_url

from app.api.deps import ServiceApp
from app.core.config import Settings
from app.main import create_app
from tests.clock import OffsetClock
from tests.factories import ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_USERNAME, Api
from tests.mail_server import MailServer, mail_server


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--embedded-only",
        action="store_true",
        help="Run only what needs no PostgreSQL or Redis: the embedded backends' half.",
    )


# Tests that use one of these fixtures, or live in one of these folders, need the shared
# PostgreSQL or Redis (the fault tests start private servers from their programs too).
_SHARED_STORE_FIXTURES = frozenset({"postgres_database", "shared_redis"})
_SHARED_STORE_FOLDERS = frozenset({"production", "faults"})


def _needs_shared_stores(item: pytest.Item) -> bool:
    fixtures = getattr(item, "fixturenames", ())
    callspec = getattr(item, "callspec", None)
    backends = [str(value) for value in callspec.params.values()] if callspec else []
    return (
        not _SHARED_STORE_FIXTURES.isdisjoint(fixtures)
        or any("postgres" in value or "redis" in value for value in backends)
        or not _SHARED_STORE_FOLDERS.isdisjoint(item.path.parts)
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--embedded-only"):
        return
    kept = [item for item in items if not _needs_shared_stores(item)]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept


POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# Per test run, so that concurrent runs on one machine never share state.
POSTGRES_TEST_DATABASE = f"auth_service_test_{os.getpid()}"
REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REDIS_TEST_PREFIX = f"authtest{os.getpid()}"
_TABLES = (
    "attempt_counters",
    "audit_events",
    "auth_sessions",
    "email_tokens",
    "mail_outbox",
    "users",
)


def postgres_url(database: str) -> str:
    return str(make_url(POSTGRES_ADMIN_URL).set(database=database).render_as_string(False))


# Mail without an SMTP server goes to files: the tests' go here, never into the checkout.
MAIL_FOLDER = tempfile.mkdtemp(prefix="auth-tests-mail-")
atexit.register(shutil.rmtree, MAIL_FOLDER, ignore_errors=True)


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Test settings: secure values, cheap (but real) argon2id costs, explicit stores.

    A PostgreSQL database comes with the test Redis, as in production.
    """
    values: dict[str, Any] = {
        "ENVIRONMENT": "test",
        "SECRET_KEY": "test-signing-key-" + "k" * 40,
        "DATABASE_URL": database_url,
        "ADMIN_EMAIL": ADMIN_EMAIL,
        "ADMIN_USERNAME": ADMIN_USERNAME,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "ARGON2_MEMORY_COST_KIB": 8192,
        "ARGON2_TIME_COST": 1,
        "BCRYPT_ROUNDS": 10,
        "BACKEND_CORS_ORIGINS": ["http://localhost:3000"],
        "SECURE_COOKIES": True,
        "RATE_LIMIT_LOGIN": "1000/minute",
        "RATE_LIMIT_REGISTER": "1000/minute",
        "RATE_LIMIT_REFRESH": "1000/minute",
        "RATE_LIMIT_API": "10000/minute",
        "LOGIN_LOCKOUT_THRESHOLD": 50,
        "MAIL_FOLDER": MAIL_FOLDER,
    }
    if database_url.startswith("postgresql"):
        values["REDIS_URL"] = REDIS_TEST_URL
        values["REDIS_KEY_PREFIX"] = REDIS_TEST_PREFIX
    values.update(overrides)
    return Settings(_env_file=None, **values)


async def _drop_postgres_database(*, recreate: bool) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{POSTGRES_TEST_DATABASE}" WITH (FORCE)')
        if recreate:
            await connection.execute(f'CREATE DATABASE "{POSTGRES_TEST_DATABASE}"')
    finally:
        await connection.close()


async def empty_postgres_tables() -> None:
    connection = await asyncpg.connect(postgres_url(POSTGRES_TEST_DATABASE))
    try:
        existing = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )
        tables = [name for name in _TABLES if name in {row[0] for row in existing}]
        if tables:
            await connection.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    finally:
        await connection.close()


def delete_redis_test_keys() -> None:
    redis = Redis.from_url(REDIS_TEST_URL)
    try:
        keys = list(redis.scan_iter(match=f"{REDIS_TEST_PREFIX}:*", count=1000))
        if keys:
            redis.delete(*keys)
    finally:
        redis.close()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run (the migrations create its schema)."""
    asyncio.run(_drop_postgres_database(recreate=True))
    yield postgres_url(POSTGRES_TEST_DATABASE)
    asyncio.run(_drop_postgres_database(recreate=False))
    delete_redis_test_keys()


@pytest.fixture
def shared_redis() -> str:
    """The shared Redis, for the tests of the Redis backend alone (its keys under the test
    prefix); asking for it is what tells --embedded-only to leave a test out."""
    return REDIS_TEST_URL


@pytest.fixture(params=["embedded", "postgres+redis"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "embedded":
        return f"sqlite:///{tmp_path}/auth.db"
    url: str = request.getfixturevalue("postgres_database")
    asyncio.run(empty_postgres_tables())
    delete_redis_test_keys()
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
def smtp() -> Iterator[MailServer]:
    """A real SMTP server (aiosmtpd) on a free loopback port, with an empty inbox."""
    with mail_server() as server:
        yield server


@pytest.fixture
def clock() -> OffsetClock:
    return OffsetClock()


@asynccontextmanager
async def serve(
    settings: Settings, clock: OffsetClock | None = None, client_ip: str = "203.0.113.7"
) -> AsyncIterator[tuple[ServiceApp, Api]]:
    """Start an app (lifespan included) and an httpx client talking to it over ASGI."""
    app = create_app(settings, clock=clock)
    transport = httpx.ASGITransport(app=app, client=(client_ip, 50000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="https://testserver") as client,
    ):
        yield app, Api(client)


@pytest.fixture
async def app_and_api(settings: Settings, clock: OffsetClock) -> AsyncIterator[tuple[FastAPI, Api]]:
    async with serve(settings, clock) as served:
        yield served


@pytest.fixture
def api(app_and_api: tuple[FastAPI, Api]) -> Api:
    return app_and_api[1]


@pytest.fixture
def app(app_and_api: tuple[FastAPI, Api]) -> FastAPI:
    return app_and_api[0]
