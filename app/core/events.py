"""Security events the services report; metrics (and later audit logs) subscribe to them."""

import enum
from typing import Protocol

from app.core.logging import get_logger


class SecurityEvent(enum.StrEnum):
    LOGIN_SUCCEEDED = "login_succeeded"
    LOGIN_FAILED = "login_failed"
    ACCOUNT_LOCKED = "account_locked"
    RATE_LIMITED = "rate_limited"
    REGISTERED = "registered"
    REFRESHED = "refreshed"
    REFRESH_REJECTED = "refresh_rejected"
    REFRESH_REUSE_DETECTED = "refresh_reuse_detected"
    SESSION_REVOKED = "session_revoked"
    PASSWORD_CHANGED = "password_changed"
    ADMIN_CHANGED_USER = "admin_changed_user"
    EMAIL_VERIFIED = "email_verified"
    PASSWORD_RESET = "password_reset"
    EMAIL_CHANGE_REQUESTED = "email_change_requested"
    EMAIL_CHANGED = "email_changed"
    EMAIL_CHANGE_UNDONE = "email_change_undone"
    EMAIL_TOKEN_REJECTED = "email_token_rejected"
    ACCOUNT_DELETED = "account_deleted"
    MAIL_SENT = "mail_sent"
    MAIL_FAILED = "mail_failed"


class SecurityEvents(Protocol):
    def emit(self, event: SecurityEvent, **fields: object) -> None:
        """Report that a security-relevant thing happened; never pass secrets in `fields`."""
        ...


class EventFanout:
    """Sends each event to several sinks (metrics, audit log)."""

    def __init__(self, *sinks: SecurityEvents) -> None:
        self._sinks = sinks

    def emit(self, event: SecurityEvent, **fields: object) -> None:
        for sink in self._sinks:
            sink.emit(event, **fields)


class AuditLog:
    """Writes each security event as a structured log line named after the event."""

    def __init__(self) -> None:
        self._logger = get_logger("app.audit")

    def emit(self, event: SecurityEvent, **fields: object) -> None:
        self._logger.info(event.value, category="security", **fields)
