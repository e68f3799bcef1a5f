"""Small helpers that make users and sessions: through the public API, or as the records the
session stores keep."""

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import jwt

from app.core.tokens import new_token_id
from app.domain.sessions import SessionRecord
from tests.routes import LOGIN, ME, REFRESH, REGISTER

# The default admin from settings is the first account.
ADMIN_ID = 1
ADMIN_EMAIL = "admin@example.com"
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin-password-for-tests"
DEFAULT_PASSWORD = "correct horse battery staple"
FIREFOX_UA = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)

_counter = itertools.count(1)


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    @property
    def session_id(self) -> str:
        claims = jwt.decode(self.access_token, options={"verify_signature": False})
        return str(claims["sid"])


@dataclass(frozen=True)
class UserHandle:
    id: int
    email: str
    username: str
    password: str
    tokens: Tokens

    @property
    def headers(self) -> dict[str, str]:
        return self.tokens.headers


class Api:
    """The service as a client sees it."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def register(self, **fields: Any) -> httpx.Response:
        n = next(_counter)
        body = {
            "email": f"user{n}@example.com",
            "username": f"user{n}",
            "password": DEFAULT_PASSWORD,
        }
        body.update(fields)
        return await self.client.post(REGISTER, json=body)

    async def login(
        self, email: str, password: str, user_agent: str | None = None
    ) -> httpx.Response:
        headers = {"User-Agent": user_agent} if user_agent else {}
        return await self.client.post(
            LOGIN, json={"email": email, "password": password}, headers=headers
        )

    async def tokens(self, email: str, password: str, user_agent: str | None = None) -> Tokens:
        response = await self.login(email, password, user_agent)
        assert response.status_code == 200, response.text
        body = response.json()
        return Tokens(body["access_token"], body["refresh_token"])

    async def refresh(self, refresh_token: str) -> httpx.Response:
        return await self.client.post(REFRESH, json={"refresh_token": refresh_token})

    async def me(self, tokens: Tokens | str) -> httpx.Response:
        token = tokens if isinstance(tokens, str) else tokens.access_token
        return await self.client.get(ME, headers={"Authorization": f"Bearer {token}"})

    async def new_user(self, password: str = DEFAULT_PASSWORD, **fields: Any) -> UserHandle:
        """Register and log in a fresh ordinary user."""
        response = await self.register(password=password, **fields)
        assert response.status_code == 201, response.text
        body = response.json()
        tokens = await self.tokens(body["email"], password)
        return UserHandle(body["id"], body["email"], body["username"], password, tokens)

    async def admin(self) -> UserHandle:
        """The default admin from settings, logged in."""
        tokens = await self.tokens(ADMIN_EMAIL, ADMIN_PASSWORD)
        me = (await self.me(tokens)).json()
        return UserHandle(me["id"], ADMIN_EMAIL, ADMIN_USERNAME, ADMIN_PASSWORD, tokens)


def session_record(
    created: datetime, *, user_id: int = ADMIN_ID, jti: str = "jti-0", ip: str = "192.0.2.1"
) -> SessionRecord:
    """A week-long session as a store keeps it, created (and last seen) at `created`."""
    return SessionRecord(
        id=new_token_id(),
        user_id=user_id,
        created_at=created,
        last_seen_at=created,
        expires_at=created + timedelta(days=7),
        ip_address=ip,
        user_agent="pytest",
        browser="Other",
        os="Other",
        device_type="other",
        refresh_jti=jti,
        refresh_issued_at=created,
    )
