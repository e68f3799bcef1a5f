"""Budgets shared by several workers, spent in leases: never over the budget, little waste."""

from collections.abc import AsyncIterator

import anyio
import pytest
from limits import parse

from app.core.config import Settings
from app.core.errors import RateLimited
from app.services.rate_limit import API, RateLimiter
from app.storage.factory import Storage, build_storage
from tests.conftest import make_settings


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[Storage]:
    storage = build_storage(make_settings(database_url))
    yield storage
    await storage.close()


def _limiter(settings: Settings, storage: Storage) -> RateLimiter:
    return RateLimiter(settings, storage.rate_limits, storage.rate_limit_guard)


async def _remaining(worker: RateLimiter, budget: str, key: str) -> int:
    """What the shared counters still allow `key` under `budget` (leases count as spent)."""
    stats = await worker._strategy.get_window_stats(parse(budget), API, key)
    return stats.remaining


async def _spend_until_refused(limiters: list[RateLimiter], key: str) -> int:
    """Requests let through when two workers alternate until both refuse."""
    allowed = 0
    refused = [False] * len(limiters)
    while not all(refused):
        for index, limiter in enumerate(limiters):
            try:
                await limiter.hit(API, key)
            except RateLimited:
                refused[index] = True
            else:
                allowed += 1
                refused[index] = False
    return allowed


@pytest.mark.parametrize(
    ("budget", "lease"),
    [("150/minute", 1), ("1000/minute", 10), ("100000/minute", 100)],
)
async def test_two_workers_never_exceed_a_shared_budget(
    storage: Storage, database_url: str, budget: str, lease: int
) -> None:
    settings = make_settings(database_url, RATE_LIMIT_API=budget)
    workers = [_limiter(settings, storage), _limiter(settings, storage)]
    amount = parse(budget).amount
    allowed = await _spend_until_refused(workers, f"client-{budget}")
    assert amount - len(workers) * (lease - 1) <= allowed <= amount


async def test_a_large_budget_is_charged_one_lease_at_a_time(
    storage: Storage, database_url: str
) -> None:
    settings = make_settings(database_url, RATE_LIMIT_API="1000/minute")
    worker = _limiter(settings, storage)
    await worker.hit(API, "leased-client")
    assert await _remaining(worker, "1000/minute", "leased-client") == 990
    for _ in range(9):
        await worker.hit(API, "leased-client")
    assert await _remaining(worker, "1000/minute", "leased-client") == 990
    await worker.hit(API, "leased-client")
    assert await _remaining(worker, "1000/minute", "leased-client") == 980


async def test_a_small_budget_is_counted_request_by_request(
    storage: Storage, database_url: str
) -> None:
    settings = make_settings(database_url, RATE_LIMIT_API="150/minute")
    worker = _limiter(settings, storage)
    for used in range(1, 4):
        await worker.hit(API, "exact-client")
        assert await _remaining(worker, "150/minute", "exact-client") == 150 - used


async def test_requests_that_find_the_lease_spent_share_one_refill(
    storage: Storage, database_url: str
) -> None:
    settings = make_settings(database_url, RATE_LIMIT_API="1000/minute")
    worker = _limiter(settings, storage)
    async with anyio.create_task_group() as group:
        for _ in range(50):
            group.start_soon(worker.hit, API, "busy-client")
    assert await _remaining(worker, "1000/minute", "busy-client") == 1000 - 50


async def test_a_fixed_window_is_counted_request_by_request(
    storage: Storage, database_url: str
) -> None:
    # A fixed window also counts a refused hit: a refill that did not fit would cost a lease.
    settings = make_settings(
        database_url, RATE_LIMIT_API="1000/minute", RATE_LIMIT_STRATEGY="fixed-window"
    )
    worker = _limiter(settings, storage)
    await worker.hit(API, "fixed-client")
    assert await _remaining(worker, "1000/minute", "fixed-client") == 999
