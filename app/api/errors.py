"""One table from domain errors to HTTP statuses, and the handlers that shape every error body."""

import logging
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.core import errors

logger = logging.getLogger("app.errors")

STATUS_BY_ERROR: dict[type[errors.DomainError], int] = {
    errors.InvalidCredentials: 401,
    errors.NotAuthenticated: 401,
    errors.InvalidToken: 401,
    errors.SessionRevoked: 401,
    errors.RefreshTokenReused: 401,
    errors.PermissionDenied: 403,
    errors.UserNotFound: 404,
    errors.SessionNotFound: 404,
    errors.EmailTaken: 409,
    errors.UsernameTaken: 409,
    errors.LastAdmin: 409,
    errors.PasswordRejected: 422,
    errors.CurrentPasswordInvalid: 400,
    errors.CsrfFailed: 403,
    errors.UnsupportedGrantType: 400,
    errors.EmailTokenInvalid: 400,
    errors.EmailTokenExpired: 400,
    errors.EmailTokenUsed: 400,
    errors.EmailTokenWrongPurpose: 400,
    errors.EmailNotVerified: 403,
    errors.AlreadyVerified: 409,
    errors.RateLimited: 429,
    errors.PasswordCheckUnavailable: 503,
    errors.StoreUnavailable: 503,
}
# How long a client should wait before retrying after a 503.
RETRY_UNAVAILABLE_SECONDS = "5"
_BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def error_response(
    status: int, code: str, detail: Any, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"code": code, "detail": detail}, status_code=status, headers=headers)


def status_for(error: type[errors.DomainError]) -> int:
    """The status of a domain error class: its own, or its nearest ancestor's in the table."""
    for cls in error.__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


def rate_limit_headers(exc: errors.RateLimited) -> dict[str, str]:
    """Retry-After plus the IETF RateLimit / RateLimit-Policy fields for a refused request."""
    return {
        "Retry-After": str(exc.retry_after),
        "RateLimit-Policy": f'"{exc.policy}";q={exc.amount};w={exc.window_seconds}',
        "RateLimit": f'"{exc.policy}";r=0;t={exc.retry_after}',
    }


def domain_error_response(exc: errors.DomainError) -> JSONResponse:
    status = status_for(type(exc))
    headers: dict[str, str] | None = None
    if status == 401:
        headers = _BEARER_CHALLENGE
    elif isinstance(exc, errors.RateLimited):
        headers = rate_limit_headers(exc)
    elif status == 503:
        headers = {"Retry-After": RETRY_UNAVAILABLE_SECONDS}
    if isinstance(exc, errors.StoreUnavailable):
        logger.warning(
            "store unavailable: %s %s", exc.store, "timed out" if exc.timed_out else "down"
        )
    return error_response(status, exc.code, exc.detail, headers=headers)


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.DomainError)
    return domain_error_response(exc)


def _validation_detail(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only location, message and type: pydantic would otherwise echo the input, passwords included.
    return [
        {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type")}
        for error in exc.errors()
    ]


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "validation_error", _validation_detail(exc))


# RFC 6749, section 5.2: what a token endpoint answers an OAuth2 client, by our error code.
_OAUTH2_GRANT_ERRORS = frozenset(
    {"invalid_credentials", "invalid_token", "session_revoked", "refresh_token_reused"}
)


def oauth2_error_response(exc: errors.DomainError | RequestValidationError) -> JSONResponse:
    """A token endpoint's error as OAuth2 clients read it (RFC 6749, section 5.2), keeping this
    service's own `code` and `detail` beside `error` and `error_description`."""
    detail: str | list[dict[str, Any]]
    headers: dict[str, str] | None
    if isinstance(exc, RequestValidationError):
        status, code, detail, headers = 400, "validation_error", _validation_detail(exc), None
        error, description = "invalid_request", "The request is missing or has a malformed field."
    else:
        response = domain_error_response(exc)
        status, code, detail = response.status_code, exc.code, exc.detail
        headers = {
            name: value
            for name, value in response.headers.items()
            if name not in ("content-length", "content-type", "www-authenticate")
        }
        error, description = "invalid_request", exc.detail
        if exc.code in _OAUTH2_GRANT_ERRORS:
            status, error = 400, "invalid_grant"
        elif isinstance(exc, errors.UnsupportedGrantType):
            error = "unsupported_grant_type"
        elif status in (429, 503):
            error = "temporarily_unavailable"
    body = {"error": error, "error_description": description, "code": code, "detail": detail}
    return JSONResponse(body, status_code=status, headers=headers)


# Codes whose status phrase differs between Python versions are pinned here.
_HTTP_CODES = {413: "content_too_large", 422: "unprocessable_content"}


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _methods_allowed(request: Request) -> str:
    """Every method some route serves at this path: the router reports only the first route's.
    Each method is tried against the routes, which also finds those of included routers."""
    return ", ".join(
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    )


def _slash_hint(request: Request) -> str | None:
    """The same path with or without its trailing slash, when a route serves that one: the
    service does not redirect, since the redirect's URL would come from the Host header."""
    path: str = request.scope["path"]
    other = path.rstrip("/") if path.endswith("/") else path + "/"
    scope = {**request.scope, "path": other}
    for route in request.app.router.routes:
        if route.matches(scope)[0] is not Match.NONE:
            return other
    return None


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    phrase = HTTPStatus(exc.status_code).phrase
    code = _HTTP_CODES.get(exc.status_code) or phrase.lower().replace(" ", "_").replace("-", "_")
    detail = exc.detail if isinstance(exc.detail, str) else phrase
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _methods_allowed(request)
    elif exc.status_code == 404 and (other := _slash_hint(request)) is not None:
        detail = f"Not Found; this route is served at {other}"
    return error_response(exc.status_code, code, detail, headers=headers or None)


def unexpected_error_response() -> JSONResponse:
    return error_response(500, "internal_error", "An unexpected error occurred.")


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", exc_info=exc)
    return unexpected_error_response()


# Given a request and the error's JSON answer, the page to answer a browser with instead, or
# None when the request is not a browser's page request.
ErrorPage = Callable[[Request, JSONResponse], Response | None]
ErrorHandler = Callable[[Request, Exception], Awaitable[JSONResponse]]


def install_error_handlers(app: FastAPI, *, page: ErrorPage | None = None) -> None:
    """One handler per kind of error, each answering the same JSON body to API clients and,
    through `page`, a readable page to a browser."""

    def answer(handler: ErrorHandler) -> Callable[[Request, Exception], Awaitable[Response]]:
        async def handle(request: Request, exc: Exception) -> Response:
            response = await handler(request, exc)
            shown = page(request, response) if page is not None else None
            return shown if shown is not None else response

        return handle

    app.add_exception_handler(errors.DomainError, answer(_domain_error))
    app.add_exception_handler(RequestValidationError, answer(_validation_error))
    app.add_exception_handler(StarletteHTTPException, answer(_http_error))
    app.add_exception_handler(Exception, answer(_unexpected_error))
