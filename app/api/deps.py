"""Request dependencies: the caller and the services' context."""

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from app.api.cookies import ACCESS_COOKIE, CSRF_COOKIE, CSRF_HEADER
from app.api.middleware import client_ip_of
from app.api.v1.prefix import API_V1
from app.core.csrf import csrf_token_valid
from app.core.errors import CsrfFailed, NotAuthenticated, PermissionDenied
from app.services.authentication import authenticate
from app.services.context import ClientInfo, Principal, ServiceContext

LOGIN_FORM_PATH = f"{API_V1}/auth/login-form"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def context_of(request: Request) -> ServiceContext:
    """The services' context, for an endpoint on a hot path that takes the request anyway:
    as a dependency of its own it cost FastAPI about 20 µs a request to resolve."""
    context: ServiceContext = request.app.state.services
    return context


# Every dependency here is async: FastAPI runs plain functions in a thread pool, and that hop
# would cost more than the work they do.
async def get_context(request: Request) -> ServiceContext:
    return context_of(request)


ContextDep = Annotated[ServiceContext, Depends(get_context)]


def bearer_token_of(request: Request) -> str | None:
    """The token of an `Authorization: Bearer …` header, if there is one."""
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class SessionBearer(OAuth2PasswordBearer):
    """The API's OAuth2 password-flow scheme (the docs' Authorize button), resolving the caller.

    One dependency instead of a chain: the caller comes from a bearer token, or else the access
    cookie, and its session and account are checked. Cookie-authenticated unsafe requests must
    echo the session's CSRF cookie in X-CSRF-Token; bearer requests are exempt, since a browser
    never attaches that header on its own.
    """

    def __init__(self) -> None:
        super().__init__(tokenUrl=LOGIN_FORM_PATH, auto_error=False)

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        context = context_of(request)
        token = bearer_token_of(request)
        if token:
            return await authenticate(context, token)
        cookie = request.cookies.get(ACCESS_COOKIE)
        if not cookie:
            raise NotAuthenticated
        principal = await authenticate(context, cookie)
        if request.method not in _SAFE_METHODS and not csrf_token_valid(
            principal.session_id,
            context.settings.signing_key,
            header=request.headers.get(CSRF_HEADER),
            cookie=request.cookies.get(CSRF_COOKIE),
        ):
            raise CsrfFailed
        return principal


get_principal = SessionBearer()
CurrentPrincipal = Annotated[Principal, Depends(get_principal)]

# The most frequent reads call `get_principal(request)` themselves: resolved by FastAPI as a
# dependency, the same check cost about 37 µs more a request, a fifth of /users/me in-process.
# They declare in OpenAPI the security requirement that the dependency would have added.
SESSION_BEARER_SECURITY: dict[str, Any] = {"security": [{get_principal.scheme_name: []}]}


async def get_admin(principal: CurrentPrincipal) -> Principal:
    if not principal.account.is_admin:
        raise PermissionDenied
    return principal


CurrentAdmin = Annotated[Principal, Depends(get_admin)]


def client_of(request: Request) -> ClientInfo:
    """Who is signing in: the address the edge resolved, and the User-Agent. Called by the
    sign-in endpoints rather than resolved as a dependency, for the same reason as
    `context_of`."""
    return ClientInfo(
        ip_address=client_ip_of(request.scope),
        user_agent=request.headers.get("user-agent"),
    )
