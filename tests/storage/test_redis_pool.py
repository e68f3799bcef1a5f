"""The session store's Redis pool: bounded, first come first served, no place ever lost."""

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.storage.redis_pool import BoundedConnectionPool
from tests.conftest import REDIS_TEST_URL

CLIENT_NAME = f"pooltest{os.getpid()}"
pytestmark = pytest.mark.usefixtures("shared_redis")


def _pool(url: str = REDIS_TEST_URL, **options: Any) -> BoundedConnectionPool:
    values: dict[str, Any] = {
        "timeout": 2.0,
        "max_connections": 2,
        "client_name": CLIENT_NAME,
        "socket_connect_timeout": 1.0,
    }
    values.update(options)
    return BoundedConnectionPool.from_url(url, **values)


async def _assert_every_place_free(pool: BoundedConnectionPool) -> None:
    held = [await asyncio.wait_for(pool.get_connection(), 0.1) for _ in range(pool.max_connections)]
    for connection in held:
        await pool.release(connection)


@pytest.fixture
async def pool() -> AsyncIterator[BoundedConnectionPool]:
    pool = _pool()
    yield pool
    await _assert_every_place_free(pool)
    await pool.disconnect()


async def _connections_open_on_the_server() -> int:
    observer = Redis.from_url(REDIS_TEST_URL, decode_responses=True)
    try:
        clients = await observer.client_list()
    finally:
        await observer.aclose()
    return sum(1 for client in clients if client["name"] == CLIENT_NAME)


async def _is_waiting(task: "asyncio.Task[Any]") -> bool:
    await asyncio.sleep(0.05)
    return not task.done()


async def _a_new_caller_waits(pool: BoundedConnectionPool) -> bool:
    """Whether a caller arriving now waits for a place; it is cancelled after the look."""
    caller = asyncio.create_task(pool.get_connection())
    waits = await _is_waiting(caller)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    return waits


async def test_a_caller_beyond_the_pool_waits_for_a_released_connection(
    pool: BoundedConnectionPool,
) -> None:
    first = await pool.get_connection()
    second = await pool.get_connection()
    third = asyncio.create_task(pool.get_connection())
    assert await _is_waiting(third)

    await pool.release(second)

    assert await asyncio.wait_for(third, 1) is second
    await pool.release(first)
    await pool.release(second)


async def test_a_caller_gives_up_after_the_timeout() -> None:
    pool = _pool(timeout=0.2, max_connections=1)
    held = await pool.get_connection()
    started = time.monotonic()

    with pytest.raises(RedisConnectionError, match="No connection available"):
        await pool.get_connection()

    assert 0.15 <= time.monotonic() - started < 1.5
    await pool.release(held)
    # The caller that gave up took no place with it.
    await _assert_every_place_free(pool)
    await pool.disconnect()


async def test_waiting_callers_are_served_in_arrival_order(pool: BoundedConnectionPool) -> None:
    held = [await pool.get_connection(), await pool.get_connection()]
    served: list[int] = []

    async def wait_then_hold_briefly(number: int) -> None:
        connection = await pool.get_connection()
        served.append(number)
        await asyncio.sleep(0.01)
        await pool.release(connection)

    waiters = []
    for number in range(5):
        waiters.append(asyncio.create_task(wait_then_hold_briefly(number)))
        await asyncio.sleep(0)
    # A caller arriving while others wait queues behind them, even when a place frees up.
    await pool.release(held.pop())
    late = asyncio.create_task(wait_then_hold_briefly(99))
    await pool.release(held.pop())
    await asyncio.wait_for(asyncio.gather(*waiters, late), 2)

    assert served == [0, 1, 2, 3, 4, 99]


async def test_a_burst_of_commands_never_opens_more_connections_than_the_limit() -> None:
    pool = _pool(max_connections=3, decode_responses=True)
    client = Redis.from_pool(pool)
    key = f"{CLIENT_NAME}:counter"
    try:
        await client.delete(key)
        await asyncio.gather(*(client.incr(key) for _ in range(200)))

        assert await client.get(key) == "200"
        assert await _connections_open_on_the_server() == 3
    finally:
        await client.delete(key)
        await client.aclose()


async def test_a_cancelled_waiter_leaves_no_place_taken(pool: BoundedConnectionPool) -> None:
    held = [await pool.get_connection(), await pool.get_connection()]
    assert await _a_new_caller_waits(pool)

    for connection in held:
        await pool.release(connection)

    await _assert_every_place_free(pool)


async def test_a_connection_that_cannot_connect_gives_its_place_back() -> None:
    # Nothing listens on port 1: each attempt fails to connect, none waits for a place.
    pool = _pool("redis://127.0.0.1:1/0", max_connections=1, timeout=5.0)
    for _ in range(3):
        started = time.monotonic()
        with pytest.raises(RedisConnectionError) as failure:
            await pool.get_connection()
        assert "No connection available" not in str(failure.value)
        assert time.monotonic() - started < 2.0
    await pool.disconnect()


async def test_a_connection_marked_for_reconnect_is_closed_on_release(
    pool: BoundedConnectionPool,
) -> None:
    connection: AbstractConnection = await pool.get_connection()
    assert connection.is_connected
    connection.mark_for_reconnect()  # type: ignore[no-untyped-call]

    await pool.release(connection)

    assert not connection.is_connected
    again = await pool.get_connection()
    assert again.is_connected
    await pool.release(again)


async def test_a_failed_disconnect_on_release_still_gives_the_place_back(
    pool: BoundedConnectionPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection: AbstractConnection = await pool.get_connection()
    connection.mark_for_reconnect()  # type: ignore[no-untyped-call]

    async def disconnect_fails(*_: object, **__: object) -> None:
        raise RedisTimeoutError("Timed out closing connection")

    monkeypatch.setattr(connection, "disconnect", disconnect_fails)
    with pytest.raises(RedisTimeoutError):
        await pool.release(connection)
    monkeypatch.undo()

    # Both places are free, and the connection serves again once reconnected.
    await _assert_every_place_free(pool)


async def test_releasing_a_connection_twice_gives_back_one_place(
    pool: BoundedConnectionPool,
) -> None:
    connection = await pool.get_connection()
    await pool.release(connection)
    with pytest.raises(KeyError):
        await pool.release(connection)

    held = [await pool.get_connection(), await pool.get_connection()]
    assert await _a_new_caller_waits(pool)
    for connection in held:
        await pool.release(connection)
