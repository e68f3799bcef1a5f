"""Request budgets per endpoint class, and the per-account lockout after failed sign-ins."""

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond, WindowStats, parse_many
from limits.aio.storage import Storage as LimitsStorage
from limits.aio.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.aio.strategies import RateLimiter as LimitsStrategy

from app.core.config import Settings
from app.core.errors import AccountLocked, RateLimited
from app.storage.ttl_cache import TtlCache

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

    def __init__(self, item: RateLimitItem, strategy: LimitsStrategy) -> None:
        self.item = item
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
            return await self._strategy.hit(self.item, policy, key)
        slot = (policy, key)
        while True:
            # Requests that find no lease wait for one refill between them.
            lease = self._leases.get(slot) or await self._leases.get_or_load(
                slot, lambda: self._charge_lease(slot)
            )
            if lease is None:
                return await self._strategy.hit(self.item, policy, key)
            if lease.remaining > 0:
                lease.remaining -= 1
                return True
            # Only the spent lease is dropped, never a refill another request has started.
            if self._leases.get(slot) is lease:
                self._leases.discard(slot)

    async def _charge_lease(self, slot: tuple[str, str]) -> _Lease | None:
        granted = await self._strategy.hit(self.item, *slot, cost=self.lease)
        return _Lease(remaining=self.lease) if granted else None


class RateLimiter:
    def __init__(self, settings: Settings, storage: LimitsStorage) -> None:
        self.enabled = settings.RATE_LIMIT_ENABLED
        self._strategy = _STRATEGIES[settings.RATE_LIMIT_STRATEGY](storage)
        budgets = {
            LOGIN: settings.RATE_LIMIT_LOGIN,
            LOGIN_ACCOUNT: settings.RATE_LIMIT_LOGIN,
            REGISTER: settings.RATE_LIMIT_REGISTER,
            REFRESH: settings.RATE_LIMIT_REFRESH,
            API: settings.RATE_LIMIT_API,
        }
        self._policies: dict[str, Sequence[LeasedBudget]] = {
            policy: [LeasedBudget(item, self._strategy) for item in parse_many(text)]
            for policy, text in budgets.items()
        }
        self._lockout = (
            RateLimitItemPerSecond(settings.LOGIN_LOCKOUT_THRESHOLD, settings.LOGIN_LOCKOUT_SECONDS)
            if settings.LOGIN_LOCKOUT_THRESHOLD
            else None
        )

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
                    retry_after=await self._retry_after(budget.item, policy, key),
                )

    async def ensure_not_locked(self, account_key: str) -> bool:
        """Raise AccountLocked while the account has too many recent failed sign-ins; otherwise
        return whether any failed sign-in still counts against it.

        With none counted, a successful sign-in has nothing to forget and can skip
        `clear_failures`, a Redis round trip (two keys of a sliding window) on every sign-in.
        The sliding window is the one strategy where that is not exactly a clear: what it
        keeps counts for less than one failure and only shrinks, but on Redis its keys also
        set when the window turns, and a kept turn is not moved to the next failure. At a
        turn the strategy may admit one guess over the threshold, which an attacker can
        arrange with their own failures anyway: the skip moves where a turn falls, not what
        it admits.
        """
        if self._lockout is None:
            return False
        stats = await self._strategy.get_window_stats(self._lockout, "lockout", account_key)
        if stats.remaining > 0:
            return stats.remaining < self._lockout.amount
        raise AccountLocked(
            policy="lockout",
            amount=self._lockout.amount,
            window_seconds=_window_seconds(self._lockout),
            retry_after=_seconds_until_reset(stats),
        )

    async def record_failure(self, account_key: str) -> bool:
        """Count a failed sign-in; True when this failure locks the account."""
        if self._lockout is None:
            return False
        await self._strategy.hit(self._lockout, "lockout", account_key)
        return not await self._strategy.test(self._lockout, "lockout", account_key)

    async def clear_failures(self, account_key: str) -> None:
        """A successful sign-in forgets earlier failures."""
        if self._lockout is not None:
            await self._strategy.clear(self._lockout, "lockout", account_key)
