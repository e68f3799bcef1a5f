"""Security events the services report; metrics (and later audit logs) subscribe to them."""

import enum
from typing import Protocol


class SecurityEvent(enum.StrEnum):
    LOGIN_SUCCEEDED = "login_succeeded"
    LOGIN_FAILED = "login_failed"
    REGISTERED = "registered"
    REFRESHED = "refreshed"
    REFRESH_REJECTED = "refresh_rejected"
    REFRESH_REUSE_DETECTED = "refresh_reuse_detected"
    SESSION_REVOKED = "session_revoked"
    PASSWORD_CHANGED = "password_changed"
    ADMIN_CHANGED_USER = "admin_changed_user"


class SecurityEvents(Protocol):
    def emit(self, event: SecurityEvent, **fields: object) -> None:
        """Report that a security-relevant thing happened; never pass secrets in `fields`."""
        ...
