"""The per-account lockout after failed sign-ins: every attempt counted before its check."""

import math
from datetime import datetime, timedelta

from app.core.errors import AccountLocked
from app.core.keys import keyed_digest
from app.storage.protocols import AttemptCounter

POLICY = "lockout"


class LoginLockout:
    """Counts sign-in attempts per submitted email in the shared store, before the password is
    checked, so that parallel guesses can never check more passwords than the threshold: the
    attempt past it is refused whatever its password. A successful sign-in forgets the count.

    The window is fixed: it starts at the first attempt counted after the last one ended, and
    while it holds more than `threshold` attempts, sign-in for that email waits for its end.
    A threshold of 0 turns the lockout off.
    """

    def __init__(
        self, attempts: AttemptCounter, *, threshold: int, seconds: int, secret: str
    ) -> None:
        self._attempts = attempts
        self.threshold = threshold
        self._window = timedelta(seconds=seconds)
        self._secret = secret

    def _key(self, email: str) -> str:
        return keyed_digest(self._secret, "login", email)

    async def admit(self, email: str, *, now: datetime) -> int:
        """Count an attempt on `email`; raise AccountLocked when it is one too many. Returns
        the attempt's number in the window (0 when the lockout is off)."""
        if not self.threshold:
            return 0
        attempt = await self._attempts.count(self._key(email), now=now, window=self._window)
        if attempt.count > self.threshold:
            raise AccountLocked(
                policy=POLICY,
                amount=self.threshold,
                window_seconds=int(self._window.total_seconds()),
                retry_after=math.ceil((attempt.window_ends_at - now).total_seconds()),
            )
        return attempt.count

    def locks_after_failure(self, attempt: int) -> bool:
        """Whether a failed attempt with this number is the one that locks the account."""
        return bool(self.threshold) and attempt == self.threshold

    async def forget(self, email: str) -> None:
        """A successful sign-in clears the count."""
        if self.threshold:
            await self._attempts.clear(self._key(email))
