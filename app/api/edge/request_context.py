"""Who is asking, and under which id: the request id, the real client address, the log
context and the request's store deadline."""

import re
import ssl
from collections.abc import Sequence
from typing import Literal

from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.edge.headers import all_lines, header
from app.core.client_ip import Network, resolve_client_ip
from app.core.logging import REQUEST_CONTEXT
from app.storage.guard import REQUEST_DEADLINE, Deadline

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


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


def request_id_of(scope: Scope) -> str:
    request_id: str = scope["state"]["request_id"]
    return request_id


class RequestContext:
    def __init__(
        self,
        app: ASGIApp,
        *,
        trusted_proxies: Sequence[Network],
        forwarded_header: Literal["x-forwarded-for", "forwarded"],
        store_deadline_seconds: float,
    ) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies
        self.forwarded_header = forwarded_header
        self.forwarded_header_name = forwarded_header.encode()
        self.store_deadline_seconds = store_deadline_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = header(scope, b"x-request-id")
        request_id = offered if offered and _REQUEST_ID.fullmatch(offered) else new_request_id()
        client_ip = resolve_client_ip(
            scope["client"][0] if scope.get("client") else None,
            forwarded_header=self.forwarded_header,
            header_value=(
                all_lines(scope, self.forwarded_header_name) if self.trusted_proxies else None
            ),
            trusted_proxies=self.trusted_proxies,
        )
        scope.setdefault("state", {}).update(request_id=request_id, client_ip=client_ip)
        deadline = Deadline(self.store_deadline_seconds)
        context = REQUEST_CONTEXT.set({"request_id": request_id, "client_ip": client_ip})
        deadline_token = REQUEST_DEADLINE.set(deadline)
        try:
            await self.app(scope, receive, send)
        finally:
            deadline.close()
            REQUEST_DEADLINE.reset(deadline_token)
            REQUEST_CONTEXT.reset(context)
