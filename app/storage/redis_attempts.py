"""The production attempt counter: one small hash per key in Redis."""

from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis, RedisCluster

from app.domain.attempts import AttemptCount

# The window is kept in the service's clock (like the SQL counter's), so that both backends
# agree on when it ends; Redis's own expiry only collects keys once their window is over.
# ARGV: now and the window, in seconds.
_COUNT = """
local now = tonumber(ARGV[1])
local ends = tonumber(redis.call('HGET', KEYS[1], 'ends'))
if not ends or ends <= now then
  ends = now + tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], 'n', 1, 'ends', tostring(ends))
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])))
  return {1, tostring(ends)}
end
return {redis.call('HINCRBY', KEYS[1], 'n', 1), tostring(ends)}
"""


class RedisAttemptCounter:
    def __init__(self, client: "Redis | RedisCluster", *, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix
        self._count = client.register_script(_COUNT)

    def _key(self, key: str) -> str:
        return f"{self._prefix}:attempts:{key}"

    async def count(self, key: str, *, now: datetime, window: timedelta) -> AttemptCount:
        count, ends = await self._count(
            keys=[self._key(key)], args=[repr(now.timestamp()), window.total_seconds()]
        )
        return AttemptCount(int(count), datetime.fromtimestamp(float(ends), tz=UTC))

    async def clear(self, key: str) -> None:
        await self._redis.delete(self._key(key))

    async def purge(self, now: datetime) -> int:
        """Nothing to do: Redis drops each counter once its window is over."""
        return 0
