"""Store outages: fail closed with 503, report them in /health, recover without a restart."""

import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from redis import Redis as SyncRedis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.engine import make_url

from app.core.clock import OffsetClock
from app.core.config import Settings
from app.db.engine import IDLE_PING_SECONDS
from tests.conftest import REDIS_TEST_URL, make_settings, serve
from tests.factories import DEFAULT_PASSWORD, Api
from tests.servers import free_port
from tests.tcp_proxy import TcpProxy


@pytest.fixture
async def proxies(postgres_database: str) -> AsyncIterator[tuple[TcpProxy, TcpProxy]]:
    database = make_url(postgres_database)
    redis = make_url(REDIS_TEST_URL)
    pg_proxy = TcpProxy(database.host or "127.0.0.1", database.port or 5432)
    redis_proxy = TcpProxy(redis.host or "127.0.0.1", redis.port or 6379)
    await pg_proxy.start()
    await redis_proxy.start()
    yield pg_proxy, redis_proxy
    await pg_proxy.cut()
    await redis_proxy.cut()


def _settings_through(postgres_database: str, pg: TcpProxy, redis: TcpProxy) -> Settings:
    database = make_url(postgres_database).set(port=pg.port)
    redis_url = make_url(REDIS_TEST_URL).set(port=redis.port)
    return make_settings(
        database.render_as_string(hide_password=False),
        REDIS_URL=redis_url.render_as_string(hide_password=False),
    )


async def _assert_unavailable(api: Api, tokens_headers: dict[str, str], store: str) -> None:
    me = await api.client.get("/api/v1/users/me", headers=tokens_headers)
    assert me.status_code == 503, me.text
    assert me.json()["code"] == "store_unavailable"
    login = await api.login("someone@example.com", DEFAULT_PASSWORD)
    assert login.status_code == 503
    health = await api.client.get("/health")
    assert health.status_code == 503
    assert health.json()[store] == "down"


@pytest.mark.parametrize(("store", "proxy_index"), [("session_store", 1), ("database", 0)])
async def test_store_outage_fails_closed_and_recovers(
    postgres_database: str, proxies: tuple[TcpProxy, TcpProxy], store: str, proxy_index: int
) -> None:
    pg, redis = proxies
    outage = proxies[proxy_index]
    clock = OffsetClock()
    async with serve(_settings_through(postgres_database, pg, redis), clock) as (_, api):
        user = await api.new_user()
        await outage.cut()
        clock.advance(1.0)
        await _assert_unavailable(api, user.headers, store)
        await outage.start()
        assert (await api.client.get("/health")).status_code == 200
        assert (await api.me(user.tokens)).status_code == 200
        assert (await api.login(user.email, DEFAULT_PASSWORD)).status_code == 200


async def test_a_database_restart_during_a_quiet_spell_fails_no_request(
    postgres_database: str, proxies: tuple[TcpProxy, TcpProxy]
) -> None:
    pg, redis = proxies
    async with serve(_settings_through(postgres_database, pg, redis)) as (_, api):
        user = await api.new_user()
        assert (await api.login(user.email, DEFAULT_PASSWORD)).status_code == 200
        # Every pooled connection dies and nobody asks anything until the server is back.
        await pg.cut()
        await pg.start()
        await anyio.sleep(IDLE_PING_SECONDS * 1.5)
        for _ in range(3):
            assert (await api.login(user.email, DEFAULT_PASSWORD)).status_code == 200
        assert (await api.client.get("/health")).status_code == 200


def _start_persistent_redis(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(workdir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            SyncRedis(host="127.0.0.1", port=port).ping()
            return process
        except RedisConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


async def test_sessions_survive_a_restart_of_redis_with_persistence(
    postgres_database: str, tmp_path: Path
) -> None:
    port = free_port()
    redis = _start_persistent_redis(tmp_path, port)
    settings = make_settings(
        postgres_database,
        REDIS_URL=f"redis://127.0.0.1:{port}/0",
        REDIS_KEY_PREFIX=f"persist{time.monotonic_ns()}",
    )
    clock = OffsetClock()
    try:
        async with serve(settings, clock) as (_, api):
            user = await api.new_user(email=f"persist{time.monotonic_ns()}@example.com")
            SyncRedis(host="127.0.0.1", port=port).shutdown()
            redis.wait(timeout=10)
            redis = _start_persistent_redis(tmp_path, port)
            clock.advance(1.0)
            assert (await api.me(user.tokens)).status_code == 200
            assert (await api.refresh(user.tokens.refresh_token)).status_code == 200
            sessions = await api.client.get("/api/v1/sessions/", headers=user.headers)
            assert len(sessions.json()) == 1
    finally:
        redis.terminate()
        redis.wait(timeout=10)
