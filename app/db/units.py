"""Running a unit of work (one transaction of SQLAlchemy Core statements) from async code.

The SQL session store writes its operations once, as synchronous functions of a `Connection`,
and a runner executes each one as a single transaction:

- on PostgreSQL, `AsyncConnection.run_sync` runs it on asyncpg, on the event loop;
- on SQLite, it runs on a thread of the runner's own with the standard `sqlite3` module.
  aiosqlite crosses to its thread once per DBAPI call (6 to 9 times for one session
  operation), and each crossing costs more than the query; here an operation crosses once,
  and under load many operations share one crossing and one commit (see `_SqliteThread`).
"""

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.engine import SQLITE_BUSY_TIMEOUT_MS, configure_sqlite_connection

T = TypeVar("T")
# Units that queued up while a batch ran go into the next one, this many at most: a batch
# holds SQLite's write lock, which other processes wait for, until it commits.
MAX_BATCH = 64
UnitOfWork = Callable[[Connection], T]


class UnitOfWorkRunner(Protocol):
    # Whether a caller that stops waiting (cancelled) is free at once. Otherwise the runner may
    # keep the caller waiting while it cleans up on the connection.
    cancel_safe: bool

    async def run(self, work: UnitOfWork[T]) -> T:
        """Run `work` in one transaction, committed when it returns.

        `work` may be run more than once (its transaction rolled back in between), so it must
        have no effect outside the database.
        """
        ...

    async def read(self, work: UnitOfWork[T]) -> T:
        """Run `work`, which only reads. Its statements may each see their own snapshot: every
        read of the stores is a single statement."""
        ...

    async def close(self) -> None: ...


class AsyncEngineRunner:
    # Cancelled mid-statement, the transaction's rollback waits on the server, which may be the
    # very thing that hangs.
    cancel_safe = False

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


@dataclass(slots=True)
class _Unit:
    work: UnitOfWork[Any]
    future: "asyncio.Future[Any]"


class _SqliteThread:
    """One thread with one SQLite connection, running queued units of work in batches.

    Every unit that is waiting when the thread becomes free joins one transaction, and the
    loop is woken once per batch to take all their results. Handing each unit to a thread
    pool and back cost the event loop about 150 µs (two futures and a wake-up on each side),
    and each unit paid a commit of its own; a batch pays them once. Results are handed out
    only after the commit, so no caller sees a write that was not kept. If a unit fails, or
    the commit does, the batch is rolled back and its units run again one by one, each in its
    own transaction, so that only the failing unit's caller gets the error. The transaction
    is the sqlite3 module's: it begins at the batch's first write, so reads before it see
    what is committed, as a read outside a transaction would.
    """

    def __init__(self, engine: Engine, name: str) -> None:
        self._engine = engine
        self._inbox: queue.SimpleQueue[_Unit | None] = queue.SimpleQueue()
        self._connection: Connection | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._accepting = True
        self._name = name
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    def submit(self, work: UnitOfWork[T]) -> "asyncio.Future[T]":
        if not self._accepting:
            raise RuntimeError("the SQLite runner is closed")
        if self._thread is None:
            self._start()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._inbox.put(_Unit(work, future))
        return future

    def _start(self) -> None:
        # Started on first use: an app that is built but never served needs no threads. Kept
        # only once running, so that a start that failed is tried again by the next caller.
        with self._starting:
            if self._thread is None:
                thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
                thread.start()
                self._thread = thread

    async def stop(self) -> None:
        """Finish the queued units, close the connection and end the thread."""
        self._accepting = False
        if self._thread is None:
            return
        self._stopped = asyncio.get_running_loop().create_future()
        self._inbox.put(None)
        await self._stopped

    def _serve(self) -> None:
        while True:
            batch: list[_Unit] = []
            unit = self._inbox.get()
            while unit is not None:
                batch.append(unit)
                if len(batch) == MAX_BATCH:
                    break
                try:
                    unit = self._inbox.get_nowait()
                except queue.Empty:
                    break
            # A caller that stopped waiting (its deadline passed) gets nothing: its unit is not run.
            batch = [unit for unit in batch if not unit.future.cancelled()]
            if batch:
                self._deliver(batch, self._outcomes(batch))
            if unit is None:
                self._close_connection()
                stopped = self._stopped
                if stopped is not None:
                    self._hand_over(stopped.get_loop(), _finish, [(stopped, None, None)])
                return

    def _outcomes(self, batch: list[_Unit]) -> list[tuple[Any, BaseException | None]]:
        try:
            with self._connected().begin() as transaction:
                results = [unit.work(transaction.connection) for unit in batch]
            return [(result, None) for result in results]
        # Whatever a unit raises goes to its caller: a dead thread would leave every later
        # caller waiting forever.
        except BaseException as error:
            if len(batch) == 1:
                return [(None, error)]
        return [self._outcomes([unit])[0] for unit in batch]

    def _connected(self) -> Connection:
        if self._connection is None or self._connection.invalidated:
            self._close_connection()
            self._connection = self._engine.connect()
        return self._connection

    def _close_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _deliver(
        self, batch: list[_Unit], outcomes: list[tuple[Any, BaseException | None]]
    ) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for unit, (result, error) in zip(batch, outcomes, strict=True):
            by_loop.setdefault(unit.future.get_loop(), []).append((unit.future, result, error))
        for loop, settled in by_loop.items():
            self._hand_over(loop, _finish, settled)

    @staticmethod
    def _hand_over(loop: asyncio.AbstractEventLoop, *call: Any) -> None:
        # A loop that has closed has no one left waiting for these results.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(*call)


def _finish(settled: list[tuple["asyncio.Future[Any]", Any, BaseException | None]]) -> None:
    for future, result, error in settled:
        if future.cancelled():
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(_deliverable(error))


def _deliverable(error: BaseException) -> BaseException:
    """The error to hand to a waiting caller. asyncio refuses StopIteration in a future, and a
    KeyboardInterrupt or SystemExit re-raised by an await would stop the event loop itself:
    those arrive wrapped, as the cause of a RuntimeError."""
    if isinstance(error, Exception) and not isinstance(error, StopIteration):
        return error
    wrapped = RuntimeError(f"a unit of work raised {type(error).__name__}")
    wrapped.__cause__ = error
    return wrapped


class SqliteThreadRunner:
    """Two connections, each on a thread of its own: one for writes, which SQLite admits one at
    a time anyway, and one for reads, which WAL lets run beside a writer. Reads therefore never
    queue behind a write that waits for another process to release the database.
    """

    cancel_safe = True

    def __init__(self, url: URL) -> None:
        self._engine: Engine = create_engine(
            url.set(drivername="sqlite+pysqlite"),
            pool_size=2,
            max_overflow=0,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        )
        event.listen(self._engine, "connect", configure_sqlite_connection)
        self._writer = _SqliteThread(self._engine, "sqlite-writes")
        self._reader = _SqliteThread(self._engine, "sqlite-reads")
        self._closing: asyncio.Future[None] | None = None

    async def run(self, work: UnitOfWork[T]) -> T:
        return await self._writer.submit(work)

    async def read(self, work: UnitOfWork[T]) -> T:
        return await self._reader.submit(work)

    async def close(self) -> None:
        # Shielded: a caller cancelled while waiting must not leave a thread running or the
        # engine undisposed; a second call waits for the same closing.
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        for thread in (self._writer, self._reader):
            await thread.stop()
        await asyncio.get_running_loop().run_in_executor(None, self._engine.dispose)
