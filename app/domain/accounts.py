"""Accounts as the services and stores exchange them."""

from dataclasses import dataclass
from datetime import datetime

from app.domain.audit import AuditEntry
from app.domain.sessions import SessionRecord


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
    # Whether the owner proved the address by a link sent to it (or an admin said so).
    is_verified: bool = False


@dataclass(frozen=True, slots=True)
class Credentials:
    """An account with its stored password hash, for checking a password."""

    account: Account
    hashed_password: str


@dataclass(frozen=True, slots=True)
class NewAccount:
    email: str
    username: str
    hashed_password: str
    is_admin: bool
    created_at: datetime
    is_verified: bool = False


@dataclass(frozen=True, slots=True)
class AccountChanges:
    """The columns an update sets; None leaves a column as it is."""

    email: str | None = None
    username: str | None = None
    hashed_password: str | None = None
    is_active: bool | None = None
    is_admin: bool | None = None
    is_verified: bool | None = None

    def removes_admin_rights(self) -> bool:
        return self.is_admin is False or self.is_active is False


@dataclass(frozen=True, slots=True)
class UserFilter:
    search: str | None = None
    is_active: bool | None = None
    is_admin: bool | None = None


@dataclass(frozen=True, slots=True)
class AccountExport:
    """What the service holds about one account, as its owner downloads it."""

    exported_at: datetime
    account: Account
    sessions: list[SessionRecord]
    events: list[AuditEntry]
