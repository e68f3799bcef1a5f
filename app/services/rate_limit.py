"""Request budgets per endpoint class, and the per-account lockout after failed sign-ins."""

import math
import time
from collections.abc import Sequence

from limits import RateLimitItem, RateLimitItemPerSecond, parse_many
from limits.aio.storage import Storage as LimitsStorage
from limits.aio.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.aio.strategies import RateLimiter as LimitsStrategy

from app.core.config import Settings
from app.core.errors import AccountLocked, RateLimited

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


def _window_seconds(item: RateLimitItem) -> int:
    return int(item.get_expiry())


class RateLimiter:
    def __init__(self, settings: Settings, storage: LimitsStorage) -> None:
        self.enabled = settings.RATE_LIMIT_ENABLED
        self._strategy = _STRATEGIES[settings.RATE_LIMIT_STRATEGY](storage)
        self._policies: dict[str, Sequence[RateLimitItem]] = {
            LOGIN: parse_many(settings.RATE_LIMIT_LOGIN),
            LOGIN_ACCOUNT: parse_many(settings.RATE_LIMIT_LOGIN),
            REGISTER: parse_many(settings.RATE_LIMIT_REGISTER),
            REFRESH: parse_many(settings.RATE_LIMIT_REFRESH),
            API: parse_many(settings.RATE_LIMIT_API),
        }
        self._lockout = (
            RateLimitItemPerSecond(settings.LOGIN_LOCKOUT_THRESHOLD, settings.LOGIN_LOCKOUT_SECONDS)
            if settings.LOGIN_LOCKOUT_THRESHOLD
            else None
        )

    async def _retry_after(self, item: RateLimitItem, *identifiers: str) -> int:
        stats = await self._strategy.get_window_stats(item, *identifiers)
        return math.ceil(stats.reset_time - time.time())

    async def hit(self, policy: str, key: str) -> None:
        """Spend one request of `key`'s budget under `policy`, or raise RateLimited."""
        if not self.enabled:
            return
        for item in self._policies[policy]:
            if not await self._strategy.hit(item, policy, key):
                raise RateLimited(
                    policy=policy,
                    amount=item.amount,
                    window_seconds=_window_seconds(item),
                    retry_after=await self._retry_after(item, policy, key),
                )

    async def ensure_not_locked(self, account_key: str) -> None:
        """Raise AccountLocked while the account has too many recent failed sign-ins."""
        if self._lockout is None:
            return
        if await self._strategy.test(self._lockout, "lockout", account_key):
            return
        raise AccountLocked(
            policy="lockout",
            amount=self._lockout.amount,
            window_seconds=_window_seconds(self._lockout),
            retry_after=await self._retry_after(self._lockout, "lockout", account_key),
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
