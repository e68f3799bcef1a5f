"""Engine and session factory for the configured database URL."""

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as DbSession
from sqlalchemy.pool import NullPool

SQLITE_BUSY_TIMEOUT_MS = 10_000
WAL_SWITCH_ATTEMPTS = 100
WAL_SWITCH_PAUSE_SECONDS = 0.01
CONNECT_TIMEOUT_SECONDS = 5
# A pooled connection idle this long is pinged before use: the server may have restarted or
# dropped it meanwhile, and the pool then swaps it for a new one instead of failing a request.
# One in steady use is not pinged (SQLAlchemy's pool_pre_ping pings on every checkout, a round
# trip that cost about 0.3 ms of the event loop's CPU per database operation here); if the
# server goes away under load, the failing statements make the pool discard its connections.
IDLE_PING_SECONDS = 1.0
_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def async_database_url(database_url: str) -> URL:
    """Map the plain `sqlite://` and `postgresql://` schemes to their asyncio drivers."""
    url = make_url(database_url)
    driver = _ASYNC_DRIVERS.get(url.drivername)
    if driver is None and url.drivername == "postgres":
        driver = _ASYNC_DRIVERS["postgresql"]
    return url.set(drivername=driver) if driver else url


def _prepare_sqlite_file(url: URL) -> None:
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the single writer; the busy timeout makes concurrent
    # workers wait for the write lock instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    _use_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _use_wal(cursor: Any) -> None:
    """Put the database file in WAL mode (a no-op once it is; in-memory databases stay so).

    WAL is a property of the file, so only its first connections ever switch. Switching needs
    the file to itself, and SQLite does not wait for that: while another connection has it
    open, as when several workers open a new database together, the switch fails or leaves
    the old mode in place. So it is tried again for a while.
    """
    for _ in range(WAL_SWITCH_ATTEMPTS):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            if cursor.fetchone()[0] in ("wal", "memory"):
                return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error):
                raise
        time.sleep(WAL_SWITCH_PAUSE_SECONDS)
    raise sqlite3.OperationalError("the database could not be switched to WAL mode")


def create_engine(
    database_url: str, *, echo: bool = False, pool_size: int = 10, max_overflow: int = 10
) -> AsyncEngine:
    """Build the async engine, creating the SQLite folder and pragmas where needed."""
    url = async_database_url(database_url)
    if url.get_backend_name() == "sqlite":
        _prepare_sqlite_file(url)
        in_memory = url.database in (None, "", ":memory:")
        engine = create_async_engine(
            url,
            echo=echo,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            **(
                {"poolclass": NullPool}
                if in_memory
                else {"pool_size": pool_size, "max_overflow": max_overflow}
            ),
        )
        event.listen(engine.sync_engine, "connect", configure_sqlite_connection)
        return engine
    engine = create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=CONNECT_TIMEOUT_SECONDS,
        connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
    )
    _ping_connections_left_idle(engine)
    return engine


def _ping_connections_left_idle(engine: AsyncEngine) -> None:
    def checked_in(_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_out(connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError("the idle connection no longer answers") from exc

    event.listen(engine.sync_engine, "checkin", checked_in)
    event.listen(engine.sync_engine, "checkout", checked_out)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[DbSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
