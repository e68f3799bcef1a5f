"""Applies pending Alembic migrations to the configured database, one process at a time."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"
_MIGRATION_LOCK_ID = 0x61757468


def _take_migration_lock(connection: Connection) -> None:
    # Several workers start at once; the first to take the lock migrates, the rest then find
    # the schema at head and do nothing.
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})")


def _upgrade(connection: Connection) -> None:
    _take_migration_lock(connection)
    config = Config(str(ALEMBIC_INI))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Bring the schema up to the newest migration."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)
