"""Every table, imported so that the metadata is complete."""

from app.models.auth_session import AuthSession
from app.models.user import User

__all__ = ["AuthSession", "User"]
