"""`python run.py` bounds request heads and slow clients, over raw sockets against a real server."""

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.routes import HEALTH, LOGIN, ME
from tests.servers import RUN_PY, running_server

READ_TIMEOUT = 1.0
MAX_CONNECTIONS = 40
# The defaults of MAX_HEADER_BYTES and MAX_HEADER_COUNT.
MAX_HEADER_BYTES = 16_384
MAX_HEADER_COUNT = 100
HUGE = 32 * 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    settings = {
        "REQUEST_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT),
        "MAX_CONNECTIONS": str(MAX_CONNECTIONS),
    }
    workdir = tmp_path_factory.mktemp("limits")
    with running_server(workdir, settings, command=RUN_PY) as (url, process):
        yield url, process.pid


def _connect(url: str) -> socket.socket:
    address = urlsplit(url)
    return socket.create_connection((address.hostname, address.port), timeout=5)


def _request(path: str = HEALTH, headers: bytes = b"", body: bytes = b"") -> bytes:
    return b"GET %s HTTP/1.1\r\nHost: test\r\n%s\r\n%s" % (path.encode(), headers, body)


def _headers(count: int) -> bytes:
    return b"".join(b"X-Extra-%d: %d\r\n" % (index, index) for index in range(count))


class _Responses:
    """Reads HTTP/1.1 responses (with a Content-Length) one after the other from a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""

    def _fill(self) -> bool:
        data = self._sock.recv(65_536)
        self._buffer += data
        return bool(data)

    def next(self) -> tuple[int, bytes]:
        while b"\r\n\r\n" not in self._buffer:
            assert self._fill(), "the connection closed without an answer"
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.split(b"\r\n")
        length = 0
        for line in lines:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(self._buffer) < length:
            assert self._fill(), "the connection closed inside an answer"
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return int(status_line.split()[1]), body

    def closed(self) -> bool:
        return not self._buffer and not self._fill()


def _status_line(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(field)


def _refused(response: tuple[int, bytes]) -> None:
    status, body = response
    assert status == 431
    assert b'"code": "request_header_fields_too_large"' in body


@pytest.mark.parametrize("header", [b"Authorization: Bearer ", b"Cookie: session="])
def test_a_huge_header_is_cut_off_without_being_buffered(
    server: tuple[str, int], header: bytes
) -> None:
    url, pid = server
    # Resets the process's peak resident memory to its current size.
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    before = _status_line(pid, "VmHWM")
    started = time.monotonic()
    sent = 0
    with _connect(url) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"GET %s HTTP/1.1\r\nHost: test\r\n%s" % (ME.encode(), header))
            chunk = b"a" * 262_144
            while sent < HUGE:
                sock.sendall(chunk)
                sent += len(chunk)
        # The answer is lost when the reset overtakes it.
        with contextlib.suppress(ConnectionResetError):
            _refused(_Responses(sock).next())
    assert sent < HUGE, "the server read the whole header"
    assert time.monotonic() - started < 1
    assert _status_line(pid, "VmHWM") - before < 4 * 1024 * 1024


def test_a_head_over_max_header_bytes_gets_431(server: tuple[str, int]) -> None:
    url, _ = server
    padding = MAX_HEADER_BYTES - len(_request(headers=b"X-Padding: \r\n"))
    with _connect(url) as sock:
        sock.sendall(_request(headers=b"X-Padding: %s\r\n" % (b"p" * padding)))
        assert _Responses(sock).next()[0] == 200
    with _connect(url) as sock:
        sock.sendall(_request(headers=b"X-Padding: %s\r\n" % (b"p" * (padding + 1))))
        responses = _Responses(sock)
        _refused(responses.next())
        assert responses.closed()


def test_more_than_max_header_count_headers_get_431(server: tuple[str, int]) -> None:
    url, _ = server
    with _connect(url) as sock:
        # Host is one of them.
        sock.sendall(_request(headers=_headers(MAX_HEADER_COUNT - 1)))
        assert _Responses(sock).next()[0] == 200
    with _connect(url) as sock:
        sock.sendall(_request(headers=_headers(MAX_HEADER_COUNT)))
        responses = _Responses(sock)
        _refused(responses.next())
        assert responses.closed()


def test_keep_alive_and_pipelined_requests_are_answered_up_to_a_refused_one(
    server: tuple[str, int],
) -> None:
    url, _ = server
    with _connect(url) as sock:
        responses = _Responses(sock)
        sock.sendall(_request())
        assert responses.next()[0] == 200
        time.sleep(0.2)
        sock.sendall(_request() + _request() + _request(headers=_headers(MAX_HEADER_COUNT)))
        assert [responses.next()[0] for _ in range(2)] == [200, 200]
        _refused(responses.next())
        assert responses.closed()
    # A body that arrives in the same read as its head, past the head limit, is read as a body
    # (its oversized password is refused by validation), and so is the request after it.
    body = b'{"email": "someone@example.com", "password": "%s"}' % (b"x" * 40_000)
    with _connect(url) as sock:
        sock.sendall(
            b"POST %s HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s%s"
            % (LOGIN.encode(), len(body), body, _request())
        )
        responses = _Responses(sock)
        assert [responses.next()[0] for _ in range(2)] == [422, 200]


def test_slow_clients_are_cut_after_the_read_timeout(server: tuple[str, int]) -> None:
    url, _ = server
    started = time.monotonic()
    idle, head, body, answered = (_connect(url) for _ in range(4))
    head.sendall(b"GET %s HTTP/1.1\r\nHost: test\r\n" % HEALTH.encode())
    body.sendall(
        b"POST %s HTTP/1.1\r\nHost: test\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{" % LOGIN.encode()
    )
    answered.sendall(_request(headers=b"Content-Length: 100\r\n", body=b"{"))
    with idle, head, body, answered:
        answered_responses = _Responses(answered)
        assert answered_responses.next()[0] == 200
        assert _Responses(idle).closed()
        for sock in (head, body):
            responses = _Responses(sock)
            status, payload = responses.next()
            assert (status, payload) == (
                408,
                b'{"code": "request_timeout", "detail": "Request Timeout"}',
            )
            assert responses.closed()
        assert answered_responses.closed()
    assert READ_TIMEOUT <= time.monotonic() - started < 2 * READ_TIMEOUT


def test_requests_past_max_connections_get_503(server: tuple[str, int]) -> None:
    url, _ = server
    idle = [_connect(url) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.1)
        with _connect(url) as sock:
            sock.sendall(_request())
            assert _Responses(sock).next()[0] == 503
    finally:
        for sock in idle:
            sock.close()
