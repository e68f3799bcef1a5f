"""The account's life by email: verify an address, recover a forgotten password, confirm or
undo an email change. Named as fastapi-users names them, so that its clients carry over."""

from fastapi import APIRouter, Request, status

from app.api.deps import services_of
from app.api.routing import Caller, DeclaredRoute, declare
from app.api.v1.prefix import API_V1
from app.core import errors
from app.domain.mail import TokenPurpose
from app.schemas.common import Accepted
from app.schemas.email import AddressRequest, NewPasswordWithToken, TokenRequest
from app.schemas.user import UserRead
from app.services.rate_limit import LOGIN, MAIL

# Routes that send mail spend the `mail` budget; those that take a mailed token spend the
# `login` one, as presenting a token is presenting a credential.
router = APIRouter(prefix=f"{API_V1}/auth", tags=["auth"], route_class=DeclaredRoute)
_QUEUED = Accepted(detail="If an account has this address, a mail is on its way to it.")


async def _queue(request: Request, kind: TokenPurpose, email: str) -> Accepted:
    await services_of(request).mail_requests.request(kind, email)
    return _QUEUED


@router.post("/request-verify-token", status_code=status.HTTP_202_ACCEPTED)
@declare(caller=Caller.ANYONE, limit=MAIL)
async def request_verify_token(request: Request, body: AddressRequest) -> Accepted:
    """Send a new verification link to this address, if an unverified account has it."""
    return await _queue(request, TokenPurpose.VERIFY_EMAIL, body.email)


@router.post("/verify")
@declare(caller=Caller.ANYONE, limit=LOGIN, errors=errors.EMAIL_TOKEN_ERRORS)
async def verify(request: Request, body: TokenRequest) -> UserRead:
    """Verify the address with the token its mail carried."""
    return UserRead.model_validate(await services_of(request).emails.verify(body.token))


@router.post("/forgot-password", status_code=status.HTTP_202_ACCEPTED)
@declare(caller=Caller.ANYONE, limit=MAIL)
async def forgot_password(request: Request, body: AddressRequest) -> Accepted:
    """Send a password-reset link to this address, if an account has it; earlier links stop
    working."""
    return await _queue(request, TokenPurpose.RESET_PASSWORD, body.email)


@router.post("/reset-password")
@declare(
    caller=Caller.ANYONE,
    limit=LOGIN,
    errors=(*errors.EMAIL_TOKEN_ERRORS, errors.PasswordRejected, errors.PasswordCheckUnavailable),
)
async def reset_password(request: Request, body: NewPasswordWithToken) -> Accepted:
    """Set a new password with the token of a reset mail: every session ends, the sign-in
    lockout lifts, and the owner gets a notice."""
    await services_of(request).emails.reset_password(body.token, body.password)
    return Accepted(detail="Your password is changed; sign in with it.")


@router.post("/confirm-email-change")
@declare(caller=Caller.ANYONE, limit=LOGIN, errors=(*errors.EMAIL_TOKEN_ERRORS, errors.EmailTaken))
async def confirm_email_change(request: Request, body: TokenRequest) -> UserRead:
    """Make the new address the account's, with the token mailed to it; the old address gets
    a notice with a link to undo the change."""
    return UserRead.model_validate(
        await services_of(request).emails.confirm_email_change(body.token)
    )


@router.post("/undo-email-change")
@declare(caller=Caller.ANYONE, limit=LOGIN, errors=errors.EMAIL_TOKEN_ERRORS)
async def undo_email_change(request: Request, body: TokenRequest) -> UserRead:
    """Put the old address back with the token of the notice sent to it; every session ends."""
    return UserRead.model_validate(await services_of(request).emails.undo_email_change(body.token))
