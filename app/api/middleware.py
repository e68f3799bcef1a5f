"""Pure-ASGI middleware: request context and access log, security headers, rate limits."""

import re
import time
import uuid
from collections.abc import Sequence
from http import HTTPStatus
from typing import Literal

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import domain_error_response, error_response, store_unavailable_response
from app.api.v1.prefix import API_V1
from app.core.client_ip import Network, resolve_client_ip
from app.core.errors import RateLimited
from app.core.events import SecurityEvent, SecurityEvents
from app.core.logging import REQUEST_CONTEXT, get_logger
from app.services.rate_limit import API, LOGIN, REFRESH, REGISTER, RateLimiter
from app.storage.errors import STORE_UNAVAILABLE_ERRORS

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
_API_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI and ReDoc load their scripts and styles from jsDelivr and run an inline bootstrap.
_DOCS_CSP = (
    b"default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    b"font-src 'self' https://fonts.gstatic.com; connect-src 'self'; worker-src blob:; "
    b"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_COMMON_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
)
_RATE_LIMITED_PATHS = {
    f"{API_V1}/auth/login": LOGIN,
    f"{API_V1}/auth/login-form": LOGIN,
    f"{API_V1}/auth/register": REGISTER,
    f"{API_V1}/auth/refresh": REFRESH,
}


def _all_lines(scope: Scope, name: bytes) -> str | None:
    """Every line of a repeated header, joined with commas as HTTP allows."""
    values = [value.decode("latin-1") for key, value in scope["headers"] if key == name]
    return ", ".join(values) if values else None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def client_ip_of(scope: Scope) -> str | None:
    """The client address RequestContextMiddleware resolved for this request."""
    state = scope.get("state") or {}
    ip = state.get("client_ip")
    return ip if isinstance(ip, str) else None


class RequestContextMiddleware:
    """Request id (echoed as X-Request-ID), the real client address, and one access log line."""

    def __init__(
        self,
        app: ASGIApp,
        trusted_proxies: Sequence[Network],
        forwarded_header: Literal["x-forwarded-for", "forwarded"],
    ) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies
        self.forwarded_header = forwarded_header
        self.forwarded_header_name = forwarded_header.encode()
        self.logger = get_logger("app.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = _header(scope, b"x-request-id")
        request_id = offered if offered and _REQUEST_ID.match(offered) else uuid.uuid4().hex
        peer = scope["client"][0] if scope.get("client") else None
        client_ip = resolve_client_ip(
            peer,
            forwarded_header=self.forwarded_header,
            header_value=(
                _all_lines(scope, self.forwarded_header_name) if self.trusted_proxies else None
            ),
            trusted_proxies=self.trusted_proxies,
        )
        scope.setdefault("state", {}).update(request_id=request_id, client_ip=client_ip)
        started = time.perf_counter()
        status = 500
        encoded_id = request_id.encode()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", encoded_id))
            await send(message)

        context = REQUEST_CONTEXT.set({"request_id": request_id, "client_ip": client_ip})
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.logger.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            REQUEST_CONTEXT.reset(context)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, hsts_max_age: int | None) -> None:
        self.app = app
        self.hsts = (
            (b"strict-transport-security", f"max-age={hsts_max_age}; includeSubDomains".encode())
            if hsts_max_age is not None
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = _DOCS_CSP if scope["path"] in _DOCS_PATHS else _API_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers.extend(_COMMON_HEADERS)
                headers.append((b"content-security-policy", csp))
                if not any(key.lower() == b"cache-control" for key, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                if self.hsts is not None:
                    headers.append(self.hsts)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RateLimitMiddleware:
    """Per-client budgets: each auth endpoint class has its own, the rest of the API shares one."""

    def __init__(self, app: ASGIApp, *, limiter: RateLimiter, events: SecurityEvents) -> None:
        self.app = app
        self.limiter = limiter
        self.events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limiter.enabled:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        policy = _RATE_LIMITED_PATHS.get(path) or (API if path.startswith(API_V1) else None)
        if policy is not None and scope["method"] != "OPTIONS":
            try:
                await self.limiter.hit(policy, client_ip_of(scope) or "unknown")
            except RateLimited as exc:
                self.events.emit(SecurityEvent.RATE_LIMITED, policy=policy)
                await domain_error_response(exc)(scope, receive, send)
                return
            except STORE_UNAVAILABLE_ERRORS:
                await store_unavailable_response()(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Refuses request bodies over `max_bytes` with 413, before anything parses them."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            status = 413 if declared.isdigit() else 400
            code = "content_too_large" if status == 413 else "bad_request"
            await error_response(status, code, HTTPStatus(status).phrase)(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, HTTPStatus(413).phrase)
            return message

        await self.app(scope, receive_within_limit, send)
