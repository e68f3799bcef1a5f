"""Store outages: fail closed with 503, report them in /health, recover without a restart."""

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.db.engine import IDLE_PING_SECONDS
from tests.clock import OffsetClock
from tests.conftest import REDIS_TEST_PREFIX, REDIS_TEST_URL, make_settings, serve
from tests.factories import DEFAULT_PASSWORD, Api, UserHandle
from tests.faults.stores import private_postgres, private_redis
from tests.faults.tcp_proxy import TcpProxy
from tests.routes import HEALTH, ME, SESSIONS


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
    me = await api.client.get(ME, headers=tokens_headers)
    assert me.status_code == 503, me.text
    assert me.json()["code"] == "store_unavailable"
    login = await api.login("someone@example.com", DEFAULT_PASSWORD)
    assert login.status_code == 503
    health = await api.client.get(HEALTH)
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
        assert (await api.client.get(HEALTH)).status_code == 200
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
        assert (await api.client.get(HEALTH)).status_code == 200


async def test_sessions_survive_a_restart_of_redis_with_persistence(
    postgres_database: str, tmp_path: Path
) -> None:
    clock = OffsetClock()
    with private_redis(tmp_path, persistent=True) as redis:
        settings = make_settings(postgres_database, REDIS_URL=redis.url)
        async with serve(settings, clock) as (_, api):
            user = await api.new_user(email=f"persist{time.monotonic_ns()}@example.com")
            redis.client().shutdown()
            redis.stop()
            redis.start()
            clock.advance(1.0)
            assert (await api.me(user.tokens)).status_code == 200
            assert (await api.refresh(user.tokens.refresh_token)).status_code == 200
            sessions = await api.client.get(SESSIONS, headers=user.headers)
            assert len(sessions.json()) == 1


def _assert_store_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "store_unavailable"
    assert int(response.headers["retry-after"]) >= 1


@pytest.mark.parametrize("proxy_index", [0, 1], ids=["database", "session_store"])
async def test_a_refresh_that_fails_in_an_outage_leaves_the_token_usable(
    postgres_database: str, proxies: tuple[TcpProxy, TcpProxy], proxy_index: int
) -> None:
    pg, redis = proxies
    outage = proxies[proxy_index]
    clock = OffsetClock()
    async with serve(_settings_through(postgres_database, pg, redis), clock) as (_, api):
        user = await api.new_user()
        await outage.cut()
        # Past the one-second caches, so that the refresh needs both stores.
        clock.advance(1.2)
        _assert_store_unavailable(await api.refresh(user.tokens.refresh_token))
        await outage.start()
        # Past the grace window too: the token must still be the session's current one.
        clock.advance(11)
        refreshed = await api.refresh(user.tokens.refresh_token)
        assert refreshed.status_code == 200, refreshed.text
        assert (await api.me(refreshed.json()["access_token"])).status_code == 200


async def test_a_database_that_is_starting_up_answers_503_not_500(tmp_path: Path) -> None:
    clock = OffsetClock()
    with private_postgres() as postgres:
        settings = make_settings(
            postgres.url, REDIS_KEY_PREFIX=f"{REDIS_TEST_PREFIX}:starting{time.monotonic_ns()}"
        )
        async with serve(settings, clock) as (_, api):
            user = await api.new_user()
            postgres.stop()
            # It refuses every connection with "the database system is not accepting
            # connections" (SQLSTATE 57P03), as a server does while it starts.
            postgres.start(standby=True)
            clock.advance(1.2)
            _assert_store_unavailable(await api.me(user.tokens))
            _assert_store_unavailable(await api.login(user.email, DEFAULT_PASSWORD))
            _assert_store_unavailable(await api.refresh(user.tokens.refresh_token))
            _assert_store_unavailable(await api.register())
            health = await api.client.get(HEALTH)
            assert health.status_code == 503
            assert health.json()["database"] == "down"
            postgres.stop()
            postgres.start()
            assert (await api.client.get(HEALTH)).status_code == 200
            assert (await api.me(user.tokens)).status_code == 200
            assert (await api.login(user.email, DEFAULT_PASSWORD)).status_code == 200


async def test_requests_across_a_database_restart_get_200_or_503(tmp_path: Path) -> None:
    with private_postgres() as postgres:
        settings = make_settings(
            postgres.url, REDIS_KEY_PREFIX=f"{REDIS_TEST_PREFIX}:restart{time.monotonic_ns()}"
        )
        async with serve(settings) as (_, api):
            users = [await api.new_user() for _ in range(4)]
            statuses: list[int] = []
            restarting = True

            async def client_loop(user: UserHandle) -> None:
                while restarting:
                    login = await api.login(user.email, DEFAULT_PASSWORD)
                    me = await api.client.get(ME, headers=user.headers)
                    statuses.extend((login.status_code, me.status_code))
                    for response in (login, me):
                        if response.status_code == 503:
                            _assert_store_unavailable(response)

            async with anyio.create_task_group() as clients:
                for user in users:
                    clients.start_soon(client_loop, user)
                for _ in range(2):
                    await anyio.sleep(0.3)
                    await anyio.to_thread.run_sync(postgres.stop)
                    await anyio.to_thread.run_sync(postgres.start)
                await anyio.sleep(0.5)
                restarting = False
            assert set(statuses) <= {200, 503}, sorted(set(statuses))
            assert 503 in statuses
            assert statuses[-8:] == [200] * 8


async def test_a_hung_redis_costs_a_request_at_most_the_deadline(
    postgres_database: str, tmp_path: Path
) -> None:
    clock = OffsetClock()
    deadline = 1.0
    with private_redis(tmp_path) as redis:
        settings = make_settings(
            postgres_database, REDIS_URL=redis.url, STORE_DEADLINE_SECONDS=deadline
        )
        async with serve(settings, clock) as (_, api):
            user = await api.new_user()
            redis.pause(6)
            clock.advance(1.2)
            requests: dict[str, Callable[[], Awaitable[httpx.Response]]] = {
                "me": lambda: api.me(user.tokens),
                "refresh": lambda: api.refresh(user.tokens.refresh_token),
                "login": lambda: api.login(user.email, DEFAULT_PASSWORD),
                "sessions": lambda: api.client.get(SESSIONS, headers=user.headers),
            }
            for name, request in requests.items():
                started = time.monotonic()
                response = await request()
                waited = time.monotonic() - started
                _assert_store_unavailable(response)
                assert waited < deadline + 0.5, (name, waited)
            started = time.monotonic()
            health = await api.client.get(HEALTH)
            assert time.monotonic() - started < deadline + 0.5
            assert health.status_code == 503
            assert health.json() == {
                "status": "unavailable",
                "database": "ok",
                "session_store": "slow",
            }
            # The pause ends; the service recovers by itself and the token was kept.
            await anyio.sleep(6)
            refreshed = await api.refresh(user.tokens.refresh_token)
            assert refreshed.status_code == 200, refreshed.text


async def test_a_hung_database_costs_a_request_at_most_the_deadline(
    postgres_database: str, proxies: tuple[TcpProxy, TcpProxy]
) -> None:
    pg, redis = proxies
    clock = OffsetClock()
    deadline = 1.0
    settings = _settings_through(postgres_database, pg, redis).model_copy(
        update={"STORE_DEADLINE_SECONDS": deadline}
    )
    async with serve(settings, clock) as (_, api):
        user = await api.new_user()
        pg.hang()
        clock.advance(1.2)
        requests: list[Callable[[], Awaitable[httpx.Response]]] = [
            lambda: api.me(user.tokens),
            lambda: api.login(user.email, DEFAULT_PASSWORD),
            lambda: api.register(),
        ]
        for request in requests:
            started = time.monotonic()
            response = await request()
            _assert_store_unavailable(response)
            assert time.monotonic() - started < deadline + 0.5
        health = await api.client.get(HEALTH)
        assert health.json()["database"] == "slow"
        pg.resume()
        await anyio.sleep(0.5)
        assert (await api.me(user.tokens)).status_code == 200
