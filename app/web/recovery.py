"""The pages the account's mails link to: ask for a reset link, choose a new password, and
confirm an address, a new address or the undoing of a change.

A mailed link only opens a page: mail scanners fetch the links of a mail before its reader
does, so a token is spent by the page's button (a POST), never by the GET.
"""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from app.api.cookies import clear_session_cookies
from app.api.deps import services_of
from app.api.routing import Caller, declare
from app.core import errors
from app.domain.accounts import Account
from app.domain.mail import TokenPurpose
from app.domain.principals import Principal
from app.schemas.email import EmailTokenText
from app.schemas.user import Email, NewPassword, Password
from app.services.account_emails import (
    CONFIRM_EMAIL_PATH,
    RESET_PATH,
    UNDO_EMAIL_PATH,
    VERIFY_PATH,
)
from app.services.rate_limit import LOGIN, MAIL
from app.web.forms import form_fields, kept, validate
from app.web.outcomes import (
    PROFILE_DONE,
    SIGN_IN_DONE,
    done_message,
    retry_headers,
    see_other,
    try_again_later,
)
from app.web.routing import PageRoute
from app.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)
FORGOT_PATH = "/account/forgot-password"
SEND_VERIFICATION_PATH = "/account/send-verification"
_TOKEN: TypeAdapter[str] = TypeAdapter(EmailTokenText)
_MALFORMED = errors.EmailTokenInvalid.detail


class AddressForm(BaseModel):
    model_config = ConfigDict(extra="ignore")

    email: Email


class ResetForm(BaseModel):
    model_config = ConfigDict(extra="ignore")

    password: NewPassword
    confirm_password: Password


def _well_formed(token: str) -> bool:
    """Whether `token` has the shape of a mailed token (whether it is good, the service says)."""
    try:
        _TOKEN.validate_python(token)
    except ValidationError:
        return False
    return True


def _min_length(request: Request) -> int:
    return services_of(request).settings.PASSWORD_MIN_LENGTH


# --- forgot password ---------------------------------------------------------------------


def _forgot_page(
    request: Request,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: object,
) -> Response:
    values: dict[str, object] = {"values": {}, "errors": {}, "message": "", "error": False}
    return render(
        request,
        "account/forgot_password.html",
        values | context,
        status=status,
        headers=headers,
    )


@router.get(FORGOT_PATH)
@declare(caller=Caller.ANYONE)
async def forgot_password_page(request: Request) -> Response:
    done = request.query_params.get("done")
    return _forgot_page(request, message=done_message(done))


@router.post(FORGOT_PATH)
@declare(caller=Caller.ANYONE, limit=MAIL)
async def forgot_password(request: Request) -> Response:
    fields = await form_fields(request)
    form, problems = validate(AddressForm, fields)
    shown = kept(fields, "email")
    if form is None:
        return _forgot_page(
            request,
            status=400,
            errors=problems,
            message="Enter the email address of your account.",
            values=shown,
            error=True,
        )
    try:
        await services_of(request).mail_requests.request(TokenPurpose.RESET_PASSWORD, form.email)
    except errors.RateLimited as refusal:
        return _forgot_page(
            request,
            status=429,
            headers=retry_headers(refusal),
            message=try_again_later(refusal),
            values=shown,
            error=True,
        )
    # The same answer whether or not an account has the address.
    return see_other(f"{FORGOT_PATH}?done=reset-link-sent")


@router.post(SEND_VERIFICATION_PATH)
@declare(caller=Caller.ANYONE, limit=MAIL)
async def send_verification(request: Request) -> Response:
    """A new verification link, asked for from the sign-in page when the address must be
    confirmed first. Anyone can post an address here, so the answer never tells whether an
    unconfirmed account has it."""
    fields = await form_fields(request)
    form, problems = validate(AddressForm, fields)
    context = {"next": "/account/", "values": kept(fields, "email"), "error": True}
    if form is None:
        return render(
            request,
            "account/sign_in.html",
            {**context, "errors": problems, "message": "Enter the email address of your account."},
            status=400,
        )
    try:
        await services_of(request).mail_requests.request(TokenPurpose.VERIFY_EMAIL, form.email)
    except errors.RateLimited as refusal:
        return render(
            request,
            "account/sign_in.html",
            {**context, "errors": {}, "message": try_again_later(refusal)},
            status=429,
            headers=retry_headers(refusal),
        )
    return see_other(f"{SIGN_IN_DONE}verification-link-sent")


# --- choose a new password -------------------------------------------------------------------


def _link_problem(
    request: Request, detail: str, *, status: int = 400, what: str = "reset"
) -> Response:
    """The page for a link that cannot be used, with the way to a new one."""
    return render(
        request,
        "account/link_problem.html",
        {"detail": detail, "what": what},
        status=status,
    )


def _reset_page(request: Request, token: str, *, status: int = 200, **context: object) -> Response:
    values: dict[str, object] = {
        "token": token,
        "errors": {},
        "message": "",
        "min_length": _min_length(request),
    }
    return render(request, "account/reset_password.html", values | context, status=status)


@router.get(RESET_PATH)
@declare(caller=Caller.ANYONE)
async def reset_password_page(request: Request) -> Response:
    token = request.query_params.get("token", "")
    if not _well_formed(token):
        return _link_problem(request, _MALFORMED)
    return _reset_page(request, token)


@router.post(RESET_PATH)
@declare(
    caller=Caller.ANYONE,
    limit=LOGIN,
    errors=(*errors.EMAIL_TOKEN_ERRORS, errors.PasswordRejected, errors.PasswordCheckUnavailable),
)
async def reset_password(request: Request) -> Response:
    fields = await form_fields(request)
    token = fields.get("token", "")
    if not _well_formed(token):
        return _link_problem(request, _MALFORMED)
    form, problems = validate(ResetForm, fields)
    if form is not None and form.password != form.confirm_password:
        problems = {"confirm_password": "The two passwords differ."}
    elif form is not None:
        try:
            await services_of(request).emails.reset_password(token, form.password)
            return see_other(f"{SIGN_IN_DONE}password-reset")
        except errors.EMAIL_TOKEN_ERRORS as refused:
            return _link_problem(request, refused.detail)
        except errors.PasswordRejected as rejected:
            problems = {"password": rejected.detail}
    return _reset_page(
        request,
        token,
        status=400,
        errors=problems,
        message="Your password is not changed: please correct the fields marked below.",
    )


# --- confirm with one button -------------------------------------------------------------


@dataclass(frozen=True)
class TokenAction:
    """A page a mailed link opens, whose one button spends the token."""

    path: str
    title: str
    explanation: str
    button: str
    # What the link is for, to tell where a new one comes from (see link_problem.html).
    what: str
    done: str
    # Whether the service ends every session of the account.
    signs_out: bool = False


VERIFY = TokenAction(
    path=VERIFY_PATH,
    title="Confirm your email address",
    explanation="Confirm that this address is yours to finish setting up your account.",
    button="Confirm my address",
    what="verify",
    done="verified",
)
CONFIRM_EMAIL = TokenAction(
    path=CONFIRM_EMAIL_PATH,
    title="Confirm your new email address",
    explanation="Confirm the new address to make it your account's address. Your old address "
    "gets a notice with a link to undo the change.",
    button="Confirm the new address",
    what="change",
    done="email-confirmed",
)
UNDO_EMAIL = TokenAction(
    path=UNDO_EMAIL_PATH,
    title="Undo the email change",
    explanation="Put your old address back as your account's address. Every device signed in "
    "to the account is signed out; if you did not make the change, choose a new password "
    "too.",
    button="Undo the change",
    what="undo",
    done="email-restored",
    signs_out=True,
)


def _action_page(
    request: Request, action: TokenAction, token: str, *, status: int = 200, message: str = ""
) -> Response:
    return render(
        request,
        "account/token_action.html",
        {"action": action, "token": token, "message": message},
        status=status,
    )


def _after(
    request: Request, action: TokenAction, account: Account, principal: Principal | None
) -> Response:
    """Where the browser goes once the token is spent: the profile when the account's own
    session goes on, else the sign-in page."""
    own = principal is not None and principal.account.id == account.id
    if own and not action.signs_out:
        return see_other(f"{PROFILE_DONE}{action.done}")
    response = see_other(f"{SIGN_IN_DONE}{action.done}")
    if own:
        clear_session_cookies(response, services_of(request).settings)
    return response


async def _show(request: Request, action: TokenAction) -> Response:
    token = request.query_params.get("token", "")
    if not _well_formed(token):
        return _link_problem(request, _MALFORMED, what=action.what)
    return _action_page(request, action, token)


async def _spend(
    request: Request, action: TokenAction, spend: Callable[[str], Awaitable[Account]]
) -> Response:
    token = (await form_fields(request)).get("token", "")
    if not _well_formed(token):
        return _link_problem(request, _MALFORMED, what=action.what)
    # Read first: undoing an email change ends the session.
    principal: Principal | None = request.scope["state"].get("principal")
    try:
        account = await spend(token)
    except errors.EMAIL_TOKEN_ERRORS as refused:
        return _link_problem(request, refused.detail, what=action.what)
    except errors.EmailTaken:
        return _link_problem(
            request,
            "Another account has this address now, so it cannot become yours.",
            status=409,
            what=action.what,
        )
    return _after(request, action, account, principal)


@router.get(VERIFY.path)
@declare(caller=Caller.ANYONE)
async def verify_page(request: Request) -> Response:
    return await _show(request, VERIFY)


@router.post(VERIFY.path)
@declare(caller=Caller.ANYONE, limit=LOGIN, errors=errors.EMAIL_TOKEN_ERRORS)
async def verify(request: Request) -> Response:
    return await _spend(request, VERIFY, services_of(request).emails.verify)


@router.get(CONFIRM_EMAIL.path)
@declare(caller=Caller.ANYONE)
async def confirm_email_page(request: Request) -> Response:
    return await _show(request, CONFIRM_EMAIL)


@router.post(CONFIRM_EMAIL.path)
@declare(caller=Caller.ANYONE, limit=LOGIN, errors=(*errors.EMAIL_TOKEN_ERRORS, errors.EmailTaken))
async def confirm_email(request: Request) -> Response:
    return await _spend(request, CONFIRM_EMAIL, services_of(request).emails.confirm_email_change)


@router.get(UNDO_EMAIL.path)
@declare(caller=Caller.ANYONE)
async def undo_email_change_page(request: Request) -> Response:
    return await _show(request, UNDO_EMAIL)


@router.post(UNDO_EMAIL.path)
@declare(caller=Caller.ANYONE, limit=LOGIN, errors=errors.EMAIL_TOKEN_ERRORS)
async def undo_email_change(request: Request) -> Response:
    return await _spend(request, UNDO_EMAIL, services_of(request).emails.undo_email_change)
