"""The users table."""

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UtcDateTime


class User(Base):
    __tablename__ = "users"
    # An id is never given again, not even the newest after its deletion (which SQLite's rowid
    # would reuse): a session or token left behind by a deleted account must not become the
    # next registrant's. PostgreSQL's sequences never go back anyway.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    username: Mapped[str] = mapped_column(String(32))
    hashed_password: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean)
    is_admin: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    email_verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


# Usernames are unique regardless of case, without storing a second normalised copy.
Index("uq_users_username_lower", func.lower(User.username), unique=True)
