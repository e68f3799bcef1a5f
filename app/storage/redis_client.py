"""The Redis client of the stores: redis-py, every command under the store guard."""

from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.storage.guard import StoreGuard
from app.storage.redis_pool import BoundedConnectionPool


class GuardedRedis(Redis):
    """Each command, retries and waiting for a pooled connection included, within the deadline."""

    def __init__(self, *, guard: StoreGuard, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._guard = guard

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        command = super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        return await self._guard.call(command)


class GuardedRedisCluster(RedisCluster):
    def __init__(self, *, guard: StoreGuard, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._guard = guard

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        return await self._guard.call(super().execute_command(*args, **kwargs))


def connect_redis(
    url: str, *, cluster: bool, max_connections: int, guard: StoreGuard
) -> Redis | RedisCluster:
    """A client for `url`; connections are made on first use."""
    # A restarted or failed-over Redis leaves dead pooled connections; retry on a fresh one,
    # as often as the deadline allows.
    options: dict[str, Any] = {
        "decode_responses": True,
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=3),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        "socket_timeout": guard.seconds,
        "socket_connect_timeout": guard.seconds,
        "max_connections": max_connections,
    }
    if cluster:
        return GuardedRedisCluster.from_url(url, guard=guard, **options)
    # A burst beyond the pool waits for a free connection instead of failing.
    pool = BoundedConnectionPool.from_url(
        url, timeout=guard.seconds, health_check_interval=10, **options
    )
    client = GuardedRedis(guard=guard, connection_pool=pool)
    client.auto_close_connection_pool = True
    return client
