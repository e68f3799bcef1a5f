"""Migration 0005: SQLite never gives a user id again, and a database upgraded from 0004 keeps
every row, the sessions and email tokens that reference its users included (rebuilding users
with foreign keys on would otherwise cascade its drop to them)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Connection,
    Engine,
    Select,
    create_engine,
    event,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy.exc import IntegrityError

from app.db.engine import configure_sqlite_connection
from app.db.migrate import ALEMBIC_INI

_ROWS = ("users", "auth_sessions", "email_tokens")
_WHEN = "2026-12-01 10:00:00.000000"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite file whose connections are set up as the app's (foreign keys on)."""
    engine = create_engine(f"sqlite:///{tmp_path}/auth.db")
    event.listen(engine, "connect", configure_sqlite_connection)
    yield engine
    engine.dispose()


def _migrate(engine: Engine, revision: str, *, down: bool = False) -> None:
    with engine.begin() as connection:
        config = Config(str(ALEMBIC_INI))
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def _add_user(db: Connection, email: str, user_id: int | None = None) -> int:
    inserted = db.exec_driver_sql(
        "INSERT INTO users (id, email, username, hashed_password, is_active, is_admin,"
        " created_at, updated_at) VALUES (?, ?, ?, 'hash', 1, 0, ?, ?)",
        (user_id, email, email.split("@")[0], _WHEN, _WHEN),
    )
    return int(inserted.lastrowid)


def _fill(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Three accounts, a session of one and an email token of another."""
    with engine.begin() as db:
        first, second, _ = (_add_user(db, f"{name}@example.com") for name in "abc")
        db.exec_driver_sql(
            "INSERT INTO auth_sessions (id, user_id, created_at, last_seen_at, expires_at,"
            " browser, os, device_type, refresh_jti, refresh_issued_at)"
            " VALUES ('s1', ?, ?, ?, '2027-01-01 00:00:00.000000', 'b', 'o', 'd', 'j', ?)",
            (second, _WHEN, _WHEN, _WHEN),
        )
        db.exec_driver_sql(
            "INSERT INTO email_tokens (id, user_id, purpose, email, secret_hash, created_at,"
            " expires_at, failures) VALUES ('t1', ?, 'verify', 'b@example.com', 'x', ?, ?, 0)",
            (first, _WHEN, _WHEN),
        )
    return _contents(engine)


def _contents(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    contents: dict[str, list[tuple[object, ...]]] = {}
    with engine.connect() as db:
        for name in _ROWS:
            every_row: Select[Any] = (
                select(literal_column("*")).select_from(table(name)).order_by(text("1"))
            )
            contents[name] = [tuple(row) for row in db.execute(every_row)]
    return contents


def _assert_ids_never_given_again(engine: Engine) -> None:
    with engine.begin() as db:
        newest = _add_user(db, "newest@example.com")
        db.exec_driver_sql("DELETE FROM users WHERE id = ?", (newest,))
        assert _add_user(db, "next@example.com") == newest + 1


def test_an_upgrade_from_0004_keeps_every_row_and_never_gives_an_id_again(engine: Engine) -> None:
    _migrate(engine, "0004")
    before = _fill(engine)
    _migrate(engine, "head")
    assert _contents(engine) == before
    _assert_ids_never_given_again(engine)
    with engine.connect() as db:
        assert db.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        assert db.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


def test_the_rebuilt_table_keeps_its_constraints(engine: Engine) -> None:
    _migrate(engine, "head")
    with engine.begin() as db:
        _add_user(db, "ann@example.com")
    insert = (
        "INSERT INTO users (email, username, hashed_password, is_active, is_admin, created_at,"
        " updated_at) VALUES (?, ?, 'hash', 1, 0, ?, ?)"
    )
    # The same email; a username that differs only in case; a session of no account.
    for statement, values in (
        (insert, ("ann@example.com", "ann2", _WHEN, _WHEN)),
        (insert, ("ann2@example.com", "ANN", _WHEN, _WHEN)),
        (
            "INSERT INTO auth_sessions (id, user_id, created_at, last_seen_at, expires_at,"
            " browser, os, device_type, refresh_jti, refresh_issued_at)"
            " VALUES ('s1', 999, ?, ?, ?, 'b', 'o', 'd', 'j', ?)",
            (_WHEN, _WHEN, _WHEN, _WHEN),
        ),
    ):
        with pytest.raises(IntegrityError), engine.begin() as db:
            db.exec_driver_sql(statement, values)


def test_a_downgrade_to_0004_keeps_every_row(engine: Engine) -> None:
    _migrate(engine, "head")
    before = _fill(engine)
    _migrate(engine, "0004", down=True)
    assert _contents(engine) == before
    _migrate(engine, "head")
    assert _contents(engine) == before
