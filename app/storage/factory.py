"""The one place that picks storage backends from settings."""

from dataclasses import dataclass
from typing import Any

from limits.aio.storage import RedisClusterStorage, RedisStorage
from limits.aio.storage import Storage as LimitsStorage
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings
from app.db.engine import create_engine
from app.db.units import AsyncEngineRunner, SqliteThreadRunner, UnitOfWorkRunner
from app.storage.audit import AuditStore
from app.storage.database import Database
from app.storage.guard import StoreGuard
from app.storage.mail import MailStore
from app.storage.protocols import AttemptCounter, SessionStore
from app.storage.rate_limit_memory import EmbeddedRateLimitStorage
from app.storage.redis_attempts import RedisAttemptCounter
from app.storage.redis_client import connect_redis
from app.storage.redis_sessions import RedisSessionStore
from app.storage.sql_attempts import SqlAttemptCounter
from app.storage.sql_sessions import SqlSessionStore
from app.storage.users import UserStore

DATABASE = "database"
SESSION_STORE = "session_store"


@dataclass(frozen=True, slots=True)
class Storage:
    engine: AsyncEngine
    database: Database
    users: UserStore
    mail: MailStore
    audit: AuditStore
    sessions: SessionStore
    attempts: AttemptCounter
    rate_limits: LimitsStorage
    # Guards the rate-limit counters, which live where the sessions do.
    rate_limit_guard: StoreGuard

    async def close(self) -> None:
        await self.sessions.close()
        await self.database.close()
        # limits' Redis storages expose no close(); their client sits on the bridge.
        limits_client = getattr(getattr(self.rate_limits, "bridge", None), "storage", None)
        if limits_client is not None:
            await limits_client.aclose()
        await self.engine.dispose()


def _limits_storage(settings: Settings, redis_url: str) -> LimitsStorage:
    scheme, _, rest = redis_url.partition("://")
    uri = (
        f"async+{scheme}+cluster://{rest}" if settings.REDIS_CLUSTER else f"async+{scheme}://{rest}"
    )
    limits_class = RedisClusterStorage if settings.REDIS_CLUSTER else RedisStorage
    options: dict[str, Any] = {
        "socket_timeout": settings.STORE_DEADLINE_SECONDS,
        "socket_connect_timeout": settings.STORE_DEADLINE_SECONDS,
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=3),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
    }
    return limits_class(
        uri,
        implementation="redispy",
        key_prefix=f"{settings.REDIS_KEY_PREFIX}:limits",
        **options,
    )


def build_storage(settings: Settings) -> Storage:
    """Connect the user database, and Redis when REDIS_URL is set (else the embedded stores)."""
    engine = create_engine(
        settings.DATABASE_URL,
        echo=settings.DATABASE_ECHO,
        pool_size=settings.DATABASE_POOL_SIZE,
        max_overflow=settings.DATABASE_MAX_OVERFLOW,
    )
    runner: UnitOfWorkRunner = (
        SqliteThreadRunner(engine.url)
        if engine.dialect.name == "sqlite"
        else AsyncEngineRunner(engine)
    )
    database = Database(runner, StoreGuard(DATABASE, seconds=settings.STORE_DEADLINE_SECONDS))
    session_guard = StoreGuard(SESSION_STORE, seconds=settings.STORE_DEADLINE_SECONDS)
    sessions: SessionStore
    attempts: AttemptCounter
    rate_limits: LimitsStorage
    if settings.REDIS_URL:
        client = connect_redis(
            settings.REDIS_URL,
            cluster=settings.REDIS_CLUSTER,
            max_connections=settings.REDIS_MAX_CONNECTIONS,
            guard=session_guard,
        )
        sessions = RedisSessionStore(client, prefix=settings.REDIS_KEY_PREFIX)
        attempts = RedisAttemptCounter(client, prefix=settings.REDIS_KEY_PREFIX)
        rate_limits = _limits_storage(settings, settings.REDIS_URL)
    else:
        sessions = SqlSessionStore(database)
        attempts = SqlAttemptCounter(database)
        rate_limits = EmbeddedRateLimitStorage()
    return Storage(
        engine=engine,
        database=database,
        users=UserStore(database),
        mail=MailStore(database),
        audit=AuditStore(database),
        sessions=sessions,
        attempts=attempts,
        rate_limits=rate_limits,
        rate_limit_guard=session_guard,
    )
