"""The HTTP edge: one pure-ASGI layer around every request.

It assigns the request id and the real client address, spends the client's rate budget,
refuses oversized bodies, adds the security headers, and on the way out counts the request
in the metrics and writes the access log line. One layer instead of five: each ASGI layer is
another coroutine frame and another `send` wrapper on every request, and two of them timed
the request and captured its status separately.
"""

import logging
import re
import ssl
import time
from collections.abc import Sequence
from http import HTTPStatus
from typing import Literal

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import error_response, unexpected_error_response
from app.api.metrics import Metrics, route_template
from app.core.client_ip import Network, resolve_client_ip
from app.core.logging import REQUEST_CONTEXT, get_logger
from app.storage.guard import REQUEST_DEADLINE, Deadline

_errors = logging.getLogger("app.errors")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
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


def _all_lines(scope: Scope, name: bytes) -> str | None:
    """Every line of a repeated header, joined with commas as HTTP allows."""
    values = [value.decode("latin-1") for key, value in scope["headers"] if key == name]
    return ", ".join(values) if values else None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def new_request_id() -> str:
    """128 random bits in hex, from OpenSSL's generator like the token ids (see
    app.core.tokens.new_token_ids): `secrets` makes a system call that hands the interpreter
    lock to any thread waiting for it, and the request then waits to get it back; and the
    interpreter's own generator would let a client that collected a few hundred ids predict
    everyone else's."""
    return ssl.RAND_bytes(16).hex()


def client_ip_of(scope: Scope) -> str | None:
    """The client address the edge resolved for this request."""
    state = scope.get("state") or {}
    ip = state.get("client_ip")
    return ip if isinstance(ip, str) else None


def _declared_length_refusal(scope: Scope, max_bytes: int) -> Response | None:
    """413 for a declared body over the limit, 400 for a Content-Length that is not a number."""
    declared = _header(scope, b"content-length")
    if declared is None or (declared.isdigit() and int(declared) <= max_bytes):
        return None
    status = 413 if declared.isdigit() else 400
    code = "content_too_large" if status == 413 else "bad_request"
    return error_response(status, code, HTTPStatus(status).phrase)


class EdgeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        trusted_proxies: Sequence[Network],
        forwarded_header: Literal["x-forwarded-for", "forwarded"],
        hsts_max_age: int | None,
        max_body_bytes: int,
        store_deadline_seconds: float,
        metrics: Metrics,
    ) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies
        self.forwarded_header = forwarded_header
        self.forwarded_header_name = forwarded_header.encode()
        self.max_body_bytes = max_body_bytes
        self.store_deadline_seconds = store_deadline_seconds
        self.metrics = metrics
        self.logger = get_logger("app.access")
        hsts = (
            ((b"strict-transport-security", f"max-age={hsts_max_age}; includeSubDomains".encode()),)
            if hsts_max_age is not None
            else ()
        )
        self.api_headers = (*_COMMON_HEADERS, (b"content-security-policy", _API_CSP), *hsts)
        self.docs_headers = (*_COMMON_HEADERS, (b"content-security-policy", _DOCS_CSP), *hsts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        offered = _header(scope, b"x-request-id")
        request_id = offered if offered and _REQUEST_ID.fullmatch(offered) else new_request_id()
        client_ip = resolve_client_ip(
            scope["client"][0] if scope.get("client") else None,
            forwarded_header=self.forwarded_header,
            header_value=(
                _all_lines(scope, self.forwarded_header_name) if self.trusted_proxies else None
            ),
            trusted_proxies=self.trusted_proxies,
        )
        scope.setdefault("state", {}).update(request_id=request_id, client_ip=client_ip)
        security_headers = self.docs_headers if scope["path"] in _DOCS_PATHS else self.api_headers
        response_headers = (*security_headers, (b"x-request-id", request_id.encode()))
        status = 500
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                headers = message.setdefault("headers", [])
                if not any(key.lower() == b"cache-control" for key, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                headers.extend(response_headers)
            await send(message)

        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise HTTPException(413, HTTPStatus(413).phrase)
            return message

        context = REQUEST_CONTEXT.set({"request_id": request_id, "client_ip": client_ip})
        deadline = Deadline(self.store_deadline_seconds)
        deadline_token = REQUEST_DEADLINE.set(deadline)
        try:
            refusal = _declared_length_refusal(scope, self.max_body_bytes)
            if refusal is not None:
                await refusal(scope, receive, send_with_headers)
            else:
                await self.app(scope, receive_within_limit, send_with_headers)
        except Exception:
            # Answered and logged here rather than by Starlette's outermost layer: the answer
            # then carries the security headers, and the traceback the request id.
            _errors.exception("unhandled error")
            if not response_started:
                await unexpected_error_response()(scope, receive, send_with_headers)
        finally:
            try:
                duration = time.perf_counter() - started
                self.metrics.observe_request(
                    scope["method"], route_template(scope), status, duration
                )
                self.logger.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round(duration * 1000, 2),
                )
            finally:
                deadline.close()
                REQUEST_DEADLINE.reset(deadline_token)
                REQUEST_CONTEXT.reset(context)
