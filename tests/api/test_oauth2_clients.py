"""A standard OAuth2 client library (Authlib) against the token endpoint: the password grant,
the refresh_token grant, automatic refresh before expiry, and RFC 6749 errors."""

from collections.abc import AsyncIterator

import httpx
import pytest
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from fastapi import FastAPI

from app.core.config import Settings
from tests.conftest import serve
from tests.factories import DEFAULT_PASSWORD, Api

TOKEN_ENDPOINT = "https://testserver/api/v1/auth/login-form"
ME = "https://testserver/api/v1/users/me"


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
        me = await client.get(ME)
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
        assert (await client.get(ME)).status_code == 200
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
        assert (await client.get(ME)).status_code == 200
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
    response = await api.client.post(
        "/api/v1/auth/login-form", data={"grant_type": "refresh_token"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert (await api.login(user.email, DEFAULT_PASSWORD)).status_code == 200
