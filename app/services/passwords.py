"""The password policy."""

from app.core.config import Settings
from app.core.errors import PasswordRejected


def check_password_policy(settings: Settings, password: str, *, email: str, username: str) -> None:
    """Raise PasswordRejected unless the password is acceptable for this account."""
    length = len(password)
    if length < settings.PASSWORD_MIN_LENGTH:
        raise PasswordRejected(
            f"The password must be at least {settings.PASSWORD_MIN_LENGTH} characters long."
        )
    if length > settings.PASSWORD_MAX_LENGTH:
        raise PasswordRejected(
            f"The password must be at most {settings.PASSWORD_MAX_LENGTH} characters long."
        )
    if not password.strip():
        raise PasswordRejected("The password cannot be only white space.")
    if "\x00" in password:
        raise PasswordRejected("The password cannot contain NUL characters.")
    lowered = password.lower()
    if lowered in {email.lower(), username.lower(), email.split("@", 1)[0].lower()}:
        raise PasswordRejected("The password cannot be your email or username.")
