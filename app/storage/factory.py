"""The one place that picks storage backends from settings."""

from dataclasses import dataclass
from typing import Any

from limits.aio.storage import RedisClusterStorage, RedisStorage
from limits.aio.storage import Storage as LimitsStorage
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.ext.asyncio import AsyncSession as DbSession

from app.core.config import Settings
from app.db.engine import create_engine, create_session_factory
from app.db.units import AsyncEngineRunner, SqliteThreadRunner, UnitOfWorkRunner
from app.storage.protocols import SessionStore
from app.storage.rate_limit_memory import EmbeddedRateLimitStorage
from app.storage.redis_pool import BoundedConnectionPool
from app.storage.redis_sessions import RedisSessionStore
from app.storage.sql_sessions import SqlSessionStore
from app.storage.users import AccountStore

REDIS_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Storage:
    engine: AsyncEngine
    session_factory: async_sessionmaker[DbSession]
    units: UnitOfWorkRunner
    accounts: AccountStore
    sessions: SessionStore
    rate_limits: LimitsStorage

    async def close(self) -> None:
        await self.sessions.close()
        await self.units.close()
        # limits' Redis storages expose no close(); their client sits on the bridge.
        limits_client = getattr(getattr(self.rate_limits, "bridge", None), "storage", None)
        if limits_client is not None:
            await limits_client.aclose()
        await self.engine.dispose()


def _limits_uri(redis_url: str, *, cluster: bool) -> str:
    scheme, _, rest = redis_url.partition("://")
    if cluster:
        return f"async+{scheme}+cluster://{rest}"
    return f"async+{scheme}://{rest}"


def _redis_backends(settings: Settings, redis_url: str) -> tuple[SessionStore, LimitsStorage]:
    # A restarted or failed-over Redis leaves dead pooled connections; retry on a fresh one.
    retry = Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=3)
    options: dict[str, Any] = {
        "decode_responses": True,
        "retry": retry,
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        "socket_timeout": REDIS_TIMEOUT_SECONDS,
        "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
        "max_connections": settings.REDIS_MAX_CONNECTIONS,
    }
    client: Redis | RedisCluster
    if settings.REDIS_CLUSTER:
        client = RedisCluster.from_url(redis_url, **options)
    else:
        # A burst beyond the pool waits for a free connection instead of failing.
        pool = BoundedConnectionPool.from_url(
            redis_url, timeout=REDIS_TIMEOUT_SECONDS, health_check_interval=10, **options
        )
        client = Redis.from_pool(pool)
    limits_class = RedisClusterStorage if settings.REDIS_CLUSTER else RedisStorage
    connection_options: dict[str, Any] = {
        "socket_timeout": REDIS_TIMEOUT_SECONDS,
        "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
        "retry": retry,
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
    }
    rate_limits = limits_class(
        _limits_uri(redis_url, cluster=settings.REDIS_CLUSTER),
        implementation="redispy",
        key_prefix=f"{settings.REDIS_KEY_PREFIX}:limits",
        **connection_options,
    )
    return RedisSessionStore(client, prefix=settings.REDIS_KEY_PREFIX), rate_limits


def build_storage(settings: Settings) -> Storage:
    """Connect the user database, and Redis when REDIS_URL is set (else the embedded stores)."""
    engine = create_engine(
        settings.DATABASE_URL,
        echo=settings.DATABASE_ECHO,
        pool_size=settings.DATABASE_POOL_SIZE,
        max_overflow=settings.DATABASE_MAX_OVERFLOW,
    )
    session_factory = create_session_factory(engine)
    units: UnitOfWorkRunner = (
        SqliteThreadRunner(engine.url)
        if engine.dialect.name == "sqlite"
        else AsyncEngineRunner(engine)
    )
    sessions: SessionStore
    if settings.REDIS_URL:
        sessions, rate_limits = _redis_backends(settings, settings.REDIS_URL)
    else:
        sessions = SqlSessionStore(units)
        rate_limits = EmbeddedRateLimitStorage()
    return Storage(
        engine=engine,
        session_factory=session_factory,
        units=units,
        accounts=AccountStore(units),
        sessions=sessions,
        rate_limits=rate_limits,
    )
