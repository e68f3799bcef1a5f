"""The caller's own profile, and the admin's user management."""

from functools import lru_cache
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from app.api.deps import (
    SESSION_BEARER_SECURITY,
    ContextDep,
    CurrentAdmin,
    CurrentPrincipal,
    get_principal,
)
from app.api.v1.prefix import API_V1
from app.domain.accounts import Account, UserFilter
from app.schemas.user import AdminUserUpdate, ProfileUpdate, UserPage, UserRead
from app.services import users

router = APIRouter(prefix=f"{API_V1}/users", tags=["users"])


@lru_cache(maxsize=4096)
def _profile_json(account: Account) -> bytes:
    # The most frequent call of all. An Account is an immutable snapshot, reused from the auth
    # cache for up to a second, so its JSON is too; any change makes a new snapshot.
    return UserRead.model_validate(account).model_dump_json().encode()


@router.get("/me", response_model=UserRead, openapi_extra=SESSION_BEARER_SECURITY)
async def read_me(request: Request) -> Response:
    """The signed-in user."""
    principal = await get_principal(request)
    return Response(_profile_json(principal.account), media_type="application/json")


@router.put("/me")
async def update_me(
    body: ProfileUpdate, principal: CurrentPrincipal, context: ContextDep
) -> UserRead:
    """Change your username, email or password (the last two need `current_password`)."""
    account = await users.update_profile(context, principal=principal, changes=body)
    return UserRead.model_validate(account)


@router.get("/")
async def list_users(
    _: CurrentAdmin,
    context: ContextDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    search: Annotated[str | None, Query(min_length=1, max_length=254)] = None,
    is_active: bool | None = None,
    is_admin: bool | None = None,
) -> UserPage:
    """Admin: users, paginated, searchable by email or username, filterable by flags."""
    accounts, total = await users.list_users(
        context,
        where=UserFilter(search=search, is_active=is_active, is_admin=is_admin),
        limit=limit,
        offset=offset,
    )
    return UserPage(
        items=[UserRead.model_validate(account) for account in accounts],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.put("/{user_id}")
async def update_user(
    user_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: AdminUserUpdate,
    admin: CurrentAdmin,
    context: ContextDep,
) -> UserRead:
    """Admin: change any user's identity, password, active or admin flag."""
    account = await users.admin_update_user(context, actor=admin, user_id=user_id, changes=body)
    return UserRead.model_validate(account)
