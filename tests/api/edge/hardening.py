"""What every response carries, whatever it answers."""

import httpx


def assert_hardened(response: httpx.Response) -> None:
    """The security headers, no caching, and the request's id."""
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-store"
    assert headers["x-request-id"]
