"""Password hashing: schemes, legacy bcrypt, the 72-byte limit and staying off the event loop."""

import os
import sys
import threading
import time

import anyio
import bcrypt
import pytest

from app.core.passwords import PasswordHasher


def _hasher(scheme: str = "argon2id", concurrency: int = 0) -> PasswordHasher:
    return PasswordHasher(
        scheme=scheme,  # type: ignore[arg-type]
        argon2_memory_kib=8192,
        argon2_time_cost=1,
        argon2_parallelism=1,
        bcrypt_rounds=10,
        concurrency=concurrency,
    )


@pytest.mark.parametrize("scheme", ["argon2id", "bcrypt"])
async def test_hash_and_verify(scheme: str) -> None:
    hasher = _hasher(scheme)
    stored = await hasher.hash("correct horse battery staple")
    assert "correct horse" not in stored
    assert await hasher.verify("correct horse battery staple", stored) == (True, None)
    assert (await hasher.verify("correct horse battery stapler", stored))[0] is False


async def test_argon2id_is_the_default_format() -> None:
    assert (await _hasher().hash("some password")).startswith("$argon2id$v=19$m=8192,t=1,p=1$")


@pytest.mark.parametrize("scheme", ["argon2id", "bcrypt"])
async def test_long_multibyte_passwords_are_not_truncated(scheme: str) -> None:
    hasher = _hasher(scheme)
    password = "ключ" * 40
    assert len(password.encode()) > 72
    stored = await hasher.hash(password)
    assert (await hasher.verify(password, stored))[0] is True
    assert (await hasher.verify(password[:-1], stored))[0] is False
    assert (await hasher.verify(password[:18], stored))[0] is False


async def test_plain_bcrypt_hashes_from_elsewhere_verify_and_are_upgraded() -> None:
    legacy = bcrypt.hashpw(b"imported password", bcrypt.gensalt(4)).decode()
    valid, upgraded = await _hasher("argon2id").verify("imported password", legacy)
    assert valid is True
    assert upgraded is not None
    assert upgraded.startswith("$argon2id$")


async def test_plain_bcrypt_with_an_over_long_password_is_a_plain_failure() -> None:
    legacy = bcrypt.hashpw(b"x" * 72, bcrypt.gensalt(4)).decode()
    assert await _hasher().verify("x" * 100, legacy) == (False, None)


async def test_switching_to_bcrypt_upgrades_argon2_hashes_and_back() -> None:
    argon2_hash = await _hasher("argon2id").hash("switch schemes")
    valid, upgraded = await _hasher("bcrypt").verify("switch schemes", argon2_hash)
    assert valid is True
    assert upgraded is not None
    assert upgraded.startswith("$bcrypt-sha256$")
    valid, again = await _hasher("argon2id").verify("switch schemes", upgraded)
    assert valid is True
    assert again is not None
    assert again.startswith("$argon2id$")


async def test_changed_costs_trigger_a_rehash() -> None:
    old = await _hasher().hash("cost change")
    stronger = PasswordHasher(
        scheme="argon2id",
        argon2_memory_kib=9216,
        argon2_time_cost=1,
        argon2_parallelism=1,
        bcrypt_rounds=10,
        concurrency=0,
    )
    valid, upgraded = await stronger.verify("cost change", old)
    assert valid is True
    assert upgraded is not None
    assert "m=9216" in upgraded


@pytest.mark.parametrize("garbage", ["", "not-a-hash", "$2b$04$short", "$bcrypt-sha256$junk"])
async def test_unknown_or_corrupt_hashes_never_verify(garbage: str) -> None:
    assert (await _hasher().verify("anything at all", garbage or None))[0] is False
    assert (await _hasher().verify("anything at all", garbage))[0] is False


async def test_hashing_does_not_block_the_event_loop() -> None:
    hasher = PasswordHasher(
        scheme="argon2id",
        argon2_memory_kib=65536,
        argon2_time_cost=3,
        argon2_parallelism=1,
        bcrypt_rounds=10,
        concurrency=2,
    )
    gaps: list[float] = []

    async def ticker(stop: anyio.Event) -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await anyio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    stop = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(ticker, stop)
        started = time.perf_counter()
        async with anyio.create_task_group() as hashing:
            for _ in range(6):
                hashing.start_soon(hasher.hash, "storm of logins")
        hashing_time = time.perf_counter() - started
        stop.set()
    # A hash takes tens of milliseconds; had any run on the loop, the ticker would have
    # stalled for at least that long.
    assert hashing_time > 0.1
    assert max(gaps) < hashing_time / 3


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread priorities are a Linux feature")
async def test_hashing_threads_yield_the_cpu_to_the_event_loop() -> None:
    hasher = _hasher(concurrency=2)
    loop_thread_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(hasher.hash, "a few logins at once")
    hashing_threads = [t for t in threading.enumerate() if t.name.startswith("password-hash")]
    assert hashing_threads
    for thread in hashing_threads:
        assert thread.native_id is not None
        assert os.getpriority(os.PRIO_PROCESS, thread.native_id) == min(loop_thread_nice + 10, 19)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == loop_thread_nice
