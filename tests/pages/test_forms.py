"""Every form with bad and hostile input, the pages' session renewal, error pages and escaping,
through the app over ASGI (the browser tests cover what only a browser shows)."""

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import Table, update

from app.api.deps import ServiceApp
from app.core.config import Settings
from app.domain.accounts import UserFilter
from app.models import User
from app.storage.factory import build_storage
from tests.clock import OffsetClock
from tests.conftest import make_settings, serve
from tests.factories import ADMIN_EMAIL, ADMIN_PASSWORD, DEFAULT_PASSWORD, Api

# What a browser sends with a form of the service's own pages.
BROWSER = {"Accept": "text/html", "Sec-Fetch-Site": "same-origin"}
HOSTILE = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "https://evil.example/")
# Markup a page must never carry as such.
RAW_MARKUP = ("<script>alert", "<img src=x")
LONG = "x" * 5000


@pytest.fixture
async def pages(settings: Settings, clock: OffsetClock) -> AsyncIterator[tuple[ServiceApp, Api]]:
    async with serve(settings, clock) as served:
        yield served


async def _signed_in(api: Api, email: str, password: str = DEFAULT_PASSWORD) -> httpx.Response:
    return await api.client.post(
        "/account/sign-in", data={"email": email, "password": password}, headers=BROWSER
    )


def _csrf(api: Api) -> str:
    token = api.client.cookies.get("csrf_token")
    assert token
    return token


def _field_error(page: httpx.Response, field: str) -> str:
    found = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', page.text)
    assert found, (field, page.text[:2000])
    return found.group(1)


async def _user_count(app: ServiceApp) -> int:
    _, total = await app.services.users.list_users(UserFilter(), limit=1, offset=0)
    return total


async def test_registration_refuses_bad_input_beside_each_field_and_stores_nothing(
    pages: tuple[ServiceApp, Api],
) -> None:
    app, api = pages
    before = await _user_count(app)
    cases = [
        ({}, {"email", "username", "password"}),
        ({"email": "not-an-email", "username": "ok_name", "password": DEFAULT_PASSWORD}, {"email"}),
        ({"email": "a@example.com", "username": LONG, "password": DEFAULT_PASSWORD}, {"username"}),
        ({"email": "a@example.com", "username": "fine", "password": LONG}, {"password"}),
        ({"email": "a@example.com", "username": "fine", "password": "password123"}, {"password"}),
        ({"email": "a@example.com", "username": "fine", "password": "short"}, {"password"}),
    ] + [
        (
            {"email": "a@example.com", "username": hostile, "password": DEFAULT_PASSWORD},
            {"username"},
        )
        for hostile in HOSTILE
    ]
    for fields, wrong in cases:
        page = await api.client.post("/account/register", data=fields, headers=BROWSER)
        assert page.status_code == 400, (fields, page.status_code)
        for field in wrong:
            assert _field_error(page, field)
        # What was typed comes back escaped; the password never does.
        for name in ("email", "username"):
            if name in fields and len(fields[name]) < 4096:
                assert f'value="{_escaped(fields[name])}"' in page.text
        assert DEFAULT_PASSWORD not in page.text
        for markup in RAW_MARKUP:
            assert markup not in page.text
    assert await _user_count(app) == before


def _escaped(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&#34;")
        .replace("'", "&#39;")
    )


async def test_a_file_where_text_belongs_counts_as_missing(pages: tuple[ServiceApp, Api]) -> None:
    _, api = pages
    page = await api.client.post(
        "/account/register",
        data={"email": "file@example.com", "username": "filer"},
        files={"password": ("password.txt", DEFAULT_PASSWORD.encode(), "text/plain")},
        headers=BROWSER,
    )
    assert page.status_code == 400
    assert _field_error(page, "password") == "This field is required."


async def test_a_taken_email_is_told_beside_the_field(pages: tuple[ServiceApp, Api]) -> None:
    _, api = pages
    user = await api.new_user()
    page = await api.client.post(
        "/account/register",
        data={"email": user.email, "username": "another_one", "password": DEFAULT_PASSWORD},
        headers=BROWSER,
    )
    assert page.status_code == 409
    assert _field_error(page, "email") == "This email is already registered."


async def test_sign_in_refuses_bad_input_and_wrong_passwords_alike(
    pages: tuple[ServiceApp, Api],
) -> None:
    _, api = pages
    user = await api.new_user()
    api.client.cookies.clear()
    empty = await api.client.post("/account/sign-in", data={}, headers=BROWSER)
    assert empty.status_code == 400
    assert _field_error(empty, "email")
    for password in ("wrong password!", LONG[:1024], HOSTILE[0]):
        page = await _signed_in(api, user.email, password)
        assert page.status_code == 401
        assert "Incorrect email or password." in page.text
        assert f'value="{user.email}"' in page.text
        assert password not in page.text
    assert "access_token" not in api.client.cookies


async def test_sign_in_goes_back_only_to_the_services_own_pages(
    pages: tuple[ServiceApp, Api],
) -> None:
    _, api = pages
    user = await api.new_user()
    for target, expected in (
        ("/account/devices", "/account/devices"),
        ("https://evil.example/", "/account/"),
        ("//evil.example/account/", "/account/"),
        ("/account/\\evil.example", "/account/"),
        ("/api/v1/users/me", "/account/"),
    ):
        api.client.cookies.clear()
        page = await api.client.post(
            "/account/sign-in",
            data={"email": user.email, "password": DEFAULT_PASSWORD, "next": target},
            headers=BROWSER,
        )
        assert page.status_code == 303
        assert page.headers["location"] == expected, target


async def test_signed_in_forms_need_the_sessions_csrf_token(pages: tuple[ServiceApp, Api]) -> None:
    _, api = pages
    user = await api.new_user()
    await _signed_in(api, user.email)
    for token in (None, "", "forged", "x" * 5000):
        fields = {"form": "identity", "username": "renamed", "email": user.email}
        if token is not None:
            fields["csrf_token"] = token
        page = await api.client.post("/account/profile", data=fields, headers=BROWSER)
        assert page.status_code == 403, token
        assert "csrf" in page.text.lower()
    page = await api.client.post(
        "/account/profile",
        data={
            "form": "identity",
            "username": "renamed",
            "email": user.email,
            "csrf_token": _csrf(api),
        },
        headers=BROWSER,
    )
    assert page.status_code == 303


async def test_profile_forms_refuse_bad_input_and_change_nothing(
    pages: tuple[ServiceApp, Api],
) -> None:
    app, api = pages
    user = await api.new_user()
    await _signed_in(api, user.email)
    csrf = _csrf(api)
    identity = {"form": "identity", "csrf_token": csrf, "email": user.email}
    for username in (*HOSTILE, LONG, ""):
        page = await api.client.post(
            "/account/profile", data={**identity, "username": username}, headers=BROWSER
        )
        assert page.status_code == 400
        assert _field_error(page, "username")
    moved = await api.client.post(
        "/account/profile",
        data={**identity, "username": user.username, "email": "moved@example.com"},
        headers=BROWSER,
    )
    assert _field_error(moved, "current_password")
    password = {"form": "password", "csrf_token": csrf, "password_current": DEFAULT_PASSWORD}
    for new, confirm, field in (
        ("a fresh long passphrase", "a different one", "confirm_password"),
        ("password123", "password123", "new_password"),
        ("short", "short", "new_password"),
    ):
        page = await api.client.post(
            "/account/profile",
            data={**password, "new_password": new, "confirm_password": confirm},
            headers=BROWSER,
        )
        assert page.status_code == 400
        assert _field_error(page, field)
    wrong = await api.client.post(
        "/account/profile",
        data={
            **password,
            "password_current": "not my password",
            "new_password": "a fresh long passphrase",
            "confirm_password": "a fresh long passphrase",
        },
        headers=BROWSER,
    )
    assert _field_error(wrong, "password_current") == "The current password is missing or wrong."
    account = await app.services.users.get_user(user.id)
    assert (account.username, account.email) == (user.username, user.email)
    assert (await api.login(user.email, DEFAULT_PASSWORD)).status_code == 200


async def test_an_expired_access_cookie_is_renewed_and_the_page_comes_back(
    pages: tuple[ServiceApp, Api], clock: OffsetClock, settings: Settings
) -> None:
    _, api = pages
    user = await api.new_user()
    await _signed_in(api, user.email)
    clock.advance(settings.ACCESS_TOKEN_EXPIRE_MINUTES * 60 + 60)
    page = await api.client.get("/account/devices", headers=BROWSER)
    assert page.status_code == 303
    assert page.headers["location"] == "/api/v1/auth/refresh/continue?next=/account/devices"
    renewed = await api.client.get(page.headers["location"], headers=BROWSER)
    assert renewed.status_code == 303
    assert renewed.headers["location"] == "/account/devices"
    again = await api.client.get("/account/devices", headers=BROWSER)
    assert again.status_code == 200
    assert "This device" in again.text


async def test_another_sites_link_to_the_renewal_only_leads_to_sign_in(
    pages: tuple[ServiceApp, Api],
) -> None:
    _, api = pages
    user = await api.new_user()
    await _signed_in(api, user.email)
    before = api.client.cookies.get("access_token")
    page = await api.client.get(
        "/api/v1/auth/refresh/continue?next=/account/devices",
        headers={**BROWSER, "Sec-Fetch-Site": "cross-site"},
    )
    assert page.status_code == 303
    assert page.headers["location"].startswith("/account/sign-in")
    assert api.client.cookies.get("access_token") == before


async def test_errors_in_a_browser_are_pages_and_the_api_keeps_json(
    pages: tuple[ServiceApp, Api],
) -> None:
    _, api = pages
    missing = await api.client.get("/account/nothing-here", headers=BROWSER)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "Page not found" in missing.text
    api_missing = await api.client.get("/api/v1/nothing-here", headers=BROWSER)
    assert api_missing.json()["code"] == "not_found"
    user = await api.new_user()
    await _signed_in(api, user.email)
    forbidden = await api.client.get("/admin/", headers=BROWSER)
    assert forbidden.status_code == 403
    assert "Not allowed" in forbidden.text


async def test_a_rate_limited_page_says_when_to_try_again(database_url: str) -> None:
    settings = make_settings(database_url, RATE_LIMIT_API="2/minute")
    async with serve(settings) as (_, api):
        user = await api.new_user()
        await _signed_in(api, user.email)
        pages = [await api.client.get("/account/profile", headers=BROWSER) for _ in range(3)]
        limited = pages[-1]
        assert limited.status_code == 429
        retry = int(limited.headers["retry-after"])
        assert f"You can try again in {retry} second" in limited.text


async def test_what_users_typed_is_escaped_on_every_page_that_shows_it(
    pages: tuple[ServiceApp, Api], settings: Settings
) -> None:
    app, api = pages
    user = await api.new_user()
    # Stored behind the validation's back, as an import from another system could.
    hostile = "<script>alert('x')</script>"
    storage = build_storage(settings)
    users: Table = User.__table__  # type: ignore[assignment]
    try:
        async with storage.engine.begin() as connection:
            await connection.execute(
                update(users).where(users.c.id == user.id).values(username=hostile)
            )
    finally:
        await storage.close()
    await api.client.post(
        "/account/sign-in",
        data={"email": user.email, "password": DEFAULT_PASSWORD},
        headers={**BROWSER, "User-Agent": f"Mozilla/5.0 {hostile}"},
    )
    shown = [
        await api.client.get(path, headers=BROWSER)
        for path in ("/account/profile", "/account/devices")
    ]
    transport = httpx.ASGITransport(app=app, client=("203.0.113.8", 50000))
    admin = Api(httpx.AsyncClient(transport=transport, base_url="https://testserver"))
    async with admin.client:
        await _signed_in(admin, ADMIN_EMAIL, ADMIN_PASSWORD)
        for path in ("/admin/users", f"/admin/users/{user.id}", f"/admin/users?search={hostile}"):
            shown.append(await admin.client.get(path, headers=BROWSER))
    for page in shown:
        assert page.status_code == 200, page.url
        assert "<script>alert" not in page.text, page.url
    assert any("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page.text for page in shown)
