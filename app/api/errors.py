"""One table from domain errors to HTTP statuses, and the handlers that shape every error body."""

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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


def _status_for(error: errors.DomainError) -> int:
    for cls in type(error).__mro__:
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
    status = _status_for(exc)
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


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Only location, message and type: pydantic would otherwise echo the input, passwords included.
    detail = [
        {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type")}
        for error in exc.errors()
    ]
    return error_response(422, "validation_error", detail)


# Codes whose status phrase differs between Python versions are pinned here.
_HTTP_CODES = {413: "content_too_large", 422: "unprocessable_content"}


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    phrase = HTTPStatus(exc.status_code).phrase
    code = _HTTP_CODES.get(exc.status_code) or phrase.lower().replace(" ", "_").replace("-", "_")
    detail = exc.detail if isinstance(exc.detail, str) else phrase
    return error_response(exc.status_code, code, detail, headers=exc.headers)


def unexpected_error_response() -> JSONResponse:
    return error_response(500, "internal_error", "An unexpected error occurred.")


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", exc_info=exc)
    return unexpected_error_response()


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
