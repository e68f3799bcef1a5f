"""Request bodies over MAX_BODY_BYTES are refused: by their declared length before any of them
is read, or as soon as a streamed one passes the limit."""

from http import HTTPStatus

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.edge.headers import header
from app.api.errors import error_response


def _declared_length_refusal(scope: Scope, max_bytes: int) -> Response | None:
    """413 for a declared body over the limit, 400 for a Content-Length that is not a number."""
    declared = header(scope, b"content-length")
    if declared is None or (declared.isdigit() and int(declared) <= max_bytes):
        return None
    status = 413 if declared.isdigit() else 400
    code = "content_too_large" if status == 413 else "bad_request"
    return error_response(status, code, HTTPStatus(status).phrase)


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = _declared_length_refusal(scope, self.max_body_bytes)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise HTTPException(413, HTTPStatus(413).phrase)
            return message

        await self.app(scope, receive_within_limit, send)
