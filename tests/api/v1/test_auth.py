"""Registration, sign-in, refresh rotation and sign-out through the real app; and a standard
OAuth2 client library (Authlib) against the token endpoint: the password grant, the
refresh_token grant, automatic refresh before expiry, and RFC 6749 errors."""

from collections.abc import AsyncIterator

import anyio
import httpx
import jwt
import pytest
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from fastapi import FastAPI

from app.core.config import Settings
from tests.clock import OffsetClock
from tests.conftest import serve
from tests.factories import DEFAULT_PASSWORD, Api
from tests.routes import LOGIN_FORM, LOGOUT, ME, REGISTER, USERS


async def test_register_returns_the_user_without_secrets(api: Api) -> None:
    response = await api.register(email="New.Person@Example.COM", username="newperson")
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "new.person@example.com"
    assert body["username"] == "newperson"
    assert body["is_active"] is True
    assert body["is_admin"] is False
    assert body["is_verified"] is False
    assert set(body) == {
        "id",
        "email",
        "username",
        "is_active",
        "is_admin",
        "is_verified",
        "created_at",
        "updated_at",
    }


async def test_seed_register_example_works_and_ignores_privilege_fields(api: Api) -> None:
    response = await api.client.post(
        REGISTER,
        json={
            "email": "user@example.com",
            "username": "testuser",
            "password": "securepassword123",
            "is_active": False,
            "is_admin": True,
        },
    )
    assert response.status_code == 201
    assert response.json()["is_admin"] is False
    assert response.json()["is_active"] is True


async def test_email_is_unique_case_insensitively(api: Api) -> None:
    assert (await api.register(email="dup@example.com")).status_code == 201
    response = await api.register(email="DUP@example.com")
    assert response.status_code == 409
    assert response.json()["code"] == "email_taken"


async def test_username_is_unique_case_insensitively(api: Api) -> None:
    assert (await api.register(username="Alice")).status_code == 201
    response = await api.register(username="alice")
    assert response.status_code == 409
    assert response.json()["code"] == "username_taken"


async def test_concurrent_duplicate_registrations_yield_one_account(api: Api) -> None:
    statuses: list[int] = []

    async def attempt() -> None:
        response = await api.register(email="race@example.com", username="racer")
        statuses.append(response.status_code)

    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(attempt)
    assert sorted(statuses) == [201, 409, 409, 409, 409]


async def test_password_policy(api: Api) -> None:
    too_short = await api.register(password="short")
    assert too_short.status_code == 422
    assert too_short.json()["code"] == "password_rejected"
    too_long = await api.register(password="x" * 257)
    assert too_long.status_code == 422
    same_as_username = await api.register(username="samename", password="samename")
    assert same_as_username.status_code == 422
    blank = await api.register(password=" " * 12)
    assert blank.status_code == 422


async def test_long_passwords_in_any_script_are_accepted_whole(api: Api) -> None:
    password = "密码安全🔐" * 16
    user = await api.new_user(password=password)
    assert (await api.login(user.email, password)).status_code == 200
    truncated = password[:-1]
    assert (await api.login(user.email, truncated)).status_code == 401


async def test_login_returns_the_seed_token_shape_and_the_access_lifetime(
    api: Api, settings: Settings
) -> None:
    user = await api.new_user()
    response = await api.login(user.email, user.password)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    lifetime = settings.ACCESS_TOKEN_EXPIRE_MINUTES * 60
    assert lifetime - 2 <= body["expires_in"] <= lifetime
    access = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert access["exp"] - access["iat"] == lifetime


async def test_a_burst_of_logins_larger_than_the_connection_pool_completes(
    api: Api, settings: Settings
) -> None:
    # Each login waits for its password hash; were a database connection held meanwhile, a
    # burst would take the whole pool and opening the sessions would wait for it until timeout.
    user = await api.new_user()
    burst = settings.DATABASE_POOL_SIZE + settings.DATABASE_MAX_OVERFLOW + 10
    statuses: list[int] = []

    async def login() -> None:
        statuses.append((await api.login(user.email, user.password)).status_code)

    with anyio.fail_after(20):
        async with anyio.create_task_group() as group:
            for _ in range(burst):
                group.start_soon(login)
    assert statuses == [200] * burst


async def test_login_email_is_case_insensitive(api: Api) -> None:
    user = await api.new_user()
    assert (await api.login(user.email.upper(), user.password)).status_code == 200


async def test_tokens_carry_the_designed_claims(api: Api, settings: Settings) -> None:
    user = await api.new_user()
    for token, kind in (
        (user.tokens.access_token, "access"),
        (user.tokens.refresh_token, "refresh"),
    ):
        claims = jwt.decode(
            token,
            settings.signing_key,
            algorithms=["HS256"],
            audience=settings.JWT_AUDIENCE,
            issuer=settings.JWT_ISSUER,
        )
        assert set(claims) == {"sub", "sid", "jti", "typ", "iat", "exp", "iss", "aud"}
        assert claims["typ"] == kind
        assert claims["sub"] == str(user.id)
    for token in (user.tokens.access_token, user.tokens.refresh_token):
        assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}


async def test_access_token_lifetime_follows_settings(api: Api, settings: Settings) -> None:
    user = await api.new_user()
    claims = jwt.decode(user.tokens.access_token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == settings.ACCESS_TOKEN_EXPIRE_MINUTES * 60
    refresh = jwt.decode(user.tokens.refresh_token, options={"verify_signature": False})
    assert refresh["exp"] - refresh["iat"] == settings.REFRESH_TOKEN_EXPIRE_DAYS * 86400


async def test_wrong_password_unknown_email_and_inactive_account_look_the_same(
    api: Api,
) -> None:
    user = await api.new_user()
    admin = await api.admin()
    inactive = await api.new_user()
    await api.client.put(f"{USERS}{inactive.id}", json={"is_active": False}, headers=admin.headers)
    answers = [
        await api.login(user.email, "wrong password here"),
        await api.login("nobody@example.com", "wrong password here"),
        await api.login(inactive.email, inactive.password),
    ]
    assert {response.status_code for response in answers} == {401}
    assert len({response.text for response in answers}) == 1
    assert answers[0].json()["code"] == "invalid_credentials"
    assert answers[0].headers["www-authenticate"] == "Bearer"


async def test_form_login_accepts_the_oauth2_password_grant(api: Api) -> None:
    user = await api.new_user()
    response = await api.client.post(
        LOGIN_FORM,
        data={
            "grant_type": "password",
            "username": user.email,
            "password": user.password,
            "scope": "",
            "client_id": "swagger",
        },
    )
    assert response.status_code == 200
    tokens = response.json()
    assert tokens["token_type"] == "bearer"
    assert (await api.me(tokens["access_token"])).status_code == 200


async def test_form_login_answers_other_grant_types_and_bad_passwords_as_oauth2(
    api: Api,
) -> None:
    user = await api.new_user()
    other_grant = await api.client.post(
        LOGIN_FORM,
        data={
            "grant_type": "client_credentials",
            "username": user.email,
            "password": user.password,
        },
    )
    assert other_grant.status_code == 400
    assert other_grant.json()["error"] == "unsupported_grant_type"
    wrong = await api.client.post(
        LOGIN_FORM, data={"username": user.email, "password": "not it at all"}
    )
    assert wrong.status_code == 400
    assert wrong.json() == {
        "error": "invalid_grant",
        "error_description": "Incorrect email or password.",
        "code": "invalid_credentials",
        "detail": "Incorrect email or password.",
    }
    assert "www-authenticate" not in wrong.headers


async def test_refresh_rotates_and_the_old_refresh_token_dies(
    api: Api, clock: OffsetClock, settings: Settings
) -> None:
    user = await api.new_user()
    first = await api.refresh(user.tokens.refresh_token)
    assert first.status_code == 200
    rotated = first.json()
    assert rotated["refresh_token"] != user.tokens.refresh_token
    assert (await api.me(rotated["access_token"])).status_code == 200
    clock.advance(settings.REFRESH_REUSE_GRACE_SECONDS + 1)
    replay = await api.refresh(user.tokens.refresh_token)
    assert replay.status_code == 401
    assert replay.json()["code"] == "refresh_token_reused"


async def test_refresh_reuse_revokes_the_whole_session(
    api: Api, clock: OffsetClock, settings: Settings
) -> None:
    user = await api.new_user()
    stolen = user.tokens.refresh_token
    legit = (await api.refresh(stolen)).json()
    clock.advance(settings.REFRESH_REUSE_GRACE_SECONDS + 1)
    assert (await api.refresh(stolen)).status_code == 401
    clock.advance(settings.SESSION_CACHE_SECONDS)
    assert (await api.me(legit["access_token"])).status_code == 401
    after = await api.refresh(legit["refresh_token"])
    assert after.status_code == 401
    assert after.json()["code"] == "session_revoked"


async def test_reuse_inside_the_grace_window_returns_the_same_child(api: Api) -> None:
    user = await api.new_user()
    first = (await api.refresh(user.tokens.refresh_token)).json()
    second = await api.refresh(user.tokens.refresh_token)
    assert second.status_code == 200
    assert second.json()["refresh_token"] == first["refresh_token"]
    assert (await api.refresh(first["refresh_token"])).status_code == 200


async def test_concurrent_refreshes_of_one_token_yield_one_child(api: Api) -> None:
    user = await api.new_user()
    children: list[str] = []

    async def attempt() -> None:
        response = await api.refresh(user.tokens.refresh_token)
        assert response.status_code == 200
        children.append(response.json()["refresh_token"])

    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(attempt)
    assert len(set(children)) == 1


async def test_refresh_token_expires_with_its_session(
    api: Api, clock: OffsetClock, settings: Settings
) -> None:
    user = await api.new_user()
    clock.advance(settings.REFRESH_TOKEN_EXPIRE_DAYS * 86400 + settings.JWT_LEEWAY_SECONDS + 1)
    response = await api.refresh(user.tokens.refresh_token)
    assert response.status_code == 401


async def test_access_token_expires(api: Api, clock: OffsetClock, settings: Settings) -> None:
    user = await api.new_user()
    clock.advance(settings.ACCESS_TOKEN_EXPIRE_MINUTES * 60 + settings.JWT_LEEWAY_SECONDS + 1)
    response = await api.me(user.tokens)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    assert (await api.refresh(user.tokens.refresh_token)).status_code == 200


async def test_refresh_is_refused_for_a_deactivated_user(api: Api) -> None:
    user = await api.new_user()
    admin = await api.admin()
    await api.client.put(f"{USERS}{user.id}", json={"is_active": False}, headers=admin.headers)
    assert (await api.refresh(user.tokens.refresh_token)).status_code == 401


async def test_logout_ends_the_session_and_its_refresh_token(api: Api) -> None:
    user = await api.new_user()
    response = await api.client.post(
        LOGOUT,
        headers=user.headers,
        json={"refresh_token": user.tokens.refresh_token},
    )
    assert response.status_code == 204
    assert (await api.me(user.tokens)).status_code == 401
    assert (await api.refresh(user.tokens.refresh_token)).status_code == 401


async def test_logout_without_a_body_and_logout_of_another_device(api: Api) -> None:
    user = await api.new_user()
    laptop = await api.tokens(user.email, DEFAULT_PASSWORD)
    response = await api.client.post(
        LOGOUT, headers=user.headers, json={"refresh_token": laptop.refresh_token}
    )
    assert response.status_code == 204
    assert (await api.me(laptop)).status_code == 401
    phone = await api.tokens(user.email, DEFAULT_PASSWORD)
    assert (await api.client.post(LOGOUT, headers=phone.headers)).status_code == 204
    assert (await api.me(phone)).status_code == 401


async def test_logout_cannot_end_another_users_session(api: Api) -> None:
    alice = await api.new_user()
    mallory = await api.new_user()
    response = await api.client.post(
        LOGOUT,
        headers=mallory.headers,
        json={"refresh_token": alice.tokens.refresh_token},
    )
    assert response.status_code == 204
    assert (await api.me(alice.tokens)).status_code == 200


async def test_logout_requires_authentication(api: Api) -> None:
    response = await api.client.post(LOGOUT)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_logout_with_a_bad_refresh_token_still_ends_this_session(api: Api) -> None:
    user = await api.new_user()
    response = await api.client.post(
        LOGOUT, headers=user.headers, json={"refresh_token": "garbage.x.y"}
    )
    assert response.status_code == 204
    assert (await api.me(user.tokens)).status_code == 401


# --- a standard OAuth2 client library against the token endpoint ----------------------------


TOKEN_ENDPOINT = f"https://testserver{LOGIN_FORM}"
ME_URL = f"https://testserver{ME}"


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[tuple[FastAPI, Api]]:
    async with serve(settings.model_copy(update={"ACCESS_TOKEN_EXPIRE_MINUTES": 1})) as pair:
        yield pair


def _client(app: FastAPI, **options: object) -> AsyncOAuth2Client:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    return AsyncOAuth2Client(token_endpoint=TOKEN_ENDPOINT, transport=transport, **options)


async def test_password_grant_then_an_authenticated_call(served: tuple[FastAPI, Api]) -> None:
    app, api = served
    user = await api.new_user()
    async with _client(app) as client:
        token = await client.fetch_token(
            TOKEN_ENDPOINT, username=user.email, password=user.password
        )
        assert token["token_type"] == "bearer"
        assert 58 <= token["expires_in"] <= 60
        me = await client.get(ME_URL)
        assert me.status_code == 200
        assert me.json()["email"] == user.email


async def test_the_standard_refresh_rotates_the_refresh_token(served: tuple[FastAPI, Api]) -> None:
    app, api = served
    user = await api.new_user()
    async with _client(app) as client:
        first = await client.fetch_token(
            TOKEN_ENDPOINT, username=user.email, password=user.password
        )
        second = await client.refresh_token(TOKEN_ENDPOINT, refresh_token=first["refresh_token"])
        assert second["refresh_token"] != first["refresh_token"]
        assert second["access_token"] != first["access_token"]
        assert (await client.get(ME_URL)).status_code == 200
        # The replaced refresh token is dead: past the grace window it would revoke the session.
        assert (await api.refresh(second["refresh_token"])).status_code == 200


async def test_the_client_refreshes_by_itself_before_expiry(served: tuple[FastAPI, Api]) -> None:
    app, api = served
    user = await api.new_user()
    refreshed: list[str] = []

    async def keep(token: dict[str, object], refresh_token: str | None = None) -> None:
        refreshed.append(str(token["access_token"]))

    # Authlib refreshes a token due within `leeway` seconds; the access token lasts a minute.
    async with _client(app, update_token=keep, leeway=120) as client:
        token = await client.fetch_token(
            TOKEN_ENDPOINT, username=user.email, password=user.password
        )
        assert (await client.get(ME_URL)).status_code == 200
        assert len(refreshed) == 1
        assert refreshed[0] != token["access_token"]


async def test_errors_are_read_as_oauth2_errors(served: tuple[FastAPI, Api]) -> None:
    app, api = served
    user = await api.new_user()
    async with _client(app) as client:
        with pytest.raises(OAuthError) as wrong:
            await client.fetch_token(TOKEN_ENDPOINT, username=user.email, password="not it at all")
        assert wrong.value.error == "invalid_grant"
        assert wrong.value.description == "Incorrect email or password."
        with pytest.raises(OAuthError) as bad_refresh:
            await client.refresh_token(TOKEN_ENDPOINT, refresh_token="not.a.token")
        assert bad_refresh.value.error == "invalid_grant"
        with pytest.raises(OAuthError) as other_grant:
            await client.fetch_token(TOKEN_ENDPOINT, grant_type="client_credentials")
        assert other_grant.value.error == "unsupported_grant_type"
    response = await api.client.post(LOGIN_FORM, data={"grant_type": "refresh_token"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert (await api.login(user.email, DEFAULT_PASSWORD)).status_code == 200
