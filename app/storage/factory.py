"""The one place that picks storage backends from settings."""

from dataclasses import dataclass

from limits.aio.storage import Storage as LimitsStorage
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.ext.asyncio import AsyncSession as DbSession

from app.core.config import Settings
from app.db.engine import create_engine, create_session_factory
from app.storage.protocols import SessionStore
from app.storage.rate_limit_memory import EmbeddedRateLimitStorage
from app.storage.sql_sessions import SqlSessionStore


@dataclass(frozen=True, slots=True)
class Storage:
    engine: AsyncEngine
    session_factory: async_sessionmaker[DbSession]
    sessions: SessionStore
    rate_limits: LimitsStorage

    async def close(self) -> None:
        await self.engine.dispose()


def build_storage(settings: Settings) -> Storage:
    """Connect the user database and the session store the settings ask for."""
    engine = create_engine(settings.DATABASE_URL, echo=settings.DATABASE_ECHO)
    session_factory = create_session_factory(engine)
    return Storage(
        engine=engine,
        session_factory=session_factory,
        sessions=SqlSessionStore(session_factory),
        rate_limits=EmbeddedRateLimitStorage(),
    )
