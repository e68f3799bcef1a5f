"""The caller's sessions: list them, end one remotely."""

from typing import Annotated

from fastapi import APIRouter, Path, Request, status

from app.api.deps import services_of
from app.api.routing import Caller, DeclaredRoute, declare, principal_of
from app.api.v1.prefix import API_V1
from app.core import errors
from app.schemas.session import SessionRead
from app.services.rate_limit import API

router = APIRouter(prefix=f"{API_V1}/sessions", tags=["sessions"], route_class=DeclaredRoute)


@router.get("/")
@declare(caller=Caller.USER, limit=API)
async def list_sessions(request: Request) -> list[SessionRead]:
    """Your live sessions, newest first; `current` marks the one making this request."""
    principal = principal_of(request)
    records = await services_of(request).sessions.list_sessions(principal)
    return [SessionRead.of(record, current_session_id=principal.session_id) for record in records]


@router.delete("/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
@declare(caller=Caller.USER, limit=API, errors=(errors.SessionNotFound,))
async def revoke_session(
    request: Request, session_id: Annotated[str, Path(min_length=1, max_length=64)]
) -> None:
    """End one of your sessions; its tokens stop working on every instance within a second."""
    await services_of(request).sessions.revoke_session(principal_of(request), session_id)
