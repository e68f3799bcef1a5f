"""Alembic environment: runs on the connection app.db.migrate hands over, or on DATABASE_URL."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

import app.models  # noqa: F401  (registers every table on the metadata)
from app.core.config import Settings
from app.db.base import Base
from app.db.engine import create_engine

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_settings() -> None:
    engine = create_engine(Settings().DATABASE_URL)
    async with engine.begin() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


supplied = context.config.attributes.get("connection")
if isinstance(supplied, Connection):
    _run(supplied)
else:
    asyncio.run(_run_from_settings())
