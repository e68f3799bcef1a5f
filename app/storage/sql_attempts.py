"""The embedded attempt counter: one row per key, in the SQL database every worker shares."""

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    bindparam,
    case,
    delete,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from app.db.statements import PreparedStatement
from app.domain.attempts import AttemptCount
from app.models import AttemptCounter
from app.storage.database import Database

_COUNTERS = cast(Table, AttemptCounter.__table__)
_C = _COUNTERS.c


def _upsert(dialect_insert: Any) -> PreparedStatement:
    """Start a window, or count one more attempt in the current one, in one statement: two
    workers counting at once both land, one after the other."""
    one: ColumnElement[int] = literal_column("1")
    inserted = dialect_insert(_COUNTERS).values(
        key=bindparam("p_key"), count=one, window_ends_at=bindparam("p_ends")
    )
    expired = _C.window_ends_at <= bindparam("p_now")
    return PreparedStatement(
        inserted.on_conflict_do_update(
            index_elements=[_C.key],
            set_={
                "count": case((expired, one), else_=_C.count + one),
                "window_ends_at": case((expired, bindparam("p_ends")), else_=_C.window_ends_at),
            },
        )
    )


_UPSERTS = {"sqlite": _upsert(sqlite.insert), "postgresql": _upsert(postgresql.insert)}
_READ = PreparedStatement(select(_C.count, _C.window_ends_at).where(_C.key == bindparam("p_key")))
_CLEAR = PreparedStatement(delete(_COUNTERS).where(_C.key == bindparam("p_key")))
_PURGE = PreparedStatement(delete(_COUNTERS).where(_C.window_ends_at <= bindparam("p_now")))


class SqlAttemptCounter:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def count(self, key: str, *, now: datetime, window: timedelta) -> AttemptCount:
        parameters = {"p_key": key, "p_now": now, "p_ends": now + window}

        def count(db: Connection) -> AttemptCount:
            _UPSERTS[db.dialect.name].execute(db, parameters)
            row = _READ.execute(db, {"p_key": key}).first()
            assert row is not None, "the row was just written in this transaction"
            return AttemptCount(row["count"], row["window_ends_at"])

        return await self._db.run(count)

    async def clear(self, key: str) -> None:
        def clear(db: Connection) -> None:
            _CLEAR.execute(db, {"p_key": key})

        await self._db.run(clear)

    async def purge(self, now: datetime) -> int:
        def purge(db: Connection) -> int:
            return _PURGE.execute(db, {"p_now": now}).rowcount

        return await self._db.run(purge)
