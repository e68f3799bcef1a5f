"""What a password hash costs the rest of a sign-in: the caches it empties.

    .venv/bin/python bench/login_cache.py                        # SQLite + embedded stores
    .venv/bin/python bench/login_cache.py --backend production   # PostgreSQL + Redis

Signs in through the service's ASGI app in this process (no server, no HTTP), 8 at a time
as in the benchmark's login storm, while the hashing threads do, in turn:

- nothing: the password check answers at once;
- a CPU-bound job in a few hundred bytes of memory, about as long as the hash;
- a read of as much memory as one argon2 hash fills, as many times as it passes over it
  (SHA-256 over it, which keeps the CPU busy too; the time it took alone is printed);
- the real argon2 check.

For each it prints the event loop thread's CPU per sign-in: the service's own work (the account
read, the lockout check, the session write, the tokens, the cookies, the log lines). The
second and third jobs both keep the hashing threads busy for about as long as a hash; the third
also streams argon2's amount of memory through the caches. The gap between them is meant to show
what that memory traffic costs the event loop, though on a shared machine both gaps vary from
run to run, and the timings alone cannot say which cache misses cause it. It asserts nothing.
"""

import argparse
import asyncio
import gc
import hashlib
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import uvloop
from starlette.types import ASGIApp, Message

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.config import Settings  # noqa: E402
from app.core.passwords import PasswordHasher  # noqa: E402
from app.main import create_app  # noqa: E402
from bench.benchmark import (  # noqa: E402
    PASSWORD,
    measure_hash_ms,
    reset_production_stores,
    service_settings,
)

SIGN_INS = 400
AT_ONCE = 8
EMAIL = "cache@example.com"


def stand_in(settings: Settings, work: Callable[[], object] | None) -> PasswordHasher:
    """The service's hasher, its threads included, with every check answered as a match after
    `work` ran in those threads; with no `work`, the real hasher."""
    if work is None:
        return PasswordHasher.from_settings(settings)
    # Named again for the class below: mypy does not carry the narrowing of `work` into it.
    job = work

    class StandInHasher(PasswordHasher):
        async def verify(self, password: str, stored_hash: str | None) -> tuple[bool, str | None]:
            await self._off_loop(job)
            return True, None

    return StandInHasher.from_settings(settings)


def memory_read(settings: Settings) -> Callable[[], object]:
    """Reads of as much memory as an argon2 hash fills, each thread its own, as often as the
    hash passes over it. hashlib reads a large buffer without the interpreter lock, as argon2
    runs, and the buffers hold data: untouched pages would all be the kernel's one zero page."""
    size = settings.ARGON2_MEMORY_COST_KIB * 1024
    passes = settings.ARGON2_TIME_COST
    buffers = threading.local()

    def read() -> object:
        if not hasattr(buffers, "memory"):
            buffers.memory = os.urandom(size)
        return [hashlib.sha256(buffers.memory).digest() for _ in range(passes)]

    return read


def cpu_job(iterations: int) -> Callable[[], object]:
    """CPU-bound work in a few hundred bytes, outside the interpreter lock, as argon2 runs."""

    def work() -> object:
        return hashlib.pbkdf2_hmac("sha256", b"password", b"salt", iterations)

    return work


async def fresh_settings(backend: str) -> Settings:
    """The benchmark's settings for `backend`, on empty stores."""
    if backend == "production":
        await reset_production_stores()
    workdir = Path(tempfile.mkdtemp(prefix="auth-login-cache-"))
    return Settings.model_validate(service_settings(backend, workdir))


def timed_ms(work: Callable[[], object]) -> float:
    work()
    started = time.perf_counter()
    for _ in range(5):
        work()
    return (time.perf_counter() - started) / 5 * 1000


async def request(app: ASGIApp, path: str, body: bytes) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    messages = iter([{"type": "http.request", "body": body, "more_body": False}])
    status = 0

    async def receive() -> Message:
        return next(messages, {"type": "http.disconnect"})

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def loop_cpu_per_sign_in(backend: str, work: Callable[[], object] | None) -> float:
    """Milliseconds of the event loop thread's CPU per sign-in, with `work` for each check."""
    settings = await fresh_settings(backend)
    app = create_app(settings, hasher=stand_in(settings, work))
    credentials = json.dumps({"email": EMAIL, "password": PASSWORD}).encode()
    async with app.router.lifespan_context(app):
        registration = json.dumps({"email": EMAIL, "username": "cache", "password": PASSWORD})
        if await request(app, "/api/v1/auth/register", registration.encode()) != 201:
            raise RuntimeError("registration failed")

        async def sign_in_repeatedly(times: int) -> None:
            for _ in range(times):
                if await request(app, "/api/v1/auth/login", credentials) != 200:
                    raise RuntimeError("sign-in failed")

        # The app's lifespan closes the stand-in hasher, as it closes its own.
        await sign_in_repeatedly(AT_ONCE * 4)
        gc.collect()
        started = time.thread_time()
        await asyncio.gather(*(sign_in_repeatedly(SIGN_INS // AT_ONCE) for _ in range(AT_ONCE)))
        spent = time.thread_time() - started
    return spent / SIGN_INS * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["embedded", "production"], default="embedded")
    backend = parser.parse_args().backend
    settings = asyncio.run(fresh_settings(backend))
    hash_ms = measure_hash_ms(settings, at_once=1)
    iterations = max(1, round(hash_ms / timed_ms(cpu_job(10_000)) * 10_000))
    memory = f"{settings.ARGON2_MEMORY_COST_KIB / 1024:.0f} MiB"
    passes = settings.ARGON2_TIME_COST
    reads = memory_read(settings)
    variants: list[tuple[str, Callable[[], object] | None]] = [
        ("nothing", lambda: None),
        (f"{hash_ms:.0f} ms of PBKDF2 in a few hundred bytes", cpu_job(iterations)),
        (f"{timed_ms(reads):.0f} ms of {passes} reads of {memory}", reads),
        (f"{hash_ms:.0f} ms of argon2id ({memory}, t={passes})", None),
    ]
    print(
        f"backend: {backend}   event loop CPU per sign-in, {SIGN_INS} sign-ins, "
        f"{AT_ONCE} at a time, in-process"
    )
    for name, work in variants:
        cost = uvloop.run(loop_cpu_per_sign_in(backend, work))
        print(f"  the hashing threads doing {name:42} {cost:6.2f} ms")


if __name__ == "__main__":
    main()
