"""Every table, imported so that the metadata is complete."""

from app.models.attempt_counter import AttemptCounter
from app.models.audit_event import AuditEvent
from app.models.auth_session import AuthSession
from app.models.email_token import EmailToken
from app.models.mail_outbox import MailOutbox
from app.models.user import User

__all__ = ["AttemptCounter", "AuditEvent", "AuthSession", "EmailToken", "MailOutbox", "User"]
