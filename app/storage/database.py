"""The SQL database as every SQL store uses it: units of work, under the store guard."""

from typing import TypeVar

from sqlalchemy import Connection, text

from app.db.units import UnitOfWork, UnitOfWorkRunner
from app.storage.guard import StoreGuard

T = TypeVar("T")
# Reads a table, not only the connection: a database file gone bad must show here too.
_PING = text("SELECT 1 FROM alembic_version LIMIT 1")


class Database:
    """Runs each store operation as one unit of work (see app.db.units) within the deadline."""

    def __init__(self, runner: UnitOfWorkRunner, guard: StoreGuard) -> None:
        self._runner = runner
        self._wait = guard.call if runner.cancel_safe else guard.detached

    async def run(self, work: UnitOfWork[T]) -> T:
        """Run `work` in one transaction, committed when it returns (see UnitOfWorkRunner)."""
        return await self._wait(self._runner.run(work))

    async def read(self, work: UnitOfWork[T]) -> T:
        """Run `work`, which only reads."""
        return await self._wait(self._runner.read(work))

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers."""

        def ping(db: Connection) -> None:
            db.execute(_PING)

        await self.read(ping)

    async def close(self) -> None:
        await self._runner.close()
