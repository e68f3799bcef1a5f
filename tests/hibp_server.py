"""A fake Pwned Passwords range API: a real HTTP server on loopback, in a thread of the test.

    with fake_range_api() as api:
        api.add("hunter2-but-longer", 1234)         # now in a "breach"
        settings = make_settings(..., HIBP_ENABLED=True, HIBP_API_URL=api.url)
        ...
        assert api.paths == ["/range/" + sha1_hex("hunter2-but-longer")[:5]]

Set `api.behaviour` to make it fail: "error" answers 500, "garbage" answers 200 with
`api.garbage` as the body, "hang" never answers, "trickle" sends a valid range's first lines
a few bytes at a time and never finishes. After the block the port is closed, so `api.url`
then stands for a server that is down.
"""

import hashlib
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal, cast

Behaviour = Literal["answer", "error", "garbage", "hang", "trickle"]
# The real API pads every answer to 800-1000 entries; other passwords' suffixes fill the rest.
PADDED_ENTRIES = 800
OTHER_ENTRIES = 300
_PATH_PREFIX = "/range/"


def sha1_hex(password: str) -> str:
    """The password's SHA-1 as the API spells it: 40 upper-case hexadecimal digits."""
    return hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest().upper()


@dataclass
class FakeRangeApi:
    """The server's state: what it knows, how it behaves, and what it was asked."""

    url: str
    behaviour: Behaviour = "answer"
    garbage: bytes = b"<!DOCTYPE html>\n<html><body>Service unavailable</body></html>\n"
    paths: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    _counts: dict[str, int] = field(default_factory=dict)
    _random: random.Random = field(default_factory=lambda: random.Random(17))

    def add(self, password: str, count: int) -> None:
        """List the password's hash with this count; a count of 0 makes it a padding entry."""
        self._counts[sha1_hex(password)] = count

    def range_body(self, prefix: str, *, padded: bool) -> bytes:
        """The answer for a prefix: listed entries among others' suffixes, padding if asked."""
        entries = [
            (digest[5:], count) for digest, count in self._counts.items() if digest[:5] == prefix
        ]
        entries += [(self._suffix(), self._random.randint(1, 5000)) for _ in range(OTHER_ENTRIES)]
        if padded:
            entries += [(self._suffix(), 0) for _ in range(PADDED_ENTRIES - len(entries))]
        self._random.shuffle(entries)
        return "\r\n".join(f"{suffix}:{count}" for suffix, count in entries).encode()

    def _suffix(self) -> str:
        return f"{self._random.getrandbits(140):035X}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.api = FakeRangeApi(url=f"http://127.0.0.1:{self.server_address[1]}{_PATH_PREFIX}")
        # Set when the block ends, so that hanging handlers return and the threads finish.
        self.released = threading.Event()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        server = cast(_Server, self.server)
        api = server.api
        api.paths.append(self.path)
        api.headers.append({name.lower(): value for name, value in self.headers.items()})
        prefix = self.path.removeprefix(_PATH_PREFIX)
        if api.behaviour == "hang":
            server.released.wait()
        elif api.behaviour == "error":
            self._send(500, b"Internal Server Error")
        elif api.behaviour == "garbage":
            self._send(200, api.garbage)
        elif not self.path.startswith(_PATH_PREFIX) or len(prefix) != 5:
            self._send(404, b"Not Found")
        else:
            padded = self.headers.get("Add-Padding", "").lower() == "true"
            body = api.range_body(prefix, padded=padded)
            if api.behaviour == "trickle":
                self._trickle(body, server.released)
            else:
                self._send(200, body)

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _trickle(self, body: bytes, released: threading.Event) -> None:
        """A few bytes every 20 ms: each read is prompt, the whole never arrives."""
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        try:
            for start in range(0, len(body), 4):
                if released.is_set():
                    return
                self.wfile.write(body[start : start + 4])
                self.wfile.flush()
                time.sleep(0.02)
            released.wait()
        except OSError:
            # The client gave up and closed the connection, as it should.
            return

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test asserts on `api.paths` instead."""


@contextmanager
def fake_range_api() -> Iterator[FakeRangeApi]:
    """Serve a fake range API on a free loopback port until the block ends."""
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield server.api
    finally:
        server.released.set()
        server.shutdown()
        server.server_close()
        thread.join()
