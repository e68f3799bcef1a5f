"""The headers every response carries: the security policy, no caching, the request id."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.edge.request_context import request_id_of

_DOCS_PATHS = frozenset({"/docs", "/redoc"})
_API_PREFIX = "/api/"
_API_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The pages: their own stylesheet and forms, no script at all.
_PAGE_CSP = (
    b"default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    b"frame-ancestors 'none'; base-uri 'none'"
)
# Swagger UI and ReDoc run only the service's own scripts, but set styles inline (ReDoc's
# styled components write <style> elements), and ReDoc searches in a worker.
_DOCS_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    b"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_COMMON: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, hsts_max_age: int | None) -> None:
        self.app = app
        hsts = (
            ((b"strict-transport-security", f"max-age={hsts_max_age}; includeSubDomains".encode()),)
            if hsts_max_age is not None
            else ()
        )
        self.api_headers = (*_COMMON, (b"content-security-policy", _API_CSP), *hsts)
        self.page_headers = (*_COMMON, (b"content-security-policy", _PAGE_CSP), *hsts)
        self.docs_headers = (*_COMMON, (b"content-security-policy", _DOCS_CSP), *hsts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(_API_PREFIX):
            security = self.api_headers
        elif path in _DOCS_PATHS:
            security = self.docs_headers
        else:
            security = self.page_headers
        added = (*security, (b"x-request-id", request_id_of(scope).encode()))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                if not any(key.lower() == b"cache-control" for key, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                headers.extend(added)
            await send(message)

        await self.app(scope, receive, send_with_headers)
