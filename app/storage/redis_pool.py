"""The session store's Redis connection pool: bounded, and a cheap checkout when one is free.

redis-py's `BlockingConnectionPool` gives the behaviour we want, a caller beyond the pool's
size waiting a bounded time for a connection instead of failing, but every checkout goes
through a deprecation shim, a condition, a timeout, a second lock and its observability hooks,
and every release through a condition, a lock and an event dispatch. Measured on the refresh
path, checkout and release cost as much CPU as sending the command and parsing its reply.
This pool keeps redis-py's own connection handling (`get_available_connection`,
`ensure_connection`, reconnect on release) and replaces only the waiting: a semaphore counts
the free places, and a caller waits, first come first served, only when none is left.

What it leaves out, none of which the service uses: redis-py's pool metrics (OpenTelemetry),
the after-release event that streaming credential providers re-authenticate on, and the
maintenance notifications of Redis Enterprise (RESP3 only), which rebind connections under a
pool lock this pool does not take, and which it therefore turns off.
"""

import asyncio
from typing import Any

from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.maint_notifications import MaintNotificationsConfig


class BoundedConnectionPool(ConnectionPool):
    """At most `max_connections` in use; a caller beyond that waits up to `timeout` seconds."""

    def __init__(self, *, timeout: float, **kwargs: Any) -> None:
        kwargs["maint_notifications_config"] = MaintNotificationsConfig(enabled=False)
        super().__init__(**kwargs)
        self.timeout = timeout
        self._places = asyncio.Semaphore(self.max_connections)

    async def get_connection(self, *_args: Any, **_options: Any) -> AbstractConnection:
        await self._take_place()
        # Between the place and the connection nothing awaits, so no one else can take it.
        try:
            connection: AbstractConnection = self.get_available_connection()  # type: ignore[no-untyped-call]
        except BaseException:
            self._places.release()
            raise
        try:
            await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection

    async def _take_place(self) -> None:
        if not self._places.locked():
            # Returns at once: a free place and no one waiting for one.
            await self._places.acquire()
            return
        try:
            async with asyncio.timeout(self.timeout):
                await self._places.acquire()
        except TimeoutError as timed_out:
            raise RedisConnectionError("No connection available.") from timed_out

    async def release(self, connection: AbstractConnection) -> None:
        # A connection this pool did not hand out (KeyError) gives back no place.
        self._in_use_connections.remove(connection)
        try:
            if connection.should_reconnect():  # type: ignore[no-untyped-call]
                await connection.disconnect()
        finally:
            # Even when the disconnect fails or is cancelled: the next checkout reconnects it.
            self._available_connections.append(connection)
            self._places.release()
