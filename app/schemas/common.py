"""Bodies shared by every route."""

from typing import Any

from pydantic import BaseModel


class ErrorBody(BaseModel):
    """Every error response: a stable machine-readable code and a human-readable detail."""

    code: str
    detail: str | list[dict[str, Any]]
