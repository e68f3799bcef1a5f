"""Sign-up, sign-in (JSON, and the OAuth2 token endpoint), refresh and sign-out."""

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response, status
from fastapi.responses import JSONResponse

from app.api.cookies import (
    CSRF_COOKIE,
    CSRF_HEADER,
    REFRESH_COOKIE,
    clear_session_cookies,
    set_session_cookies,
)
from app.api.deps import client_of, services_of
from app.api.routing import Caller, DeclaredRoute, declare, principal_of
from app.api.v1.prefix import API_V1
from app.core import errors
from app.domain.principals import CsrfProof
from app.schemas.auth import (
    PASSWORD_GRANT,
    REFRESH_GRANT,
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    TokenForm,
    TokenResponse,
)
from app.schemas.common import Accepted
from app.schemas.user import UserCreate, UserRead
from app.services.auth import TokenPair
from app.services.rate_limit import API, LOGIN, REFRESH, REGISTER

router = APIRouter(prefix=f"{API_V1}/auth", tags=["auth"], route_class=DeclaredRoute)
_SIGN_IN_ERRORS = (errors.InvalidCredentials, errors.AccountLocked, errors.EmailNotVerified)
_GRANT_ERRORS = (errors.InvalidToken, errors.SessionRevoked, errors.RefreshTokenReused)
# A refresh by cookie also needs the CSRF token; with no body and no cookie there is no token.
_REFRESH_ERRORS = (*_GRANT_ERRORS, errors.CsrfFailed, errors.NotAuthenticated)


def _tokens(request: Request, pair: TokenPair, *, cookies: bool) -> Response:
    """The token body, and with `cookies` the same tokens as cookies for browser clients.

    Serialized once here: returned as a model, FastAPI would validate it a second time against
    the response model, on the two paths that every client calls most after /users/me.
    """
    body = TokenResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=int((pair.access_expires_at - pair.issued_at).total_seconds()),
    )
    response = Response(body.model_dump_json(), media_type="application/json")
    if cookies:
        set_session_cookies(response, pair, services_of(request).settings)
    return response


# Routes are matched in order, on every request: refresh, which every client calls, comes first.
@router.post("/refresh", response_model=TokenResponse)
@declare(caller=Caller.ANYONE, limit=REFRESH, errors=_REFRESH_ERRORS)
async def refresh(request: Request, body: RefreshRequest | None = None) -> Response:
    """Exchange a refresh token for a new pair; the presented token stops working.

    Browsers may send no body: the refresh cookie is used, with the CSRF token in X-CSRF-Token.
    OAuth2 clients refresh at the token endpoint, `login-form`, with the refresh_token grant.
    """
    csrf: CsrfProof | None = None
    if body is not None:
        token = body.refresh_token
    else:
        token = request.cookies.get(REFRESH_COOKIE, "")
        if not token:
            raise errors.NotAuthenticated
        csrf = CsrfProof(
            header=request.headers.get(CSRF_HEADER), cookie=request.cookies.get(CSRF_COOKIE)
        )
    pair = await services_of(request).auth.refresh(refresh_token=token, csrf=csrf)
    return _tokens(request, pair, cookies=True)


_CHECK_YOUR_INBOX = Accepted(detail="Check your inbox: a mail tells you how to go on.")


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserRead,
    responses={
        202: {
            "model": Accepted,
            "description": "With REQUIRE_VERIFIED_EMAIL, always: new address or known one.",
        }
    },
)
@declare(
    caller=Caller.ANYONE,
    limit=REGISTER,
    errors=(
        errors.EmailTaken,
        errors.UsernameTaken,
        errors.PasswordRejected,
        errors.PasswordCheckUnavailable,
    ),
)
async def register(request: Request, body: UserCreate) -> Response:
    """Create an account and mail a link to verify its address. `is_admin` / `is_active` in
    the body are ignored.

    With REQUIRE_VERIFIED_EMAIL the answer is 202 whether the address is new or has an
    account (whose owner gets a notice instead), so that registering tells no one which
    addresses are known.
    """
    services = services_of(request)
    account = await services.auth.register(body)
    if services.settings.REQUIRE_VERIFIED_EMAIL:
        return JSONResponse(_CHECK_YOUR_INBOX.model_dump(), status_code=202)
    assert account is not None, "without required verification a taken email raises"
    return JSONResponse(UserRead.model_validate(account).model_dump(mode="json"), status_code=201)


@router.post("/login", response_model=TokenResponse)
@declare(caller=Caller.ANYONE, limit=LOGIN, errors=_SIGN_IN_ERRORS)
async def login(request: Request, body: LoginRequest) -> Response:
    """Sign in with a JSON body of email and password."""
    pair = await services_of(request).auth.login(
        email=body.email, password=body.password, client=client_of(request)
    )
    return _tokens(request, pair, cookies=True)


@router.post("/login-form", response_model=TokenResponse)
@declare(
    caller=Caller.ANYONE,
    limit=LOGIN,
    errors=(*_SIGN_IN_ERRORS, *_GRANT_ERRORS, errors.UnsupportedGrantType),
    token_endpoint=True,
)
async def login_form(request: Request, form: Annotated[TokenForm, Form()]) -> Response:
    """The OAuth2 token endpoint: the password grant (the form's `username` carries the
    email) and the refresh_token grant, with RFC 6749 errors.

    It sets no cookies: a form can be posted cross-site without a preflight, so cookies from
    it would let another site sign a browser into the attacker's account.
    """
    auth = services_of(request).auth
    if form.grant_type == PASSWORD_GRANT:
        pair = await auth.login(
            email=form.username or "",
            password=form.password or "",
            client=client_of(request),
        )
    elif form.grant_type == REFRESH_GRANT:
        pair = await auth.refresh(refresh_token=form.refresh_token or "")
    else:
        raise errors.UnsupportedGrantType
    return _tokens(request, pair, cookies=False)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
@declare(caller=Caller.USER, limit=API)
async def logout(request: Request, response: Response, body: LogoutRequest | None = None) -> None:
    """End this session (and the refresh token's session, if given); clear the cookies."""
    await services_of(request).auth.logout(
        principal_of(request), refresh_token=body.refresh_token if body else None
    )
    clear_session_cookies(response, services_of(request).settings)
