"""Start-up work: the default admin from settings."""

from sqlalchemy.ext.asyncio import AsyncSession as DbSession
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.core.clock import Clock
from app.core.errors import EmailTaken, UsernameTaken
from app.core.passwords import PasswordHasher
from app.models import User
from app.schemas.user import normalize_email
from app.storage.users import UserRepository


async def ensure_default_admin(
    session_factory: async_sessionmaker[DbSession],
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
    async with session_factory() as db:
        users = UserRepository(db)
        if await users.email_in_use(email) or await users.username_in_use(username):
            return False
        now = clock.now()
        try:
            await users.add(
                User(
                    email=email,
                    username=username,
                    hashed_password=await hasher.hash(password),
                    is_active=True,
                    is_admin=True,
                    created_at=now,
                    updated_at=now,
                )
            )
            await db.commit()
        except (EmailTaken, UsernameTaken):
            return False
    return True
