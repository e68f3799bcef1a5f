"""The security claims, tested as attacks.

Forged, tampered, stale and misused tokens against GET /api/v1/users/me (as a bearer token and
as the access cookie) and POST /api/v1/auth/refresh; privilege escalation by ordinary users; and
user enumeration through the sign-in answers.
"""

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import jwt
import pytest

from app.core.config import Settings
from app.core.tokens import REQUIRED_CLAIMS, TokenType
from tests.clock import OffsetClock
from tests.factories import DEFAULT_PASSWORD, Api, UserHandle

ME = "/api/v1/users/me"
USERS = "/api/v1/users/"
SESSIONS = "/api/v1/sessions/"
LOGIN = "/api/v1/auth/login"
LOGIN_FORM = "/api/v1/auth/login-form"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"

ATTACKER_KEY = "attacker-chosen-signing-key-" + "a" * 40
UNAUTHORIZED_CODES = {
    "invalid_token",
    "not_authenticated",
    "session_revoked",
    "refresh_token_reused",
}

Channel = Literal["bearer", "cookie", "refresh"]
CHANNELS: tuple[Channel, ...] = ("bearer", "cookie", "refresh")
ACCESS_CHANNELS: tuple[Channel, ...] = ("bearer", "cookie")
# Cookies carry only cookie-safe characters; garbage with spaces or quotes goes elsewhere.
TEXT_CHANNELS: tuple[Channel, ...] = ("bearer", "refresh")
TOKEN_TYPE: dict[Channel, TokenType] = {
    "bearer": "access",
    "cookie": "access",
    "refresh": "refresh",
}
OTHER_TYPE: dict[TokenType, TokenType] = {"access": "refresh", "refresh": "access"}


# --- crafting tokens by hand --------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: object) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def unb64url_json(segment: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return decoded


def unsigned(header: dict[str, object], claims: dict[str, object], signature: str = "") -> str:
    """A compact JWT assembled by hand, with whatever signature segment we like."""
    return f"{b64url_json(header)}.{b64url_json(claims)}.{signature}"


def tamper(token: str, **changes: object) -> str:
    """Edit a real token's payload and keep its header and signature."""
    header, payload, signature = token.split(".")
    claims = {**unb64url_json(payload), **changes}
    return f"{header}.{b64url_json(claims)}.{signature}"


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


@pytest.fixture
async def scene(api: Api, settings: Settings, clock: OffsetClock) -> Scene:
    victim = await api.new_user()
    bystander = await api.new_user()
    admin = await api.admin()
    # Sign-in sets session cookies too; the attacks below present exactly one credential.
    api.client.cookies.clear()
    return Scene(api, settings, clock, victim, bystander, admin.id)


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


# --- forged and tampered tokens -----------------------------------------------------------------


Forge = Callable[[Scene, TokenType], str]


def _alg_none(scene: Scene, token_type: TokenType) -> str:
    return unsigned({"alg": "none", "typ": "JWT"}, scene.claims(token_type))


def _alg_none_keeping_the_signature(scene: Scene, token_type: TokenType) -> str:
    signature = scene.real(token_type).rsplit(".", 1)[1]
    return unsigned({"alg": "None", "typ": "JWT"}, scene.claims(token_type), signature)


def _signature_stripped(scene: Scene, token_type: TokenType) -> str:
    return scene.real(token_type).rsplit(".", 1)[0] + "."


def _other_algorithm_same_key(scene: Scene, token_type: TokenType) -> str:
    return scene.sign(scene.claims(token_type), algorithm="HS384")


def _wrong_key(scene: Scene, token_type: TokenType) -> str:
    return scene.sign(scene.claims(token_type), key=ATTACKER_KEY)


def _sub_tampered_to_the_admin(scene: Scene, token_type: TokenType) -> str:
    return tamper(scene.real(token_type), sub=str(scene.admin_id))


def _expiry_tampered(scene: Scene, token_type: TokenType) -> str:
    return tamper(scene.real(token_type), exp=scene.now + 10**6)


def _typ_tampered(scene: Scene, token_type: TokenType) -> str:
    return tamper(scene.real(OTHER_TYPE[token_type]), typ=token_type)


def _expired(scene: Scene, token_type: TokenType) -> str:
    return scene.forge(token_type, iat=scene.now - 3600, exp=scene.now - scene.leeway - 60)


def _issued_in_the_future(scene: Scene, token_type: TokenType) -> str:
    return scene.forge(token_type, iat=scene.now + scene.leeway + 60, exp=scene.now + 3600)


def _changed(**changes: object) -> Forge:
    def forge(scene: Scene, token_type: TokenType) -> str:
        return scene.forge(token_type, **changes)

    return forge


def _without(claim: str) -> Forge:
    def forge(scene: Scene, token_type: TokenType) -> str:
        claims = scene.claims(token_type)
        del claims[claim]
        return scene.sign(claims)

    return forge


def _other_type_claim(scene: Scene, token_type: TokenType) -> str:
    return scene.forge(token_type, typ=OTHER_TYPE[token_type])


def _real_token_of_the_other_type(scene: Scene, token_type: TokenType) -> str:
    return scene.real(OTHER_TYPE[token_type])


def _sub_as_a_json_number(scene: Scene, token_type: TokenType) -> str:
    return scene.forge(token_type, sub=scene.victim.id)


def _sid_of_another_users_session(scene: Scene, token_type: TokenType) -> str:
    return scene.forge(token_type, sid=scene.bystander.tokens.session_id)


FORGERIES: dict[str, list[tuple[str, Forge]]] = {
    "signature": [
        ("alg-none", _alg_none),
        ("alg-none-keeping-the-signature", _alg_none_keeping_the_signature),
        ("signature-stripped", _signature_stripped),
        ("hs384-with-the-real-key", _other_algorithm_same_key),
        ("signed-with-another-key", _wrong_key),
        ("sub-tampered-to-the-admin", _sub_tampered_to_the_admin),
        ("expiry-tampered", _expiry_tampered),
        ("typ-tampered", _typ_tampered),
    ],
    "lifetime": [
        ("expired-beyond-leeway", _expired),
        ("issued-in-the-future-beyond-leeway", _issued_in_the_future),
        ("time-claims-as-strings", _changed(iat="now", exp="tomorrow")),
        ("expiry-beyond-any-calendar", _changed(exp=10**30)),
    ],
    "issuer-audience-type": [
        ("wrong-issuer", _changed(iss="https://evil.example")),
        ("wrong-audience", _changed(aud="another-service")),
        ("audience-list-without-ours", _changed(aud=["another-service", "yet-another"])),
        ("unknown-typ", _changed(typ="id_token")),
        ("null-typ", _changed(typ=None)),
        ("typ-of-the-other-kind", _other_type_claim),
        ("real-token-of-the-other-kind", _real_token_of_the_other_type),
    ],
    "subject-and-session": [
        ("sub-not-a-number", _changed(sub="admin")),
        ("sub-as-a-json-number", _sub_as_a_json_number),
        ("sub-of-no-user", _changed(sub="999999")),
        ("sid-of-no-session", _changed(sid="no-such-session")),
        ("sid-too-long", _changed(sid="s" * 65)),
        ("sid-of-another-users-session", _sid_of_another_users_session),
    ],
    "missing-claims": [(f"missing-{claim}", _without(claim)) for claim in REQUIRED_CLAIMS],
}


async def test_a_token_forged_with_the_real_key_is_accepted(scene: Scene) -> None:
    """The control: the forging helpers make valid tokens, so each refusal below is the flaw's."""
    for channel in CHANNELS:
        response = await present(scene.api, channel, scene.forge(TOKEN_TYPE[channel]))
        assert response.status_code == 200, (channel, response.text)
    lower_case_scheme = {"Authorization": "bearer " + scene.forge("access")}
    assert (await scene.api.client.get(ME, headers=lower_case_scheme)).status_code == 200
    # Clock skew within the leeway is tolerated on both ends of the lifetime.
    half = scene.leeway // 2
    for changes in ({"iat": scene.now + half}, {"exp": scene.now - half}):
        for channel in ACCESS_CHANNELS:
            response = await present(scene.api, channel, scene.forge("access", **changes))
            assert response.status_code == 200, (channel, changes, response.text)


@pytest.mark.parametrize("family", FORGERIES)
async def test_forged_and_tampered_tokens_are_refused(scene: Scene, family: str) -> None:
    """Every forgery, on every channel: a 401, and the victim's real session is untouched."""
    for name, forge in FORGERIES[family]:
        for channel in CHANNELS:
            token = forge(scene, TOKEN_TYPE[channel])
            assert_unauthorized(await present(scene.api, channel, token), (name, channel))
    await assert_still_signed_in(scene, scene.victim)


GARBAGE_TOKENS = (
    "garbage",
    "a.b.c",
    "..",
    "...",
    "null",
    "eyJhbGciOiJIUzI1NiJ9",
    "eyJhbGciOiJIUzI1NiJ9.e30.",
    "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",
    "' OR '1'='1",
    "t\u00f6k\u00e9n.\u00e9.\u00e9",
    "x" * 4096,
)


async def test_garbage_tokens_are_refused(scene: Scene) -> None:
    for token in GARBAGE_TOKENS:
        for channel in TEXT_CHANNELS:
            assert_unauthorized(await present(scene.api, channel, token), (channel, token[:20]))
    # 10 000 characters: a real token padded out, in the header and in the cookie.
    padded = scene.real("access") + "A" * (10_000 - len(scene.real("access")))
    assert len(padded) == 10_000
    for channel in ACCESS_CHANNELS:
        assert_unauthorized(await present(scene.api, channel, padded), channel)


async def test_a_10000_character_refresh_token_fails_validation(scene: Scene) -> None:
    """The refresh body caps the token at MAX_TOKEN_LENGTH, so this is a 422, not a 401."""
    response = await present(scene.api, "refresh", "x" * 10_000)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert [item["loc"] for item in response.json()["detail"]] == [["body", "refresh_token"]]


MALFORMED_AUTHORIZATION = (
    "",
    "Bearer",
    "Bearer ",
    "Basic dXNlcjpwYXNzd29yZA==",
    "Basic {token}",
    "Token {token}",
    "{token}",
    "Bearer: {token}",
)


async def test_malformed_authorization_headers_are_refused(scene: Scene) -> None:
    """No header, no token, or a valid token under another scheme: never signed in."""
    assert_unauthorized(await scene.api.client.get(ME), "no header")
    for template in MALFORMED_AUTHORIZATION:
        authorization = template.format(token=scene.real("access"))
        response = await scene.api.client.get(ME, headers={"Authorization": authorization})
        assert_unauthorized(response, template)
        assert response.json()["code"] in {"not_authenticated", "invalid_token"}


# --- sessions that ended, sessions of someone else ---------------------------------------------


async def test_tokens_of_a_logged_out_session_are_refused(scene: Scene) -> None:
    response = await scene.api.client.post(LOGOUT, headers=scene.victim.headers)
    assert response.status_code == 204, response.text
    scene.api.client.cookies.clear()
    for channel in CHANNELS:
        assert_unauthorized(
            await present(scene.api, channel, scene.real(TOKEN_TYPE[channel])), channel
        )
        forged = scene.forge(TOKEN_TYPE[channel])
        assert_unauthorized(await present(scene.api, channel, forged), channel)


async def test_a_token_naming_another_users_session_is_refused_even_when_cached(
    scene: Scene,
) -> None:
    """The forgery family above meets a cold session cache; here the session is cached."""
    assert (await scene.api.me(scene.bystander.tokens)).status_code == 200
    for channel in ACCESS_CHANNELS:
        token = _sid_of_another_users_session(scene, "access")
        assert_unauthorized(await present(scene.api, channel, token), channel)
    await assert_still_signed_in(scene, scene.bystander)
    await assert_still_signed_in(scene, scene.victim)


@pytest.mark.parametrize("with_its_current_jti", [False, True], ids=["any-jti", "its-jti"])
async def test_a_refresh_token_naming_another_users_session_neither_uses_nor_ends_it(
    scene: Scene, with_its_current_jti: bool
) -> None:
    """Signed with the real key, so only the sub/sid owner check stands in the way."""
    bystander_claims = jwt.decode(
        scene.bystander.tokens.refresh_token, options={"verify_signature": False}
    )
    changes: dict[str, object] = {"sid": bystander_claims["sid"]}
    if with_its_current_jti:
        changes["jti"] = bystander_claims["jti"]
    response = await present(scene.api, "refresh", scene.forge("refresh", **changes))
    assert_unauthorized(response)
    await assert_still_signed_in(scene, scene.bystander)
    assert (await scene.api.refresh(scene.bystander.tokens.refresh_token)).status_code == 200


async def test_real_tokens_expire(scene: Scene) -> None:
    settings = scene.settings
    assert (await present(scene.api, "bearer", scene.real("access"))).status_code == 200
    scene.clock.advance(settings.ACCESS_TOKEN_EXPIRE_MINUTES * 60 + settings.JWT_LEEWAY_SECONDS + 1)
    assert_unauthorized(await present(scene.api, "bearer", scene.real("access")))
    assert_unauthorized(await present(scene.api, "cookie", scene.real("access")))
    scene.clock.advance(settings.REFRESH_TOKEN_EXPIRE_DAYS * 86_400)
    assert_unauthorized(await present(scene.api, "refresh", scene.real("refresh")))


# --- privilege escalation -----------------------------------------------------------------------


async def test_registration_cannot_grant_privileges(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/auth/register",
        json={
            "email": "climber@example.com",
            "username": "climber",
            "password": DEFAULT_PASSWORD,
            "is_admin": True,
            "is_active": False,
            "id": 1,
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["is_admin"], created["is_active"]) == (False, True)
    assert created["id"] != 1
    tokens = await api.tokens("climber@example.com", DEFAULT_PASSWORD)
    me = (await api.me(tokens)).json()
    assert (me["id"], me["is_admin"], me["is_active"]) == (created["id"], False, True)
    forbidden = await api.client.get(USERS, headers=tokens.headers)
    assert forbidden.status_code == 403
    assert forbidden.json()["code"] == "forbidden"


ESCALATING_PROFILE_CHANGES: tuple[dict[str, object], ...] = (
    {"is_admin": True},
    {"is_admin": True, "username": "sneaky"},
    {"is_active": True, "is_admin": "true"},
    {"id": 1},
)


async def test_profile_update_cannot_grant_admin(scene: Scene) -> None:
    for changes in ESCALATING_PROFILE_CHANGES:
        response = await scene.api.client.put(ME, json=changes, headers=scene.victim.headers)
        assert response.status_code == 422, (changes, response.text)
        assert response.json()["code"] == "validation_error"
    scene.clock.advance(scene.settings.SESSION_CACHE_SECONDS)
    me = (await scene.api.me(scene.victim.tokens)).json()
    assert (me["id"], me["username"], me["is_admin"]) == (
        scene.victim.id,
        scene.victim.username,
        False,
    )
    assert (await scene.api.client.get(USERS, headers=scene.victim.headers)).status_code == 403


async def test_ordinary_users_cannot_use_admin_routes(scene: Scene) -> None:
    headers = scene.victim.headers
    attempts = [
        ("GET", USERS, None),
        ("GET", f"{USERS}?is_admin=true", None),
        ("PUT", f"{USERS}{scene.victim.id}", {"is_admin": True}),
        ("PUT", f"{USERS}{scene.bystander.id}", {"is_active": False}),
        ("PUT", f"{USERS}{scene.admin_id}", {"password": "taken over by victim"}),
        ("GET", "/metrics", None),
    ]
    for method, path, body in attempts:
        response = await scene.api.client.request(method, path, json=body, headers=headers)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json() == {
            "code": "forbidden",
            "detail": "You do not have permission to do this.",
        }
    scene.clock.advance(scene.settings.SESSION_CACHE_SECONDS)
    assert (await scene.api.me(scene.victim.tokens)).json()["is_admin"] is False
    await assert_still_signed_in(scene, scene.bystander)
    admin = await scene.api.admin()
    assert admin.id == scene.admin_id


async def test_revoking_another_users_session_is_not_found_and_leaves_it_working(
    scene: Scene,
) -> None:
    target = scene.bystander.tokens.session_id
    response = await scene.api.client.delete(f"{SESSIONS}{target}", headers=scene.victim.headers)
    assert response.status_code == 404, response.text
    assert response.json() == {"code": "session_not_found", "detail": "Session not found."}
    await assert_still_signed_in(scene, scene.bystander)
    listed = await scene.api.client.get(SESSIONS, headers=scene.bystander.headers)
    assert target in {session["id"] for session in listed.json()}
    refreshed = await scene.api.refresh(scene.bystander.tokens.refresh_token)
    assert refreshed.status_code == 200, refreshed.text


# --- user enumeration ---------------------------------------------------------------------------


SignInAnswer = tuple[int, object, str | None]


async def _sign_in_answers(api: Api, email: str, password: str) -> list[SignInAnswer]:
    """The JSON sign-in's answer and the token endpoint's (RFC 6749's, for OAuth2 clients)."""
    json_login = await api.login(email, password)
    form_login = await api.client.post(LOGIN_FORM, data={"username": email, "password": password})
    return [
        (response.status_code, response.json(), response.headers.get("www-authenticate"))
        for response in (json_login, form_login)
    ]


async def test_sign_in_failures_do_not_reveal_which_accounts_exist(scene: Scene) -> None:
    admin = await scene.api.admin()
    deactivated = await scene.api.client.put(
        f"{USERS}{scene.bystander.id}", json={"is_active": False}, headers=admin.headers
    )
    assert deactivated.status_code == 200, deactivated.text
    unknown = await _sign_in_answers(scene.api, "nobody-here@example.com", DEFAULT_PASSWORD)
    wrong_password = await _sign_in_answers(scene.api, scene.victim.email, "not the password")
    inactive = await _sign_in_answers(scene.api, scene.bystander.email, DEFAULT_PASSWORD)
    expected: list[SignInAnswer] = [
        (401, {"code": "invalid_credentials", "detail": "Incorrect email or password."}, "Bearer"),
        (
            400,
            {
                "error": "invalid_grant",
                "error_description": "Incorrect email or password.",
                "code": "invalid_credentials",
                "detail": "Incorrect email or password.",
            },
            None,
        ),
    ]
    assert unknown == wrong_password == inactive == expected
