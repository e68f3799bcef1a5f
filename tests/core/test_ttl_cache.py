"""The per-process cache in front of the session and account reads."""

import anyio
import pytest

from app.core.ttl_cache import TtlCache


def _cache() -> TtlCache[str, str]:
    return TtlCache(ttl_seconds=60, max_entries=10, now=lambda: 0.0)


async def test_concurrent_misses_share_one_load() -> None:
    cache = _cache()
    loads = 0

    async def load() -> str:
        nonlocal loads
        loads += 1
        await anyio.sleep(0.05)
        return "value"

    results: list[str | None] = []

    async def ask() -> None:
        results.append(await cache.get_or_load("key", load))

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(ask)
    assert loads == 1
    assert results == ["value"] * 20
    assert await cache.get_or_load("key", load) == "value"
    assert loads == 1


async def test_a_missing_value_is_not_cached_and_a_failed_load_is_retried() -> None:
    cache = _cache()
    answers: list[str | Exception | None] = [None, RuntimeError("store down"), "found"]

    async def load() -> str | None:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert await cache.get_or_load("key", load) is None
    with pytest.raises(RuntimeError, match="store down"):
        await cache.get_or_load("key", load)
    assert await cache.get_or_load("key", load) == "found"
    assert cache.get("key") == "found"


async def test_a_caller_that_goes_away_does_not_cancel_the_shared_load() -> None:
    cache = _cache()
    started = anyio.Event()

    async def load() -> str:
        started.set()
        await anyio.sleep(0.05)
        return "value"

    async with anyio.create_task_group() as group:
        group.start_soon(cache.get_or_load, "key", load)
        await started.wait()
        group.cancel_scope.cancel()
    with anyio.fail_after(1):
        assert await cache.get_or_load("key", load) == "value"


async def test_a_load_overtaken_by_a_discard_is_neither_joined_nor_cached() -> None:
    cache = _cache()
    store = {"key": "live"}
    first_read = anyio.Event()
    release = anyio.Event()

    async def slow_load() -> str:
        value = store["key"]
        first_read.set()
        await release.wait()
        return value

    async def fresh_load() -> str:
        return store["key"]

    results: list[str | None] = []

    async def early_caller() -> None:
        results.append(await cache.get_or_load("key", slow_load))

    async with anyio.create_task_group() as group:
        group.start_soon(early_caller)
        await first_read.wait()
        store["key"] = "revoked"
        cache.discard("key")
        assert await cache.get_or_load("key", fresh_load) == "revoked"
        release.set()
    assert results == ["live"]
    assert cache.get("key") == "revoked"


async def test_a_value_ages_from_when_its_load_started() -> None:
    clock = [0.0]
    cache: TtlCache[str, str] = TtlCache(ttl_seconds=1, max_entries=10, now=lambda: clock[0])

    async def slow_load() -> str:
        clock[0] += 1.5
        return "value"

    assert await cache.get_or_load("key", slow_load) == "value"
    assert cache.get("key") is None
