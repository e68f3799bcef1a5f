"""One-time email tokens and the mails of the outbox, as the services and stores exchange them."""

import enum
from dataclasses import dataclass, field
from datetime import datetime


class TokenPurpose(enum.StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"
    CHANGE_EMAIL = "change_email"
    UNDO_EMAIL_CHANGE = "undo_email_change"


@dataclass(frozen=True, slots=True)
class EmailToken:
    """A token as stored: its public id, never its secret."""

    id: str
    user_id: int
    purpose: TokenPurpose
    email: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    failures: int


@dataclass(frozen=True, slots=True)
class NewEmailToken:
    id: str
    user_id: int
    purpose: TokenPurpose
    email: str
    secret_hash: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Mail:
    """A mail of the outbox: what to send, to whom, and how often it was tried."""

    id: str
    kind: str
    address: str
    payload: dict[str, object] = field(default_factory=dict)
    attempts: int = 0
    created_at: datetime | None = None
