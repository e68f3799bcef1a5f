"""Start-up work: the default admin from settings."""

from app.core.clock import Clock
from app.core.errors import EmailTaken, UsernameTaken
from app.core.passwords import PasswordHasher
from app.domain.accounts import NewAccount
from app.schemas.user import normalize_email
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
        await users.ensure_available(email=email, username=username)
        await users.create(
            NewAccount(
                email=email,
                username=username,
                hashed_password=await hasher.hash(password),
                is_admin=True,
                created_at=clock.now(),
            )
        )
    except (EmailTaken, UsernameTaken):
        return False
    return True
