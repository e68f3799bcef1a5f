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
