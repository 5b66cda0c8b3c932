"""Raw SQL for the toolkit, typed in one place (peewee's stubs leave execute_sql untyped), and identifier quoting."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import peewee

__all__ = ["connection", "cursor", "driver_errors", "execute", "fetchall", "quote", "scalar"]

#: peewee's context manager that re-raises a driver error as peewee's class (IntegrityError, ...), for work
#: done on the driver's own cursor (COPY, executemany).
driver_errors: Any = getattr(peewee, "__exception_wrapper__")  # noqa: B009 - missing from the stubs


def execute(db: peewee.Database, sql: str, params: Sequence[Any] | None = None) -> Any:
    """Run one statement; return peewee's cursor."""
    return db.execute_sql(sql, params)  # type: ignore[no-untyped-call]


def fetchall(db: peewee.Database, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    """Every row of a query."""
    return list(execute(db, sql, params).fetchall())


def scalar(db: peewee.Database, sql: str, params: Sequence[Any] | None = None) -> Any:
    """The first column of the first row (None when there is no row)."""
    row = execute(db, sql, params).fetchone()
    return None if row is None else row[0]


def quote(identifier: str) -> str:
    """``identifier`` as a quoted SQL name (both supported databases quote with double quotes)."""
    return '"' + identifier.replace('"', '""') + '"'


def cursor(db: peewee.Database) -> Any:
    """A new cursor of the driver's connection (opened if needed); close it when done."""
    return db.cursor()  # type: ignore[no-untyped-call]


def connection(db: peewee.Database) -> Any:
    """The driver's connection (opened if needed)."""
    return db.connection()  # type: ignore[no-untyped-call]
