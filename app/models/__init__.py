"""Every table, imported so that the metadata is complete."""

from app.models.attempt_counter import AttemptCounter
from app.models.auth_session import AuthSession
from app.models.user import User

__all__ = ["AttemptCounter", "AuthSession", "User"]
