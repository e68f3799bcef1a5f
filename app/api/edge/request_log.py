"""What became of each request: counted in the metrics and written as one access line; an
error nothing else handled is logged with its traceback and answered 500."""

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import unexpected_error_response
from app.api.metrics import Metrics, route_template
from app.core.logging import get_logger

_errors = logging.getLogger("app.errors")


class RequestLog:
    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.logger = get_logger("app.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_noting_status(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        except Exception:
            # Answered and logged here, inside the request's context, rather than by
            # Starlette's outermost layer: the traceback carries the request id, and the
            # answer the security headers.
            _errors.exception("unhandled error")
            if not response_started:
                await unexpected_error_response()(scope, receive, send_noting_status)
        finally:
            duration = time.perf_counter() - started
            self.metrics.observe_request(scope["method"], route_template(scope), status, duration)
            self.logger.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round(duration * 1000, 2),
            )
