"""Request budgets per endpoint class, and the per-account lockout after failed sign-ins."""

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from limits import RateLimitItem, WindowStats, parse_many
from limits.aio.storage import Storage as LimitsStorage
from limits.aio.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.aio.strategies import RateLimiter as LimitsStrategy

from app.core.config import Settings
from app.core.errors import RateLimited
from app.core.ttl_cache import TtlCache
from app.storage.guard import StoreGuard

_STRATEGIES: dict[str, type[LimitsStrategy]] = {
    "moving-window": MovingWindowRateLimiter,
    "sliding-window-counter": SlidingWindowCounterRateLimiter,
    "fixed-window": FixedWindowRateLimiter,
}
LOGIN = "login"
LOGIN_ACCOUNT = "login-account"
REGISTER = "register"
REFRESH = "refresh"
API = "api"
MAIL = "mail"
MAIL_ADDRESS = "mail-address"
# A lease is at most 1 % of a budget, and at most this many requests.
MAX_LEASE = 100
MAX_LEASED_CLIENTS = 100_000


def _window_seconds(item: RateLimitItem) -> int:
    return int(item.get_expiry())


def _seconds_until_reset(stats: WindowStats) -> int:
    return math.ceil(stats.reset_time - time.time())


@dataclass
class _Lease:
    remaining: int


class LeasedBudget:
    """One budget, spent from the shared counters in leases of up to 1 % of it.

    Each storage operation is a Redis round trip in production and most of the limiter's cost
    in embedded mode, so a large budget is charged `lease` requests at a time and this process
    hands them out locally until they run out or the window ends. The shared count is never
    behind what the process let through, so across W workers a client gets at most W * (lease
    - 1) requests beyond the budget per window, and may be refused up to that much early.
    Budgets under 200 requests per window have a lease of 1: every request is counted exactly.
    Near the limit, when a whole lease no longer fits, requests are counted one by one.
    """

    def __init__(self, item: RateLimitItem, strategy: LimitsStrategy, guard: StoreGuard) -> None:
        self.item = item
        self._guard = guard
        # A fixed window counts a refused hit too, so a refill that does not fit would still
        # charge a whole lease: that strategy counts request by request.
        leased = not isinstance(strategy, FixedWindowRateLimiter)
        self.lease = max(1, min(item.amount // 100, MAX_LEASE)) if leased else 1
        self._strategy = strategy
        self._leases: TtlCache[tuple[str, str], _Lease] = TtlCache(
            ttl_seconds=_window_seconds(item),
            max_entries=MAX_LEASED_CLIENTS,
            now=time.monotonic,
        )

    async def spend(self, policy: str, key: str) -> bool:
        """Take one request from `key`'s budget; False when none is left."""
        if self.lease == 1:
            return await self._guard.call(self._strategy.hit(self.item, policy, key))
        slot = (policy, key)
        while True:
            # Requests that find no lease wait for one refill between them.
            lease = self._leases.get(slot) or await self._leases.get_or_load(
                slot, lambda: self._charge_lease(slot)
            )
            if lease is None:
                return await self._guard.call(self._strategy.hit(self.item, policy, key))
            if lease.remaining > 0:
                lease.remaining -= 1
                return True
            # Only the spent lease is dropped, never a refill another request has started.
            if self._leases.get(slot) is lease:
                self._leases.discard(slot)

    async def _charge_lease(self, slot: tuple[str, str]) -> _Lease | None:
        granted = await self._guard.call(self._strategy.hit(self.item, *slot, cost=self.lease))
        return _Lease(remaining=self.lease) if granted else None


class RateLimiter:
    """The request budgets. RATE_LIMIT_ENABLED=false turns them all off; the login lockout is
    not a budget and stays on (app.services.lockout)."""

    def __init__(self, settings: Settings, storage: LimitsStorage, guard: StoreGuard) -> None:
        self.enabled = settings.RATE_LIMIT_ENABLED
        self._guard = guard
        self._strategy = _STRATEGIES[settings.RATE_LIMIT_STRATEGY](storage)
        budgets = {
            LOGIN: settings.RATE_LIMIT_LOGIN,
            LOGIN_ACCOUNT: settings.RATE_LIMIT_LOGIN,
            REGISTER: settings.RATE_LIMIT_REGISTER,
            REFRESH: settings.RATE_LIMIT_REFRESH,
            API: settings.RATE_LIMIT_API,
            MAIL: settings.RATE_LIMIT_MAIL,
            MAIL_ADDRESS: settings.RATE_LIMIT_MAIL,
        }
        self._policies: dict[str, Sequence[LeasedBudget]] = {
            policy: [LeasedBudget(item, self._strategy, guard) for item in parse_many(text)]
            for policy, text in budgets.items()
        }

    async def _retry_after(self, item: RateLimitItem, *identifiers: str) -> int:
        return _seconds_until_reset(await self._strategy.get_window_stats(item, *identifiers))

    async def hit(self, policy: str, key: str) -> None:
        """Spend one request of `key`'s budget under `policy`, or raise RateLimited."""
        if not self.enabled:
            return
        for budget in self._policies[policy]:
            if not await budget.spend(policy, key):
                raise RateLimited(
                    policy=policy,
                    amount=budget.item.amount,
                    window_seconds=_window_seconds(budget.item),
                    retry_after=await self._guard.call(self._retry_after(budget.item, policy, key)),
                )
