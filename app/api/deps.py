"""What the routes read from a request: the services, the client and the caller."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.security import OAuth2PasswordBearer

from app.api.cookies import ACCESS_COOKIE, CSRF_COOKIE, CSRF_HEADER
from app.api.edge.request_context import client_ip_of
from app.api.metrics import Metrics
from app.api.v1.prefix import API_V1
from app.core.config import Settings
from app.core.csrf import csrf_token_valid
from app.core.errors import CsrfFailed, NotAuthenticated
from app.core.events import SecurityEvents
from app.domain.principals import ClientInfo, Principal
from app.services.account_emails import AccountEmails
from app.services.activity import RecentSignIns
from app.services.auth import AuthService
from app.services.authentication import Authenticator
from app.services.health import Health
from app.services.mail_requests import MailRequests
from app.services.rate_limit import RateLimiter
from app.services.sessions import SessionService
from app.services.users import UserService

TOKEN_PATH = f"{API_V1}/auth/login-form"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The API's OAuth2 password-flow scheme, as OpenAPI shows it (the docs' Authorize button); the
# routes resolve the caller themselves (app.api.routing).
OAUTH2_SCHEME = OAuth2PasswordBearer(tokenUrl=TOKEN_PATH)


@dataclass(frozen=True, slots=True)
class Services:
    """What the routes call, built once by the app factory (app.main)."""

    authenticator: Authenticator
    auth: AuthService
    emails: AccountEmails
    mail_requests: MailRequests
    users: UserService
    sessions: SessionService
    limiter: RateLimiter
    health: Health
    events: SecurityEvents
    metrics: Metrics
    recent_sign_ins: RecentSignIns
    settings: Settings
    csrf_key: str
    metrics_token: str | None


class ServiceApp(FastAPI):
    """The FastAPI application, holding its services where routes find them at the cost of an
    attribute read (the request-scoped `app.state` lookup costs several)."""

    services: Services


def services_of(request: Request) -> Services:
    """The services of the app serving the request."""
    app: ServiceApp = request.app
    return app.services


def bearer_token_of(request: Request) -> str | None:
    """The token of an `Authorization: Bearer …` header, if there is one."""
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def csrf_header(request: Request) -> str | None:
    """The CSRF token an API request presents: the X-CSRF-Token header."""
    return request.headers.get(CSRF_HEADER)


async def resolve_principal(
    request: Request,
    presented_csrf: Callable[[Request], Awaitable[str | None]] = csrf_header,
) -> Principal:
    """The caller: from a bearer token, or else the access cookie, with its session and
    account checked. Cookie-authenticated unsafe requests must present the session's CSRF
    token (read by `presented_csrf`), which must also equal the CSRF cookie; bearer requests
    are exempt, since a browser never attaches an Authorization header on its own."""
    services = services_of(request)
    token = bearer_token_of(request)
    if token:
        return await services.authenticator.authenticate(token)
    cookie = request.cookies.get(ACCESS_COOKIE)
    if not cookie:
        raise NotAuthenticated
    principal = await services.authenticator.authenticate(cookie)
    if request.method not in _SAFE_METHODS and not csrf_token_valid(
        principal.session_id,
        services.csrf_key,
        header=await presented_csrf(request),
        cookie=request.cookies.get(CSRF_COOKIE),
    ):
        raise CsrfFailed
    return principal


def client_of(request: Request) -> ClientInfo:
    """Who is signing in: the address the edge resolved, and the User-Agent."""
    return ClientInfo(
        ip_address=client_ip_of(request.scope),
        user_agent=request.headers.get("user-agent"),
    )
