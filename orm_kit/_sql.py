"""Raw SQL for the toolkit, typed in one place (peewee's stubs leave execute_sql untyped), identifier quoting,
and values written as SQL literals (for DDL, which takes no bound parameters, and for people to read)."""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Sequence
from typing import Any

import peewee

__all__ = ["closing_paren", "connection", "cursor", "driver_errors", "execute", "fetchall", "inline", "literal",
           "quote", "scalar"]

#: peewee's context manager that re-raises a driver error as peewee's class (IntegrityError, ...), for work
#: done on the driver's own cursor (COPY, executemany).
driver_errors: Any = getattr(peewee, "__exception_wrapper__")  # noqa: B009 - missing from the stubs


def execute(db: peewee.Database, sql: str, params: Sequence[Any] | None = None) -> Any:
    """Run one statement; return peewee's cursor."""
    return db.execute_sql(sql, params)  # type: ignore[no-untyped-call]  # peewee untyped


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


def closing_paren(sql: str, start: int) -> int | None:
    """Where the parenthesis opening at ``start`` closes in ``sql`` (string and quoted names skipped), or None."""
    depth = 0
    quoting = ""
    for index in range(start, len(sql)):
        char = sql[index]
        if quoting:
            if char == quoting:
                quoting = ""
        elif char in "'\"`":
            quoting = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
    return None


def cursor(db: peewee.Database) -> Any:
    """A new cursor of the driver's connection (opened if needed); close it when done."""
    return db.cursor()  # type: ignore[no-untyped-call]  # peewee untyped


def connection(db: peewee.Database) -> Any:
    """The driver's connection (opened if needed)."""
    return db.connection()  # type: ignore[no-untyped-call]  # peewee untyped


def literal(value: Any) -> str:
    """``value`` as an SQL literal (``'it''s'``, ``TRUE``, ``42``, ``NULL``; bytes in PostgreSQL's hex form)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float | decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return "'\\x" + value.hex() + "'"
    if isinstance(value, datetime.datetime | datetime.date | datetime.time | uuid.UUID):
        value = str(value)
    return "'" + str(value).replace("'", "''") + "'"


def inline(sql: str, params: Sequence[Any], placeholder: str = "%s") -> str:
    """``sql`` with its parameters written in as literals, for a person to read (not to execute)."""
    parts = sql.split(placeholder)
    if len(parts) != len(params) + 1:
        return f"{sql} -- params: {list(params)!r}" if params else sql
    out = [parts[0]]
    for value, rest in zip(params, parts[1:], strict=True):
        out.append(literal(value))
        out.append(rest)
    return "".join(out)
