"""The backends of the stores, each named once with the store protocols it implements.

Every module in this folder tests one protocol and runs on each backend that implements it:
a new backend is one more line in BACKENDS (and its settings below, if it needs new ones).
The names of those that need the shared servers say so ("postgres", "redis"): that is how
--embedded-only leaves them out.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.core.config import Settings
from app.services.bootstrap import prepare_from_settings
from app.storage.factory import build_storage
from app.storage.protocols import AttemptCounter, SessionStore
from app.storage.redis_attempts import RedisAttemptCounter
from app.storage.redis_sessions import RedisSessionStore
from app.storage.sql_attempts import SqlAttemptCounter
from app.storage.sql_sessions import SqlSessionStore
from app.storage.users import UserStore
from tests.conftest import delete_redis_test_keys, empty_postgres_tables, make_settings

USERS = "users"
SESSIONS = "sessions"
ATTEMPTS = "attempts"


@dataclass(frozen=True)
class Backend:
    database: str
    # Sessions and attempt counters in Redis rather than in the database.
    redis: bool
    stores: frozenset[str]


BACKENDS = {
    "sql-on-sqlite": Backend("sqlite", redis=False, stores=frozenset({USERS, SESSIONS, ATTEMPTS})),
    "sql-on-postgresql": Backend(
        "postgresql", redis=False, stores=frozenset({USERS, SESSIONS, ATTEMPTS})
    ),
    "redis": Backend("postgresql", redis=True, stores=frozenset({SESSIONS, ATTEMPTS})),
}


def implementing(store: str) -> list[str]:
    """The names of the backends that implement `store`."""
    return [name for name, backend in BACKENDS.items() if store in backend.stores]


def _settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for the backend named by the fixture's parameter, its stores emptied first."""
    backend = BACKENDS[request.param]
    if backend.database == "sqlite":
        settings = make_settings(f"sqlite:///{tmp_path}/auth.db")
    else:
        url: str = request.getfixturevalue("postgres_database")
        asyncio.run(empty_postgres_tables())
        delete_redis_test_keys()
        settings = make_settings(url)
    # make_settings gives a PostgreSQL database the test Redis, as in production.
    settings = settings if backend.redis else settings.model_copy(update={"REDIS_URL": None})
    assert bool(settings.REDIS_URL) is backend.redis
    return settings


@pytest.fixture(params=implementing(USERS))
def user_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return _settings(request, tmp_path)


@pytest.fixture(params=implementing(SESSIONS))
def session_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return _settings(request, tmp_path)


@pytest.fixture(params=implementing(ATTEMPTS))
def attempt_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return _settings(request, tmp_path)


@pytest.fixture
async def users(user_settings: Settings) -> AsyncIterator[UserStore]:
    await prepare_from_settings(user_settings)
    storage = build_storage(user_settings)
    yield storage.users
    await storage.close()


@pytest.fixture
async def sessions(session_settings: Settings) -> AsyncIterator[SessionStore]:
    await prepare_from_settings(session_settings)
    storage = build_storage(session_settings)
    expected = RedisSessionStore if session_settings.REDIS_URL else SqlSessionStore
    assert isinstance(storage.sessions, expected)
    yield storage.sessions
    await storage.close()


@pytest.fixture
async def counters(attempt_settings: Settings) -> AsyncIterator[list[AttemptCounter]]:
    """Two workers' attempt counters on the same stores."""
    await prepare_from_settings(attempt_settings)
    built = [build_storage(attempt_settings) for _ in range(2)]
    expected = RedisAttemptCounter if attempt_settings.REDIS_URL else SqlAttemptCounter
    assert all(isinstance(storage.attempts, expected) for storage in built)
    yield [storage.attempts for storage in built]
    for storage in built:
        await storage.close()
