"""How long a session lasts: the refresh token's lifetime, the idle timeout and the absolute
lifetime, turned into the times a session record carries."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from app.core.config import Settings


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """Each sign-in and refresh extends a session by `refresh_lifetime`, or only to its idle end
    (`idle_timeout` later) when that comes first, and never past its absolute end
    (`absolute_lifetime` after sign-in). None turns a limit off.

    The times are written into the session when they are granted, and every check reads its
    `expires_at`: a changed setting applies to a session from its next sign-in (the absolute
    end) or refresh (the rest), the way a refresh token keeps the expiry it was issued with.
    """

    refresh_lifetime: timedelta
    absolute_lifetime: timedelta | None
    idle_timeout: timedelta | None

    @classmethod
    def from_settings(cls, settings: Settings) -> "SessionPolicy":
        absolute_days = settings.SESSION_ABSOLUTE_LIFETIME_DAYS
        idle_minutes = settings.SESSION_IDLE_TIMEOUT_MINUTES
        return cls(
            refresh_lifetime=timedelta(days=settings.REFRESH_TOKEN_EXPIRE_DAYS),
            absolute_lifetime=timedelta(days=absolute_days) if absolute_days else None,
            idle_timeout=timedelta(minutes=idle_minutes) if idle_minutes else None,
        )

    def absolute_end(self, signed_in_at: datetime) -> datetime | None:
        """The latest a session signed in at `signed_in_at` may last, however it is refreshed."""
        return signed_in_at + self.absolute_lifetime if self.absolute_lifetime else None

    def idle_end(self, used_at: datetime) -> datetime | None:
        """When a session signed in or refreshed at `used_at` ends if it is not refreshed."""
        return used_at + self.idle_timeout if self.idle_timeout else None

    def expiry(self, used_at: datetime, *, absolute_end: datetime | None) -> datetime:
        """When a session signed in or refreshed at `used_at` ends unless it is refreshed."""
        ends = (used_at + self.refresh_lifetime, self.idle_end(used_at), absolute_end)
        return min(end for end in ends if end is not None)
