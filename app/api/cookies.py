"""Browser sign-in: access, refresh and CSRF cookies, set and cleared with the same attributes."""

from datetime import datetime

from fastapi import Response

from app.api.v1.prefix import API_V1
from app.core.config import Settings
from app.services.auth import TokenPair

ACCESS_COOKIE = "access_token"
REFRESH_COOKIE = "refresh_token"
CSRF_COOKIE = "csrf_token"
CSRF_HEADER = "x-csrf-token"
REFRESH_COOKIE_PATH = f"{API_V1}/auth/refresh"

# (name, path, HttpOnly): the CSRF cookie is readable so that scripts can echo it in a header.
_COOKIES = (
    (ACCESS_COOKIE, "/", True),
    (REFRESH_COOKIE, REFRESH_COOKIE_PATH, True),
    (CSRF_COOKIE, "/", False),
)


def set_session_cookies(
    response: Response, pair: TokenPair, settings: Settings, now: datetime
) -> None:
    values = {
        ACCESS_COOKIE: (pair.access_token, settings.ACCESS_TOKEN_EXPIRE_MINUTES * 60),
        REFRESH_COOKIE: (pair.refresh_token, int((pair.refresh_expires_at - now).total_seconds())),
        CSRF_COOKIE: (pair.csrf_token, int((pair.refresh_expires_at - now).total_seconds())),
    }
    for name, path, http_only in _COOKIES:
        value, max_age = values[name]
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=path,
            domain=settings.COOKIE_DOMAIN,
            secure=settings.SECURE_COOKIES,
            httponly=http_only,
            samesite=settings.COOKIE_SAMESITE,
        )


def clear_session_cookies(response: Response, settings: Settings) -> None:
    for name, path, http_only in _COOKIES:
        response.delete_cookie(
            name,
            path=path,
            domain=settings.COOKIE_DOMAIN,
            secure=settings.SECURE_COOKIES,
            httponly=http_only,
            samesite=settings.COOKIE_SAMESITE,
        )
