"""The audit trail's store: entries appended in batches, read back per account, purged by age."""

import json
from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Connection, Table, delete, insert, select

from app.domain.audit import AuditEntry
from app.models import AuditEvent
from app.storage.database import Database

_EVENTS = cast(Table, AuditEvent.__table__)
_E = _EVENTS.c


class AuditStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def append(self, entries: Sequence[AuditEntry]) -> None:
        """Write entries, in one transaction."""
        rows = [
            {
                "user_id": entry.user_id,
                "event": entry.event,
                "at": entry.at,
                "details": json.dumps(entry.details, separators=(",", ":")),
            }
            for entry in entries
        ]

        def append(db: Connection) -> None:
            db.execute(insert(_EVENTS), rows)

        if rows:
            await self._db.run(append)

    async def of_user(self, user_id: int, *, limit: int) -> list[AuditEntry]:
        """The account's latest entries, newest first."""

        def of_user(db: Connection) -> list[AuditEntry]:
            found = db.execute(
                select(_E.event, _E.at, _E.details)
                .where(_E.user_id == user_id)
                .order_by(_E.at.desc(), _E.id.desc())
                .limit(limit)
            )
            return [
                AuditEntry(user_id, row.event, row.at, json.loads(row.details)) for row in found
            ]

        return await self._db.read(of_user)

    async def purge(self, before: datetime) -> int:
        """Remove the entries older than `before`; return how many."""

        def purge(db: Connection) -> int:
            return int(db.execute(delete(_EVENTS).where(_E.at < before)).rowcount)

        return await self._db.run(purge)
