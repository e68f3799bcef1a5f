"""Bodies shared by every route."""

from typing import Any

from pydantic import BaseModel


class ErrorBody(BaseModel):
    """Every error response: a stable machine-readable code and a human-readable detail."""

    code: str
    detail: str | list[dict[str, Any]]


class OAuth2ErrorBody(ErrorBody):
    """A token endpoint's error. A form request (an OAuth2 client) also gets `error` and
    `error_description` as RFC 6749, section 5.2 defines them."""

    error: str | None = None
    error_description: str | None = None


class Accepted(BaseModel):
    """A request taken in: what happens next, in words."""

    detail: str
