"""The state of each store, for /health."""

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from app.core.errors import StoreUnavailable
from app.storage.guard import REQUEST_DEADLINE, Deadline

Probe = Callable[[], Awaitable[None]]


class Health:
    def __init__(self, probes: Mapping[str, Probe], *, seconds: float) -> None:
        self._probes = dict(probes)
        self._seconds = seconds

    async def _state(self, probe: Probe) -> str:
        # Each store gets a deadline of its own: one that hangs must not eat another's time.
        deadline = Deadline(self._seconds)
        REQUEST_DEADLINE.set(deadline)
        try:
            await probe()
        except StoreUnavailable as unavailable:
            return "slow" if unavailable.timed_out else "down"
        finally:
            deadline.close()
        return "ok"

    async def states(self) -> dict[str, str]:
        """`ok`, `down` or `slow` for each store. They are probed side by side, each as a task
        of its own, so that the answer comes within one deadline even when every store hangs."""
        states = await asyncio.gather(*(self._state(probe) for probe in self._probes.values()))
        return dict(zip(self._probes, states, strict=True))
