"""The session store's Redis connection pool: bounded, and a cheap checkout when one is free.

redis-py's `BlockingConnectionPool` gives the behaviour we want, a caller beyond the pool's
size waiting a bounded time for a connection instead of failing, but every checkout goes
through a deprecation shim, a condition, a timeout, a second lock and its observability hooks,
and every release through a condition, a lock and an event dispatch. Measured on the refresh
path, checkout and release cost as much CPU as sending the command and parsing its reply.
This pool keeps redis-py's own connection handling (`get_available_connection`,
`ensure_connection`, reconnect on release) and replaces only the waiting: a semaphore counts
the free places, and a caller waits, first come first served, only when none is left.
"""

import asyncio
from typing import Any

from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError


class BoundedConnectionPool(ConnectionPool):
    """At most `max_connections` in use; a caller beyond that waits up to `timeout` seconds."""

    def __init__(self, *, timeout: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.timeout = timeout
        self._places = asyncio.Semaphore(self.max_connections)

    async def get_connection(self, *_args: Any, **_options: Any) -> AbstractConnection:
        await self._take_place()
        # Between the place and the connection nothing awaits, so no one else can take it.
        connection: AbstractConnection = self.get_available_connection()  # type: ignore[no-untyped-call]
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
        try:
            if connection.should_reconnect():  # type: ignore[no-untyped-call]
                await connection.disconnect()
            # Moved in one step, with no await in between: a connection is always counted.
            self._in_use_connections.remove(connection)
            self._available_connections.append(connection)
        finally:
            self._places.release()
