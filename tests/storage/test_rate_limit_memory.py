"""The embedded rate-limit storage."""

from limits import RateLimitItemPerMinute
from limits.aio.strategies import MovingWindowRateLimiter

from app.storage.rate_limit_memory import EmbeddedRateLimitStorage


async def test_clear_empties_the_window_and_expiry_drops_the_key() -> None:
    storage = EmbeddedRateLimitStorage()
    limiter = MovingWindowRateLimiter(storage)
    item = RateLimitItemPerMinute(2)
    assert await limiter.hit(item, "k")
    assert await limiter.hit(item, "k")
    assert not await limiter.hit(item, "k")
    await limiter.clear(item, "k")
    assert await limiter.test(item, "k")
    key = item.key_for("k")
    assert storage.events[key] == []
    await storage._MemoryStorage__expire_events()  # type: ignore[attr-defined]
    assert key not in storage.events
    assert await limiter.hit(item, "k")
