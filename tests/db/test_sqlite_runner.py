"""The SQLite runner's threads: units queued together share one transaction, and a failing
unit fails alone."""

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, RootTransaction, text
from sqlalchemy.engine import make_url

from app.db.units import SqliteThreadRunner

WAIT_SECONDS = 10


@pytest.fixture
async def runner(tmp_path: Path) -> AsyncIterator[SqliteThreadRunner]:
    runner = SqliteThreadRunner(make_url(f"sqlite:///{tmp_path}/units.db"))

    def create_table(db: Connection) -> None:
        db.execute(text("CREATE TABLE names (name TEXT PRIMARY KEY)"))

    await runner.run(create_table)
    yield runner
    await runner.close()


def insert(name: str, seen: list[RootTransaction] | None = None) -> Callable[[Connection], str]:
    def unit(db: Connection) -> str:
        db.execute(text("INSERT INTO names VALUES (:name)"), {"name": name})
        if seen is not None:
            transaction = db.get_transaction()
            assert transaction is not None
            seen.append(transaction)
        return name

    return unit


def fails_after_inserting(name: str) -> Callable[[Connection], str]:
    def unit(db: Connection) -> str:
        insert(name)(db)
        raise RuntimeError("a unit of work that fails")

    return unit


def stored_names(db: Connection) -> set[str]:
    return {str(name) for name in db.execute(text("SELECT name FROM names")).scalars()}


class Gate:
    """A unit that holds the writer thread until opened, so that the next units queue up."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self, _: Connection) -> None:
        self.entered.set()
        assert self.opened.wait(WAIT_SECONDS)

    async def wait_until_entered(self) -> None:
        entered = await asyncio.to_thread(self.entered.wait, WAIT_SECONDS)
        assert entered


async def queued_behind_gate(
    runner: SqliteThreadRunner, units: list[Callable[[Connection], str]]
) -> list[str | BaseException]:
    gate = Gate()
    held = asyncio.create_task(runner.run(gate))
    await gate.wait_until_entered()
    calls = [asyncio.create_task(runner.run(unit)) for unit in units]
    await asyncio.sleep(0)
    gate.opened.set()
    await held
    # Bounded: a runner that lost a caller's answer fails the test instead of hanging it.
    return await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), WAIT_SECONDS)


async def test_units_queued_together_commit_in_one_transaction(
    runner: SqliteThreadRunner,
) -> None:
    seen: list[RootTransaction] = []
    names = [f"user{index}" for index in range(5)]

    results = await queued_behind_gate(runner, [insert(name, seen) for name in names])

    assert results == names
    assert len(seen) == len(names)
    assert all(transaction is seen[0] for transaction in seen)
    assert await runner.read(stored_names) == set(names)


async def test_a_failing_unit_in_a_batch_fails_alone_and_leaves_no_trace(
    runner: SqliteThreadRunner,
) -> None:
    results = await queued_behind_gate(
        runner, [insert("first"), fails_after_inserting("doomed"), insert("last")]
    )

    assert results[0] == "first"
    assert isinstance(results[1], RuntimeError)
    assert results[2] == "last"
    assert await runner.read(stored_names) == {"first", "last"}


async def test_a_failed_unit_alone_is_rolled_back_on_the_kept_connection(
    runner: SqliteThreadRunner,
) -> None:
    kept = await runner.run(lambda db: db)
    with pytest.raises(RuntimeError, match="fails"):
        await runner.run(fails_after_inserting("rolled back"))

    assert await runner.run(lambda db: db) is kept
    assert await runner.run(insert("after")) == "after"
    assert await runner.read(stored_names) == {"after"}


async def test_a_unit_that_breaks_a_constraint_does_not_undo_its_batch(
    runner: SqliteThreadRunner,
) -> None:
    await runner.run(insert("taken"))

    results = await queued_behind_gate(runner, [insert("a"), insert("taken"), insert("b")])

    assert results[0] == "a"
    assert results[2] == "b"
    assert "UNIQUE" in str(results[1])
    assert await runner.read(stored_names) == {"taken", "a", "b"}


async def test_a_caller_that_gives_up_does_not_disturb_the_others(
    runner: SqliteThreadRunner,
) -> None:
    failures: list[dict[str, object]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: failures.append(context))
    gate = Gate()
    held = asyncio.create_task(runner.run(gate))
    await gate.wait_until_entered()
    abandoned = asyncio.create_task(runner.run(insert("abandoned")))
    kept = asyncio.create_task(runner.run(insert("kept")))
    await asyncio.sleep(0)
    abandoned.cancel()
    gate.opened.set()
    await held

    assert await kept == "kept"
    assert abandoned.cancelled()
    # Its caller left (as one does at its deadline) before the unit's turn came: it was not
    # run, so nothing was stored for an answer nobody received.
    assert await runner.read(stored_names) == {"kept"}
    assert failures == []


async def test_close_finishes_the_queued_units_then_refuses_new_ones(
    runner: SqliteThreadRunner,
) -> None:
    gate = Gate()
    held = asyncio.create_task(runner.run(gate))
    await gate.wait_until_entered()
    queued = asyncio.create_task(runner.run(insert("queued")))
    await asyncio.sleep(0)
    closing = asyncio.create_task(runner.close())
    await asyncio.sleep(0.05)
    assert not closing.done()
    gate.opened.set()
    await asyncio.wait_for(closing, WAIT_SECONDS)

    assert held.done()
    assert await queued == "queued"
    with pytest.raises(RuntimeError, match="closed"):
        await runner.run(insert("late"))


async def test_threads_start_on_first_use_and_end_on_close(tmp_path: Path) -> None:
    # Other tests' runners may still be alive: count this one's threads as a difference.
    writers, readers = running("sqlite-writes"), running("sqlite-reads")
    runner = SqliteThreadRunner(make_url(f"sqlite:///{tmp_path}/units.db"))
    assert (running("sqlite-writes"), running("sqlite-reads")) == (writers, readers)
    await runner.read(schema_size)
    assert (running("sqlite-writes"), running("sqlite-reads")) == (writers, readers + 1)
    await runner.close()
    assert await settles_at("sqlite-reads", readers)
    assert running("sqlite-writes") == writers


def schema_size(db: Connection) -> int:
    return int(db.execute(text("SELECT count(*) FROM sqlite_master")).scalar_one())


@pytest.mark.parametrize("escape", [StopIteration, KeyboardInterrupt])
async def test_a_unit_raising_what_asyncio_cannot_carry_still_answers_every_caller(
    runner: SqliteThreadRunner, escape: type[BaseException]
) -> None:
    def escapes(_: Connection) -> str:
        raise escape

    results = await queued_behind_gate(runner, [insert("before"), escapes, insert("after")])

    assert results[0] == "before"
    assert isinstance(results[1], RuntimeError)
    assert isinstance(results[1].__cause__, escape)
    assert results[2] == "after"


async def test_a_thread_that_failed_to_start_is_started_by_the_next_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = SqliteThreadRunner(make_url(f"sqlite:///{tmp_path}/units.db"))
    real_start = threading.Thread.start

    def fails_once(thread: threading.Thread) -> None:
        monkeypatch.setattr(threading.Thread, "start", real_start)
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", fails_once)
    with pytest.raises(RuntimeError, match="can't start"):
        await runner.read(schema_size)
    assert await asyncio.wait_for(runner.read(schema_size), WAIT_SECONDS) == 0
    await asyncio.wait_for(runner.close(), WAIT_SECONDS)


async def test_a_cancelled_close_still_ends_both_threads(runner: SqliteThreadRunner) -> None:
    gate = Gate()
    held = asyncio.create_task(runner.run(gate))
    await gate.wait_until_entered()
    await runner.read(stored_names)
    writers, readers = running("sqlite-writes"), running("sqlite-reads")
    closing = asyncio.create_task(runner.close())
    await asyncio.sleep(0.05)
    closing.cancel()
    gate.opened.set()
    await held
    # A later close waits for the same closing, which went on despite the cancelled caller.
    await asyncio.wait_for(runner.close(), WAIT_SECONDS)
    assert await settles_at("sqlite-writes", writers - 1)
    assert await settles_at("sqlite-reads", readers - 1)
    with pytest.raises(RuntimeError, match="closed"):
        await runner.read(stored_names)


def running(name: str) -> int:
    return sum(thread.name == name for thread in threading.enumerate())


async def settles_at(name: str, count: int) -> bool:
    """Whether the number of threads so named reaches `count` within a second."""
    for _ in range(100):
        if running(name) == count:
            return True
        await asyncio.sleep(0.01)
    return running(name) == count
