"""Sign-up, sign-in (JSON and OAuth2 form), refresh and sign-out."""

from typing import Annotated

from fastapi import APIRouter, Form, status

from app.api.deps import Client, ContextDep, CurrentPrincipal, DbDep
from app.api.v1.prefix import API_V1
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

router = APIRouter(prefix=f"{API_V1}/auth", tags=["auth"])


def _tokens(pair: TokenPair) -> TokenResponse:
    return TokenResponse(access_token=pair.access_token, refresh_token=pair.refresh_token)


@router.post("/register", status_code=status.HTTP_201_CREATED)
async def register(body: UserCreate, context: ContextDep, db: DbDep) -> UserRead:
    """Create an account. `is_admin` / `is_active` in the body are ignored."""
    return UserRead.model_validate(await auth.register(context, db, data=body))


@router.post("/login")
async def login(
    body: LoginRequest, context: ContextDep, db: DbDep, client: Client
) -> TokenResponse:
    """Sign in with a JSON body of email and password."""
    pair = await auth.login(context, db, email=body.email, password=body.password, client=client)
    return _tokens(pair)


@router.post("/login-form")
async def login_form(
    form: Annotated[LoginForm, Form()],
    context: ContextDep,
    db: DbDep,
    client: Client,
) -> TokenResponse:
    """OAuth2 password flow: the form's `username` field carries the email."""
    pair = await auth.login(context, db, email=form.username, password=form.password, client=client)
    return _tokens(pair)


@router.post("/refresh")
async def refresh(body: RefreshRequest, context: ContextDep) -> TokenResponse:
    """Exchange a refresh token for a new pair; the presented token stops working."""
    return _tokens(await auth.refresh(context, refresh_token=body.refresh_token))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(
    principal: CurrentPrincipal, context: ContextDep, body: LogoutRequest | None = None
) -> None:
    """End this session (and the refresh token's session, if given)."""
    await auth.logout(
        context, principal=principal, refresh_token=body.refresh_token if body else None
    )
