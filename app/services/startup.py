"""Work done once before serving: migrations, then the default admin."""

import logging

from app.core.clock import Clock, SystemClock
from app.core.config import Settings
from app.core.passwords import PasswordHasher
from app.db.migrate import upgrade_to_head
from app.services.bootstrap import ensure_default_admin
from app.storage.factory import Storage, build_storage

logger = logging.getLogger("app")


async def prepare_database(
    storage: Storage, *, settings: Settings, hasher: PasswordHasher, clock: Clock
) -> None:
    """Apply pending migrations and create the default admin; safe to run concurrently."""
    await upgrade_to_head(storage.engine)
    created = await ensure_default_admin(
        storage.users,
        credentials=settings.admin_credentials,
        hasher=hasher,
        clock=clock,
    )
    if created:
        logger.warning("created the default admin %r from settings", settings.ADMIN_USERNAME)


async def prepare_from_settings(settings: Settings) -> None:
    """prepare_database with its own short-lived connections, for run.py and the CLI."""
    storage = build_storage(settings)
    try:
        await prepare_database(
            storage,
            settings=settings,
            hasher=PasswordHasher.from_settings(settings),
            clock=SystemClock(),
        )
    finally:
        await storage.close()
