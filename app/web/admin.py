"""The admin console: an overview, the users table, and each user's page with their sessions
and access."""

from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import RedirectResponse

from app.api.deps import services_of
from app.api.routing import Caller, declare, principal_of
from app.core import errors
from app.domain.accounts import UserFilter
from app.schemas.user import AdminUserUpdate
from app.services.rate_limit import API, MAIL
from app.web.forms import form_fields
from app.web.routing import PageRoute
from app.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PAGE_SIZE = 25
UserId = Annotated[int, Path(ge=1, le=2**31 - 1)]
YesNo = Annotated[Literal["", "yes", "no"], Query()]
_CHANGES = {
    "activate": AdminUserUpdate(is_active=True),
    "deactivate": AdminUserUpdate(is_active=False),
    "promote": AdminUserUpdate(is_admin=True),
    "demote": AdminUserUpdate(is_admin=False),
    "verify": AdminUserUpdate(is_verified=True),
}
_DONE = {
    "activate": "The user is active again.",
    "deactivate": "The user is deactivated; their sessions have ended.",
    "promote": "The user is now an administrator.",
    "demote": "The user is no longer an administrator.",
    "revoked": "The session is revoked.",
    "revoked-all": "Every session of the user is revoked.",
    "verify": "The user's email address is marked as confirmed.",
    "verification-sent": "A new link to confirm the address is on its way to it; older links "
    "stop working.",
}


def _flag(value: str) -> bool | None:
    return None if value == "" else value == "yes"


@router.get("/admin/")
@declare(caller=Caller.ADMIN, limit=API)
async def overview(request: Request) -> Response:
    services = services_of(request)
    _, users = await services.users.list_users(UserFilter(), limit=1, offset=0)
    sign_ins, failures = services.recent_sign_ins.last_hour()
    return render(
        request,
        "admin/overview.html",
        {
            "users": users,
            "live_sessions": await services.sessions.count_live(),
            "sign_ins": sign_ins,
            "failures": failures,
        },
    )


@router.get("/admin/users")
@declare(caller=Caller.ADMIN, limit=API)
async def users_page(
    request: Request,
    search: Annotated[str, Query(max_length=254)] = "",
    active: YesNo = "",
    admin: YesNo = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    where = UserFilter(search=search or None, is_active=_flag(active), is_admin=_flag(admin))
    offset = (page - 1) * PAGE_SIZE
    items, total = await services_of(request).users.list_users(
        where, limit=PAGE_SIZE, offset=offset
    )

    def page_link(number: int) -> str:
        query = {"search": search, "active": active, "admin": admin, "page": number}
        return "/admin/users?" + urlencode({k: v for k, v in query.items() if v})

    return render(
        request,
        "admin/users.html",
        {
            "items": items,
            "total": total,
            "first": offset + 1,
            "last": offset + len(items),
            "search": search,
            "active": active,
            "admin": admin,
            "previous_page": page - 1 if page > 1 else None,
            "next_page": page + 1 if offset + len(items) < total else None,
            "page_link": page_link,
        },
    )


async def _user_page(
    request: Request, user_id: int, *, message: str = "", error: bool = False, status: int = 200
) -> Response:
    services = services_of(request)
    user = await services.users.get_user(user_id)
    sessions = await services.sessions.list_for_user(user_id)
    return render(
        request,
        "admin/user.html",
        {"user": user, "sessions": sessions, "message": message, "error": error},
        status=status,
    )


@router.get("/admin/users/{user_id}")
@declare(caller=Caller.ADMIN, limit=API, errors=(errors.UserNotFound,))
async def user_page(
    request: Request, user_id: UserId, done: Annotated[str, Query(max_length=32)] = ""
) -> Response:
    return await _user_page(request, user_id, message=_DONE.get(done, ""))


@router.post("/admin/users/{user_id}/access")
@declare(caller=Caller.ADMIN, limit=API, errors=(errors.UserNotFound, errors.LastAdmin))
async def change_access(request: Request, user_id: UserId) -> Response:
    change = (await form_fields(request)).get("change", "")
    if change not in _CHANGES:
        return await _user_page(
            request, user_id, message="Choose one of the buttons.", error=True, status=400
        )
    try:
        await services_of(request).users.admin_update_user(
            principal_of(request), user_id, _CHANGES[change]
        )
    except errors.LastAdmin as refused:
        return await _user_page(request, user_id, message=refused.detail, error=True, status=409)
    return RedirectResponse(f"/admin/users/{user_id}?done={change}", status_code=303)


@router.post("/admin/users/{user_id}/verification")
@declare(caller=Caller.ADMIN, limit=MAIL, errors=(errors.UserNotFound, errors.AlreadyVerified))
async def resend_verification(request: Request, user_id: UserId) -> Response:
    try:
        await services_of(request).users.send_verification(user_id)
    except errors.AlreadyVerified as verified:
        return await _user_page(request, user_id, message=verified.detail, error=True, status=409)
    return RedirectResponse(f"/admin/users/{user_id}?done=verification-sent", status_code=303)


@router.post("/admin/users/{user_id}/sessions/revoke")
@declare(caller=Caller.ADMIN, limit=API, errors=(errors.UserNotFound, errors.SessionNotFound))
async def revoke_session(request: Request, user_id: UserId) -> Response:
    session_id = (await form_fields(request)).get("session_id", "")
    if not 0 < len(session_id) <= 64:
        raise errors.SessionNotFound
    await services_of(request).sessions.revoke_for_user(
        user_id, session_id, by=principal_of(request)
    )
    return RedirectResponse(f"/admin/users/{user_id}?done=revoked", status_code=303)


@router.post("/admin/users/{user_id}/sessions/revoke-all")
@declare(caller=Caller.ADMIN, limit=API, errors=(errors.UserNotFound,))
async def revoke_all_sessions(request: Request, user_id: UserId) -> Response:
    await services_of(request).sessions.revoke_all_for_user(user_id, by=principal_of(request))
    return RedirectResponse(f"/admin/users/{user_id}?done=revoked-all", status_code=303)
