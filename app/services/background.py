"""The loop a background task of the service runs: its work at a fixed period, until asked to
stop, outliving whatever one turn runs into."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping

from structlog.typing import FilteringBoundLogger

from app.core.errors import StoreUnavailable


async def repeat(
    work: Callable[[], Awaitable[object]],
    *,
    every: float,
    stop: asyncio.Event,
    logger: FilteringBoundLogger,
    unavailable: str,
    failed: str,
    state: Callable[[], Mapping[str, object]] = dict,
) -> None:
    """Run `work` `every` seconds, the first time one period after the start, until `stop` is
    set, and once more then (work that must not run after the stop checks `stop` itself). A
    store outage is logged as `unavailable`, any other error as `failed`, each with what
    `state` reports, and waits for the next turn."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
        try:
            await work()
        except StoreUnavailable:
            logger.warning(unavailable, **state())
        except Exception:
            logger.exception(failed, **state())
        if stop.is_set():
            return
