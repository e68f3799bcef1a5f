"""Bodies shared by every route."""

from typing import Any

from pydantic import BaseModel


class ErrorBody(BaseModel):
    """Every error response: a stable machine-readable code and a human-readable detail."""

    code: str
    detail: str | list[dict[str, Any]]


# Every route may answer with these; documenting them keeps clients and the OpenAPI contract honest.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "Bad request"),
        (401, "Missing or invalid credentials"),
        (403, "Not allowed, or a CSRF token is missing"),
        (404, "Not found"),
        (409, "Conflicts with existing data"),
        (413, "Request body too large"),
        (422, "Invalid request"),
        (429, "Rate limited or account temporarily locked"),
    )
}
