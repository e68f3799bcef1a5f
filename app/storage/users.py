"""User rows: the sign-in path's reads (AccountStore) and, on a request's unit of work,
inserts, updates and the admin listing (UserRepository)."""

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession as DbSession

from app.core.errors import EmailTaken, UsernameTaken
from app.db.statements import PreparedStatement
from app.db.units import UnitOfWorkRunner
from app.models import User


@dataclass(frozen=True, slots=True)
class Account:
    """An immutable snapshot of a user, safe to cache and to share between requests."""

    id: int
    email: str
    username: str
    is_active: bool
    is_admin: bool
    created_at: datetime
    updated_at: datetime


_ACCOUNT_FIELDS = tuple(field.name for field in fields(Account))


def to_account(user: User) -> Account:
    """The snapshot of a user."""
    return _account({name: getattr(user, name) for name in _ACCOUNT_FIELDS})


def _account(row: Mapping[str, Any]) -> Account:
    return Account(**{name: row[name] for name in _ACCOUNT_FIELDS})


# No stored text can hold NUL (PostgreSQL refuses it; SQLite's LIKE stops at it), so a term
# containing one matches nothing and is never sent to the database.
_UNSTORABLE = "\x00"
# PostgreSQL advisory lock taken by changes that may remove an admin ("adm" in ASCII).
_ADMIN_CHANGE_LOCK_ID = 0x61646D


@dataclass(frozen=True, slots=True)
class Credentials:
    """An account with its stored password hash, for checking a sign-in."""

    account: Account
    hashed_password: str


_USERS = cast(Table, User.__table__)
_BY_ID = PreparedStatement(select(_USERS).where(_USERS.c.id == bindparam("p_id")))
_BY_EMAIL = PreparedStatement(select(_USERS).where(_USERS.c.email == bindparam("p_email")))
# Conditional: a password change committed while the old hash was being checked wins.
_UPGRADE_HASH = PreparedStatement(
    update(_USERS)
    .where(_USERS.c.id == bindparam("p_id"), _USERS.c.hashed_password == bindparam("p_old"))
    .values(hashed_password=bindparam("p_new"))
)


class AccountStore:
    """Single-account reads and the password re-hash, each one transaction of prebuilt Core
    statements on the unit-of-work runner (see app.db.units). They are what every sign-in and
    every account-cache refill does; through the ORM on aiosqlite a sign-in's lookup crossed
    threads six times or more, and on this kind of machine each crossing costs the event loop
    0.1 to 0.3 ms of CPU to wake up."""

    def __init__(self, runner: UnitOfWorkRunner) -> None:
        self._runner = runner

    async def get(self, user_id: int) -> Account | None:
        """The account with this id."""

        def get(db: Connection) -> Account | None:
            row = _BY_ID.execute(db, {"p_id": user_id}).first()
            return _account(row) if row is not None else None

        return await self._runner.read(get)

    async def credentials(self, email: str) -> Credentials | None:
        """The account with this (already normalised) email, and its password hash."""
        if _UNSTORABLE in email:
            return None

        def credentials(db: Connection) -> Credentials | None:
            row = _BY_EMAIL.execute(db, {"p_email": email}).first()
            if row is None:
                return None
            return Credentials(account=_account(row), hashed_password=row["hashed_password"])

        return await self._runner.read(credentials)

    async def upgrade_password_hash(self, user_id: int, *, old: str, new: str) -> None:
        """Store a re-hash of the same password, unless the password changed meanwhile."""

        def upgrade(db: Connection) -> None:
            _UPGRADE_HASH.execute(db, {"p_id": user_id, "p_old": old, "p_new": new})

        await self._runner.run(upgrade)


@dataclass(frozen=True, slots=True)
class UserFilter:
    search: str | None = None
    is_active: bool | None = None
    is_admin: bool | None = None


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class UserRepository:
    def __init__(self, db: DbSession) -> None:
        self._db = db

    async def get(self, user_id: int) -> User | None:
        """The user with this id."""
        return await self._db.get(User, user_id)

    async def email_in_use(self, email: str, *, except_id: int | None = None) -> bool:
        statement = select(User.id).where(User.email == email)
        if except_id is not None:
            statement = statement.where(User.id != except_id)
        return await self._db.scalar(statement) is not None

    async def username_in_use(self, username: str, *, except_id: int | None = None) -> bool:
        statement = select(User.id).where(func.lower(User.username) == username.lower())
        if except_id is not None:
            statement = statement.where(User.id != except_id)
        return await self._db.scalar(statement) is not None

    async def ensure_unique(self, *, email: str, username: str, except_id: int | None) -> None:
        """Raise EmailTaken or UsernameTaken when another user holds either."""
        if await self.email_in_use(email, except_id=except_id):
            raise EmailTaken
        if await self.username_in_use(username, except_id=except_id):
            raise UsernameTaken

    async def add(self, user: User) -> User:
        """Insert a user; a concurrent duplicate surfaces as EmailTaken or UsernameTaken."""
        self._db.add(user)
        await self.save()
        return user

    async def save(self) -> None:
        """Flush pending changes, mapping unique-key conflicts to domain errors."""
        try:
            await self._db.flush()
        except IntegrityError as exc:
            await self._db.rollback()
            raise _duplicate_error(exc) from exc

    async def count_active_admins(self, *, except_id: int | None = None) -> int:
        """Active admins (other than `except_id`) as this transaction sees them."""
        statement = select(func.count()).select_from(User).where(User.is_admin, User.is_active)
        if except_id is not None:
            statement = statement.where(User.id != except_id)
        return int((await self._db.execute(statement)).scalar_one())

    async def count_active_admins_after_change(self) -> int:
        """Active admins once this transaction's flushed change is counted, after every other
        transaction that could remove an admin has committed or rolled back.

        Two admins demoting each other at once would otherwise both see the other as the one
        who remains. On SQLite the flushed change holds the database's only write lock, so
        the count runs after the other writers and sees their commits. On PostgreSQL, whose
        writers run side by side, such transactions take turns on an advisory lock held to
        commit, and the count (a new statement) sees what the one before committed.
        """
        if self._db.get_bind().dialect.name == "postgresql":
            await self._db.execute(select(func.pg_advisory_xact_lock(_ADMIN_CHANGE_LOCK_ID)))
        return await self.count_active_admins()

    async def page(self, where: UserFilter, *, limit: int, offset: int) -> tuple[list[User], int]:
        """One page of users matching the filter, and how many match in all."""
        if where.search and _UNSTORABLE in where.search:
            return [], 0
        conditions = []
        if where.search:
            pattern = f"%{_escape_like(where.search.lower())}%"
            conditions.append(
                or_(
                    User.email.like(pattern, escape="\\"),
                    func.lower(User.username).like(pattern, escape="\\"),
                )
            )
        if where.is_active is not None:
            conditions.append(User.is_active.is_(where.is_active))
        if where.is_admin is not None:
            conditions.append(User.is_admin.is_(where.is_admin))
        total = await self._db.scalar(select(func.count()).select_from(User).where(*conditions))
        rows = await self._db.scalars(
            select(User).where(*conditions).order_by(User.id).limit(limit).offset(offset)
        )
        return list(rows), int(total or 0)


def _duplicate_error(exc: IntegrityError) -> EmailTaken | UsernameTaken:
    return EmailTaken() if "email" in str(exc.orig).lower() else UsernameTaken()
