"""The scene of an attack: a running app with a victim, a bystander and the admin signed in;
the ways to present a token; and what a refusal must look like."""

from dataclasses import dataclass
from typing import Literal

import httpx
import jwt

from app.core.config import Settings
from app.core.tokens import TokenType
from tests.clock import OffsetClock
from tests.factories import Api, UserHandle
from tests.routes import ME, REFRESH

UNAUTHORIZED_CODES = {
    "invalid_token",
    "not_authenticated",
    "session_revoked",
    "refresh_token_reused",
}


Channel = Literal["bearer", "cookie", "refresh"]


@dataclass(frozen=True)
class Scene:
    """A running app with a victim, a bystander and the admin, all signed in."""

    api: Api
    settings: Settings
    clock: OffsetClock
    victim: UserHandle
    bystander: UserHandle
    admin_id: int

    @property
    def now(self) -> int:
        return int(self.clock.now().timestamp())

    @property
    def leeway(self) -> int:
        return self.settings.JWT_LEEWAY_SECONDS

    def real(self, token_type: TokenType) -> str:
        tokens = self.victim.tokens
        return tokens.access_token if token_type == "access" else tokens.refresh_token

    def claims(self, token_type: TokenType, **changes: object) -> dict[str, object]:
        """The claims of the victim's real token of this type, freshly dated, with changes."""
        claims: dict[str, object] = jwt.decode(
            self.real(token_type), options={"verify_signature": False}
        )
        claims.update(iat=self.now, exp=self.now + 600)
        claims.update(changes)
        return claims

    def sign(
        self, claims: dict[str, object], *, key: str | None = None, algorithm: str = "HS256"
    ) -> str:
        return jwt.encode(
            claims, key or self.settings.SECRET_KEY.get_secret_value(), algorithm=algorithm
        )

    def forge(self, token_type: TokenType, **changes: object) -> str:
        """A token signed with the real key: valid but for `changes`."""
        return self.sign(self.claims(token_type, **changes))


async def present(api: Api, channel: Channel, token: str) -> httpx.Response:
    if channel == "bearer":
        return await api.client.get(ME, headers={b"Authorization": b"Bearer " + token.encode()})
    if channel == "cookie":
        return await api.client.get(ME, headers={"Cookie": f"access_token={token}"})
    return await api.client.post(REFRESH, json={"refresh_token": token})


def assert_unauthorized(response: httpx.Response, context: object = None) -> None:
    """A 401 with the bearer challenge, the error body, and no credentials handed out."""
    assert response.status_code == 401, (context, response.status_code, response.text)
    assert response.headers.get("www-authenticate") == "Bearer", context
    body = response.json()
    assert set(body) == {"code", "detail"}, context
    assert body["code"] in UNAUTHORIZED_CODES, (context, body)
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert "set-cookie" not in response.headers, context


async def assert_still_signed_in(scene: Scene, user: UserHandle) -> None:
    """The user's session survived, as seen after the liveness cache has expired."""
    scene.clock.advance(scene.settings.SESSION_CACHE_SECONDS)
    response = await scene.api.me(user.tokens)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == user.id
