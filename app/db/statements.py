"""Statements the stores build once, at import, and run on a unit of work's connection.

On SQLite (the runner's own threads, see app.db.units) a statement is compiled once per
dialect and then run straight on the DBAPI cursor, its parameters and columns converted by
SQLAlchemy's own type processors. Core's work around each execution (the statement's cache
key, an execution context, a result object) took a refresh's rotation from 18 to 28 µs and a
session read from 11.5 to 18, on a thread that holds the interpreter lock the event loop is
waiting for; refresh throughput rose by about 5 % without it. On PostgreSQL, which asyncpg
drives from the event loop, statements run through Core.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.dml import Insert, UpdateBase
from sqlalchemy.sql.selectable import Select

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class Outcome:
    rows: list[dict[str, Any]]
    rowcount: int
    """Rows that an INSERT, UPDATE or DELETE without RETURNING changed."""

    def first(self) -> dict[str, Any] | None:
        return self.rows[0] if self.rows else None

    def scalar(self) -> Any:
        return next(iter(self.rows[0].values()))


@dataclass(frozen=True, slots=True)
class _CursorPlan:
    dialect: Dialect
    sql: str
    parameters: tuple[tuple[str, Processor], ...]
    columns: tuple[Processor, ...]


class PreparedStatement:
    """A Core statement whose every value is a named `bindparam`, run with `execute`."""

    def __init__(self, statement: Select[Any] | UpdateBase) -> None:
        # What Core works out per execution and a compiled-once plan cannot: literal values,
        # lists expanded into IN, and column defaults filled in for missing parameters.
        binds = statement.compile().binds.values()
        if any(not bind.required or bind.expanding for bind in binds):
            raise ValueError("every value must be a named, single-valued parameter")
        if isinstance(statement, Insert) and any(
            column.default is not None or column.onupdate is not None
            for column in statement.table.columns
        ):
            raise ValueError("an INSERT must not rely on Python-side column defaults")
        self.statement = statement
        self._plan: _CursorPlan | None = None

    def execute(self, db: Connection, parameters: Mapping[str, Any]) -> Outcome:
        if db.dialect.name != "sqlite" or db.dialect.driver != "pysqlite":
            result = db.execute(self.statement, parameters)
            if result.returns_rows:
                return Outcome([dict(row._mapping) for row in result], -1)
            return Outcome([], result.rowcount)
        plan = self._plan_for(db.dialect)
        driver = db.connection.driver_connection
        assert driver is not None, "a unit of work's connection is checked out"
        try:
            values = [
                process(parameters[name]) if process else parameters[name]
                for name, process in plan.parameters
            ]
            cursor = driver.execute(plan.sql, values)
            fetched = cursor.fetchall() if cursor.description else None
        except Exception as error:
            # Wrapped as Core wraps it (a driver's error in its SQLAlchemy class, any other in
            # a StatementError): the stores and the error handlers know SQLAlchemy's errors.
            raise exc.DBAPIError.instance(
                plan.sql, dict(parameters), error, db.dialect.loaded_dbapi.Error, dialect=db.dialect
            ) from error
        if fetched is None:
            return Outcome([], cursor.rowcount)
        names = [column[0] for column in cursor.description]
        processors = plan.columns
        rows = [
            {
                name: process(value) if process else value
                for name, process, value in zip(names, processors, row, strict=True)
            }
            for row in fetched
        ]
        return Outcome(rows, -1)

    def _plan_for(self, dialect: Dialect) -> _CursorPlan:
        plan = self._plan
        if plan is None or plan.dialect is not dialect:
            compiled = self.statement.compile(dialect=dialect)
            plan = _CursorPlan(
                dialect=dialect,
                sql=compiled.string,
                parameters=tuple(
                    (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
                    for name in compiled.positiontup or ()
                ),
                columns=tuple(
                    column.type.dialect_impl(dialect).result_processor(dialect, None)
                    for column in self.statement.exported_columns
                ),
            )
            self._plan = plan
        return plan
