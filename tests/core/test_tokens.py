"""The token codec's own parts, held to PyJWT where they stand in for it."""

import base64
import re
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.errors import InvalidToken
from app.core.tokens import HmacSigner, TokenCodec, _CompactJws, new_token_ids

# Mostly the base64url alphabet and padding, with some bytes outside it.
_SEGMENT_BYTES = st.binary(max_size=24) | st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ .\n\x00é",
    max_size=24,
).map(lambda text: text.encode())


def _outcome(decode: object, segment: bytes) -> bytes | str:
    assert callable(decode)
    try:
        decoded = decode(segment, "payload")
    except jwt.DecodeError as error:
        return f"refused: {error}"
    assert isinstance(decoded, bytes)
    return decoded


@settings(max_examples=500)
@given(_SEGMENT_BYTES)
def test_segments_are_read_and_refused_exactly_as_pyjwt_does(segment: bytes) -> None:
    assert _outcome(_CompactJws._decode_base64url_segment, segment) == _outcome(
        jwt.PyJWS._decode_base64url_segment, segment
    )


@pytest.mark.parametrize(
    "segment",
    [b"!!!!", b"eyJhIjoxfQ=", b"eyJhIjoxfQ===", b"eyJhIjoxfR", b"abcde", b"ab+/", b"ab\ncd"],
)
def test_junk_padding_and_non_canonical_segments_are_refused(segment: bytes) -> None:
    with pytest.raises(jwt.DecodeError):
        _CompactJws._decode_base64url_segment(segment, "payload")


def test_a_canonical_segment_with_or_without_padding_is_read() -> None:
    assert _CompactJws._decode_base64url_segment(b"eyJhIjoxfQ", "payload") == b'{"a":1}'
    assert _CompactJws._decode_base64url_segment(b"eyJhIjoxfQ==", "payload") == b'{"a":1}'


def test_identifiers_drawn_together_are_distinct_url_safe_and_144_bits() -> None:
    drawn = [identifier for _ in range(200) for identifier in new_token_ids(3)]
    assert len(set(drawn)) == len(drawn)
    for identifier in drawn:
        assert re.fullmatch(r"[A-Za-z0-9_-]{24}", identifier)
        assert len(base64.urlsafe_b64decode(identifier)) == 18


class _CountingSigner:
    def __init__(self) -> None:
        self._signer = HmacSigner("a test signing key of at least thirty-two bytes", "HS256")
        self.verified = 0

    def sign(self, payload: dict[str, object]) -> str:
        return self._signer.sign(payload)

    def verify(self, token: str, *, issuer: str, audience: str) -> dict[str, object]:
        self.verified += 1
        return self._signer.verify(token, issuer=issuer, audience=audience)


def test_access_tokens_are_verified_once_and_refresh_tokens_every_time() -> None:
    signer = _CountingSigner()
    codec = TokenCodec(signer=signer, issuer="issuer", audience="audience", leeway=timedelta(0))
    now = datetime.now(UTC)
    tokens = {
        token_type: codec.encode(
            user_id=1,
            session_id="session",
            token_type=token_type,
            issued_at=now,
            expires_at=now + timedelta(minutes=5),
            token_id=token_type,
        )
        for token_type in ("access", "refresh")
    }
    for _ in range(3):
        codec.decode(tokens["access"], expected_type="access", now=now)
    assert signer.verified == 1
    for _ in range(3):
        codec.decode(tokens["refresh"], expected_type="refresh", now=now)
    assert signer.verified == 4
    # A remembered access token is still checked for its type and its lifetime.
    with pytest.raises(InvalidToken):
        codec.decode(tokens["access"], expected_type="refresh", now=now)
    with pytest.raises(InvalidToken):
        codec.decode(tokens["access"], expected_type="access", now=now + timedelta(minutes=6))
    assert signer.verified == 4
