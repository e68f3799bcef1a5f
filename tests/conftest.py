"""Fixtures: real apps on real SQLite files, driven over ASGI by httpx."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.core.clock import OffsetClock
from app.core.config import Settings
from app.main import create_app
from tests.factories import ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_USERNAME, Api


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Test settings: secure values, cheap (but real) argon2id costs, explicit database."""
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
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/auth.db"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
def clock() -> OffsetClock:
    return OffsetClock()


@asynccontextmanager
async def serve(
    settings: Settings, clock: OffsetClock | None = None, client_ip: str = "203.0.113.7"
) -> AsyncIterator[tuple[FastAPI, Api]]:
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
