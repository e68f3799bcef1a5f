"""The long-lived collaborators every service function receives."""

from dataclasses import dataclass
from datetime import timedelta

from app.core.clock import Clock
from app.core.config import Settings
from app.core.events import SecurityEvents
from app.core.passwords import PasswordHasher
from app.core.tokens import HmacSigner, TokenCodec
from app.domain.accounts import Account
from app.domain.sessions import SessionRecord
from app.services.lockout import LoginLockout
from app.services.passwords import PasswordPolicy
from app.services.rate_limit import RateLimiter
from app.storage.factory import Storage
from app.storage.protocols import SessionStore
from app.storage.ttl_cache import TtlCache
from app.storage.users import UserStore

LIVENESS_CACHE_ENTRIES = 50_000


@dataclass(frozen=True, slots=True)
class ServiceContext:
    settings: Settings
    clock: Clock
    hasher: PasswordHasher
    passwords: PasswordPolicy
    tokens: TokenCodec
    sessions: SessionStore
    users: UserStore
    events: SecurityEvents
    limiter: RateLimiter
    lockout: LoginLockout
    session_cache: TtlCache[str, SessionRecord]
    account_cache: TtlCache[int, Account]

    def forget_user(self, user_id: int) -> None:
        """Drop this process's cached view of a user and of all their sessions."""
        self.account_cache.discard(user_id)
        self.session_cache.discard_where(lambda session: session.user_id == user_id)


def build_context(
    settings: Settings, storage: Storage, *, clock: Clock, events: SecurityEvents
) -> ServiceContext:
    """Wire the services' collaborators from settings."""

    def timestamp() -> float:
        return clock.now().timestamp()

    return ServiceContext(
        settings=settings,
        clock=clock,
        hasher=PasswordHasher.from_settings(settings),
        passwords=PasswordPolicy.from_settings(settings),
        tokens=TokenCodec(
            signer=HmacSigner(settings.signing_key, settings.JWT_ALGORITHM),
            issuer=settings.JWT_ISSUER,
            audience=settings.JWT_AUDIENCE,
            leeway=timedelta(seconds=settings.JWT_LEEWAY_SECONDS),
        ),
        sessions=storage.sessions,
        users=storage.users,
        events=events,
        limiter=RateLimiter(settings, storage.rate_limits, storage.rate_limit_guard),
        lockout=LoginLockout(
            storage.attempts,
            threshold=settings.LOGIN_LOCKOUT_THRESHOLD,
            seconds=settings.LOGIN_LOCKOUT_SECONDS,
            secret=settings.signing_key,
        ),
        session_cache=TtlCache(
            ttl_seconds=settings.SESSION_CACHE_SECONDS,
            max_entries=LIVENESS_CACHE_ENTRIES,
            now=timestamp,
        ),
        account_cache=TtlCache(
            ttl_seconds=settings.SESSION_CACHE_SECONDS,
            max_entries=LIVENESS_CACHE_ENTRIES,
            now=timestamp,
        ),
    )
