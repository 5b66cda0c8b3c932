"""``migrate sql``: the SQL an ``up`` or ``down`` would run now, without running it on the database.

    for plan in preview_sql(db, Path("migrations"), down=True):
        print(plan.name, plan.statements)       # ['DROP INDEX "deployment_service_id_duration_seconds"', ...]

The migrations already applied are replayed on a scratch database (:func:`orm_kit.migrate.scratch.scratch_database`),
then the planned ones run there while the scratch database records its statements. The live database is
only read (its history), so a preview takes no DDL lock on it, runs no backfill against it, and cannot
leave anything behind. SQLite table rebuilds appear as the statements peewee really issues. Reads (catalog
queries, SELECTs) and savepoints are left out; values are written in as literals, for a person to read.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peewee

from orm_kit.dialect import unwrap
from orm_kit.errors import MigrationRefusedError
from orm_kit.migrate.apps import AppMigrations
from orm_kit.migrate.history import HISTORY_TABLE
from orm_kit.migrate.plan import read
from orm_kit.migrate.scratch import replay, scratch_database

__all__ = ["MigrationSql", "preview_sql", "render"]


@dataclass(frozen=True)
class MigrationSql:
    """The statements one migration's up() or down() runs, with values inlined for reading."""

    name: str
    direction: str
    statements: list[str]


def preview_sql(db: peewee.Database, source: Path | Sequence[AppMigrations], target: str | None = None, *,
                down: bool = False, steps: int | None = None, allow_out_of_order: bool = False,
                history_table: str = HISTORY_TABLE, app: str | None = None) -> list[MigrationSql]:
    """The SQL ``up`` (or ``down``) would run now, captured on a scratch database; ``db`` is only read.

    ``source``: a folder, or several apps; ``target`` and ``app`` as :meth:`~orm_kit.migrate.Runner.up` /
    :meth:`~orm_kit.migrate.Runner.down` take them.
    """
    db = unwrap(db) or db
    current = read(db, source, history_table=history_table, allow_out_of_order=allow_out_of_order)
    if current.status.problems:
        raise MigrationRefusedError("the runner would refuse to migrate: " + "; ".join(current.status.problems))
    plan = current.down(steps, target, app) if down else current.up(target, app)
    out = []
    with scratch_database(db) as scratch:
        replay(scratch, current.applied)
        for f in plan:
            scratch.captured = []
            try:
                replay(scratch, [f], "down" if down else "up")
                statements = [render(sql, params, scratch.param) for sql, params in scratch.writes()]
            finally:
                scratch.captured = None
            out.append(MigrationSql(current.label(f), "down" if down else "up", statements))
    return out


def render(sql: str, params: Sequence[Any], placeholder: str) -> str:
    """``sql`` with its parameters written in as literals, for a person to read (not to execute)."""
    parts = sql.split(placeholder)
    if len(parts) != len(params) + 1:
        return f"{sql} -- params: {list(params)!r}" if params else sql
    out = [parts[0]]
    for value, rest in zip(params, parts[1:], strict=True):
        out.append(_literal(value))
        out.append(rest)
    return "".join(out)


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float | decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date | uuid.UUID):
        value = str(value)
    return "'" + str(value).replace("'", "''") + "'"

