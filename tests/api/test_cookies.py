"""Browser sign-in with HttpOnly cookies, and CSRF attacks against it."""

from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie

import httpx
import pytest
from fastapi import Response

from app.api.cookies import set_session_cookies
from app.services.auth import TokenPair
from tests.conftest import make_settings, serve
from tests.factories import DEFAULT_PASSWORD, Api, UserHandle

ME = "/api/v1/users/me"


def _set_cookies(response: httpx.Response) -> dict[str, SimpleCookie]:
    cookies: dict[str, SimpleCookie] = {}
    for header in response.headers.get_list("set-cookie"):
        parsed = SimpleCookie()
        parsed.load(header)
        for name in parsed:
            cookies[name] = parsed
    return cookies


async def _browser_login(api: Api) -> tuple[UserHandle, httpx.Response]:
    user = await api.new_user()
    api.client.cookies.clear()
    response = await api.login(user.email, DEFAULT_PASSWORD)
    assert response.status_code == 200
    return user, response


def _replace_cookie(api: Api, name: str, value: str) -> None:
    (existing,) = [cookie for cookie in api.client.cookies.jar if cookie.name == name]
    api.client.cookies.delete(name)
    api.client.cookies.set(name, value, domain=existing.domain, path=existing.path)


def _csrf(api: Api) -> str:
    token = api.client.cookies.get("csrf_token")
    assert token
    return token


async def test_login_sets_hardened_cookies(api: Api) -> None:
    _, response = await _browser_login(api)
    cookies = _set_cookies(response)
    assert set(cookies) == {"access_token", "refresh_token", "csrf_token"}
    access = cookies["access_token"]["access_token"]
    assert access["httponly"] is True
    assert access["secure"] is True
    assert access["samesite"] == "lax"
    assert access["path"] == "/"
    assert access.value == response.json()["access_token"]
    refresh = cookies["refresh_token"]["refresh_token"]
    assert refresh["httponly"] is True
    assert refresh["path"] == "/api/v1/auth/refresh"
    csrf = cookies["csrf_token"]["csrf_token"]
    assert not csrf["httponly"]
    assert csrf["secure"] is True


async def test_cookie_authenticates_safe_requests(api: Api) -> None:
    user, _ = await _browser_login(api)
    response = await api.client.get(ME)
    assert response.status_code == 200
    assert response.json()["id"] == user.id


async def test_cookie_put_without_csrf_token_is_refused(api: Api) -> None:
    await _browser_login(api)
    response = await api.client.put(ME, json={"username": "hijacked"})
    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    assert (await api.client.get(ME)).json()["username"] != "hijacked"


async def test_cookie_put_with_a_wrong_csrf_token_is_refused(api: Api) -> None:
    await _browser_login(api)
    response = await api.client.put(
        ME, json={"username": "hijacked"}, headers={"X-CSRF-Token": "forged-token"}
    )
    assert response.status_code == 403


async def test_csrf_token_of_another_session_is_refused(api: Api) -> None:
    await _browser_login(api)
    other_session_token = _csrf(api)
    _, _ = await _browser_login(api)
    _replace_cookie(api, "csrf_token", other_session_token)
    response = await api.client.put(
        ME, json={"username": "hijacked"}, headers={"X-CSRF-Token": other_session_token}
    )
    assert response.status_code == 403


async def test_header_that_does_not_match_the_cookie_is_refused(api: Api) -> None:
    await _browser_login(api)
    real = _csrf(api)
    _replace_cookie(api, "csrf_token", "something-else")
    response = await api.client.put(
        ME, json={"username": "hijacked"}, headers={"X-CSRF-Token": real}
    )
    assert response.status_code == 403


async def test_cookie_put_with_the_csrf_token_works(api: Api) -> None:
    await _browser_login(api)
    response = await api.client.put(
        ME, json={"username": "renamed_by_cookie"}, headers={"X-CSRF-Token": _csrf(api)}
    )
    assert response.status_code == 200
    assert response.json()["username"] == "renamed_by_cookie"


async def test_cookie_delete_and_post_need_csrf_too(api: Api) -> None:
    await _browser_login(api)
    sessions = (await api.client.get("/api/v1/sessions/")).json()
    target = sessions[0]["id"]
    assert (await api.client.delete(f"/api/v1/sessions/{target}")).status_code == 403
    assert (await api.client.post("/api/v1/auth/logout")).status_code == 403
    assert (await api.client.get(ME)).status_code == 200


async def test_bearer_requests_are_exempt_from_csrf(api: Api) -> None:
    user = await api.new_user()
    api.client.cookies.clear()
    response = await api.client.put(ME, json={"username": "bearer_rename"}, headers=user.headers)
    assert response.status_code == 200


async def test_cookie_refresh_needs_csrf_and_rotates(api: Api) -> None:
    await _browser_login(api)
    no_csrf = await api.client.post("/api/v1/auth/refresh")
    assert no_csrf.status_code == 403
    old_refresh = api.client.cookies.get("refresh_token")
    rotated = await api.client.post("/api/v1/auth/refresh", headers={"X-CSRF-Token": _csrf(api)})
    assert rotated.status_code == 200
    assert api.client.cookies.get("refresh_token") != old_refresh
    assert (await api.client.get(ME)).status_code == 200


async def test_refresh_without_body_or_cookie_is_401(api: Api) -> None:
    api.client.cookies.clear()
    response = await api.client.post("/api/v1/auth/refresh")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


async def test_logout_clears_cookies_with_the_same_attributes(api: Api) -> None:
    _, login = await _browser_login(api)
    set_at_login = _set_cookies(login)
    response = await api.client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": _csrf(api)})
    assert response.status_code == 204
    cleared = _set_cookies(response)
    assert set(cleared) == set(set_at_login)
    for name, jar in cleared.items():
        morsel, original = jar[name], set_at_login[name][name]
        assert morsel.value == ""
        assert morsel["max-age"] == "0"
        for attribute in ("path", "secure", "httponly", "samesite"):
            assert morsel[attribute] == original[attribute], (name, attribute)
    assert (await api.client.get(ME)).status_code == 401


@pytest.mark.parametrize("samesite", ["strict", "none"])
async def test_samesite_is_configurable(database_url: str, samesite: str) -> None:
    settings = make_settings(database_url, COOKIE_SAMESITE=samesite)
    async with serve(settings) as (_, api):
        _, response = await _browser_login(api)
        assert _set_cookies(response)["access_token"]["access_token"]["samesite"] == samesite


def test_samesite_none_without_secure_is_refused(database_url: str) -> None:
    with pytest.raises(ValueError, match="SECURE_COOKIES"):
        make_settings(database_url, COOKIE_SAMESITE="none", SECURE_COOKIES=False)


async def test_a_non_ascii_csrf_header_is_a_plain_403(api: Api) -> None:
    await _browser_login(api)
    response = await api.client.put(
        ME, json={"username": "hijacked"}, headers={b"X-CSRF-Token": "\u00e9t\u00e9".encode()}
    )
    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"


async def test_the_form_login_sets_no_cookies(api: Api) -> None:
    user = await api.new_user()
    api.client.cookies.clear()
    response = await api.client.post(
        "/api/v1/auth/login-form", data={"username": user.email, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 200
    assert response.headers.get_list("set-cookie") == []


def test_a_cookie_value_that_is_not_a_token_is_never_written() -> None:
    settings = make_settings("sqlite:///unused.db", SECURE_COOKIES=True)
    now = datetime.now(UTC)
    pair = TokenPair(
        access_token="a.b.c",
        refresh_token="x; Domain=evil.example",
        session_id="s",
        csrf_token="t",
        issued_at=now,
        access_expires_at=now + timedelta(minutes=1),
        refresh_expires_at=now + timedelta(days=1),
    )
    response = Response()
    with pytest.raises(ValueError, match="refresh_token"):
        set_session_cookies(response, pair, settings)
    assert all("evil" not in value for value in response.headers.getlist("set-cookie"))
