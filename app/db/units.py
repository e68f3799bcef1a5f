"""Running a unit of work (one transaction of SQLAlchemy Core statements) from async code.

The SQL session store writes its operations once, as synchronous functions of a `Connection`,
and a runner executes each one as a single transaction:

- on PostgreSQL, `AsyncConnection.run_sync` runs it on asyncpg, on the event loop;
- on SQLite, it runs on one thread of its own with the standard `sqlite3` module. aiosqlite
  crosses to its thread once per DBAPI call (6 to 9 times for one session operation), and each
  crossing costs more than the query; here an operation crosses once.
"""

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.engine import SQLITE_BUSY_TIMEOUT_MS, configure_sqlite_connection

T = TypeVar("T")
UnitOfWork = Callable[[Connection], T]


class UnitOfWorkRunner(Protocol):
    async def run(self, work: UnitOfWork[T]) -> T:
        """Run `work` in one transaction, committed when it returns."""
        ...

    async def close(self) -> None: ...


class AsyncEngineRunner:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def run(self, work: UnitOfWork[T]) -> T:
        async with self._engine.begin() as connection:
            return await connection.run_sync(work)

    async def close(self) -> None:
        """The engine belongs to the user store, which disposes of it."""


class SqliteThreadRunner:
    """One connection on one thread: this process's units of work run one at a time, which is
    also what SQLite's single writer would impose."""

    def __init__(self, url: URL) -> None:
        self._engine: Engine = create_engine(
            url.set(drivername="sqlite+pysqlite"),
            pool_size=1,
            max_overflow=0,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        )
        event.listen(self._engine, "connect", configure_sqlite_connection)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-sessions")

    async def run(self, work: UnitOfWork[T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._thread, self._in_transaction, work
        )

    def _in_transaction(self, work: UnitOfWork[T]) -> T:
        with self._engine.begin() as connection:
            return work(connection)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._engine.dispose)
        self._thread.shutdown()
