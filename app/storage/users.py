"""User rows: lookups, inserts, updates and the admin listing, on a request's unit of work."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession as DbSession

from app.core.errors import EmailTaken, UsernameTaken
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


def to_account(user: User) -> Account:
    return Account(
        id=user.id,
        email=user.email,
        username=user.username,
        is_active=user.is_active,
        is_admin=user.is_admin,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )


@dataclass(frozen=True, slots=True)
class UserFilter:
    search: str | None = None
    is_active: bool | None = None
    is_admin: bool | None = None


# No stored text can hold NUL (PostgreSQL refuses it; SQLite's LIKE stops at it), so a term
# containing one matches nothing and is never sent to the database.
_UNSTORABLE = "\x00"


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class UserRepository:
    def __init__(self, db: DbSession) -> None:
        self._db = db

    async def get(self, user_id: int) -> User | None:
        """The user with this id."""
        return await self._db.get(User, user_id)

    async def get_by_email(self, email: str) -> User | None:
        """The user with this (already normalised) email."""
        if _UNSTORABLE in email:
            return None
        return await self._db.scalar(select(User).where(User.email == email))

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

    async def upgrade_password_hash(self, user_id: int, *, old: str, new: str) -> None:
        """Store a re-hash of the same password, unless the password changed meanwhile."""
        await self._db.execute(
            update(User)
            .where(User.id == user_id, User.hashed_password == old)
            .values(hashed_password=new)
            .execution_options(synchronize_session=False)
        )

    async def save(self) -> None:
        """Flush pending changes, mapping unique-key conflicts to domain errors."""
        try:
            await self._db.flush()
        except IntegrityError as exc:
            await self._db.rollback()
            raise _duplicate_error(exc) from exc

    async def count_active_admins(self, *, except_id: int | None = None) -> int:
        """Active admins, their rows locked until commit (PostgreSQL), so that two admins
        demoting each other at once cannot both see the other as the remaining one."""
        statement = select(User.id).where(User.is_admin, User.is_active).with_for_update()
        if except_id is not None:
            statement = statement.where(User.id != except_id)
        return len((await self._db.scalars(statement)).all())

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
