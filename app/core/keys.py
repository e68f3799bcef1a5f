"""Keys for counters and records that must not carry what they are about in clear text."""

import hashlib
import hmac


def keyed_digest(secret: str, purpose: str, subject: str) -> str:
    """A 64-character hex key for `subject` under `purpose`: stable for the same secret, and
    meaningless without it (an email address never appears in a Redis key or a table)."""
    message = f"{purpose}\x00{subject}".encode("utf-8", "surrogateescape")
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
