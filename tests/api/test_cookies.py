"""Browser sign-in with HttpOnly cookies: set with hardened attributes, read on safe requests,
rotated on refresh and cleared with the same attributes."""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi import Response

from app.api.cookies import set_session_cookies
from app.services.auth import TokenPair
from tests.conftest import make_settings, serve
from tests.cookies import browser_login, csrf_token, set_cookies
from tests.factories import DEFAULT_PASSWORD, Api
from tests.routes import LOGIN_FORM, LOGOUT, ME, REFRESH


async def test_login_sets_hardened_cookies(api: Api) -> None:
    _, response = await browser_login(api)
    cookies = set_cookies(response)
    assert set(cookies) == {"access_token", "refresh_token", "csrf_token"}
    access = cookies["access_token"]["access_token"]
    assert access["httponly"] is True
    assert access["secure"] is True
    assert access["samesite"] == "lax"
    assert access["path"] == "/"
    assert access.value == response.json()["access_token"]
    refresh = cookies["refresh_token"]["refresh_token"]
    assert refresh["httponly"] is True
    assert refresh["path"] == REFRESH
    csrf = cookies["csrf_token"]["csrf_token"]
    assert not csrf["httponly"]
    assert csrf["secure"] is True


async def test_cookie_authenticates_safe_requests(api: Api) -> None:
    user, _ = await browser_login(api)
    response = await api.client.get(ME)
    assert response.status_code == 200
    assert response.json()["id"] == user.id


async def test_cookie_refresh_needs_csrf_and_rotates(api: Api) -> None:
    await browser_login(api)
    no_csrf = await api.client.post(REFRESH)
    assert no_csrf.status_code == 403
    old_refresh = api.client.cookies.get("refresh_token")
    rotated = await api.client.post(REFRESH, headers={"X-CSRF-Token": csrf_token(api)})
    assert rotated.status_code == 200
    assert api.client.cookies.get("refresh_token") != old_refresh
    assert (await api.client.get(ME)).status_code == 200


async def test_refresh_without_body_or_cookie_is_401(api: Api) -> None:
    api.client.cookies.clear()
    response = await api.client.post(REFRESH)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


async def test_logout_clears_cookies_with_the_same_attributes(api: Api) -> None:
    _, login = await browser_login(api)
    set_at_login = set_cookies(login)
    response = await api.client.post(LOGOUT, headers={"X-CSRF-Token": csrf_token(api)})
    assert response.status_code == 204
    cleared = set_cookies(response)
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
        _, response = await browser_login(api)
        assert set_cookies(response)["access_token"]["access_token"]["samesite"] == samesite


def test_samesite_none_without_secure_is_refused(database_url: str) -> None:
    with pytest.raises(ValueError, match="SECURE_COOKIES"):
        make_settings(database_url, COOKIE_SAMESITE="none", SECURE_COOKIES=False)


async def test_the_form_login_sets_no_cookies(api: Api) -> None:
    user = await api.new_user()
    api.client.cookies.clear()
    response = await api.client.post(
        LOGIN_FORM, data={"username": user.email, "password": DEFAULT_PASSWORD}
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
