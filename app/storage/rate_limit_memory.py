"""The embedded rate-limit storage: `limits`' in-memory storage with a safe `clear`."""

from limits.aio.storage import MemoryStorage


class EmbeddedRateLimitStorage(MemoryStorage):
    """MemoryStorage whose `clear` cannot crash the background expiry task.

    limits 5.x deletes a moving-window key outright in `clear`, while its expiry task walks a
    snapshot of the keys and indexes each one; a key cleared in between raises KeyError, which
    ends the task and stops all later expiry. Emptying the window instead lets the task drop
    the key itself.
    """

    async def clear(self, key: str) -> None:
        self.storage.pop(key, None)
        self.expirations.pop(key, None)
        if key in self.events:
            self.events[key] = []
