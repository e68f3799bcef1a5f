"""The mail outbox and the one-time email tokens, in the SQL database on every backend: a token
and the mail that carries it are written in one transaction, and a mail survives a restart."""

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Table, and_, delete, func, insert, or_, select, update

from app.db.units import UnitOfWork
from app.domain.mail import EmailToken, Mail, NewEmailToken, TokenPurpose
from app.models import EmailToken as EmailTokenRow
from app.models import MailOutbox, User
from app.storage.database import Database

T = TypeVar("T")
_OUTBOX = cast(Table, MailOutbox.__table__)
_TOKENS = cast(Table, EmailTokenRow.__table__)
_O = _OUTBOX.c
_T = _TOKENS.c
_USERS = cast(Table, User.__table__)
SENT, DROPPED, FAILED = "sent", "dropped", "failed"
# Kept this long once done, for an operator to look at; `purge` removes them after.
DONE_KEPT = timedelta(days=7)


def _mail(row: Mapping[Any, Any]) -> Mail:
    return Mail(
        id=row["id"],
        kind=row["kind"],
        address=row["address"],
        payload=json.loads(row["payload"]),
        attempts=row["attempts"],
        created_at=row["created_at"],
    )


def _token(row: Mapping[Any, Any]) -> EmailToken:
    return EmailToken(
        id=row["id"],
        user_id=row["user_id"],
        purpose=TokenPurpose(row["purpose"]),
        email=row["email"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        used_at=row["used_at"],
        failures=row["failures"],
    )


def _outbox_values(mail: Mail, now: datetime) -> dict[str, object]:
    return {
        "id": mail.id,
        "kind": mail.kind,
        "address": mail.address,
        "payload": json.dumps(mail.payload),
        "created_at": now,
        "due_at": now,
        "attempts": 0,
        "lease_until": None,
        "done_at": None,
        "outcome": None,
        "last_error": None,
    }


def _void_tokens(
    db: Connection,
    user_id: int,
    purposes: Iterable[TokenPurpose],
    now: datetime,
    *,
    issued_after: datetime | None = None,
) -> None:
    void = update(_TOKENS).where(
        _T.user_id == user_id,
        _T.purpose.in_([purpose.value for purpose in purposes]),
        _T.used_at.is_(None),
    )
    if issued_after is not None:
        void = void.where(_T.created_at > issued_after)
    db.execute(void.values(used_at=now))


def _replace_tokens(db: Connection, token: NewEmailToken, now: datetime) -> None:
    """Store `token`, voiding the earlier ones it replaces. On PostgreSQL the user's row is
    locked first: two issues at once would each void only what was committed before them,
    and both new tokens would live (SQLite has one writer at a time already)."""
    if db.dialect.name == "postgresql":
        db.execute(select(_USERS.c.id).where(_USERS.c.id == token.user_id).with_for_update())
    _void_tokens(db, token.user_id, _voided_by(token), now)
    db.execute(insert(_TOKENS), asdict(token) | {"used_at": None, "failures": 0})


def _voided_by(token: NewEmailToken) -> tuple[TokenPurpose, ...]:
    """The earlier tokens a new one voids: those of its purpose, except undo links. Each undo
    link is bound to the address it gives back, and the first one, to the owner's own
    address, must outlive whatever a thief changes after it."""
    return () if token.purpose is TokenPurpose.UNDO_EMAIL_CHANGE else (token.purpose,)


class MailStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def enqueue(self, mail: Mail, *, now: datetime) -> None:
        """Add a mail to the outbox."""

        def enqueue(db: Connection) -> None:
            db.execute(insert(_OUTBOX), _outbox_values(mail, now))

        await self._db.run(enqueue)

    async def issue(
        self,
        token: NewEmailToken,
        mail: Mail,
        *,
        now: datetime,
        after: UnitOfWork[T] | None = None,
    ) -> T | None:
        """Store a token and the mail carrying it in one transaction, after `after` (another
        store's change the mail is about, whose result is returned); every earlier unused
        token of the same user and purpose stops working."""

        def issue(db: Connection) -> T | None:
            result = after(db) if after is not None else None
            _replace_tokens(db, token, now)
            db.execute(insert(_OUTBOX), _outbox_values(mail, now))
            return result

        return await self._db.run(issue)

    async def forget_address(
        self, address: str, *, now: datetime, farewell: Mail, after: UnitOfWork[T]
    ) -> T:
        """After `after` (the account's removal), drop every mail not yet sent to `address`,
        and queue `farewell` to it, in one transaction."""

        def forget(db: Connection) -> T:
            result = after(db)
            db.execute(delete(_OUTBOX).where(_O.address == address, _O.done_at.is_(None)))
            db.execute(insert(_OUTBOX), _outbox_values(farewell, now))
            return result

        return await self._db.run(forget)

    async def claim(self, *, now: datetime, lease: timedelta, limit: int) -> list[Mail]:
        """Lease up to `limit` due mails to this worker until `now + lease`: no other worker
        takes them meanwhile, and if this one dies, they are due again when the lease ends."""

        def claim(db: Connection) -> list[Mail]:
            due = (
                select(_O.id)
                .where(
                    _O.done_at.is_(None),
                    _O.due_at <= now,
                    or_(_O.lease_until.is_(None), _O.lease_until <= now),
                )
                .order_by(_O.due_at)
                .limit(limit)
            )
            if db.dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            ids = list(db.execute(due).scalars())
            if not ids:
                return []
            # The same conditions again: a row another worker leased in between is left alone.
            leased = db.execute(
                update(_OUTBOX)
                .where(
                    _O.id.in_(ids),
                    _O.done_at.is_(None),
                    or_(_O.lease_until.is_(None), _O.lease_until <= now),
                )
                .values(lease_until=now + lease)
                .returning(*_OUTBOX.c)
            )
            return [_mail(row._mapping) for row in leased]

        return await self._db.run(claim)

    async def prepare(
        self, request: Mail, mail: Mail, token: NewEmailToken | None, *, now: datetime
    ) -> None:
        """Turn a request (say, "send a reset link to this address") into the mail to send,
        storing its token in the same transaction."""

        def prepare(db: Connection) -> None:
            if token is not None:
                _replace_tokens(db, token, now)
            db.execute(
                update(_OUTBOX)
                .where(_O.id == request.id)
                .values(kind=mail.kind, address=mail.address, payload=json.dumps(mail.payload))
            )

        await self._db.run(prepare)

    async def finish(self, mail: Mail, *, outcome: str, now: datetime) -> None:
        """The mail is done with: sent, dropped or given up. Its payload, which may carry a
        token, and its address are forgotten."""

        def finish(db: Connection) -> None:
            # The address goes too, also from a server's error, which often quotes it: a
            # deleted account's address must not outlive it here.
            db.execute(
                update(_OUTBOX)
                .where(_O.id == mail.id)
                .values(
                    done_at=now,
                    outcome=outcome,
                    payload="{}",
                    address="",
                    lease_until=None,
                    last_error=func.replace(_O.last_error, mail.address, "<address>"),
                )
            )

        await self._db.run(finish)

    async def retry(self, mail: Mail, *, at: datetime, error: str) -> None:
        """Sending failed: try again at `at`."""

        def retry(db: Connection) -> None:
            db.execute(
                update(_OUTBOX)
                .where(_O.id == mail.id)
                .values(
                    attempts=_O.attempts + 1, due_at=at, lease_until=None, last_error=error[:255]
                )
            )

        await self._db.run(retry)

    async def count_attempt(self, token_id: str) -> tuple[EmailToken, str] | None:
        """Count one more attempt at the token's secret, before the secret is checked (a
        success clears the count); return the token as it then stands with its secret's
        hash, or None when there is no such token."""

        def count(db: Connection) -> tuple[EmailToken, str] | None:
            db.execute(update(_TOKENS).where(_T.id == token_id).values(failures=_T.failures + 1))
            row = db.execute(select(_TOKENS).where(_T.id == token_id)).first()
            return (_token(row._mapping), row.secret_hash) if row is not None else None

        return await self._db.run(count)

    async def use(self, token_id: str, *, now: datetime) -> bool:
        """Spend the token; False when it was spent already (by a request racing this one)."""

        def use(db: Connection) -> bool:
            spent = db.execute(
                update(_TOKENS)
                .where(_T.id == token_id, _T.used_at.is_(None))
                .values(used_at=now, failures=0)
            )
            return spent.rowcount == 1

        return await self._db.run(use)

    async def void(
        self,
        user_id: int,
        purposes: Iterable[TokenPurpose],
        *,
        now: datetime,
        issued_after: datetime | None = None,
    ) -> None:
        """Make the user's unused tokens of these purposes (issued after `issued_after`, when
        given) stop working."""
        purposes = tuple(purposes)

        def void(db: Connection) -> None:
            _void_tokens(db, user_id, purposes, now, issued_after=issued_after)

        await self._db.run(void)

    async def clear_failures(self, token_id: str) -> None:
        """Forget the wrong guesses counted against a token whose secret was just shown."""

        def clear(db: Connection) -> None:
            db.execute(update(_TOKENS).where(_T.id == token_id).values(failures=0))

        await self._db.run(clear)

    async def pending(self) -> int:
        """Mails not yet done with."""

        def pending(db: Connection) -> int:
            unfinished = select(func.count()).select_from(_OUTBOX).where(_O.done_at.is_(None))
            return int(db.execute(unfinished).scalar_one())

        return await self._db.read(pending)

    async def purge(self, now: datetime) -> tuple[int, int]:
        """Remove mails done with for a week and tokens past their expiry; return how many."""

        def purge(db: Connection) -> tuple[int, int]:
            mails = db.execute(
                delete(_OUTBOX).where(and_(_O.done_at.is_not(None), _O.done_at <= now - DONE_KEPT))
            ).rowcount
            tokens = db.execute(delete(_TOKENS).where(_T.expires_at <= now)).rowcount
            return mails, tokens

        return await self._db.run(purge)
