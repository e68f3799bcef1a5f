"""This process's view of sessions and accounts: read through a cache at most
SESSION_CACHE_SECONDS (one second or less) old, so that a revocation or a deactivation made on
any instance takes effect everywhere within that time, while a client's repeated calls do not
each read the stores."""

from collections.abc import Callable
from datetime import timedelta

from app.core.clock import Clock
from app.core.ttl_cache import TtlCache
from app.domain.accounts import Account
from app.domain.sessions import SessionRecord
from app.storage.protocols import SessionStore
from app.storage.users import UserStore

CACHED_ENTRIES = 50_000
# A session's last-seen time is written at most this often.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)


class Liveness:
    def __init__(
        self, *, users: UserStore, sessions: SessionStore, clock: Clock, seconds: float
    ) -> None:
        self._users = users
        self._sessions = sessions
        self._clock = clock

        def timestamp() -> float:
            return clock.now().timestamp()

        self._session_cache: TtlCache[str, SessionRecord] = TtlCache(
            ttl_seconds=seconds, max_entries=CACHED_ENTRIES, now=timestamp
        )
        self._account_cache: TtlCache[int, Account] = TtlCache(
            ttl_seconds=seconds, max_entries=CACHED_ENTRIES, now=timestamp
        )

    async def account(self, user_id: int) -> Account | None:
        """The user's snapshot."""
        return await self._account_cache.get_or_load(user_id, lambda: self._users.get(user_id))

    async def session(self, session_id: str, *, user_id: int) -> SessionRecord | None:
        """The user's session with this id, live or not; its last-seen time is kept current."""

        async def read() -> SessionRecord | None:
            session = await self._sessions.get(session_id, user_id=user_id)
            if session is None:
                return None
            now = self._clock.now()
            if session.is_live(now) and now - session.last_seen_at >= LAST_SEEN_RESOLUTION:
                await self._sessions.touch(session_id, user_id=user_id, now=now)
            return session

        session = await self._session_cache.get_or_load(session_id, read)
        # Loads are shared by session id alone: a token naming someone else's session id must
        # not be answered from a load made for its owner.
        return session if session is not None and session.user_id == user_id else None

    def forget_session(self, session_id: str) -> None:
        self._session_cache.discard(session_id)

    def forget_user(self, user_id: int) -> None:
        """Drop this process's view of a user and of all their sessions."""
        self._account_cache.discard(user_id)
        self._session_cache.discard_where(_owned_by(user_id))


def _owned_by(user_id: int) -> Callable[[SessionRecord], bool]:
    return lambda session: session.user_id == user_id
