"""A prepared statement run on SQLite's own cursor gives what Core gives, and fails as Core fails.

The stores' suites run every statement on SQLite (the cursor) and PostgreSQL (Core); these
tests hold the two paths to the same results, value for value, on one SQLite database.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError, StatementError

from app.db.base import UtcDateTime
from app.db.engine import configure_sqlite_connection
from app.db.statements import PreparedStatement

_METADATA = MetaData()
_THINGS = Table(
    "things",
    _METADATA,
    Column("id", Integer, primary_key=True),
    Column("name", String(32), unique=True, nullable=False),
    Column("note", String(32)),
    Column("flag", Boolean, nullable=False),
    Column("seen_at", UtcDateTime, nullable=False),
    Column("gone_at", UtcDateTime),
)
_C = _THINGS.c
_INSERT = PreparedStatement(insert(_THINGS))
_BY_NAME = PreparedStatement(select(_THINGS).where(_C.name == bindparam("p_name")))
_SEEN_AFTER = PreparedStatement(
    select(_THINGS).where(_C.seen_at > bindparam("p_after")).order_by(_C.id)
)
_COUNT_FLAGGED = PreparedStatement(
    select(func.count()).select_from(_THINGS).where(_C.flag.is_(True))
)
_MARK_GONE = PreparedStatement(
    update(_THINGS)
    .where(_C.name == bindparam("p_name"), _C.gone_at.is_(None))
    .values(gone_at=bindparam("p_at"), note=_C.name)
    .returning(*_THINGS.c)
)
_RENAME = PreparedStatement(
    update(_THINGS).where(_C.flag == bindparam("p_flag")).values(note=bindparam("p_note"))
)
T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Connection]:
    engine = create_engine(f"sqlite+pysqlite:///{tmp_path}/things.db")
    event.listen(engine, "connect", configure_sqlite_connection)
    _METADATA.create_all(engine)
    with engine.connect() as connection, connection.begin():
        yield connection
    engine.dispose()


def _thing(number: int, **changes: Any) -> dict[str, Any]:
    values = {
        "id": number,
        "name": f"thing-{number}",
        "note": None if number % 2 else f"note {number}",
        "flag": number % 3 == 0,
        "seen_at": T0 + timedelta(minutes=number),
        "gone_at": None,
    }
    return values | changes


def _by_core(db: Connection, statement: PreparedStatement, **values: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in db.execute(statement.statement, values)]


def _typed(rows: list[dict[str, Any]]) -> list[dict[str, tuple[type, Any]]]:
    """Rows with each value's type beside it: 1 == True, and a lost conversion would hide."""
    return [{name: (type(value), value) for name, value in row.items()} for row in rows]


def test_rows_and_counts_match_core_value_for_value(db: Connection) -> None:
    for number in range(1, 7):
        assert _INSERT.execute(db, _thing(number)).rowcount == 1

    after = T0 + timedelta(minutes=2)
    by_cursor = _SEEN_AFTER.execute(db, {"p_after": after}).rows
    assert _typed(by_cursor) == _typed(_by_core(db, _SEEN_AFTER, p_after=after))
    assert _typed(by_cursor) == _typed([_thing(number) for number in range(3, 7)])
    assert all(row["seen_at"].tzinfo is UTC for row in by_cursor)
    assert _BY_NAME.execute(db, {"p_name": "thing-4"}).first() == _thing(4)
    assert _BY_NAME.execute(db, {"p_name": "nobody"}).first() is None
    assert (
        _COUNT_FLAGGED.execute(db, {}).scalar()
        == 2
        == db.execute(_COUNT_FLAGGED.statement).scalar()
    )


def test_update_returning_gives_the_changed_row_once(db: Connection) -> None:
    _INSERT.execute(db, _thing(1))
    gone = T0 + timedelta(days=1)

    changed = _MARK_GONE.execute(db, {"p_name": "thing-1", "p_at": gone})
    assert _typed(changed.rows) == _typed([_thing(1, gone_at=gone, note="thing-1")])
    assert _MARK_GONE.execute(db, {"p_name": "thing-1", "p_at": gone}).first() is None
    assert _typed(_by_core(db, _BY_NAME, p_name="thing-1")) == _typed(changed.rows)


def test_rowcount_counts_the_rows_an_update_changed(db: Connection) -> None:
    for number in range(1, 7):
        _INSERT.execute(db, _thing(number))

    assert _RENAME.execute(db, {"p_flag": True, "p_note": "flagged"}).rowcount == 2
    assert _RENAME.execute(db, {"p_flag": None, "p_note": "none"}).rowcount == 0
    assert db.execute(_RENAME.statement, {"p_flag": False, "p_note": "x"}).rowcount == 4


def test_a_constraint_violation_raises_sqlalchemys_error_and_changes_nothing(
    db: Connection,
) -> None:
    _INSERT.execute(db, _thing(1))

    with pytest.raises(IntegrityError):
        _INSERT.execute(db, _thing(2, name="thing-1"))
    assert _SEEN_AFTER.execute(db, {"p_after": T0}).rows == [_thing(1)]


def test_a_value_its_type_refuses_fails_as_in_core(db: Connection) -> None:
    naive = _thing(1, seen_at=T0.replace(tzinfo=None))

    for run in (lambda: _INSERT.execute(db, naive), lambda: db.execute(_INSERT.statement, naive)):
        with pytest.raises(StatementError, match="naive") as refused:
            run()
        assert isinstance(refused.value.orig, ValueError)


def test_a_missing_table_fails_with_sqlalchemys_operational_error(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+pysqlite:///{tmp_path}/empty.db")
    with engine.connect() as empty, pytest.raises(OperationalError, match="no such table"):
        _BY_NAME.execute(empty, {"p_name": "thing-1"})
    engine.dispose()


@pytest.mark.parametrize(
    "statement",
    [
        select(_THINGS).where(_C.id == 5),
        select(_THINGS).where(_C.id.in_(bindparam("p_ids", expanding=True))),
        insert(
            Table(
                "defaulted",
                MetaData(),
                Column("id", Integer, primary_key=True),
                Column("flag", Boolean, default=False),
            )
        ),
    ],
    ids=["a literal value", "an expanding list", "a Python-side column default"],
)
def test_what_core_works_out_per_execution_is_refused_when_built(statement: Any) -> None:
    with pytest.raises(ValueError, match=r"named, single-valued parameter|column defaults"):
        PreparedStatement(statement)
