"""The audit trail: each account's security events, kept in the database for its owner (the
data export) and for whoever investigates. Events are gathered in memory as they happen and
written in batches by a background task, so that no request waits on the write."""

import asyncio
from collections import deque

from app.core.clock import Clock
from app.core.errors import StoreUnavailable
from app.core.events import SecurityEvent
from app.core.logging import get_logger
from app.domain.audit import AuditEntry
from app.services.background import repeat
from app.storage.audit import AuditStore

# The fields an entry keeps: none names a person or carries a secret (an event's other fields,
# such as a mail's link, stay in the log).
KEPT_DETAILS = frozenset({"session_id", "sessions_revoked", "via", "admin_id", "fields", "reset"})
# Events about mail and budgets rather than an account's security, and the routine refresh,
# which every client repeats all day long and which the sessions list already dates.
NOT_KEPT = frozenset(
    {
        SecurityEvent.MAIL_SENT,
        SecurityEvent.MAIL_FAILED,
        SecurityEvent.RATE_LIMITED,
        SecurityEvent.REFRESHED,
    }
)
# Entries waiting while the database is down; past this many, the oldest are let go (the log
# still has every event).
MAX_PENDING = 10_000
FLUSH_SECONDS = 1.0


class AuditTrail:
    def __init__(self, store: AuditStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._pending: deque[AuditEntry] = deque(maxlen=MAX_PENDING)
        self._writing = asyncio.Lock()
        self._logger = get_logger("app.audit")

    @property
    def pending(self) -> int:
        """Entries not yet written."""
        return len(self._pending)

    def emit(self, event: SecurityEvent, **fields: object) -> None:
        """Keep an event of an account for the next write."""
        user_id = fields.get("user_id")
        if not isinstance(user_id, int) or event in NOT_KEPT:
            return
        details = {name: value for name, value in fields.items() if name in KEPT_DETAILS}
        self._pending.append(AuditEntry(user_id, event.value, self._clock.now(), details))

    async def flush(self) -> None:
        """Write what is pending; if the database is down, it stays pending (StoreUnavailable)."""
        async with self._writing:
            if not self._pending:
                return
            batch = list(self._pending)
            self._pending.clear()
            try:
                await self._store.append(batch)
            except StoreUnavailable:
                # Back in front of what came meanwhile; over the cap, the oldest go.
                self._pending = deque([*batch, *self._pending], maxlen=MAX_PENDING)
                raise

    async def history(self, user_id: int, *, limit: int) -> list[AuditEntry]:
        """The account's latest entries, newest first, including those not yet written."""
        await self.flush()
        return await self._store.of_user(user_id, limit=limit)

    async def run(self, stop: asyncio.Event) -> None:
        """Write every FLUSH_SECONDS until `stop` is set, then once more."""
        await repeat(
            self.flush,
            every=FLUSH_SECONDS,
            stop=stop,
            logger=self._logger,
            unavailable="audit_trail_unavailable",
            failed="audit_trail_error",
            state=lambda: {"pending": self.pending},
        )
