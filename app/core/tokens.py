"""JWT access and refresh tokens: one signer, pinned algorithms, every claim required."""

import base64
import binascii
import re
import ssl
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

import jwt
import orjson
from jwt.algorithms import HMACAlgorithm

from app.core.errors import InvalidToken

TokenType = Literal["access", "refresh"]
REQUIRED_CLAIMS = ("sub", "sid", "jti", "typ", "iat", "exp", "iss", "aud")
MAX_TOKEN_LENGTH = 4096
_BASE64URL = re.compile(rb"[A-Za-z0-9_-]*")


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    session_id: str
    token_id: str
    token_type: TokenType
    issued_at: datetime
    expires_at: datetime
    not_before: datetime | None = None


class Signer(Protocol):
    """Signs and verifies compact JWTs; the seam where asymmetric keys (JWKS) would plug in."""

    def sign(self, payload: dict[str, object]) -> str: ...

    def verify(self, token: str, *, issuer: str, audience: str) -> dict[str, object]: ...


class _VettedKeyHmac(HMACAlgorithm):
    """HMAC with the service's one key checked once, at start-up.

    PyJWT vets an HMAC key on every sign and verify (it tries to parse it as a public key and as
    a certificate, to refuse asymmetric keys), which cost more than the signature itself; and
    it measures the key's length against the hash on every call as well.
    """

    def __init__(self, hash_alg: Any, key: bytes) -> None:
        super().__init__(hash_alg)
        self._key = key
        self._prepared = super().prepare_key(key)
        self._length_warning = super().check_key_length(self._prepared)

    def prepare_key(self, key: str | bytes) -> bytes:
        return self._prepared if key is self._key else super().prepare_key(key)

    def check_key_length(self, key: bytes) -> str | None:
        return self._length_warning if key is self._prepared else super().check_key_length(key)


class _CompactJws(jwt.PyJWS):
    """PyJWS reading each base64url segment with a regular expression for its alphabet.

    PyJWT tests every character of a segment in a Python loop, which was half the cost of
    verifying a token. The refusals are the same: a property test holds both to that.
    """

    @staticmethod
    def _decode_base64url_segment(segment: bytes, name: str) -> bytes:
        stripped = segment.rstrip(b"=")
        padding = len(segment) - len(stripped)
        if (
            padding > 2
            or (padding and len(segment) % 4 != 0)
            or len(stripped) % 4 == 1
            or _BASE64URL.fullmatch(stripped) is None
        ):
            raise jwt.DecodeError(f"Invalid {name} padding")
        try:
            decoded = base64.urlsafe_b64decode(stripped + b"=" * (-len(stripped) % 4))
        except binascii.Error as exc:
            raise jwt.DecodeError(f"Invalid {name} padding") from exc
        # Only the canonical encoding is accepted: no stray bits in the last character.
        if base64.urlsafe_b64encode(decoded).rstrip(b"=") != stripped:
            raise jwt.DecodeError(f"Invalid {name} padding")
        return decoded


_HASHES = {
    "HS256": HMACAlgorithm.SHA256,
    "HS384": HMACAlgorithm.SHA384,
    "HS512": HMACAlgorithm.SHA512,
}


class HmacSigner:
    """Compact JWS with one pinned HMAC algorithm; the claims are JSON read and written here."""

    def __init__(self, key: str, algorithm: str) -> None:
        self._key = key.encode()
        self._algorithm = algorithm
        self._jws = _CompactJws(algorithms=[])
        self._jws.register_algorithm(algorithm, _VettedKeyHmac(_HASHES[algorithm], self._key))

    def sign(self, payload: dict[str, object]) -> str:
        # PyJWS writes the header {"alg": …, "typ": "JWT"} itself.
        return self._jws.encode(orjson.dumps(payload), self._key, algorithm=self._algorithm)

    def verify(self, token: str, *, issuer: str, audience: str) -> dict[str, object]:
        """The claims of a token signed with our key and algorithm, naming us as issuer and
        audience, with every required claim present; lifetimes are TokenCodec's to check."""
        signed = self._jws.decode_complete(token, self._key, algorithms=[self._algorithm])
        try:
            claims = orjson.loads(signed["payload"])
        except orjson.JSONDecodeError as exc:
            raise jwt.DecodeError("the payload is not JSON") from exc
        if not isinstance(claims, dict):
            raise jwt.DecodeError("the payload is not a JSON object")
        missing = [claim for claim in REQUIRED_CLAIMS if claim not in claims]
        if missing:
            raise jwt.MissingRequiredClaimError(missing[0])
        if not isinstance(claims["sub"], str):
            raise jwt.exceptions.InvalidSubjectError("the subject must be a string")
        if claims["iss"] != issuer:
            raise jwt.InvalidIssuerError("wrong issuer")
        if claims["aud"] != audience:
            raise jwt.InvalidAudienceError("wrong audience")
        return claims


_TOKEN_ID_BYTES = 18


def new_token_ids(count: int) -> list[str]:
    """`count` random, unguessable identifiers (144 bits each) for tokens and sessions.

    Drawn together from OpenSSL's generator, which the system seeds and which reseeds itself
    in a forked child. os.urandom, behind `secrets`, is as strong, but it is a system call
    that releases the interpreter lock: a SQLite or hashing thread waiting for the lock takes
    it, and the event loop then waits to get it back. Refresh throughput rose by about 7 %.
    """
    drawn = ssl.RAND_bytes(_TOKEN_ID_BYTES * count)
    return [
        base64.urlsafe_b64encode(drawn[start : start + _TOKEN_ID_BYTES]).decode()
        for start in range(0, len(drawn), _TOKEN_ID_BYTES)
    ]


def new_token_id() -> str:
    """One random, unguessable identifier for a token or a session."""
    return new_token_ids(1)[0]


class TokenCodec:
    """Issues and checks tokens.

    An access token whose signature and claims were verified once is remembered (by its exact
    text) so that a client reusing it costs a dictionary lookup instead of a signature check;
    its type and lifetime are still checked on every use.
    """

    def __init__(
        self,
        *,
        signer: Signer,
        issuer: str,
        audience: str,
        leeway: timedelta,
        remembered_tokens: int = 10_000,
    ) -> None:
        self._signer = signer
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._verified: OrderedDict[str, TokenClaims] = OrderedDict()
        self._remembered_tokens = remembered_tokens

    def encode(
        self,
        *,
        user_id: int,
        session_id: str,
        token_type: TokenType,
        issued_at: datetime,
        expires_at: datetime,
        token_id: str,
    ) -> str:
        """Sign a token."""
        payload: dict[str, object] = {
            "sub": str(user_id),
            "sid": session_id,
            "jti": token_id,
            "typ": token_type,
            "iat": int(issued_at.timestamp()),
            "exp": int(expires_at.timestamp()),
            "iss": self._issuer,
            "aud": self._audience,
        }
        return self._signer.sign(payload)

    def decode(self, token: str, *, expected_type: TokenType, now: datetime) -> TokenClaims:
        """Verify a token's signature, claims, type and lifetime, or raise InvalidToken."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify(token, now)
            # A refresh token is spent on its first use: remembered, it would only push out
            # access tokens, which clients present again and again.
            if claims.token_type == "access":
                self._verified[token] = claims
                if len(self._verified) > self._remembered_tokens:
                    self._verified.popitem(last=False)
        if claims.token_type != expected_type:
            raise InvalidToken
        if claims.expires_at + self._leeway <= now or claims.issued_at - self._leeway > now:
            raise InvalidToken
        if claims.not_before is not None and claims.not_before - self._leeway > now:
            raise InvalidToken
        return claims

    def _verify(self, token: str, now: datetime) -> TokenClaims:
        try:
            payload = self._signer.verify(token, issuer=self._issuer, audience=self._audience)
        except jwt.PyJWTError as exc:
            raise InvalidToken from exc
        try:
            return TokenClaims(
                user_id=int(str(payload["sub"])),
                session_id=_text(payload["sid"]),
                token_id=_text(payload["jti"]),
                token_type=_token_type(payload["typ"]),
                issued_at=_instant(payload["iat"], now),
                expires_at=_instant(payload["exp"], now),
                not_before=_instant(payload["nbf"], now) if "nbf" in payload else None,
            )
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidToken from exc


def _text(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise ValueError("claim must be a short non-empty string")
    return value


def _token_type(value: object) -> TokenType:
    if value == "access":
        return "access"
    if value == "refresh":
        return "refresh"
    raise ValueError("unknown token type")


def _instant(value: object, now: datetime) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("time claims must be numbers")
    return datetime.fromtimestamp(value, tz=now.tzinfo)
