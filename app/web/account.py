"""The account pages: sign in, register, sign out, your profile, your devices, and leaving."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.api.cookies import (
    CSRF_COOKIE,
    REFRESH_COOKIE,
    clear_session_cookies,
    set_session_cookies,
)
from app.api.deps import client_of, services_of
from app.api.routing import Caller, declare, principal_of
from app.core import errors
from app.domain.accounts import Account
from app.domain.mail import TokenPurpose
from app.schemas.auth import SignInEmail
from app.schemas.user import Email, NewPassword, Password, ProfileUpdate, UserCreate, Username
from app.services.rate_limit import API, LOGIN, MAIL, REFRESH, REGISTER
from app.web import recovery
from app.web.forms import form_fields, kept, validate
from app.web.outcomes import (
    PROFILE_DONE,
    SIGN_IN_DONE,
    done_message,
    retry_headers,
    see_other,
    try_again_later,
)
from app.web.routing import CONTINUE_PATH, PageRoute, safe_return_path, sign_in_redirect
from app.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)
# The pages the account's mails link to come with these.
router.include_router(recovery.router)
NextPath = Annotated[str | None, Query(max_length=512)]


class SignInForm(BaseModel):
    model_config = ConfigDict(extra="ignore")

    email: SignInEmail
    password: Password
    next: Annotated[str, Field(max_length=512)] = ""


class IdentityForm(BaseModel):
    model_config = ConfigDict(extra="ignore")

    username: Username
    email: Email
    current_password: Annotated[str, Field(max_length=1024)] = ""


class DeletionForm(BaseModel):
    model_config = ConfigDict(extra="ignore")

    password: Password
    confirm: Annotated[str, Field(pattern="^yes$")]


class PasswordForm(BaseModel):
    model_config = ConfigDict(extra="ignore")

    password_current: Password
    new_password: NewPassword
    confirm_password: Password


@router.get("/account/")
@declare(caller=Caller.USER)
async def account_home(request: Request) -> Response:
    return see_other("/account/profile")


@router.get("/account/sign-in")
@declare(caller=Caller.ANYONE)
async def sign_in_page(request: Request, next: NextPath = None, done: NextPath = None) -> Response:
    back = safe_return_path(next)
    if request.scope["state"].get("principal") is not None:
        return see_other(back)
    return render(
        request,
        "account/sign_in.html",
        {"next": back, "values": {}, "errors": {}, "message": done_message(done), "error": False},
    )


@router.post("/account/sign-in")
@declare(caller=Caller.ANYONE, limit=LOGIN)
async def sign_in(request: Request) -> Response:
    fields = await form_fields(request)
    form, problems = validate(SignInForm, fields)
    back = safe_return_path(fields.get("next"))
    context = {"next": back, "values": kept(fields, "email"), "error": True}
    if form is None:
        return render(
            request,
            "account/sign_in.html",
            {**context, "errors": problems, "message": "Enter your email and password."},
            status=400,
        )
    services = services_of(request)
    try:
        pair = await services.auth.login(
            email=form.email, password=form.password, client=client_of(request)
        )
    except errors.RateLimited as refusal:
        return render(
            request,
            "account/sign_in.html",
            {**context, "errors": {}, "message": f"{refusal.detail} Try again in "
             f"{refusal.retry_after} seconds."},
            status=429,
            headers={"Retry-After": str(refusal.retry_after)},
        )  # fmt: skip
    except errors.InvalidCredentials as wrong:
        return render(
            request,
            "account/sign_in.html",
            {**context, "errors": {}, "message": wrong.detail},
            status=401,
        )
    except errors.EmailNotVerified as unverified:
        return render(
            request,
            "account/sign_in.html",
            {**context, "errors": {}, "message": unverified.detail, "unverified": form.email},
            status=403,
        )
    response = see_other(back)
    set_session_cookies(response, pair, services.settings)
    return response


@router.get("/account/register")
@declare(caller=Caller.ANYONE)
async def register_page(request: Request) -> Response:
    return render(
        request,
        "account/register.html",
        {"values": {}, "errors": {}, "message": "", "min_length": _min_length(request)},
    )


def _min_length(request: Request) -> int:
    return services_of(request).settings.PASSWORD_MIN_LENGTH


@router.post("/account/register")
@declare(caller=Caller.ANYONE, limit=REGISTER)
async def register(request: Request) -> Response:
    fields = await form_fields(request)
    form, problems = validate(UserCreate, fields)
    if form is not None:
        try:
            await services_of(request).auth.register(form)
            return see_other("/account/sign-in?done=registered")
        except errors.EmailTaken as taken:
            problems = {"email": taken.detail}
        except errors.UsernameTaken as taken:
            problems = {"username": taken.detail}
        except errors.PasswordRejected as rejected:
            problems = {"password": rejected.detail}
    return render(
        request,
        "account/register.html",
        {
            "values": kept(fields, "email", "username"),
            "errors": problems,
            "message": "Please correct the fields marked below.",
            "min_length": _min_length(request),
        },
        status=409 if set(problems) & {"email", "username"} and form is not None else 400,
    )


@router.post("/account/sign-out")
@declare(caller=Caller.USER, limit=API)
async def sign_out(request: Request) -> Response:
    services = services_of(request)
    await services.auth.logout(principal_of(request), refresh_token=None)
    response = see_other("/account/sign-in?done=signed-out")
    clear_session_cookies(response, services.settings)
    return response


def _profile(
    request: Request,
    account: Account,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: object,
) -> Response:
    values: dict[str, object] = {
        "account": account,
        "identity": {},
        "identity_errors": {},
        "password_errors": {},
        "message": "",
        "error": False,
        "min_length": _min_length(request),
        **context,
    }
    return render(request, "account/profile.html", values, status=status, headers=headers)


@router.get("/account/profile")
@declare(caller=Caller.USER, limit=API)
async def profile_page(request: Request, done: NextPath = None) -> Response:
    return _profile(request, principal_of(request).account, message=done_message(done))


def _identity_change(form: IdentityForm, account: Account) -> ProfileUpdate:
    """Only what changed: an unchanged email needs no password (and sends no mail)."""
    if form.email == account.email:
        return ProfileUpdate(username=form.username)
    return ProfileUpdate(
        username=form.username, email=form.email, current_password=form.current_password or None
    )


@router.post("/account/profile")
@declare(
    caller=Caller.USER,
    limit=API,
    errors=(
        errors.EmailTaken,
        errors.UsernameTaken,
        errors.CurrentPasswordInvalid,
        errors.PasswordRejected,
    ),
)
async def update_profile(request: Request) -> Response:
    principal = principal_of(request)
    fields = await form_fields(request)
    if fields.get("form") == "password":
        return await _change_password(request, fields)
    form, problems = validate(IdentityForm, fields)
    shown = kept(fields, "username", "email")
    if form is not None:
        try:
            change = _identity_change(form, principal.account)
        except ValidationError:
            problems = {"current_password": "Enter your current password to change your email."}
        else:
            try:
                await services_of(request).users.update_profile(principal, change)
                # A new address is the account's once confirmed from it.
                done = "saved" if change.email is None else "email-change-sent"
                return see_other(f"{PROFILE_DONE}{done}")
            except errors.EmailTaken as taken:
                problems = {"email": taken.detail}
            except errors.UsernameTaken as taken:
                problems = {"username": taken.detail}
            except errors.CurrentPasswordInvalid as wrong:
                problems = {"current_password": wrong.detail}
    return _profile(
        request,
        principal.account,
        status=400,
        identity=shown,
        identity_errors=problems,
        message="Your changes are not saved: please correct the fields marked below.",
        error=True,
    )


async def _change_password(request: Request, fields: dict[str, str]) -> Response:
    principal = principal_of(request)
    form, problems = validate(PasswordForm, fields)
    if form is not None and form.new_password != form.confirm_password:
        problems = {"confirm_password": "The two new passwords differ."}
    elif form is not None:
        change = ProfileUpdate(password=form.new_password, current_password=form.password_current)
        try:
            await services_of(request).users.update_profile(principal, change)
            return see_other("/account/profile?done=password-changed")
        except errors.CurrentPasswordInvalid as wrong:
            problems = {"password_current": wrong.detail}
        except errors.PasswordRejected as rejected:
            problems = {"new_password": rejected.detail}
    return _profile(
        request,
        principal.account,
        status=400,
        password_errors=problems,
        message="Your password is not changed: please correct the fields marked below.",
        error=True,
    )


@router.post("/account/profile/send-verification")
@declare(caller=Caller.USER, limit=MAIL)
async def send_verification(request: Request) -> Response:
    account = principal_of(request).account
    if account.is_verified:
        return see_other(f"{PROFILE_DONE}verified")
    try:
        await services_of(request).mail_requests.request(TokenPurpose.VERIFY_EMAIL, account.email)
    except errors.RateLimited as refusal:
        return _profile(
            request,
            account,
            status=429,
            headers=retry_headers(refusal),
            message=try_again_later(refusal),
            error=True,
        )
    return see_other(f"{PROFILE_DONE}verification-sent")


def _deletion(
    request: Request,
    *,
    status: int = 200,
    problems: dict[str, str] | None = None,
    message: str = "",
) -> Response:
    return render(
        request,
        "account/delete.html",
        {"errors": problems or {}, "message": message},
        status=status,
    )


@router.get("/account/delete")
@declare(caller=Caller.USER, limit=API)
async def delete_page(request: Request) -> Response:
    return _deletion(request)


@router.post("/account/delete")
@declare(
    caller=Caller.USER,
    limit=API,
    errors=(errors.CurrentPasswordInvalid, errors.LastAdmin, errors.UserNotFound),
)
async def delete_account(request: Request) -> Response:
    form, problems = validate(DeletionForm, await form_fields(request))
    if "confirm" in problems:
        problems["confirm"] = "Tick the box to confirm that the account is to be deleted."
    if form is not None:
        services = services_of(request)
        try:
            await services.users.delete_account(principal_of(request), form.password)
        except errors.CurrentPasswordInvalid as wrong:
            problems = {"password": wrong.detail}
        except errors.LastAdmin as refused:
            return _deletion(request, status=409, message=refused.detail)
        else:
            response = see_other(f"{SIGN_IN_DONE}account-deleted")
            clear_session_cookies(response, services.settings)
            return response
    return _deletion(
        request,
        status=400,
        problems=problems,
        message="Your account is not deleted: please correct the fields marked below.",
    )


@router.get("/account/devices")
@declare(caller=Caller.USER, limit=API)
async def devices_page(request: Request, done: NextPath = None) -> Response:
    principal = principal_of(request)
    sessions = await services_of(request).sessions.list_sessions(principal)
    return render(
        request, "account/devices.html", {"sessions": sessions, "message": done_message(done)}
    )


@router.post("/account/devices/sign-out")
@declare(caller=Caller.USER, limit=API, errors=(errors.SessionNotFound,))
async def sign_out_device(request: Request) -> Response:
    session_id = (await form_fields(request)).get("session_id", "")
    if not 0 < len(session_id) <= 64:
        raise errors.SessionNotFound
    await services_of(request).sessions.revoke_session(principal_of(request), session_id)
    return see_other("/account/devices?done=device-signed-out")


@router.post("/account/devices/sign-out-others")
@declare(caller=Caller.USER, limit=API)
async def sign_out_other_devices(request: Request) -> Response:
    await services_of(request).sessions.revoke_others(principal_of(request))
    return see_other("/account/devices?done=others-signed-out")


@router.get(CONTINUE_PATH)
@declare(caller=Caller.ANYONE, limit=REFRESH)
async def continue_session(request: Request, next: NextPath = None) -> Response:
    """Renew an expired access cookie from the refresh cookie, then go back to the page.

    A navigation, so no CSRF header can come with it: it must come from this site's own pages
    (Sec-Fetch-Site), as a redirect from one of them does; another site's link only leads to
    the sign-in page.
    """
    back = safe_return_path(next)
    token = request.cookies.get(REFRESH_COOKIE)
    site = request.headers.get("sec-fetch-site")
    if not token or site not in ("same-origin", "none") or not request.cookies.get(CSRF_COOKIE):
        return sign_in_redirect(back)
    services = services_of(request)
    try:
        pair = await services.auth.refresh(refresh_token=token)
    except (errors.InvalidToken, errors.SessionRevoked, errors.RefreshTokenReused):
        response = sign_in_redirect(back)
        clear_session_cookies(response, services.settings)
        return response
    response = see_other(back)
    set_session_cookies(response, pair, services.settings)
    return response
