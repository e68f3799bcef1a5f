"""Double-submit CSRF tokens bound to a session: an HMAC of the session id."""

import base64
import hashlib
import hmac

_CONTEXT = b"csrf-token:v1:"


def csrf_token_for(session_id: str, key: str) -> str:
    """The CSRF token of a session; only the holder of the signing key can compute it."""
    digest = hmac.new(key.encode(), _CONTEXT + session_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def csrf_token_valid(session_id: str, key: str, *, header: str | None, cookie: str | None) -> bool:
    """The header echoes the cookie, and both are this session's token."""
    if not header or not cookie or len(header) > 128:
        return False
    presented = header.encode("utf-8", "surrogateescape")
    expected = csrf_token_for(session_id, key).encode()
    return hmac.compare_digest(presented, cookie.encode("utf-8", "surrogateescape")) and (
        hmac.compare_digest(presented, expected)
    )
