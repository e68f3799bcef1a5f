"""Sign-up, sign-in (JSON and OAuth2 form), refresh and sign-out."""

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response, status

from app.api.cookies import (
    CSRF_COOKIE,
    CSRF_HEADER,
    REFRESH_COOKIE,
    clear_session_cookies,
    set_session_cookies,
)
from app.api.deps import ContextDep, CurrentPrincipal, client_of, context_of
from app.api.v1.prefix import API_V1
from app.core.errors import NotAuthenticated
from app.schemas.auth import (
    LoginForm,
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    TokenResponse,
)
from app.schemas.user import UserCreate, UserRead
from app.services import auth
from app.services.auth import TokenPair
from app.services.context import CsrfProof, ServiceContext

router = APIRouter(prefix=f"{API_V1}/auth", tags=["auth"])


def _tokens(pair: TokenPair, context: ServiceContext, *, cookies: bool) -> Response:
    """The token body, and with `cookies` the same tokens as cookies for browser clients.

    Serialized once here: returned as a model, FastAPI would validate it a second time against
    the response model, on the two paths that every client calls most after /users/me.
    """
    body = TokenResponse(access_token=pair.access_token, refresh_token=pair.refresh_token)
    response = Response(body.model_dump_json(), media_type="application/json")
    if cookies:
        set_session_cookies(response, pair, context.settings, context.clock.now())
    return response


# Routes are matched in order, on every request: refresh, which every client calls, comes first.
@router.post("/refresh", response_model=TokenResponse)
async def refresh(request: Request, body: RefreshRequest | None = None) -> Response:
    """Exchange a refresh token for a new pair; the presented token stops working.

    Browsers may send no body: the refresh cookie is used, with the CSRF token in X-CSRF-Token.
    """
    if body is not None:
        token, csrf = body.refresh_token, None
    else:
        token = request.cookies.get(REFRESH_COOKIE, "")
        if not token:
            raise NotAuthenticated
        csrf = CsrfProof(
            header=request.headers.get(CSRF_HEADER), cookie=request.cookies.get(CSRF_COOKIE)
        )
    context = context_of(request)
    pair = await auth.refresh(context, refresh_token=token, csrf=csrf)
    return _tokens(pair, context, cookies=True)


@router.post("/register", status_code=status.HTTP_201_CREATED)
async def register(body: UserCreate, context: ContextDep) -> UserRead:
    """Create an account. `is_admin` / `is_active` in the body are ignored."""
    return UserRead.model_validate(await auth.register(context, data=body))


@router.post("/login", response_model=TokenResponse)
async def login(request: Request, body: LoginRequest) -> Response:
    """Sign in with a JSON body of email and password."""
    context = context_of(request)
    pair = await auth.login(
        context, email=body.email, password=body.password, client=client_of(request)
    )
    return _tokens(pair, context, cookies=True)


@router.post("/login-form", response_model=TokenResponse)
async def login_form(
    request: Request,
    form: Annotated[LoginForm, Form()],
) -> Response:
    """OAuth2 password flow: the form's `username` field carries the email.

    It sets no cookies: a form can be posted cross-site without a preflight, so cookies from
    it would let another site sign a browser into the attacker's account.
    """
    context = context_of(request)
    pair = await auth.login(
        context, email=form.username, password=form.password, client=client_of(request)
    )
    return _tokens(pair, context, cookies=False)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(
    principal: CurrentPrincipal,
    response: Response,
    context: ContextDep,
    body: LogoutRequest | None = None,
) -> None:
    """End this session (and the refresh token's session, if given); clear the cookies."""
    await auth.logout(
        context, principal=principal, refresh_token=body.refresh_token if body else None
    )
    clear_session_cookies(response, context.settings)
