"""Errors the router answers itself (no route, a method the path does not serve, a path
served only with or without its trailing slash) in the one error body."""

from fastapi import FastAPI

from app.api.v1.prefix import API_V1
from tests.factories import Api
from tests.routes import LOGIN, ME, SESSIONS, USERS


async def test_unknown_routes_and_methods_use_the_error_body(api: Api, app: FastAPI) -> None:
    missing = await api.client.get(f"{API_V1}/nothing-here")
    assert missing.status_code == 404
    assert missing.json() == {"code": "not_found", "detail": "Not Found"}
    wrong_method = await api.client.delete(LOGIN)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "method_not_allowed"


async def test_a_405_names_every_method_the_path_serves(api: Api) -> None:
    user = await api.new_user()
    response = await api.client.patch(ME, headers=user.headers)
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, PUT"
    assert response.json()["code"] == "method_not_allowed"


async def test_no_redirect_is_built_from_the_host_header(api: Api) -> None:
    admin = await api.admin()
    for route in (USERS, SESSIONS):
        path = route.removesuffix("/")
        response = await api.client.get(
            path, headers={**admin.headers, "Host": "evil.example"}, follow_redirects=False
        )
        assert response.status_code == 404, response.text
        assert "location" not in response.headers
        assert "evil" not in response.text
        assert response.json()["detail"] == f"Not Found; this route is served at {route}"
    unknown = await api.client.get(f"{API_V1}/nothing-here")
    assert unknown.json() == {"code": "not_found", "detail": "Not Found"}
