"""The caller's own profile, and the admin's user management."""

from functools import lru_cache
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from app.api.deps import services_of
from app.api.routing import Caller, DeclaredRoute, declare, principal_of
from app.api.v1.prefix import API_V1
from app.core import errors
from app.domain.accounts import Account, UserFilter
from app.schemas.user import AdminUserUpdate, ProfileUpdate, UserPage, UserRead
from app.services.rate_limit import API

router = APIRouter(prefix=f"{API_V1}/users", tags=["users"], route_class=DeclaredRoute)
_IDENTITY_ERRORS = (
    errors.EmailTaken,
    errors.UsernameTaken,
    errors.PasswordRejected,
    errors.PasswordCheckUnavailable,
)


@lru_cache(maxsize=4096)
def _profile_json(account: Account) -> bytes:
    # The most frequent call of all. An Account is an immutable snapshot, reused from the auth
    # cache for up to a second, so its JSON is too; any change makes a new snapshot.
    return UserRead.model_validate(account).model_dump_json().encode()


@router.get("/me", response_model=UserRead)
@declare(caller=Caller.USER, limit=API)
async def read_me(request: Request) -> Response:
    """The signed-in user."""
    return Response(_profile_json(principal_of(request).account), media_type="application/json")


@router.put("/me")
@declare(
    caller=Caller.USER,
    limit=API,
    errors=(*_IDENTITY_ERRORS, errors.CurrentPasswordInvalid, errors.UserNotFound),
)
async def update_me(request: Request, body: ProfileUpdate) -> UserRead:
    """Change your username, email or password (the last two need `current_password`)."""
    account = await services_of(request).users.update_profile(principal_of(request), body)
    return UserRead.model_validate(account)


@router.get("/")
@declare(caller=Caller.ADMIN, limit=API)
async def list_users(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    search: Annotated[str | None, Query(min_length=1, max_length=254)] = None,
    is_active: bool | None = None,
    is_admin: bool | None = None,
) -> UserPage:
    """Admin: users, paginated, searchable by email or username, filterable by flags."""
    accounts, total = await services_of(request).users.list_users(
        UserFilter(search=search, is_active=is_active, is_admin=is_admin),
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
@declare(
    caller=Caller.ADMIN,
    limit=API,
    errors=(*_IDENTITY_ERRORS, errors.UserNotFound, errors.LastAdmin),
)
async def update_user(
    request: Request,
    user_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: AdminUserUpdate,
) -> UserRead:
    """Admin: change any user's identity, password, active or admin flag."""
    account = await services_of(request).users.admin_update_user(
        principal_of(request), user_id, body
    )
    return UserRead.model_validate(account)
