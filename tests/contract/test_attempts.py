"""The attempt counter's contract, kept by every backend that implements it (see conftest.py),
through the login lockout that counts on it: atomic, first, shared between workers."""

import asyncio
from datetime import timedelta

import pytest

from app.core.errors import AccountLocked
from app.services.lockout import LoginLockout
from app.storage.protocols import AttemptCounter
from app.storage.sql_attempts import SqlAttemptCounter
from tests.clock import OffsetClock


def _lockout(counter: AttemptCounter, threshold: int = 3, seconds: int = 900) -> LoginLockout:
    return LoginLockout(counter, threshold=threshold, seconds=seconds, secret="k" * 40)


async def test_the_attempt_past_the_threshold_is_refused_until_the_window_ends(
    counters: list[AttemptCounter],
) -> None:
    clock = OffsetClock()
    lockout = _lockout(counters[0])
    assert [await lockout.admit("a@example.com", now=clock.now()) for _ in range(3)] == [1, 2, 3]
    assert lockout.locks_after_failure(3)
    with pytest.raises(AccountLocked) as locked:
        await lockout.admit("a@example.com", now=clock.now())
    assert 899 <= locked.value.retry_after <= 900
    assert locked.value.policy == "lockout"
    clock.advance(600)
    with pytest.raises(AccountLocked) as still:
        await lockout.admit("a@example.com", now=clock.now())
    assert 299 <= still.value.retry_after <= 300
    clock.advance(301)
    assert await lockout.admit("a@example.com", now=clock.now()) == 1


async def test_forgetting_clears_the_count(counters: list[AttemptCounter]) -> None:
    clock = OffsetClock()
    lockout = _lockout(counters[0])
    for _ in range(3):
        await lockout.admit("b@example.com", now=clock.now())
    await lockout.forget("b@example.com")
    assert await lockout.admit("b@example.com", now=clock.now()) == 1
    # Other emails are counted apart.
    assert await lockout.admit("c@example.com", now=clock.now()) == 1


async def test_parallel_attempts_from_two_workers_never_exceed_the_threshold(
    counters: list[AttemptCounter],
) -> None:
    clock = OffsetClock()
    workers = [_lockout(counter, threshold=5) for counter in counters]

    async def attempt(worker: LoginLockout) -> bool:
        try:
            await worker.admit("target@example.com", now=clock.now())
        except AccountLocked:
            return False
        return True

    admitted = await asyncio.gather(*(attempt(workers[index % 2]) for index in range(200)))
    assert admitted.count(True) == 5


async def test_a_threshold_of_zero_counts_nothing(counters: list[AttemptCounter]) -> None:
    clock = OffsetClock()
    lockout = _lockout(counters[0], threshold=0)
    for _ in range(10):
        assert await lockout.admit("d@example.com", now=clock.now()) == 0
    assert not lockout.locks_after_failure(0)


async def test_counters_do_not_hold_the_email_and_expired_ones_are_purged(
    counters: list[AttemptCounter],
) -> None:
    clock = OffsetClock()
    lockout = _lockout(counters[0], seconds=60)
    await lockout.admit("private@example.com", now=clock.now())
    counted = await counters[0].count(
        lockout._key("private@example.com"), now=clock.now(), window=timedelta(seconds=60)
    )
    assert counted.count == 2
    assert "private" not in lockout._key("private@example.com")
    # SQL keeps a counter until it is purged; Redis drops it itself when its window ends.
    if isinstance(counters[0], SqlAttemptCounter):
        clock.advance(61)
        assert await counters[0].purge(clock.now()) == 1
