"""A small in-process cache whose entries expire after a fixed number of seconds."""

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(self, *, ttl_seconds: float, max_entries: int, now: Callable[[], float]) -> None:
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._now = now
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._loading: dict[K, asyncio.Task[V | None]] = {}

    def get(self, key: K) -> V | None:
        """The cached value, or None when absent or older than the TTL."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored_at, value = entry
        if self._now() - stored_at >= self._ttl:
            del self._entries[key]
            return None
        return value

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V | None]]) -> V | None:
        """The cached value, else what `load` returns (cached unless None).

        Concurrent misses for one key share a single load: when an entry expires under load,
        every request in flight for it would otherwise read the store at the same moment. The
        load runs as its own task, so a caller that goes away does not cancel it for the rest.
        A loaded value ages from when its load started, and a load overtaken by `discard` is
        neither cached nor joined by later callers: it may have read what was discarded.
        """
        value = self.get(key)
        if value is not None:
            return value
        loading = self._loading.get(key)
        if loading is None:
            loading = asyncio.ensure_future(self._load(key, load, started=self._now()))
            self._loading[key] = loading
        return await asyncio.shield(loading)

    async def _load(
        self, key: K, load: Callable[[], Awaitable[V | None]], *, started: float
    ) -> V | None:
        current = asyncio.current_task()
        try:
            value = await load()
        except BaseException:
            if self._loading.get(key) is current:
                del self._loading[key]
            raise
        if self._loading.get(key) is current:
            del self._loading[key]
            if value is not None:
                self._store(key, value, stored_at=started)
        return value

    def put(self, key: K, value: V) -> None:
        self._store(key, value, stored_at=self._now())

    def _store(self, key: K, value: V, *, stored_at: float) -> None:
        if self._ttl <= 0 or self._now() - stored_at >= self._ttl:
            return
        self._entries[key] = (stored_at, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def discard(self, key: K) -> None:
        self._entries.pop(key, None)
        self._loading.pop(key, None)

    def discard_where(self, predicate: Callable[[V], bool]) -> None:
        """Drop every entry whose value matches; for rare bulk invalidations."""
        for key in [key for key, (_, value) in self._entries.items() if predicate(value)]:
            del self._entries[key]
        # What the loads under way will return is unknown: none of them may be cached now.
        self._loading.clear()
