"""Sessions (one sign-in on one device) and the rotation of their refresh tokens."""

import enum
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    user_id: int
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ip_address: str | None
    user_agent: str | None
    browser: str
    os: str
    device_type: str
    refresh_jti: str
    refresh_issued_at: datetime
    previous_refresh_jti: str | None = None
    revoked_at: datetime | None = None
    # The session policy's limits as last granted (None: that limit was off); `expires_at`
    # never lies past either. See app.services.session_policy.
    absolute_expires_at: datetime | None = None
    idle_expires_at: datetime | None = None

    def is_live(self, now: datetime) -> bool:
        """Not revoked and not expired."""
        return self.revoked_at is None and self.expires_at > now

    def refresh_grant(self) -> "RefreshGrant":
        """The refresh token this session accepts now."""
        return RefreshGrant(self.refresh_jti, self.refresh_issued_at, self.expires_at)


class RotationOutcome(enum.Enum):
    ROTATED = "rotated"
    GRACE = "grace"
    REUSED = "reused"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class RefreshGrant:
    """The refresh token a session accepts next, and until when the session lasts."""

    jti: str
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Rotation:
    outcome: RotationOutcome
    # The session's current refresh token: set for ROTATED (the new one) and GRACE.
    current: RefreshGrant | None
