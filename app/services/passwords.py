"""The password policy."""

import string
from functools import cache
from importlib.resources import files

from app.core.config import Settings
from app.core.errors import PasswordCheckUnavailable, PasswordRejected
from app.core.logging import get_logger
from app.services.breached_passwords import BreachCheckUnavailable, PwnedPasswords

# Appended to a common password, these leave it about as easy to guess (see PasswordPolicy).
_APPENDED = string.digits + string.punctuation + string.whitespace


@cache
def common_passwords() -> frozenset[str]:
    """The built-in list of common passwords, read once; its header names the source."""
    text = files("app.services").joinpath("wordlists/common-passwords.txt").read_text("utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


class PasswordPolicy:
    """The rules a new password must pass: length, content, the account's own names, the list
    of common passwords and, when a breach checker is given, the breach corpus.

    The list is checked case-insensitively, and a listed password with digits, punctuation or
    white space appended (`Password2024!`) is refused too: appending them is how people meet
    composition rules, and it is among the first variations guessing tools try, so the result
    is hardly harder to guess than the listed password. Removing them is one pass over the
    password, at most max_length characters, and one more set lookup: the work per password
    does not grow with the list. Prefixes and substitutions are left to the breach check.
    """

    def __init__(
        self,
        *,
        min_length: int,
        max_length: int,
        common: frozenset[str],
        breached: PwnedPasswords | None = None,
        fail_closed: bool = False,
    ) -> None:
        self._min_length = min_length
        self._max_length = max_length
        self._common = common
        self._breached = breached
        self._fail_closed = fail_closed

    @classmethod
    def from_settings(cls, settings: Settings) -> "PasswordPolicy":
        """The policy of PASSWORD_MIN_LENGTH, PASSWORD_MAX_LENGTH and the HIBP_* settings."""
        return cls(
            min_length=settings.PASSWORD_MIN_LENGTH,
            max_length=settings.PASSWORD_MAX_LENGTH,
            common=common_passwords(),
            breached=PwnedPasswords.from_settings(settings) if settings.HIBP_ENABLED else None,
            fail_closed=settings.HIBP_FAIL_CLOSED,
        )

    async def check(self, password: str, *, email: str, username: str) -> None:
        """Raise PasswordRejected unless the password is acceptable for this account, or
        PasswordCheckUnavailable when the breach check fails and the policy fails closed."""
        if len(password) < self._min_length:
            raise PasswordRejected(
                f"The password must be at least {self._min_length} characters long."
            )
        if len(password) > self._max_length:
            raise PasswordRejected(
                f"The password must be at most {self._max_length} characters long."
            )
        if not password.strip():
            raise PasswordRejected("The password cannot be only white space.")
        if "\x00" in password:
            raise PasswordRejected("The password cannot contain NUL characters.")
        lowered = password.lower()
        if lowered in {email.lower(), username.lower(), email.split("@", 1)[0].lower()}:
            raise PasswordRejected("The password cannot be your email or username.")
        if lowered in self._common or lowered.rstrip(_APPENDED) in self._common:
            raise PasswordRejected(
                "The password is too common: it is one of the most used passwords,"
                " or one with digits or symbols added."
            )
        if self._breached is not None and await self._in_breach(self._breached, password):
            raise PasswordRejected(
                "The password has appeared in a data breach, so attackers try it; choose another."
            )

    async def _in_breach(self, breached: PwnedPasswords, password: str) -> bool:
        try:
            return await breached.is_breached(password)
        except BreachCheckUnavailable as exc:
            get_logger("app.passwords").warning(
                "breach_check_unavailable",
                reason=str(exc),
                outcome="refused" if self._fail_closed else "accepted",
            )
            if self._fail_closed:
                raise PasswordCheckUnavailable from exc
            return False

    async def aclose(self) -> None:
        """Close the breach checker's connections; once, at shutdown."""
        if self._breached is not None:
            await self._breached.aclose()
