"""Who is calling: access-token verification plus session and account liveness."""

from datetime import timedelta

from app.core.errors import InvalidToken, SessionRevoked
from app.domain.accounts import Account
from app.domain.principals import Principal
from app.domain.sessions import SessionRecord
from app.services.context import ServiceContext

LAST_SEEN_RESOLUTION = timedelta(minutes=1)


async def load_account(ctx: ServiceContext, user_id: int) -> Account | None:
    """The user's snapshot, at most SESSION_CACHE_SECONDS old."""

    return await ctx.account_cache.get_or_load(user_id, lambda: ctx.users.get(user_id))


async def _load_session(ctx: ServiceContext, session_id: str, user_id: int) -> SessionRecord | None:
    async def read() -> SessionRecord | None:
        session = await ctx.sessions.get(session_id, user_id=user_id)
        if session is None:
            return None
        now = ctx.clock.now()
        if session.is_live(now) and now - session.last_seen_at >= LAST_SEEN_RESOLUTION:
            await ctx.sessions.touch(session_id, user_id=user_id, now=now)
        return session

    session = await ctx.session_cache.get_or_load(session_id, read)
    # Loads are shared by session id alone: a token naming someone else's session id must
    # not be answered from a load made for its owner.
    return session if session is not None and session.user_id == user_id else None


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
