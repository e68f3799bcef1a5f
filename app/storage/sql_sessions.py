"""The embedded session store: a SQL table, so sessions survive restarts and are shared."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, fields
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select, text, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession as DbSession
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.models import AuthSession
from app.storage.protocols import Rotation, RotationOutcome, SessionRecord

_RECORD_FIELDS = tuple(field.name for field in fields(SessionRecord))


def _record(row: AuthSession) -> SessionRecord:
    return SessionRecord(**{name: getattr(row, name) for name in _RECORD_FIELDS})


def _live(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (AuthSession.revoked_at.is_(None), AuthSession.expires_at > now)


class SqlSessionStore:
    def __init__(
        self, session_factory: async_sessionmaker[DbSession], *, serialize_writes: bool
    ) -> None:
        self._session_factory = session_factory
        # SQLite admits one writer; connections of one process that race for it back off in
        # sleeps of up to 100 ms. Queuing this process's writes here avoids those sleeps.
        self._write_lock = asyncio.Lock() if serialize_writes else None

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[DbSession]:
        async with AsyncExitStack() as stack:
            if self._write_lock is not None:
                await stack.enter_async_context(self._write_lock)
            db = await stack.enter_async_context(self._session_factory.begin())
            yield db

    async def create(self, session: SessionRecord) -> None:
        async with self._write() as db:
            db.add(AuthSession(**asdict(session)))

    async def get(self, session_id: str, *, user_id: int) -> SessionRecord | None:
        async with self._session_factory() as db:
            row = await db.get(AuthSession, session_id)
            return _record(row) if row and row.user_id == user_id else None

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
        async with self._write() as db:
            swapped = await db.execute(
                update(AuthSession)
                .where(
                    AuthSession.id == session_id,
                    AuthSession.user_id == user_id,
                    AuthSession.refresh_jti == presented_jti,
                    *_live(now),
                )
                .values(
                    previous_refresh_jti=AuthSession.refresh_jti,
                    refresh_jti=new_jti,
                    refresh_issued_at=now,
                    last_seen_at=now,
                    expires_at=expires_at,
                )
                .execution_options(synchronize_session=False)
            )
            row = await db.get(AuthSession, session_id, populate_existing=True)
            if row is None or row.user_id != user_id:
                return Rotation(RotationOutcome.DEAD, None)
            if _rowcount(swapped) == 1:
                return Rotation(RotationOutcome.ROTATED, _record(row))
            if not _record(row).is_live(now):
                return Rotation(RotationOutcome.DEAD, _record(row))
            if row.previous_refresh_jti == presented_jti and now - row.refresh_issued_at <= grace:
                return Rotation(RotationOutcome.GRACE, _record(row))
            row.revoked_at = now
            return Rotation(RotationOutcome.REUSED, _record(row))

    async def touch(self, session_id: str, *, user_id: int, now: datetime) -> None:
        async with self._write() as db:
            await db.execute(
                update(AuthSession)
                .where(AuthSession.id == session_id, AuthSession.last_seen_at < now)
                .values(last_seen_at=now)
            )

    async def revoke(self, session_id: str, *, user_id: int, now: datetime) -> bool:
        async with self._write() as db:
            result = await db.execute(
                update(AuthSession)
                .where(AuthSession.id == session_id, AuthSession.user_id == user_id, *_live(now))
                .values(revoked_at=now)
            )
            return _rowcount(result) == 1

    async def revoke_all(
        self, user_id: int, *, now: datetime, keep_session_id: str | None = None
    ) -> int:
        statement = (
            update(AuthSession)
            .where(AuthSession.user_id == user_id, *_live(now))
            .values(revoked_at=now)
        )
        if keep_session_id is not None:
            statement = statement.where(AuthSession.id != keep_session_id)
        async with self._write() as db:
            return _rowcount(await db.execute(statement))

    async def list_live(self, user_id: int, now: datetime) -> list[SessionRecord]:
        async with self._session_factory() as db:
            rows = await db.scalars(
                select(AuthSession)
                .where(AuthSession.user_id == user_id, *_live(now))
                .order_by(AuthSession.created_at.desc())
            )
            return [_record(row) for row in rows]

    async def count_live(self, now: datetime) -> int:
        async with self._session_factory() as db:
            count = await db.scalar(
                select(func.count()).select_from(AuthSession).where(*_live(now))
            )
            return int(count or 0)

    async def ping(self) -> None:
        async with self._session_factory() as db:
            await db.execute(text("SELECT 1"))

    async def close(self) -> None:
        """The engine belongs to the user store, which closes it."""


def _rowcount(result: object) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)
