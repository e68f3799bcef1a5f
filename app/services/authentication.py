"""Who is calling: access-token verification plus session and account liveness."""

from datetime import timedelta

from app.core.errors import InvalidToken, SessionRevoked
from app.services.context import Principal, ServiceContext
from app.storage.protocols import SessionRecord
from app.storage.users import Account, UserRepository, to_account

LAST_SEEN_RESOLUTION = timedelta(minutes=1)


async def load_account(ctx: ServiceContext, user_id: int) -> Account | None:
    """The user's snapshot, at most SESSION_CACHE_SECONDS old."""
    account = ctx.account_cache.get(user_id)
    if account is not None:
        return account
    async with ctx.session_factory() as db:
        user = await UserRepository(db).get(user_id)
    if user is None:
        return None
    account = to_account(user)
    ctx.account_cache.put(user_id, account)
    return account


async def _load_session(ctx: ServiceContext, session_id: str, user_id: int) -> SessionRecord | None:
    session = ctx.session_cache.get(session_id)
    if session is not None:
        return session
    session = await ctx.sessions.get(session_id, user_id=user_id)
    if session is None:
        return None
    now = ctx.clock.now()
    if session.is_live(now) and now - session.last_seen_at >= LAST_SEEN_RESOLUTION:
        await ctx.sessions.touch(session_id, user_id=user_id, now=now)
    ctx.session_cache.put(session_id, session)
    return session


async def authenticate(ctx: ServiceContext, access_token: str) -> Principal:
    """Verify an access token and that its session and user are still live and active.

    The signature is checked once per distinct token (TokenCodec remembers verified ones) and
    the type and lifetime on every call; the session and the account come from a per-process
    cache that is at most SESSION_CACHE_SECONDS (≤ 1 s) stale, so a revocation made
    on any instance takes effect everywhere within that time.
    """
    now = ctx.clock.now()
    claims = ctx.tokens.decode(access_token, expected_type="access", now=now)
    session = await _load_session(ctx, claims.session_id, claims.user_id)
    if session is None or session.user_id != claims.user_id:
        raise InvalidToken
    if not session.is_live(now):
        raise SessionRevoked
    account = await load_account(ctx, claims.user_id)
    if account is None or not account.is_active:
        raise SessionRevoked
    return Principal(account=account, session_id=session.id)
