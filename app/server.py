"""The HTTP server: uvicorn with bounds on request heads and on slow clients.

uvicorn's httptools protocol is subclassed rather than its h11 one being configured: httptools is
the parser uvicorn[standard] serves with and the faster one, but it keeps a header's name and value
in Python bytes until the header ends, with no bound, and uvicorn gives a client that is still
sending a request all the time it wants. h11 bounds only the size of a head, not the number of its
headers nor the time it takes. This protocol counts a head's bytes before the parser sees them and
its headers as they are parsed, answers 431 past either limit and closes the connection, and
answers 408 to a request that is not all there within the read timeout.

`python run.py` serves through `serve(settings)`; a uvicorn started by hand gets the same limits
with `--http app.server:LimitedHttpToolsProtocol`, read from the settings of the environment.
"""

import asyncio
import json
import sys
from contextlib import suppress
from dataclasses import dataclass
from functools import cache
from http import HTTPStatus
from typing import Any
from weakref import WeakKeyDictionary

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState
from uvicorn.supervisors import ChangeReload, Multiprocess

from app.core.config import Settings
from app.core.logging import configure_logging, get_logger

GRACEFUL_SHUTDOWN_SECONDS = 30
# The read deadline is checked this many times per REQUEST_READ_TIMEOUT_SECONDS, so a slow
# request is cut between one and 1 + 1/_CHECKS_PER_TIMEOUT timeouts after it began.
_CHECKS_PER_TIMEOUT = 4
# Exit status uvicorn uses when the server could not start.
_STARTUP_FAILURE = 3


@dataclass(frozen=True, slots=True)
class HttpLimits:
    head_bytes: int
    header_count: int
    read_timeout: float
    connections: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "HttpLimits":
        return cls(
            head_bytes=settings.MAX_HEADER_BYTES,
            header_count=settings.MAX_HEADER_COUNT,
            read_timeout=settings.REQUEST_READ_TIMEOUT_SECONDS,
            connections=settings.MAX_CONNECTIONS,
        )


@cache
def _limits_from_environment() -> HttpLimits:
    return HttpLimits.from_settings(Settings())


def _refusal(status: HTTPStatus) -> bytes:
    """The part of a refusal after uvicorn's default headers: a JSON error body like the app's."""
    code = status.phrase.lower().replace(" ", "_").replace("-", "_")
    body = json.dumps({"code": code, "detail": status.phrase}).encode()
    return (
        b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s"
        % (len(body), body)
    )


_REFUSALS = {
    status: _refusal(status)
    for status in (HTTPStatus.REQUEST_TIMEOUT, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
}


class _HeadRefused(Exception):
    """Raised from a parser callback to stop the parser once the request has been refused."""


class _ReadDeadlines:
    """The read timeout of every connection of one server, checked by one periodic sweep: a
    request then only notes the sweep's count, where a timer of its own would be armed and
    cancelled for every request."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, server_state: ServerState, timeout: float
    ) -> None:
        self.count = 0
        self._loop = loop
        self._connections = server_state.connections
        self._interval = timeout / _CHECKS_PER_TIMEOUT
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> int:
        """Make sure the sweep runs (it stops while the server has no connection); the count."""
        if self._handle is None:
            self._handle = self._loop.call_later(self._interval, self._sweep)
        return self.count

    def _sweep(self) -> None:
        self.count += 1
        # A deadline noted at this count or before began at least a whole timeout ago.
        expired = self.count - _CHECKS_PER_TIMEOUT - 1
        for connection in list(self._connections):
            if isinstance(connection, LimitedHttpToolsProtocol):
                connection.check_deadline(expired)
        self._handle = (
            self._loop.call_later(self._interval, self._sweep) if self._connections else None
        )


_DEADLINES: WeakKeyDictionary[ServerState, _ReadDeadlines] = WeakKeyDictionary()


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing oversized heads and requests that arrive too slowly.

    A connection holds at most the head limit plus one read of the socket: bytes are counted
    before the parser buffers them, and while a head is incomplete the parser is given only what
    the limit leaves room for. (A pipelined request's head that starts inside the read that ended
    the request before it is counted from the next read on.)
    """

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limits = config.limits if isinstance(config, ServiceConfig) else _limits_from_environment()
        self._max_head_bytes = limits.head_bytes
        self._max_header_count = limits.header_count
        if self.limit_concurrency is None:
            self.limit_concurrency = limits.connections
        deadlines = _DEADLINES.get(server_state)
        if deadlines is None:
            deadlines = _DEADLINES[server_state] = _ReadDeadlines(
                self.loop, server_state, limits.read_timeout
            )
        self._deadlines = deadlines
        self.headers = []
        self._reading_head = True
        self._head_bytes = 0
        # The sweep count when the request being read began; None when nothing is awaited.
        self._deadline: int | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A connection that never sends a request is closed after the read timeout too.
        self._deadline = self._deadlines.start()

    def data_received(self, data: bytes | memoryview) -> None:
        if self._refused:
            return
        self._unset_keepalive_if_required()
        rest = None
        if self._reading_head:
            room = self._max_head_bytes - self._head_bytes
            if len(data) > room:
                # The parser gets only what the head may still take until the head is complete.
                view = memoryview(data)
                data, rest = view[:room], view[room:]
                self._head_bytes = self._max_head_bytes
            else:
                self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if not self._refused:
                message = "Invalid HTTP request received."
                self.logger.warning(message)
                self.send_400_response(message)
            return
        if self._reading_head and (
            self._head_bytes >= self._max_head_bytes or len(self.headers) > self._max_header_count
        ):
            self._refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
        elif rest is not None:
            # The head is complete: the rest is its body, or the requests after it.
            self.data_received(rest)
        elif self._deadline is None and (not self._reading_head or "method" not in self.scope):
            # A request began since the last one ended (its head or body is still to come).
            self._deadline = self._deadlines.count

    def on_headers_complete(self) -> None:
        self._reading_head = False
        if len(self.headers) > self._max_header_count:
            self._refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
            raise _HeadRefused
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head = True
        self._head_bytes = 0
        self._deadline = None

    def check_deadline(self, expired: int) -> None:
        """Cut the request being read if it began at sweep count `expired` or before."""
        if self._deadline is None or self._deadline > expired or self.transport.is_closing():
            return
        self._deadline = None
        if self.scope is None:
            # Connected, but never sent a byte of a request: nothing to answer.
            self.transport.close()
        elif self._reading_head:
            self._refuse(HTTPStatus.REQUEST_TIMEOUT)
        elif not self.cycle.response_started and not self.pipeline:
            # The body stalled before the app answered: whatever it answers later goes nowhere.
            self.cycle.disconnected = True
            self.cycle.message_event.set()
            self._refused = True
            self._answer_and_close(HTTPStatus.REQUEST_TIMEOUT)
        else:
            # An answer is already on its way (or queued behind another): it cannot be replaced.
            self.transport.close()

    def _refuse(self, status: HTTPStatus) -> None:
        """Stop reading; answer `status` and close, after the response in progress if any."""
        self._refused = True
        self._deadline = None
        previous = self.cycle
        if previous is None or previous.response_complete:
            self._answer_and_close(status)
            return
        then = previous.on_response

        def answer_after_previous() -> None:
            then()
            self._answer_and_close(status)

        previous.on_response = answer_after_previous

    def _answer_and_close(self, status: HTTPStatus) -> None:
        if self.transport.is_closing():
            return
        default_headers = b"".join(
            b"%s: %s\r\n" % header for header in self.server_state.default_headers
        )
        self.transport.write(STATUS_LINE[status] + default_headers + _REFUSALS[status])
        self.transport.close()


class ServiceConfig(uvicorn.Config):
    """uvicorn's configuration for the service: its limits, protocol and logging.

    uvicorn pickles it into every worker process it spawns, which then configure their logging
    from it before they log anything.
    """

    def __init__(self, settings: Settings) -> None:
        self.limits = HttpLimits.from_settings(settings)
        self.log_level_name = settings.LOG_LEVEL
        self.log_format = settings.LOG_FORMAT
        super().__init__(
            "app.asgi:app",
            host=settings.HOST,
            port=settings.PORT,
            workers=1 if settings.RELOAD else settings.WORKERS,
            reload=settings.RELOAD,
            http=LimitedHttpToolsProtocol,
            limit_concurrency=settings.MAX_CONNECTIONS,
            # The service logs through its own configuration (see configure_logging below).
            log_config=None,
            # The service resolves client addresses itself, from TRUSTED_PROXIES.
            proxy_headers=False,
            server_header=False,
            # The service writes its own access log line.
            access_log=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )

    def configure_logging(self) -> None:
        configure_logging(self.log_level_name, self.log_format)
        super().configure_logging()


def serve(settings: Settings) -> None:
    """Serve the service: one process, WORKERS processes, or one that reloads on code changes."""
    config = ServiceConfig(settings)
    problems = settings.security_problems()
    if problems:
        get_logger("app").warning("insecure_settings", problems=problems)
    server = uvicorn.Server(config)
    # uvicorn re-raises the signal that stopped it; an interrupt is then a normal way out.
    with suppress(KeyboardInterrupt):
        if config.should_reload:
            ChangeReload(config, target=server.run, sockets=[config.bind_socket()]).run()
        elif config.workers > 1:
            Multiprocess(config, sockets=[config.bind_socket()]).run()
        else:
            server.run()
    if config.workers == 1 and not config.should_reload and not server.started:
        sys.exit(_STARTUP_FAILURE)
