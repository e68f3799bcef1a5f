"""Real uvicorn processes of the service, for tests needing sockets, signals or two instances."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.factories import ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_USERNAME
from tests.routes import HEALTH

ROOT = Path(__file__).resolve().parents[1]
# The service as operators start it.
RUN_PY = [sys.executable, str(ROOT / "run.py")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_environment(workdir: Path, **settings: str) -> dict[str, str]:
    """The environment of a test server: secure settings, cheap real hashing, no .env file."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ENVIRONMENT": "test",
        "SECRET_KEY": "server-signing-key-" + "s" * 40,
        "DATABASE_URL": f"sqlite:///{workdir}/auth.db",
        "ADMIN_EMAIL": ADMIN_EMAIL,
        "ADMIN_USERNAME": ADMIN_USERNAME,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "SECURE_COOKIES": "true",
        "ARGON2_MEMORY_COST_KIB": "8192",
        "ARGON2_TIME_COST": "1",
        "LOG_LEVEL": "WARNING",
        **settings,
    }


def wait_until_healthy(
    url: str, process: subprocess.Popen[bytes], timeout: float = 30, *, health_status: int = 200
) -> None:
    """Wait until /health answers `health_status` (503 for a server started with a store down)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}{HEALTH}", timeout=1).status_code == health_status:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError("the server did not become healthy")


@contextmanager
def running_server(
    workdir: Path,
    settings: Mapping[str, str] | None = None,
    *,
    command: list[str] | None = None,
    health_status: int = 200,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run the service (uvicorn on a free port, or `command`) until the block ends; its output
    goes to `workdir/server.log`."""
    port = free_port()
    argv = command or [
        sys.executable,
        "-m",
        "uvicorn",
        "app.asgi:app",
        "--port",
        str(port),
        "--no-access-log",
    ]
    env = server_environment(workdir, PORT=str(port), **(settings or {}))
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(argv, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, health_status=health_status)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
