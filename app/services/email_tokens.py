"""One-time email tokens: `<id>.<secret>`, the id a random public handle, the secret 192 random
bits stored only as its SHA-256. Checking one counts the attempt first, and showing the right
secret clears the count; a token guessed wrong too often is void."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.core.errors import (
    EmailTokenExpired,
    EmailTokenInvalid,
    EmailTokenUsed,
    EmailTokenWrongPurpose,
)
from app.core.tokens import new_token_id
from app.domain.mail import EmailToken, NewEmailToken, TokenPurpose
from app.storage.mail import MailStore

_SECRET_BYTES = 24
MAX_TOKEN_LENGTH = 128


def _hash(secret: str) -> str:
    # A plain SHA-256 suffices: the secret is random, not a password to be guessed offline.
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token to send (`text`) and what to store of it (`stored`)."""

    text: str
    stored: NewEmailToken


class EmailTokens:
    def __init__(self, mail: MailStore, *, max_attempts: int) -> None:
        self._mail = mail
        self._max_attempts = max_attempts

    @staticmethod
    def new(
        *, user_id: int, purpose: TokenPurpose, email: str, now: datetime, lifetime: timedelta
    ) -> IssuedToken:
        token_id, secret = new_token_id(), secrets.token_urlsafe(_SECRET_BYTES)
        return IssuedToken(
            text=f"{token_id}.{secret}",
            stored=NewEmailToken(
                id=token_id,
                user_id=user_id,
                purpose=purpose,
                email=email,
                secret_hash=_hash(secret),
                created_at=now,
                expires_at=now + lifetime,
            ),
        )

    async def check(self, text: str, purpose: TokenPurpose, *, now: datetime) -> EmailToken:
        """The stored token that `text` proves, for `purpose`, still usable; or the error that
        says why not. Spend it (`spend`) before making its change: of two requests racing with
        one token, only one may make it."""
        token_id, _, secret = text.partition(".")
        if not token_id or not secret or len(text) > MAX_TOKEN_LENGTH:
            raise EmailTokenInvalid
        counted = await self._mail.count_attempt(token_id)
        if counted is None:
            raise EmailTokenInvalid
        token, secret_hash = counted
        if token.failures > self._max_attempts or not hmac.compare_digest(
            _hash(secret), secret_hash
        ):
            raise EmailTokenInvalid
        # The holder of the secret is no guesser: what they do with it (a password the policy
        # refuses, the wrong form) must not use the token up.
        await self._mail.clear_failures(token.id)
        # Only the holder of the right secret learns more than "invalid".
        if token.purpose is not purpose:
            raise EmailTokenWrongPurpose
        if token.used_at is not None:
            raise EmailTokenUsed
        if token.expires_at <= now:
            raise EmailTokenExpired
        return token

    async def spend(self, token: EmailToken, *, now: datetime) -> None:
        """Use the token up; a second request racing with the same token loses here."""
        if not await self._mail.use(token.id, now=now):
            raise EmailTokenUsed
