"""Forged, tampered, stale and misused tokens, tested as attacks against the profile (as a
bearer token and as the access cookie) and the refresh route."""

import base64
import json
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from app.core.tokens import REQUIRED_CLAIMS, TokenType
from tests.attacks.scene import (
    Channel,
    Scene,
    assert_still_signed_in,
    assert_unauthorized,
    present,
)
from tests.routes import LOGOUT, ME

ATTACKER_KEY = "attacker-chosen-signing-key-" + "a" * 40

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


# --- user enumeration ---------------------------------------------------------------------------
