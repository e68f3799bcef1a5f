"""Running a unit of work (one transaction of SQLAlchemy Core statements) from async code.

The SQL session store writes its operations once, as synchronous functions of a `Connection`,
and a runner executes each one as a single transaction:

- on PostgreSQL, `AsyncConnection.run_sync` runs it on asyncpg, on the event loop;
- on SQLite, it runs on a thread of the runner's own with the standard `sqlite3` module.
  aiosqlite crosses to its thread once per DBAPI call (6 to 9 times for one session
  operation), and each crossing costs more than the query; here an operation crosses once.
"""

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.engine import SQLITE_BUSY_TIMEOUT_MS, configure_sqlite_connection

T = TypeVar("T")
# UPDATE … RETURNING arrived in SQLite 3.35 (2021).
MIN_SQLITE_VERSION = (3, 35)
UnitOfWork = Callable[[Connection], T]


class UnitOfWorkRunner(Protocol):
    async def run(self, work: UnitOfWork[T]) -> T:
        """Run `work` in one transaction, committed when it returns."""
        ...

    async def read(self, work: UnitOfWork[T]) -> T:
        """Run `work`, which only reads. Its statements may each see their own snapshot: every
        read of the stores is a single statement."""
        ...

    async def close(self) -> None: ...


class AsyncEngineRunner:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # Reads run outside a transaction: a single SELECT needs none, and BEGIN and ROLLBACK
        # around it were two of its four round trips (with the pool's liveness ping).
        self._reads = engine.execution_options(isolation_level="AUTOCOMMIT")

    async def run(self, work: UnitOfWork[T]) -> T:
        async with self._engine.begin() as connection:
            return await connection.run_sync(work)

    async def read(self, work: UnitOfWork[T]) -> T:
        async with self._reads.connect() as connection:
            return await connection.run_sync(work)

    async def close(self) -> None:
        """The engine belongs to the user store, which disposes of it."""


class SqliteThreadRunner:
    """Two connections, each on a thread of its own: one for writes, which SQLite admits one at
    a time anyway, and one for reads, which WAL lets run beside a writer. Reads therefore never
    queue behind a write that waits for another process to release the database.

    Each thread keeps its connection: checking it out of the pool and back in (with the pool's
    rollback on return) cost a quarter of a session rotation's time on the thread.
    """

    def __init__(self, url: URL) -> None:
        if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
            raise RuntimeError(
                f"SQLite {'.'.join(map(str, MIN_SQLITE_VERSION))} or newer is needed "
                f"(UPDATE … RETURNING); this Python has {sqlite3.sqlite_version}"
            )
        self._engine: Engine = create_engine(
            url.set(drivername="sqlite+pysqlite"),
            pool_size=2,
            max_overflow=0,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        )
        event.listen(self._engine, "connect", configure_sqlite_connection)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writes")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-reads")
        self._held = threading.local()
        self._closed = False

    async def run(self, work: UnitOfWork[T]) -> T:
        return await self._on(self._writer, work)

    async def read(self, work: UnitOfWork[T]) -> T:
        return await self._on(self._reader, work)

    async def _on(self, thread: ThreadPoolExecutor, work: UnitOfWork[T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(thread, self._in_transaction, work)

    def _in_transaction(self, work: UnitOfWork[T]) -> T:
        connection: Connection | None = getattr(self._held, "connection", None)
        if connection is None or connection.invalidated:
            connection = self._held.connection = self._engine.connect()
        with connection.begin():
            return work(connection)

    def _release_held_connection(self) -> None:
        connection: Connection | None = getattr(self._held, "connection", None)
        if connection is not None:
            connection.close()
            self._held.connection = None

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        for thread in (self._writer, self._reader):
            await loop.run_in_executor(thread, self._release_held_connection)
            thread.shutdown(wait=False)
        await loop.run_in_executor(None, self._engine.dispose)
