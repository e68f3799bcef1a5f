"""Apps that mail through a real SMTP server, and the outbox as the mail tests read it."""

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import anyio
from sqlalchemy import Connection, Table, select, update

from app.core.config import Settings
from app.models import MailOutbox
from app.storage.factory import build_storage
from app.storage.mail import MailStore
from tests.conftest import make_settings

PUBLIC_URL = "https://auth.example.com"
_OUTBOX = cast(Table, MailOutbox.__table__)


def mailed_settings(database_url: str, smtp_port: int | None, **overrides: Any) -> Settings:
    """Test settings that mail through the SMTP server on `smtp_port` (to files without one),
    look for mail and retry within a fraction of a second, and leave the mail budgets to the
    tests that test them."""
    values: dict[str, Any] = {
        "PUBLIC_URL": PUBLIC_URL,
        "MAIL_POLL_SECONDS": 0.1,
        "MAIL_RETRY_MAX_SECONDS": 0.2,
        "SMTP_TIMEOUT_SECONDS": 2,
        "RATE_LIMIT_MAIL": "1000/minute",
    }
    if smtp_port is not None:
        values.update(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp_port, SMTP_SECURITY="none")
    return make_settings(database_url, **(values | overrides))


@dataclass(frozen=True)
class OutboxRow:
    id: str
    kind: str
    address: str
    payload: dict[str, object]
    attempts: int
    due_at: datetime
    lease_until: datetime | None
    done_at: datetime | None
    outcome: str | None
    last_error: str | None


def _row(values: Mapping[Any, Any]) -> OutboxRow:
    fields = {name: values[name] for name in OutboxRow.__dataclass_fields__}
    return OutboxRow(**(fields | {"payload": json.loads(values["payload"])}))


class Outbox:
    """The mail_outbox table of an app's database, read (and, to stage a fault, written) by a
    test beside the app."""

    def __init__(self, settings: Settings) -> None:
        self._storage = build_storage(settings)

    @property
    def store(self) -> MailStore:
        """The app's mail store, on the same database."""
        return self._storage.mail

    async def rows(self) -> list[OutboxRow]:
        def rows(db: Connection) -> list[OutboxRow]:
            return [_row(row) for row in db.execute(select(_OUTBOX)).mappings()]

        return await self._storage.database.read(rows)

    async def until(
        self, done: Callable[[list[OutboxRow]], bool], within: float = 10
    ) -> list[OutboxRow]:
        """The rows, once `done` says they are as awaited."""
        with anyio.fail_after(within):
            while True:
                if done(rows := await self.rows()):
                    return rows
                await anyio.sleep(0.05)

    async def settled(self, within: float = 10) -> list[OutboxRow]:
        """The rows, once every mail is done with (sent, dropped or given up)."""
        return await self.until(lambda rows: all(row.done_at for row in rows), within)

    async def set_attempts(self, mail_id: str, attempts: int) -> None:
        def set_attempts(db: Connection) -> None:
            db.execute(update(_OUTBOX).where(_OUTBOX.c.id == mail_id).values(attempts=attempts))

        await self._storage.database.run(set_attempts)

    async def lease_all(self, *, now: datetime, lease: timedelta) -> list[str]:
        """Lease every due mail as a worker would, and then do nothing with them (as a worker
        that died would); their ids."""
        return [mail.id for mail in await self._storage.mail.claim(now=now, lease=lease, limit=100)]

    async def close(self) -> None:
        await self._storage.close()


def log_events(text: str) -> list[dict[str, Any]]:
    """The structured log lines in `text` (captured stderr)."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]
