"""A user's view of their own sessions, an admin's and the operator's (the CLI's) of anyone's."""

from collections.abc import Mapping
from datetime import datetime

from app.core.clock import Clock
from app.core.errors import SessionNotFound
from app.core.events import SecurityEvent, SecurityEvents
from app.domain.principals import Principal
from app.domain.sessions import SessionRecord
from app.services.liveness import Liveness
from app.services.users import OPERATOR
from app.storage.protocols import SessionStore


class SessionService:
    def __init__(
        self, *, sessions: SessionStore, liveness: Liveness, events: SecurityEvents, clock: Clock
    ) -> None:
        self._sessions = sessions
        self._liveness = liveness
        self._events = events
        self._clock = clock

    async def list_sessions(self, principal: Principal) -> list[SessionRecord]:
        """The caller's live sessions, newest first."""
        return await self._sessions.list_live(principal.account.id, self._clock.now())

    async def revoke_session(self, principal: Principal, session_id: str) -> None:
        """End one of the caller's sessions; anyone else's is reported as not found."""
        await self._end_one(principal.account.id, session_id, event={"reason": "user_revoked"})

    async def revoke_others(self, principal: Principal) -> int:
        """End every session of the caller but the one making the request."""
        return await self._end_all(
            principal.account.id,
            keep_session_id=principal.session_id,
            event={"reason": "user_revoked_others"},
        )

    async def list_for_user(self, user_id: int) -> list[SessionRecord]:
        """A user's live sessions, newest first, for an admin."""
        return await self._sessions.list_live(user_id, self._clock.now())

    async def revoke_for_user(self, user_id: int, session_id: str, *, by: Principal) -> None:
        """An admin ends one session of a user."""
        await self._end_one(
            user_id, session_id, event={"admin_id": by.account.id, "reason": "admin_revoked"}
        )

    async def revoke_all_for_user(self, user_id: int, *, by: Principal) -> int:
        """An admin ends every session of a user."""
        return await self._end_all(
            user_id, event={"admin_id": by.account.id, "reason": "admin_revoked_all"}
        )

    async def operator_revoke_session(self, user_id: int, session_id: str) -> None:
        """The operator ends one live session of a user; any other id is reported as not
        found."""
        await self._end_one(user_id, session_id, event={**OPERATOR, "reason": "admin_revoked"})

    async def operator_revoke_all(self, user_id: int) -> int:
        """The operator ends every session of a user; returns how many were live."""
        return await self._end_all(user_id, event={**OPERATOR, "reason": "admin_revoked_all"})

    async def count_live(self, now: datetime | None = None) -> int:
        """How many live sessions there are in all."""
        return await self._sessions.count_live(now or self._clock.now())

    async def purge(self) -> int:
        """Delete the sessions that have ended (expired or revoked) from the store; returns how
        many (0 from a store that drops them itself)."""
        return await self._sessions.purge(self._clock.now())

    async def _end_one(self, user_id: int, session_id: str, *, event: Mapping[str, object]) -> None:
        if not await self._sessions.revoke(session_id, user_id=user_id, now=self._clock.now()):
            raise SessionNotFound
        self._liveness.forget_session(session_id)
        self._events.emit(
            SecurityEvent.SESSION_REVOKED, user_id=user_id, session_id=session_id, **event
        )

    async def _end_all(
        self, user_id: int, *, keep_session_id: str | None = None, event: Mapping[str, object]
    ) -> int:
        revoked = await self._sessions.revoke_all(
            user_id, now=self._clock.now(), keep_session_id=keep_session_id
        )
        self._liveness.forget_user(user_id)
        self._events.emit(
            SecurityEvent.SESSION_REVOKED, user_id=user_id, sessions_revoked=revoked, **event
        )
        return revoked
