"""Raw SQL for the toolkit, typed in one place (peewee's stubs leave execute_sql untyped), and identifier quoting."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import peewee

__all__ = ["execute", "fetchall", "quote", "scalar"]


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
