"""The embedded session store: a SQL table, so sessions survive restarts and are shared.

Every operation is one transaction of statements built once, at import (see
app.db.statements): on the request path the ORM's per-statement bookkeeping cost several
times the query itself.
"""

from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Table,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from app.core.errors import UserNotFound
from app.db.base import UtcDateTime
from app.db.statements import PreparedStatement
from app.domain.sessions import RefreshGrant, Rotation, RotationOutcome, SessionRecord
from app.models import AuthSession
from app.storage.database import Database

_SESSIONS = cast(Table, AuthSession.__table__)
_C = _SESSIONS.c
_RECORD_FIELDS = tuple(field.name for field in fields(SessionRecord))
_LIVE = (_C.revoked_at.is_(None), _C.expires_at > bindparam("p_now"))
_OWNED = (_C.id == bindparam("p_id"), _C.user_id == bindparam("p_user_id"))

_INSERT = PreparedStatement(insert(_SESSIONS))
# How SQLite and PostgreSQL both word an insert that fails its foreign key: the session's
# account was deleted since the sign-in read it.
_FOREIGN_KEY = "foreign key"
_SELECT_ONE = PreparedStatement(select(_SESSIONS).where(*_OWNED))
_EXTENDED_TO = bindparam("p_expires_at", type_=UtcDateTime())
# The swap is one conditional UPDATE: of racing callers presenting the current jti, exactly one
# matches it. The row knows the session's absolute end, so the UPDATE caps the new expiry and
# returns it.
_ROTATE = PreparedStatement(
    update(_SESSIONS)
    .where(*_OWNED, _C.refresh_jti == bindparam("p_presented_jti"), *_LIVE)
    .values(
        previous_refresh_jti=_C.refresh_jti,
        refresh_jti=bindparam("p_new_jti"),
        refresh_issued_at=bindparam("p_now"),
        last_seen_at=bindparam("p_now"),
        idle_expires_at=bindparam("p_idle_expires_at"),
        expires_at=case(
            (_C.absolute_expires_at < _EXTENDED_TO, _C.absolute_expires_at), else_=_EXTENDED_TO
        ),
    )
    .returning(_C.expires_at)
)
_REVOKE_ONE = PreparedStatement(
    update(_SESSIONS).where(*_OWNED, *_LIVE).values(revoked_at=bindparam("p_now"))
)
_REVOKE_UNCONDITIONALLY = PreparedStatement(
    update(_SESSIONS).where(*_OWNED).values(revoked_at=bindparam("p_now"))
)
_REVOKE_ALL = PreparedStatement(
    update(_SESSIONS)
    .where(_C.user_id == bindparam("p_user_id"), _C.id != bindparam("p_keep_id"), *_LIVE)
    .values(revoked_at=bindparam("p_now"))
)
_TOUCH = PreparedStatement(
    update(_SESSIONS)
    .where(*_OWNED, _C.last_seen_at < bindparam("p_now"))
    .values(last_seen_at=bindparam("p_now"))
)
_LIST_LIVE = PreparedStatement(
    select(_SESSIONS)
    .where(_C.user_id == bindparam("p_user_id"), *_LIVE)
    .order_by(_C.created_at.desc())
)
_COUNT_LIVE = PreparedStatement(select(func.count()).select_from(_SESSIONS).where(*_LIVE))
# Ended sessions are deleted a batch at a time, each batch its own transaction: after months
# without a purge there may be millions, and one DELETE of them all would hold its locks past
# the store deadline, be rolled back, and never finish. Off the request path, so run through
# Core (SQLite adds an OFFSET parameter to the LIMIT, which a PreparedStatement cannot fill).
PURGE_BATCH = 10_000
_PURGE = delete(_SESSIONS).where(
    _C.id.in_(
        select(_C.id)
        .where(or_(_C.revoked_at.is_not(None), _C.expires_at <= bindparam("p_now")))
        .limit(bindparam("p_batch"))
    )
)


def _record(row: Mapping[str, Any]) -> SessionRecord:
    return SessionRecord(**{name: row[name] for name in _RECORD_FIELDS})


class SqlSessionStore:
    """Each operation is one unit of work on the database."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def create(self, session: SessionRecord) -> None:
        # Not dataclasses.asdict: it deep-copies every value, for fields that are all immutable.
        values = {name: getattr(session, name) for name in _RECORD_FIELDS}

        def create(db: Connection) -> None:
            try:
                _INSERT.execute(db, values)
            except IntegrityError as exc:
                if _FOREIGN_KEY in str(exc.orig).lower():
                    raise UserNotFound from exc
                raise

        await self._db.run(create)

    async def get(self, session_id: str, *, user_id: int) -> SessionRecord | None:
        def get(db: Connection) -> SessionRecord | None:
            row = _SELECT_ONE.execute(db, {"p_id": session_id, "p_user_id": user_id}).first()
            return _record(row) if row is not None else None

        return await self._db.read(get)

    async def rotate(
        self,
        session_id: str,
        *,
        user_id: int,
        presented_jti: str,
        new_jti: str,
        now: datetime,
        expires_at: datetime,
        idle_expires_at: datetime | None,
        grace: timedelta,
    ) -> Rotation:
        owned = {"p_id": session_id, "p_user_id": user_id}

        def rotate(db: Connection) -> Rotation:
            swapped = _ROTATE.execute(
                db,
                {
                    **owned,
                    "p_presented_jti": presented_jti,
                    "p_new_jti": new_jti,
                    "p_now": now,
                    "p_expires_at": expires_at,
                    "p_idle_expires_at": idle_expires_at,
                },
            ).first()
            if swapped is not None:
                extended_to = swapped["expires_at"]
                return Rotation(RotationOutcome.ROTATED, RefreshGrant(new_jti, now, extended_to))
            row = _SELECT_ONE.execute(db, owned).first()
            if row is None:
                return Rotation(RotationOutcome.DEAD, None)
            session = _record(row)
            if not session.is_live(now):
                return Rotation(RotationOutcome.DEAD, None)
            if (
                session.previous_refresh_jti == presented_jti
                and now - session.refresh_issued_at <= grace
            ):
                return Rotation(RotationOutcome.GRACE, session.refresh_grant())
            _REVOKE_UNCONDITIONALLY.execute(db, {**owned, "p_now": now})
            return Rotation(RotationOutcome.REUSED, None)

        return await self._db.run(rotate)

    async def touch(self, session_id: str, *, user_id: int, now: datetime) -> None:
        def touch(db: Connection) -> None:
            _TOUCH.execute(db, {"p_id": session_id, "p_user_id": user_id, "p_now": now})

        await self._db.run(touch)

    async def revoke(self, session_id: str, *, user_id: int, now: datetime) -> bool:
        def revoke(db: Connection) -> bool:
            revoked = _REVOKE_ONE.execute(
                db, {"p_id": session_id, "p_user_id": user_id, "p_now": now}
            )
            return revoked.rowcount == 1

        return await self._db.run(revoke)

    async def revoke_all(
        self, user_id: int, *, now: datetime, keep_session_id: str | None = None
    ) -> int:
        # No session id is empty, so "" keeps none.
        parameters = {"p_user_id": user_id, "p_keep_id": keep_session_id or "", "p_now": now}

        def revoke_all(db: Connection) -> int:
            return _REVOKE_ALL.execute(db, parameters).rowcount

        return await self._db.run(revoke_all)

    async def list_live(self, user_id: int, now: datetime) -> list[SessionRecord]:
        def list_live(db: Connection) -> list[SessionRecord]:
            live = _LIST_LIVE.execute(db, {"p_user_id": user_id, "p_now": now})
            return [_record(row) for row in live.rows]

        return await self._db.read(list_live)

    async def count_live(self, now: datetime) -> int:
        def count_live(db: Connection) -> int:
            return int(_COUNT_LIVE.execute(db, {"p_now": now}).scalar())

        return await self._db.read(count_live)

    async def purge(self, now: datetime) -> int:
        batch = PURGE_BATCH
        parameters = {"p_now": now, "p_batch": batch}

        def purge_batch(db: Connection) -> int:
            return db.execute(_PURGE, parameters).rowcount

        purged = 0
        while True:
            deleted = await self._db.run(purge_batch)
            purged += deleted
            if deleted < batch:
                return purged

    async def ping(self) -> None:
        await self._db.ping()

    async def close(self) -> None:
        """The database is the storage's, which closes it."""
