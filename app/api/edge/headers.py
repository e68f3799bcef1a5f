"""Reading request headers from an ASGI scope."""

from starlette.types import Scope


def header(scope: Scope, name: bytes) -> str | None:
    """The first line of a header."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def all_lines(scope: Scope, name: bytes) -> str | None:
    """Every line of a repeated header, joined with commas as HTTP allows."""
    values = [value.decode("latin-1") for key, value in scope["headers"] if key == name]
    return ", ".join(values) if values else None
