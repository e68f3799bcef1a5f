"""Domain errors: every failure a service reports carries a stable machine-readable code."""


class DomainError(Exception):
    """Base of every error the services raise on purpose."""

    code = "error"
    detail = "The request could not be completed."

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.detail)
        if detail is not None:
            self.detail = detail


class InvalidCredentials(DomainError):
    code = "invalid_credentials"
    detail = "Incorrect email or password."


class NotAuthenticated(DomainError):
    code = "not_authenticated"
    detail = "Authentication required."


class InvalidToken(DomainError):
    code = "invalid_token"
    detail = "The token is invalid or expired."


class SessionRevoked(DomainError):
    code = "session_revoked"
    detail = "The session has ended; sign in again."


class RefreshTokenReused(DomainError):
    code = "refresh_token_reused"
    detail = "This refresh token was already used; the session has been revoked."


class PermissionDenied(DomainError):
    code = "forbidden"
    detail = "You do not have permission to do this."


class UserNotFound(DomainError):
    code = "user_not_found"
    detail = "User not found."


class SessionNotFound(DomainError):
    code = "session_not_found"
    detail = "Session not found."


class EmailTaken(DomainError):
    code = "email_taken"
    detail = "This email is already registered."


class UsernameTaken(DomainError):
    code = "username_taken"
    detail = "This username is already taken."


class LastAdmin(DomainError):
    code = "last_admin"
    detail = "This change would leave the service without an active admin."


class PasswordRejected(DomainError):
    code = "password_rejected"
    detail = "The password does not meet the password policy."


class CurrentPasswordInvalid(DomainError):
    code = "current_password_invalid"
    detail = "The current password is missing or wrong."


class RateLimited(DomainError):
    code = "rate_limited"
    detail = "Too many requests; try again later."

    def __init__(self, *, policy: str, amount: int, window_seconds: int, retry_after: int) -> None:
        super().__init__()
        self.policy = policy
        self.amount = amount
        self.window_seconds = window_seconds
        self.retry_after = max(1, retry_after)


class AccountLocked(RateLimited):
    code = "account_locked"
    detail = "Too many failed sign-ins for this account; try again later."


class UnsupportedGrantType(DomainError):
    code = "unsupported_grant_type"
    detail = "Only the password and refresh_token grants are served."


class CsrfFailed(DomainError):
    code = "csrf_failed"
    detail = "Missing or invalid CSRF token (send the csrf_token cookie in X-CSRF-Token)."


class PasswordCheckUnavailable(DomainError):
    code = "password_check_unavailable"
    detail = "The breached-password check cannot be reached; try again shortly."


class StoreUnavailable(DomainError):
    """A store did not answer, or not within the request's deadline."""

    code = "store_unavailable"
    detail = "A data store is unreachable; try again shortly."

    def __init__(self, store: str, *, timed_out: bool) -> None:
        super().__init__()
        self.store = store
        self.timed_out = timed_out


class EmailTokenInvalid(DomainError):
    code = "email_token_invalid"
    detail = "This link or token is not valid; ask for a new one."


class EmailTokenExpired(DomainError):
    code = "email_token_expired"
    detail = "This link or token has expired; ask for a new one."


class EmailTokenUsed(DomainError):
    code = "email_token_used"
    detail = "This link or token was already used, or a newer one replaced it."


class EmailTokenWrongPurpose(DomainError):
    code = "email_token_wrong_purpose"
    detail = "This link or token is meant for something else."


# Every way a mailed token can be refused.
EMAIL_TOKEN_ERRORS = (EmailTokenInvalid, EmailTokenExpired, EmailTokenUsed, EmailTokenWrongPurpose)


class EmailNotVerified(DomainError):
    code = "email_not_verified"
    detail = "Confirm your email address first: we sent you a link (you can ask for another)."


class AlreadyVerified(DomainError):
    code = "already_verified"
    detail = "This account's email address is already verified."
