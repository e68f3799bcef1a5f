"""The caller's own profile, and the admin's user management."""

from functools import lru_cache
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from app.api.deps import services_of
from app.api.routing import Caller, DeclaredRoute, declare, principal_of
from app.api.v1.prefix import API_V1
from app.core import errors
from app.domain.accounts import Account, UserFilter
from app.schemas.common import Accepted
from app.schemas.export import AccountExportRead
from app.schemas.user import AccountDeletion, AdminUserUpdate, ProfileUpdate, UserPage, UserRead
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


@router.put(
    "/me",
    responses={202: {"model": UserRead, "description": "The email change awaits confirmation."}},
)
@declare(
    caller=Caller.USER,
    limit=API,
    errors=(
        errors.UsernameTaken,
        errors.PasswordRejected,
        errors.PasswordCheckUnavailable,
        errors.CurrentPasswordInvalid,
        errors.UserNotFound,
    ),
)
async def update_me(request: Request, body: ProfileUpdate, response: Response) -> UserRead:
    """Change your username, email or password (the last two need `current_password`).

    A new email is the account's once confirmed from that address: the answer is then 202,
    with the account as it stands (still the old email), and a link is on its way to the new
    one, unless another account has it (the answer does not say). Each new address spends
    its own mail budget. A new password ends your other sessions."""
    account = await services_of(request).users.update_profile(principal_of(request), body)
    if body.email is not None and body.email != account.email:
        response.status_code = status.HTTP_202_ACCEPTED
    return UserRead.model_validate(account)


@router.delete("/me", status_code=status.HTTP_204_NO_CONTENT)
@declare(
    caller=Caller.USER,
    limit=API,
    errors=(errors.CurrentPasswordInvalid, errors.LastAdmin, errors.UserNotFound),
)
async def delete_me(request: Request, body: AccountDeletion) -> None:
    """Delete your account, with your password: every session ends at once and your personal
    data is erased; a last notice goes to your address."""
    await services_of(request).users.delete_account(principal_of(request), body.password)


@router.get("/me/export", response_model=AccountExportRead)
@declare(caller=Caller.USER, limit=API, errors=(errors.UserNotFound,))
async def export_me(request: Request) -> Response:
    """Download what the service holds about you, as a JSON file: your profile, your live
    sessions and your latest security events. Your password is held only as a hash, which is
    not exported."""
    principal = principal_of(request)
    export = await services_of(request).users.export(principal)
    body = AccountExportRead.of(export, current_session_id=principal.session_id)
    stamp = export.exported_at.strftime("%Y%m%dT%H%M%SZ")
    return Response(
        body.model_dump_json(indent=2).encode(),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="account-{stamp}.json"'},
    )


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
    """Admin: change any user's identity, password, or active, admin or verified flag. A new
    email counts as unverified unless `is_verified` is set in the same change; the owner is
    told of a new email (at the old address) or password."""
    account = await services_of(request).users.admin_update_user(
        principal_of(request), user_id, body
    )
    return UserRead.model_validate(account)


@router.post("/{user_id}/request-verify-token", status_code=status.HTTP_202_ACCEPTED)
@declare(caller=Caller.ADMIN, limit=API, errors=(errors.UserNotFound, errors.AlreadyVerified))
async def resend_verification(
    request: Request, user_id: Annotated[int, Path(ge=1, le=2**31 - 1)]
) -> Accepted:
    """Admin: mail the user a new verification link; earlier ones stop working."""
    await services_of(request).users.send_verification(user_id)
    return Accepted(detail="A verification link is on its way to the user's address.")
