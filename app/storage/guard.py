"""Every store call runs under the request's one deadline, and every way a store fails surfaces
as StoreUnavailable, whichever backend raised it.

A request's deadline starts at its first store call and is shared by every later one, retries
included, so that a hung store costs a request at most STORE_DEADLINE_SECONDS in all. It is one
timer per request, not one per call: when it fires, it cancels whatever store calls are then in
progress, and any later call fails at once. Outside a request (start-up, the CLI) each call
gets that much time of its own.
"""

import asyncio
from collections.abc import Awaitable
from contextvars import ContextVar
from typing import TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    NotSupportedError,
    ProgrammingError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.core.errors import StoreUnavailable

T = TypeVar("T")

# SQLSTATE classes that mean the server cannot serve now, not that the statement is wrong:
# connection exceptions, insufficient resources (too many connections), operator intervention
# (shutting down, starting up: "the database system is starting up"), system errors.
_UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "58"})
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, PoolTimeoutError, OSError)
# The DBAPI's classes for a request the database refused; every other class (operational,
# interface, internal, or a bare database error such as a corrupt SQLite file) is the store's.
_STATEMENT_ERRORS = (IntegrityError, DataError, ProgrammingError, NotSupportedError)


class DeadlineExpired(Exception):
    """Raised inside a store call that the request's deadline cut short."""


class Deadline:
    """One request's time budget for its stores, and the single timer that enforces it."""

    __slots__ = ("_handle", "_waiting", "expired", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._handle: asyncio.TimerHandle | None = None
        # The tasks in a store call now, each with whether the deadline cancelled it.
        self._waiting: dict[asyncio.Task[object], bool] = {}

    async def bound(self, operation: Awaitable[T]) -> T:
        """Await a store call within the deadline, the first call starting its timer."""
        if self._handle is None:
            loop = asyncio.get_running_loop()
            self._handle = loop.call_at(loop.time() + self.seconds, self._expire)
        if self.expired:
            # The coroutine will not run: close it, so that it is not reported as never awaited.
            close = getattr(operation, "close", None)
            if close is not None:
                close()
            raise DeadlineExpired
        task: asyncio.Task[object] = asyncio.current_task()  # type: ignore[assignment]
        if task in self._waiting:
            # A call within a call of the same task: the outer one answers for both.
            return await operation
        self._waiting[task] = False
        try:
            return await operation
        except asyncio.CancelledError:
            # Ours only when the timer cancelled this task, and no one else did too.
            if self._waiting.get(task) and task.uncancel() == 0:
                raise DeadlineExpired from None
            raise
        finally:
            self._waiting.pop(task, None)

    def _expire(self) -> None:
        self.expired = True
        for task in self._waiting:
            self._waiting[task] = True
            task.cancel()

    def close(self) -> None:
        """The request is over: its timer is no longer needed."""
        if self._handle is not None:
            self._handle.cancel()


REQUEST_DEADLINE: ContextVar[Deadline | None] = ContextVar("request_deadline", default=None)


def _sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a database error or of the driver error behind it."""
    seen: BaseException | None = error
    while seen is not None:
        code = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if isinstance(code, str):
            return code
        seen = seen.__cause__ or seen.__context__
    return None


def is_unavailable(error: BaseException) -> bool:
    """Whether an error means the store could not serve, rather than that the request was bad."""
    if isinstance(error, _UNREACHABLE):
        return True
    if isinstance(error, DBAPIError):
        if error.connection_invalidated or isinstance(error.orig, _UNREACHABLE):
            return True
        state = _sqlstate(error.orig) if error.orig is not None else None
        if state is not None:
            return state[:2] in _UNAVAILABLE_SQLSTATE_CLASSES
        # Without a SQLSTATE (SQLite; asyncpg's "connection is closed"), the DBAPI's class tells.
        return not isinstance(error, _STATEMENT_ERRORS)
    return False


class StoreGuard:
    """Runs a store's calls within the deadline and turns its outages into StoreUnavailable."""

    def __init__(self, store: str, *, seconds: float) -> None:
        self.store = store
        self.seconds = seconds

    async def _within_deadline(self, operation: Awaitable[T]) -> T:
        deadline = REQUEST_DEADLINE.get()
        if deadline is not None:
            return await deadline.bound(operation)
        async with asyncio.timeout(self.seconds):
            return await operation

    async def call(self, operation: Awaitable[T]) -> T:
        """Await a call that gives up cleanly when cancelled (nothing left to wait for)."""
        try:
            return await self._within_deadline(operation)
        except (DeadlineExpired, TimeoutError) as timed_out:
            raise StoreUnavailable(self.store, timed_out=True) from timed_out
        except Exception as error:
            if is_unavailable(error):
                raise StoreUnavailable(self.store, timed_out=False) from error
            raise

    async def detached(self, operation: Awaitable[T]) -> T:
        """Await a call whose clean-up after a cancellation may itself wait on the store (a
        driver rolling back on a hung connection): past the deadline the caller is answered at
        once and the call is cancelled behind it."""
        task = asyncio.ensure_future(operation)
        try:
            return await self.call(asyncio.shield(task))
        except StoreUnavailable:
            task.cancel()
            raise
