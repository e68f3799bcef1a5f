"""The embedded session store: a SQL table, so sessions survive restarts and are shared.

Every operation is one transaction of SQLAlchemy Core statements built once, at import: on
the request path the ORM's per-statement bookkeeping cost several times the query itself.
"""

from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, bindparam, func, insert, select, text, update
from sqlalchemy.engine import CursorResult

from app.db.units import UnitOfWorkRunner
from app.models import AuthSession
from app.storage.protocols import Rotation, RotationOutcome, SessionRecord

_SESSIONS = cast(Table, AuthSession.__table__)
_C = _SESSIONS.c
_RECORD_FIELDS = tuple(field.name for field in fields(SessionRecord))
_LIVE = (_C.revoked_at.is_(None), _C.expires_at > bindparam("p_now"))
_OWNED = (_C.id == bindparam("p_id"), _C.user_id == bindparam("p_user_id"))

_INSERT = insert(_SESSIONS)
_SELECT_ONE = select(_SESSIONS).where(*_OWNED)
# The swap is one conditional UPDATE: of racing callers presenting the current jti, exactly one
# matches it, and it gets the updated row back.
_ROTATE = (
    update(_SESSIONS)
    .where(*_OWNED, _C.refresh_jti == bindparam("p_presented_jti"), *_LIVE)
    .values(
        previous_refresh_jti=_C.refresh_jti,
        refresh_jti=bindparam("p_new_jti"),
        refresh_issued_at=bindparam("p_now"),
        last_seen_at=bindparam("p_now"),
        expires_at=bindparam("p_expires_at"),
    )
    .returning(*_SESSIONS.c)
)
_REVOKE_ONE = update(_SESSIONS).where(*_OWNED, *_LIVE).values(revoked_at=bindparam("p_now"))
_REVOKE_UNCONDITIONALLY = update(_SESSIONS).where(*_OWNED).values(revoked_at=bindparam("p_now"))
_REVOKE_ALL = (
    update(_SESSIONS)
    .where(_C.user_id == bindparam("p_user_id"), _C.id != bindparam("p_keep_id"), *_LIVE)
    .values(revoked_at=bindparam("p_now"))
)
_TOUCH = (
    update(_SESSIONS)
    .where(*_OWNED, _C.last_seen_at < bindparam("p_now"))
    .values(last_seen_at=bindparam("p_now"))
)
_LIST_LIVE = (
    select(_SESSIONS)
    .where(_C.user_id == bindparam("p_user_id"), *_LIVE)
    .order_by(_C.created_at.desc())
)
_COUNT_LIVE = select(func.count()).select_from(_SESSIONS).where(*_LIVE)
_PING = text("SELECT 1")


def _record(row: Row[Any]) -> SessionRecord:
    values = row._mapping
    return SessionRecord(**{name: values[name] for name in _RECORD_FIELDS})


def _rowcount(result: object) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


class SqlSessionStore:
    """Each operation is one transaction, run by `runner` (see app.db.units)."""

    def __init__(self, runner: UnitOfWorkRunner) -> None:
        self._runner = runner

    async def create(self, session: SessionRecord) -> None:
        # Not dataclasses.asdict: it deep-copies every value, for fields that are all immutable.
        values = {name: getattr(session, name) for name in _RECORD_FIELDS}

        def create(db: Connection) -> None:
            db.execute(_INSERT, values)

        await self._runner.run(create)

    async def get(self, session_id: str, *, user_id: int) -> SessionRecord | None:
        def get(db: Connection) -> SessionRecord | None:
            row = db.execute(_SELECT_ONE, {"p_id": session_id, "p_user_id": user_id}).first()
            return _record(row) if row is not None else None

        return await self._runner.read(get)

    async def rotate(
        self,
        session_id: str,
        *,
        user_id: int,
        presented_jti: str,
        new_jti: str,
        now: datetime,
        expires_at: datetime,
        grace: timedelta,
    ) -> Rotation:
        owned = {"p_id": session_id, "p_user_id": user_id}

        def rotate(db: Connection) -> Rotation:
            swapped = db.execute(
                _ROTATE,
                {
                    **owned,
                    "p_presented_jti": presented_jti,
                    "p_new_jti": new_jti,
                    "p_now": now,
                    "p_expires_at": expires_at,
                },
            ).first()
            if swapped is not None:
                return Rotation(RotationOutcome.ROTATED, _record(swapped))
            row = db.execute(_SELECT_ONE, owned).first()
            if row is None:
                return Rotation(RotationOutcome.DEAD, None)
            session = _record(row)
            if not session.is_live(now):
                return Rotation(RotationOutcome.DEAD, session)
            if (
                session.previous_refresh_jti == presented_jti
                and now - session.refresh_issued_at <= grace
            ):
                return Rotation(RotationOutcome.GRACE, session)
            db.execute(_REVOKE_UNCONDITIONALLY, {**owned, "p_now": now})
            return Rotation(RotationOutcome.REUSED, session)

        return await self._runner.run(rotate)

    async def touch(self, session_id: str, *, user_id: int, now: datetime) -> None:
        def touch(db: Connection) -> None:
            db.execute(_TOUCH, {"p_id": session_id, "p_user_id": user_id, "p_now": now})

        await self._runner.run(touch)

    async def revoke(self, session_id: str, *, user_id: int, now: datetime) -> bool:
        def revoke(db: Connection) -> bool:
            result = db.execute(
                _REVOKE_ONE, {"p_id": session_id, "p_user_id": user_id, "p_now": now}
            )
            return _rowcount(result) == 1

        return await self._runner.run(revoke)

    async def revoke_all(
        self, user_id: int, *, now: datetime, keep_session_id: str | None = None
    ) -> int:
        # No session id is empty, so "" keeps none.
        parameters = {"p_user_id": user_id, "p_keep_id": keep_session_id or "", "p_now": now}

        def revoke_all(db: Connection) -> int:
            return _rowcount(db.execute(_REVOKE_ALL, parameters))

        return await self._runner.run(revoke_all)

    async def list_live(self, user_id: int, now: datetime) -> list[SessionRecord]:
        def list_live(db: Connection) -> list[SessionRecord]:
            rows = db.execute(_LIST_LIVE, {"p_user_id": user_id, "p_now": now})
            return [_record(row) for row in rows]

        return await self._runner.read(list_live)

    async def count_live(self, now: datetime) -> int:
        def count_live(db: Connection) -> int:
            return int(db.execute(_COUNT_LIVE, {"p_now": now}).scalar_one())

        return await self._runner.read(count_live)

    async def ping(self) -> None:
        def ping(db: Connection) -> None:
            db.execute(_PING)

        await self._runner.read(ping)

    async def close(self) -> None:
        """The runner is the storage's, which closes it."""
