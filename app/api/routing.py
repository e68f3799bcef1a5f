"""How a route declares who may call it, which rate budget it spends and which errors it
returns, and the one route class that enforces and documents those declarations.

Every endpoint is decorated with `declare(...)` and mounted on a router whose `route_class`
is DeclaredRoute. Before FastAPI reads the body, the route spends the client's budget and
resolves the caller (read it with `principal_of(request)`); its OpenAPI responses and security
requirement are generated from the same declaration. FastAPI's dependency injection is not
used for these: resolving even one dependency cost about a tenth of the profile read.
"""

import enum
import hmac
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from app.api.deps import (
    OAUTH2_SCHEME,
    Services,
    bearer_token_of,
    csrf_header,
    resolve_principal,
    services_of,
)
from app.api.edge.request_context import client_ip_of
from app.api.errors import oauth2_error_response, status_for
from app.core import errors
from app.core.events import SecurityEvent
from app.domain.principals import Principal
from app.schemas.common import ErrorBody, OAuth2ErrorBody

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
_DECLARATION = "__route_declaration__"
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# What OAuth2 clients read for each error of a token endpoint (RFC 6749, section 5.2).
OAUTH2_ERRORS: dict[str, tuple[int, str]] = {
    "invalid_request": (400, "The request is missing a parameter or has a malformed one."),
    "invalid_grant": (400, "The credentials or the refresh token are invalid or expired."),
    "unsupported_grant_type": (400, "Only the password and refresh_token grants are served."),
}


class Caller(enum.Enum):
    ANYONE = "anyone"
    # A live session, by bearer token or by cookie (unsafe methods then need the CSRF token).
    USER = "user"
    ADMIN = "admin"
    # An admin, or a scraper presenting METRICS_TOKEN as its bearer token.
    METRICS_READER = "metrics reader"


@dataclass(frozen=True, slots=True)
class Declaration:
    caller: Caller
    limit: str | None
    errors: tuple[type[errors.DomainError], ...]
    stores: bool
    # The OAuth2 token endpoint answers its form requests with RFC 6749 errors.
    token_endpoint: bool


def declare(
    *,
    caller: Caller,
    limit: str | None = None,
    errors: Iterable[type[errors.DomainError]] = (),
    stores: bool = True,
    token_endpoint: bool = False,
) -> Callable[[Endpoint], Endpoint]:
    """Declare a route's caller, its rate-limit policy, the domain errors it may raise beyond
    those the caller and the policy imply, and whether it touches a store (503)."""
    declaration = Declaration(caller, limit, tuple(errors), stores, token_endpoint)

    def attach(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, _DECLARATION, declaration)
        return endpoint

    return attach


_PRINCIPAL = "principal"


def principal_of(request: Request) -> Principal:
    """The caller the route resolved, for routes declared with Caller.USER or Caller.ADMIN."""
    principal: Principal = request.scope["state"][_PRINCIPAL]
    return principal


def _is_form(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith(_FORM_TYPES)


def _implied_errors(declaration: Declaration, methods: set[str]) -> list[type[errors.DomainError]]:
    implied: list[type[errors.DomainError]] = []
    if declaration.caller is not Caller.ANYONE:
        implied += [errors.NotAuthenticated, errors.InvalidToken, errors.SessionRevoked]
        if methods & _UNSAFE_METHODS:
            implied.append(errors.CsrfFailed)
    if declaration.caller in (Caller.ADMIN, Caller.METRICS_READER):
        implied.append(errors.PermissionDenied)
    if declaration.limit is not None:
        implied.append(errors.RateLimited)
    if declaration.stores:
        implied.append(errors.StoreUnavailable)
    return implied


def _describe(codes: dict[str, str]) -> str:
    return "\n".join(f"- `{code}`: {detail}" for code, detail in codes.items())


def _responses(
    declaration: Declaration, methods: set[str], *, validates: bool, has_body: bool
) -> dict[int | str, dict[str, Any]]:
    """The error statuses the route can answer, each with the codes that lead to it."""
    by_status: dict[int, dict[str, str]] = {}
    if validates:
        by_status.setdefault(422, {})["validation_error"] = "The request is malformed."
    if has_body:
        by_status.setdefault(400, {})["bad_request"] = "The body cannot be parsed at all."
        by_status.setdefault(413, {})["content_too_large"] = "The body is over MAX_BODY_BYTES."
    for error in (*_implied_errors(declaration, methods), *declaration.errors):
        by_status.setdefault(status_for(error), {})[error.code] = error.detail
    model: type[ErrorBody] = ErrorBody
    if declaration.token_endpoint:
        model = OAuth2ErrorBody
        # Its grant errors are 400s, as RFC 6749 has it.
        by_status.pop(401, None)
        by_status.setdefault(400, {}).update(
            {error: detail for error, (_, detail) in OAUTH2_ERRORS.items()}
        )
    return {
        status: {"model": model, "description": _describe(codes)}
        for status, codes in sorted(by_status.items())
    }


def _declaration_of(endpoint: Callable[..., Any]) -> Declaration:
    declaration = getattr(endpoint, _DECLARATION, None)
    if not isinstance(declaration, Declaration):
        raise TypeError(f"{endpoint.__qualname__} must be decorated with declare(...)")
    return declaration


class DeclaredRoute(APIRoute):
    """A route that enforces its endpoint's declaration and documents it in OpenAPI."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        self.declaration = _declaration_of(endpoint)
        if self.declaration.caller is not Caller.ANYONE:
            extra = kwargs.get("openapi_extra") or {}
            kwargs["openapi_extra"] = {"security": [{OAUTH2_SCHEME.scheme_name: []}], **extra}
        super().__init__(path, endpoint, **kwargs)
        declared = _responses(
            self.declaration,
            self.methods or set(),
            validates=bool(self.dependant.query_params or self.dependant.path_params)
            or self.body_field is not None,
            has_body=self.body_field is not None,
        )
        self.responses = {**declared, **self.responses}

    async def presented_csrf(self, request: Request) -> str | None:
        """The CSRF token a cookie-authenticated unsafe request presents: the header."""
        return await csrf_header(request)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        declaration = self.declaration
        presented_csrf = self.presented_csrf

        async def enforce(request: Request) -> Response:
            if declaration.limit is not None:
                await _spend_budget(services_of(request), request, declaration.limit)
            if declaration.caller is not Caller.ANYONE and not (
                declaration.caller is Caller.METRICS_READER and _holds_metrics_token(request)
            ):
                principal = await resolve_principal(request, presented_csrf)
                if declaration.caller is not Caller.USER and not principal.account.is_admin:
                    raise errors.PermissionDenied
                # In the request's state (the scope's), read directly: Starlette's State wrapper
                # costs more than the lookup.
                request.scope["state"][_PRINCIPAL] = principal
            return await handler(request)

        if not declaration.token_endpoint:
            return enforce

        async def answer_oauth2_clients(request: Request) -> Response:
            try:
                return await enforce(request)
            except (errors.DomainError, RequestValidationError) as error:
                if not _is_form(request):
                    raise
                return oauth2_error_response(error)

        return answer_oauth2_clients


def _holds_metrics_token(request: Request) -> bool:
    token = bearer_token_of(request)
    expected = services_of(request).metrics_token
    return bool(
        token
        and expected
        and hmac.compare_digest(token.encode("utf-8", "surrogateescape"), expected.encode())
    )


async def _spend_budget(services: Services, request: Request, policy: str) -> None:
    """Spend one request of the client address's budget, before the body is read."""
    try:
        await services.limiter.hit(policy, client_ip_of(request.scope) or "unknown")
    except errors.RateLimited:
        services.events.emit(SecurityEvent.RATE_LIMITED, policy=policy)
        raise
