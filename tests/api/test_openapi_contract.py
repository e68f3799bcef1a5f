"""The OpenAPI document says what the API does: statuses, bounds, required fields, methods."""

from fastapi import FastAPI

from tests.conftest import make_settings, serve
from tests.factories import DEFAULT_PASSWORD, Api

STORE_FREE = {("get", "/")}


def _operations(app: FastAPI) -> dict[tuple[str, str], dict[str, object]]:
    spec = app.openapi()
    return {
        (method, path): operation
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    }


def _statuses(operation: dict[str, object]) -> set[str]:
    responses = operation["responses"]
    assert isinstance(responses, dict)
    return set(responses)


async def test_every_route_documents_what_it_can_answer_and_nothing_else(app: FastAPI) -> None:
    operations = _operations(app)
    assert _statuses(operations[("get", "/api/v1/users/me")]) == {"200", "401", "429", "503"}
    assert _statuses(operations[("get", "/api/v1/sessions/")]) == {"200", "401", "429", "503"}
    assert _statuses(operations[("post", "/api/v1/auth/login")]) == {
        "200", "400", "401", "413", "422", "429", "503"
    }  # fmt: skip
    assert _statuses(operations[("put", "/api/v1/users/{user_id}")]) == {
        "200", "400", "401", "403", "404", "409", "413", "422", "429", "503"
    }  # fmt: skip
    for key, operation in operations.items():
        assert ("503" in _statuses(operation)) is (key not in STORE_FREE), key


async def test_each_documented_error_names_its_codes(app: FastAPI) -> None:
    conflict = _operations(app)[("put", "/api/v1/users/{user_id}")]["responses"]
    assert isinstance(conflict, dict)
    description = conflict["409"]["description"]
    for code in ("email_taken", "username_taken", "last_admin"):
        assert f"`{code}`" in description


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
        response = await api.client.put("/api/v1/users/me", json=body, headers=user.headers)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "validation_error"


async def test_a_405_names_every_method_the_path_serves(api: Api) -> None:
    user = await api.new_user()
    response = await api.client.delete("/api/v1/users/me", headers=user.headers)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, PUT"
    assert response.json()["code"] == "method_not_allowed"


async def test_no_redirect_is_built_from_the_host_header(api: Api) -> None:
    admin = await api.admin()
    for path in ("/api/v1/users", "/api/v1/sessions"):
        response = await api.client.get(
            path, headers={**admin.headers, "Host": "evil.example"}, follow_redirects=False
        )
        assert response.status_code == 404, response.text
        assert "location" not in response.headers
        assert "evil" not in response.text
        assert response.json()["detail"] == f"Not Found; this route is served at {path}/"
    unknown = await api.client.get("/api/v1/nothing-here")
    assert unknown.json() == {"code": "not_found", "detail": "Not Found"}
