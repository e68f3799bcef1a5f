"""The OpenAPI document says what the API does: its paths, the security scheme and where it signs
in, the password policy's bounds and the fields a change requires."""

from fastapi import FastAPI

from tests.conftest import make_settings, serve
from tests.factories import DEFAULT_PASSWORD, Api
from tests.routes import (
    AUTH,
    DOCS,
    HEALTH,
    LOGIN,
    LOGIN_FORM,
    LOGOUT,
    ME,
    METRICS,
    OPENAPI,
    REFRESH,
    REGISTER,
    ROOT,
    SESSION,
    SESSIONS,
    USER,
    USERS,
)


async def test_docs_and_openapi_are_served(api: Api) -> None:
    assert (await api.client.get(DOCS)).status_code == 200
    spec = (await api.client.get(OPENAPI)).json()
    for path in (
        REGISTER,
        LOGIN,
        LOGIN_FORM,
        REFRESH,
        LOGOUT,
        ME,
        USERS,
        USER,
        SESSIONS,
        SESSION,
        HEALTH,
        METRICS,
    ):
        assert path in spec["paths"], path
    # Every route that needs a caller declares the one bearer scheme, and only those.
    declared: list[dict[str, list[str]]] = [{"OAuth2PasswordBearer": []}]
    assert set(spec["components"]["securitySchemes"]) == {"OAuth2PasswordBearer"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            signing_in = path.startswith(AUTH) and not path.endswith("/logout")
            public = path in {ROOT, HEALTH} or signing_in
            assert operation.get("security") == (None if public else declared), (method, path)


async def test_openapi_password_flow_points_at_the_form_login(app: FastAPI) -> None:
    schemes = app.openapi()["components"]["securitySchemes"]
    flows = [scheme["flows"] for scheme in schemes.values() if scheme["type"] == "oauth2"]
    assert flows
    assert flows[0]["password"]["tokenUrl"] == LOGIN_FORM


async def test_new_password_bounds_are_the_policys(database_url: str) -> None:
    settings = make_settings(database_url, PASSWORD_MIN_LENGTH=12, PASSWORD_MAX_LENGTH=128)
    async with serve(settings) as (app, api):
        schemas = app.openapi()["components"]["schemas"]
        bounds = {"minLength": 12, "maxLength": 128}
        assert {k: schemas["UserCreate"]["properties"]["password"][k] for k in bounds} == bounds
        for model in ("ProfileUpdate", "AdminUserUpdate"):
            [text, _] = schemas[model]["properties"]["password"]["anyOf"]
            assert {key: text[key] for key in bounds} == bounds
        assert "x-password-policy" not in str(schemas)
        # And the API draws the line exactly there.
        for length, status in ((11, 422), (12, 201), (128, 201), (129, 422)):
            password = ("long passphrase " * 10)[:length]
            response = await api.register(password=password)
            assert response.status_code == status, (length, response.text)


async def test_a_sensitive_profile_change_needs_the_current_password_by_the_schema(
    app: FastAPI, api: Api
) -> None:
    schema = app.openapi()["components"]["schemas"]["ProfileUpdate"]
    assert schema["dependentRequired"] == {
        "email": ["current_password"],
        "password": ["current_password"],
    }
    user = await api.new_user()
    for body in ({"email": "new@example.com"}, {"password": DEFAULT_PASSWORD + "!"}):
        response = await api.client.put(ME, json=body, headers=user.headers)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "validation_error"
