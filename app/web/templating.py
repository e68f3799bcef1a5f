"""Rendering a page: one Jinja2 environment over the package's templates, escaping everything
it writes."""

from collections.abc import Mapping
from functools import cache

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from app.api.deps import services_of
from app.api.edge.request_context import request_id_of
from app.core.csrf import csrf_token_for
from app.domain.principals import Principal


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("app.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(
    request: Request,
    template: str,
    context: Mapping[str, object] | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """The page `template` with `context`, plus what every page uses: who is signed in, the
    session's CSRF token for its forms, the request id (for a support question) and the path
    (to mark the current navigation entry)."""
    principal: Principal | None = request.scope["state"].get("principal")
    csrf_token = (
        csrf_token_for(principal.session_id, services_of(request).csrf_key) if principal else ""
    )
    values: dict[str, object] = {
        "principal": principal,
        "csrf_token": csrf_token,
        "request_id": request_id_of(request.scope),
        "path": request.scope["path"],
        **(context or {}),
    }
    body = _environment().get_template(template).render(values)
    return HTMLResponse(body, status_code=status, headers=headers)
