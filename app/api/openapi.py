"""The OpenAPI document: FastAPI's, generated from the routes' declarations, with the two
things only the app knows: the caller's security scheme and the password policy's bounds."""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.api.deps import OAUTH2_SCHEME
from app.core.config import Settings
from app.schemas.user import PASSWORD_POLICY_MARKER


def _apply_password_policy(node: Any, settings: Settings) -> None:
    """Every field marked as a new password takes the policy's length bounds."""
    if isinstance(node, dict):
        if node.pop(PASSWORD_POLICY_MARKER, False):
            node["minLength"] = settings.PASSWORD_MIN_LENGTH
            node["maxLength"] = settings.PASSWORD_MAX_LENGTH
        for value in node.values():
            _apply_password_policy(value, settings)
    elif isinstance(node, list):
        for value in node:
            _apply_password_policy(value, settings)


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Serve the document built once, at its first request."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes[OAUTH2_SCHEME.scheme_name] = OAUTH2_SCHEME.model.model_dump(
                mode="json", by_alias=True, exclude_none=True
            )
            _apply_password_policy(schema, settings)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
