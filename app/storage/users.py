"""The user store: every read and write of the users table, each one unit of work."""

from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.core.errors import EmailTaken, LastAdmin, UsernameTaken, UserNotFound
from app.db.statements import PreparedStatement
from app.db.units import UnitOfWork
from app.domain.accounts import Account, AccountChanges, Credentials, NewAccount, UserFilter
from app.domain.mail import TokenPurpose
from app.models import EmailToken, User
from app.storage.database import Database

_USERS = cast(Table, User.__table__)
_C = _USERS.c
_TOKENS = cast(Table, EmailToken.__table__)
# Every field of Account but is_verified, which the row holds as the time it became so.
_ACCOUNT_COLUMNS = tuple(field.name for field in fields(Account) if field.name != "is_verified")
# No stored text can hold NUL (PostgreSQL refuses it; SQLite's LIKE stops at it), so a term
# containing one matches nothing and is never sent to the database.
_UNSTORABLE = "\x00"
# PostgreSQL advisory lock taken by changes that may remove an admin ("adm" in ASCII).
_ADMIN_CHANGE_LOCK_ID = 0x61646D

_BY_ID = PreparedStatement(select(_USERS).where(_C.id == bindparam("p_id")))
_BY_EMAIL = PreparedStatement(select(_USERS).where(_C.email == bindparam("p_email")))
# Conditional: a password change committed while the old hash was being checked wins.
_UPGRADE_HASH = PreparedStatement(
    update(_USERS)
    .where(_C.id == bindparam("p_id"), _C.hashed_password == bindparam("p_old"))
    .values(hashed_password=bindparam("p_new"))
)
_INSERT = insert(_USERS)
_ACTIVE_ADMINS = select(func.count()).select_from(_USERS).where(_C.is_admin, _C.is_active)


def _account(row: Mapping[Any, Any]) -> Account:
    return Account(
        **{name: row[name] for name in _ACCOUNT_COLUMNS},
        is_verified=row["email_verified_at"] is not None,
    )


def _credentials(row: Mapping[str, Any] | None) -> Credentials | None:
    if row is None:
        return None
    return Credentials(account=_account(row), hashed_password=row["hashed_password"])


def _duplicate_error(exc: IntegrityError) -> EmailTaken | UsernameTaken:
    return EmailTaken() if "email" in str(exc.orig).lower() else UsernameTaken()


def _held_for_undo(db: Connection, email: str, *, except_id: int | None, now: datetime) -> bool:
    """Whether the address is held for another account by a live link to undo an email change:
    it is the address that undoing the change gives back, so nobody else may take it until
    the link expires, or the change could not be undone."""
    held = select(_TOKENS.c.id).where(
        _TOKENS.c.email == email,
        _TOKENS.c.purpose == TokenPurpose.UNDO_EMAIL_CHANGE.value,
        _TOKENS.c.used_at.is_(None),
        _TOKENS.c.expires_at > now,
    )
    if except_id is not None:
        held = held.where(_TOKENS.c.user_id != except_id)
    return db.execute(held.limit(1)).first() is not None


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _count_active_admins(db: Connection, *, except_id: int | None = None) -> int:
    statement = _ACTIVE_ADMINS if except_id is None else _ACTIVE_ADMINS.where(_C.id != except_id)
    return int(db.execute(statement).scalar_one())


def _take_admin_change_lock(db: Connection) -> None:
    """Make changes that may remove an admin take turns until they commit.

    Two admins demoting each other at once would otherwise both see the other as the one who
    remains. SQLite runs one writer at a time anyway; PostgreSQL's writers run side by side,
    so they queue on an advisory lock held to commit, and the count that follows (a new
    statement) sees what the one before committed.
    """
    if db.dialect.name == "postgresql":
        db.execute(select(func.pg_advisory_xact_lock(_ADMIN_CHANGE_LOCK_ID)))


class UserStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers."""
        await self._db.ping()

    async def get(self, user_id: int) -> Account | None:
        """The account with this id."""

        def get(db: Connection) -> Account | None:
            row = _BY_ID.execute(db, {"p_id": user_id}).first()
            return _account(row) if row is not None else None

        return await self._db.read(get)

    async def credentials(self, email: str) -> Credentials | None:
        """The account with this (already normalised) email, and its password hash."""
        if _UNSTORABLE in email:
            return None

        def credentials(db: Connection) -> Credentials | None:
            return _credentials(_BY_EMAIL.execute(db, {"p_email": email}).first())

        return await self._db.read(credentials)

    async def credentials_of(self, user_id: int) -> Credentials | None:
        """The account with this id, and its password hash."""

        def credentials_of(db: Connection) -> Credentials | None:
            return _credentials(_BY_ID.execute(db, {"p_id": user_id}).first())

        return await self._db.read(credentials_of)

    async def upgrade_password_hash(self, user_id: int, *, old: str, new: str) -> None:
        """Store a re-hash of the same password, unless the password changed meanwhile."""

        def upgrade(db: Connection) -> None:
            _UPGRADE_HASH.execute(db, {"p_id": user_id, "p_old": old, "p_new": new})

        await self._db.run(upgrade)

    async def create(self, new: NewAccount) -> Account:
        """Insert an active account; a taken email or username raises EmailTaken/UsernameTaken."""
        values = {
            "email": new.email,
            "username": new.username,
            "hashed_password": new.hashed_password,
            "is_active": True,
            "is_admin": new.is_admin,
            "created_at": new.created_at,
            "updated_at": new.created_at,
            "email_verified_at": new.created_at if new.is_verified else None,
        }

        def create(db: Connection) -> Account:
            if _held_for_undo(db, new.email, except_id=None, now=new.created_at):
                raise EmailTaken
            try:
                inserted = db.execute(_INSERT, values).inserted_primary_key
            except IntegrityError as exc:
                raise _duplicate_error(exc) from exc
            assert inserted is not None, "an INSERT of one row reports its key"
            return _account({**values, "id": inserted[0]})

        return await self._db.run(create)

    async def ensure_available(
        self,
        *,
        email: str | None,
        username: str | None,
        now: datetime,
        except_id: int | None = None,
    ) -> None:
        """Raise EmailTaken or UsernameTaken when another account holds either (an address
        held for an undo link counts as held); None asks nothing about that one."""
        if email is None and username is None:
            return

        def taken(db: Connection) -> EmailTaken | UsernameTaken | None:
            others = select(_C.id).where(_C.id != except_id) if except_id else select(_C.id)
            if email is not None and (
                db.execute(others.where(_C.email == email)).first() is not None
                or _held_for_undo(db, email, except_id=except_id, now=now)
            ):
                return EmailTaken()
            if username is not None and (
                db.execute(others.where(func.lower(_C.username) == username.lower())).first()
                is not None
            ):
                return UsernameTaken()
            return None

        error = await self._db.read(taken)
        if error is not None:
            raise error

    async def count_active_admins(self, *, except_id: int | None = None) -> int:
        """Active admins, other than `except_id`."""

        def count(db: Connection) -> int:
            return _count_active_admins(db, except_id=except_id)

        return await self._db.read(count)

    async def update(self, user_id: int, changes: AccountChanges, *, now: datetime) -> Account:
        """Apply `changes`, refusing (LastAdmin) one that leaves no active admin."""
        return await self._db.run(self.update_unit(user_id, changes, now=now))

    def update_unit(
        self, user_id: int, changes: AccountChanges, *, now: datetime
    ) -> UnitOfWork[Account]:
        """`update` as a unit of work, for a store that writes it in one transaction with its
        own rows (the mail store: an email change and the notice about it)."""
        values: dict[str, object] = {
            name: getattr(changes, name)
            for name in ("email", "username", "hashed_password", "is_active", "is_admin")
            if getattr(changes, name) is not None
        }
        if changes.is_verified is not None:
            values["email_verified_at"] = now if changes.is_verified else None
        values["updated_at"] = now
        removes_rights = changes.removes_admin_rights()

        new_email = changes.email

        def apply(db: Connection) -> Account:
            if new_email is not None and _held_for_undo(db, new_email, except_id=user_id, now=now):
                raise EmailTaken
            if removes_rights:
                _take_admin_change_lock(db)
            try:
                changed = db.execute(update(_USERS).where(_C.id == user_id).values(values))
            except IntegrityError as exc:
                raise _duplicate_error(exc) from exc
            if changed.rowcount == 0:
                raise UserNotFound
            # Raising rolls the change back.
            if removes_rights and _count_active_admins(db) == 0:
                raise LastAdmin
            row = _BY_ID.execute(db, {"p_id": user_id}).first()
            assert row is not None, "the row was just updated in this transaction"
            return _account(row)

        return apply

    async def delete(self, user_id: int) -> None:
        await self._db.run(self.delete_unit(user_id))

    def delete_unit(self, user_id: int) -> UnitOfWork[None]:
        """Remove an account with what references it in SQL (sessions of the embedded store,
        email tokens), refusing (LastAdmin) to remove the last active admin."""

        def delete_user(db: Connection) -> None:
            _take_admin_change_lock(db)
            if db.execute(delete(_USERS).where(_C.id == user_id)).rowcount == 0:
                raise UserNotFound
            if _count_active_admins(db) == 0:
                raise LastAdmin

        return delete_user

    async def page(
        self, where: UserFilter, *, limit: int, offset: int
    ) -> tuple[list[Account], int]:
        """One page of accounts matching the filter, by id, and how many match in all."""
        if where.search and _UNSTORABLE in where.search:
            return [], 0
        conditions = []
        if where.search:
            pattern = f"%{_escape_like(where.search.lower())}%"
            conditions.append(
                or_(
                    _C.email.like(pattern, escape="\\"),
                    func.lower(_C.username).like(pattern, escape="\\"),
                )
            )
        if where.is_active is not None:
            conditions.append(_C.is_active.is_(where.is_active))
        if where.is_admin is not None:
            conditions.append(_C.is_admin.is_(where.is_admin))

        def page(db: Connection) -> tuple[list[Account], int]:
            total = db.execute(select(func.count()).select_from(_USERS).where(*conditions))
            rows = db.execute(
                select(_USERS).where(*conditions).order_by(_C.id).limit(limit).offset(offset)
            )
            return [_account(row._mapping) for row in rows], int(total.scalar_one())

        return await self._db.read(page)
