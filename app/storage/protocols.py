"""The interfaces of the stores whose backend varies: the embedded (SQL) and the Redis one
implement each, and tests/contract runs one suite against both."""

from datetime import datetime, timedelta
from typing import Protocol

from app.domain.attempts import AttemptCount
from app.domain.sessions import Rotation, SessionRecord


class SessionStore(Protocol):
    async def create(self, session: SessionRecord) -> None:
        """Store a new session; raise UserNotFound when the store can tell that its user no
        longer exists (a store that cannot leaves that to AuthService.login's second look)."""
        ...

    async def get(self, session_id: str, *, user_id: int) -> SessionRecord | None:
        """This user's session with this id, if the store still holds it (live or not)."""
        ...

    async def rotate(
        self,
        session_id: str,
        *,
        user_id: int,
        presented_jti: str,
        new_jti: str,
        now: datetime,
        expires_at: datetime,
        idle_expires_at: datetime | None,
        grace: timedelta,
    ) -> Rotation:
        """Atomically replace the current refresh jti, or report why not.

        Only one caller presenting the current jti ever wins. Presenting the previous jti within
        `grace` of the last rotation is GRACE; any other stale jti is REUSED and revokes the
        session. `Rotation.current` is the refresh token the session accepts next after
        ROTATED (the new one) and GRACE (the current one), and None after REUSED and DEAD.

        ROTATED extends the session to `expires_at`, or only to its `absolute_expires_at` when
        that comes first, and records `idle_expires_at`.
        """
        ...

    async def touch(self, session_id: str, *, user_id: int, now: datetime) -> None:
        """Record activity on a session."""
        ...

    async def revoke(self, session_id: str, *, user_id: int, now: datetime) -> bool:
        """Revoke one live session of this user; False when there was none."""
        ...

    async def revoke_all(
        self, user_id: int, *, now: datetime, keep_session_id: str | None = None
    ) -> int:
        """Revoke every live session of a user except `keep_session_id`; return how many."""
        ...

    async def list_live(self, user_id: int, now: datetime) -> list[SessionRecord]:
        """The user's live sessions, newest first."""
        ...

    async def count_live(self, now: datetime) -> int:
        """How many live sessions exist in all."""
        ...

    async def purge(self, now: datetime) -> int:
        """Delete the sessions that have ended (expired or revoked) by `now`; return how many.

        A store whose backend drops ended sessions itself has nothing to delete and returns 0.
        """
        ...

    async def ping(self) -> None:
        """Raise when the store cannot be reached."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class AttemptCounter(Protocol):
    async def count(self, key: str, *, now: datetime, window: timedelta) -> AttemptCount:
        """Count one attempt against `key`, atomically, in its current window (a new one of
        length `window` when there is none or it has ended); the count includes this one."""
        ...

    async def clear(self, key: str) -> None:
        """Forget every attempt counted against `key`."""
        ...

    async def purge(self, now: datetime) -> int:
        """Drop counters whose window has ended; return how many."""
        ...
