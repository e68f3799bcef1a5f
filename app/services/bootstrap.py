"""Work done once before serving, safe to run in several workers at once: migrations, then the
default admin from settings."""

from app.core.clock import Clock, SystemClock
from app.core.config import Settings
from app.core.errors import EmailTaken, UsernameTaken
from app.core.logging import get_logger
from app.core.passwords import PasswordHasher
from app.db.migrate import upgrade_to_head
from app.domain.accounts import NewAccount
from app.schemas.user import normalize_email
from app.storage.factory import Storage, build_storage
from app.storage.users import UserStore


async def ensure_default_admin(
    users: UserStore,
    *,
    credentials: tuple[str, str, str] | None,
    hasher: PasswordHasher,
    clock: Clock,
) -> bool:
    """Create the admin named in settings unless that email or username exists.

    An existing account is never touched, so a password changed since start-up stays changed.
    Workers starting together race on the unique keys; the losers see EmailTaken and stop.
    Returns whether an admin was created.
    """
    if credentials is None:
        return False
    email, username, password = credentials
    email = normalize_email(email)
    try:
        await users.ensure_available(email=email, username=username, now=clock.now())
        await users.create(
            NewAccount(
                email=email,
                username=username,
                hashed_password=await hasher.hash(password),
                is_admin=True,
                created_at=clock.now(),
                # The operator wrote the address into the settings: it is theirs.
                is_verified=True,
            )
        )
    except (EmailTaken, UsernameTaken):
        return False
    return True


async def prepare_database(
    storage: Storage, *, settings: Settings, hasher: PasswordHasher, clock: Clock
) -> None:
    """Apply pending migrations and create the default admin."""
    await upgrade_to_head(storage.engine)
    created = await ensure_default_admin(
        storage.users, credentials=settings.admin_credentials, hasher=hasher, clock=clock
    )
    if created:
        assert settings.admin_credentials is not None
        email, username, password = settings.admin_credentials
        # The first start tells a newcomer how to sign in. Outside development the password
        # stays where the operator put it.
        shown = {"password": password} if settings.ENVIRONMENT == "development" else {}
        get_logger("app").warning(
            "default_admin_created",
            email=email,
            username=username,
            sign_in=f"{settings.public_url}/account/sign-in",
            **shown,
        )


async def prepare_from_settings(settings: Settings) -> None:
    """prepare_database with its own short-lived connections, for run.py and the CLI."""
    storage = build_storage(settings)
    hasher = PasswordHasher.from_settings(settings)
    try:
        await prepare_database(storage, settings=settings, hasher=hasher, clock=SystemClock())
    finally:
        hasher.close()
        await storage.close()
