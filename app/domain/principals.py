"""Who is calling, and what a request carries about its client."""

from dataclasses import dataclass

from app.domain.accounts import Account


@dataclass(frozen=True, slots=True)
class Principal:
    """A validated live session and its active user."""

    account: Account
    session_id: str


@dataclass(frozen=True, slots=True)
class ClientInfo:
    ip_address: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class CsrfProof:
    """What a cookie-authenticated request presents against CSRF: header and cookie values."""

    header: str | None
    cookie: str | None
