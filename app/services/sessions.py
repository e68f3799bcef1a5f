"""A user's view of their own sessions."""

from app.core.errors import SessionNotFound
from app.core.events import SecurityEvent
from app.domain.principals import Principal
from app.domain.sessions import SessionRecord
from app.services.context import ServiceContext


async def list_sessions(ctx: ServiceContext, *, principal: Principal) -> list[SessionRecord]:
    """The caller's live sessions, newest first."""
    return await ctx.sessions.list_live(principal.account.id, ctx.clock.now())


async def revoke_session(ctx: ServiceContext, *, principal: Principal, session_id: str) -> None:
    """End one of the caller's sessions; anyone else's is reported as not found."""
    if not await ctx.sessions.revoke(session_id, user_id=principal.account.id, now=ctx.clock.now()):
        raise SessionNotFound
    ctx.session_cache.discard(session_id)
    ctx.events.emit(
        SecurityEvent.SESSION_REVOKED,
        user_id=principal.account.id,
        session_id=session_id,
        reason="user_revoked",
    )
