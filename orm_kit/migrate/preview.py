"""``migrate sql``: the SQL an ``up`` or ``down`` would run now, without running it on the database.

    for plan in preview_sql(db, Path("migrations"), down=True):
        print(plan.name, plan.statements)       # ['DROP INDEX "deployment_service_id_duration_seconds"', ...]
    preview_new_sql(peewee.SqliteDatabase(None), Path("migrations"))   # every migration, on no database of yours

The migrations already applied are replayed on a scratch database (:func:`orm_kit.migrate.scratch.scratch_database`),
then the planned ones run there while the scratch database records its statements. The live database is
only read (its history), so a preview takes no DDL lock on it, runs no backfill against it, and cannot
leave anything behind. SQLite table rebuilds appear as the statements peewee really issues. Reads (catalog
queries, SELECTs) and savepoints are left out; values are written in as literals, for a person to read.
With several apps (:mod:`orm_kit.migrate.apps`) the migrations come in the runner's order across apps,
each named ``app:name``. :func:`preview_new_sql` shows what a new database gets, from an empty schema, with no
database of the user's at all for SQLite; PostgreSQL's SQL is captured on a real server (the migrator asks
its catalog as it goes), so there the database given is only the server a scratch schema is made on.

On PostgreSQL each preview also says how the runner runs it: the ``SET LOCAL`` lock and statement
timeouts of its transaction (``settings``, the first attempt's), and the deferred steps it runs after
that transaction commits (``after_commit``: concurrent index builds, validations, batched backfills),
which the safe forms of :mod:`orm_kit.migrate.safe` produce for tables in use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import peewee

from orm_kit._sql import inline
from orm_kit.dialect import is_postgres, unwrap
from orm_kit.errors import MigrationError, MigrationRefusedError
from orm_kit.migrate.apps import AppMigrations
from orm_kit.migrate.history import HISTORY_TABLE
from orm_kit.migrate.lockwait import LockPolicy
from orm_kit.migrate.plan import Plan, empty, read
from orm_kit.migrate.scratch import replay, scratch_database

__all__ = ["MigrationSql", "preview_new_sql", "preview_sql", "render"]


@dataclass(frozen=True)
class MigrationSql:
    """The statements one migration's up() or down() runs, with values inlined for reading.

    ``statements`` run in its transaction (outside any, for ``atomic = False``), after the ``settings``
    the runner gives that transaction; ``after_commit`` run once it has committed.
    """

    name: str
    direction: str
    statements: list[str]
    after_commit: list[str] = field(default_factory=list)
    settings: list[str] = field(default_factory=list)
    atomic: bool = True


def preview_sql(db: peewee.Database, source: Path | Sequence[AppMigrations], target: str | None = None, *,
                down: bool = False, steps: int | None = None, allow_out_of_order: bool = False,
                history_table: str = HISTORY_TABLE, app: str | None = None,
                policy: LockPolicy | None = None) -> list[MigrationSql]:
    """The SQL ``up`` (or ``down``) would run now, captured on a scratch database; ``db`` is only read.

    ``source``: a folder, or several apps; ``target`` and ``app`` as :meth:`~orm_kit.migrate.Runner.up` /
    :meth:`~orm_kit.migrate.Runner.down` take them; ``policy``: the runner's, for the ``settings`` shown.
    """
    db = unwrap(db) or db
    if steps is not None and not down:
        raise MigrationError(f"steps={steps} only applies to the SQL of a down (--down --steps N); `up` takes a "
                             "target instead (orm-kit migrate sql 0003)")
    current = read(db, source, history_table=history_table, allow_out_of_order=allow_out_of_order)
    return _capture(db, current, target, down, steps, app, policy or LockPolicy())


def preview_new_sql(db: peewee.Database, source: Path | Sequence[AppMigrations], target: str | None = None, *,
                    app: str | None = None, policy: LockPolicy | None = None) -> list[MigrationSql]:
    """The SQL ``up`` runs on an *empty* database of ``db``'s kind: every migration, or what ``target`` needs.

    ``db`` says the dialect and, for PostgreSQL, the server the scratch schema is made on (inside a transaction
    that is rolled back); its tables and history are never read. For SQLite any ``SqliteDatabase`` will do,
    unopened: the migrations run on a temporary file.
    """
    db = unwrap(db) or db
    return _capture(db, empty(source), target, False, None, app, policy or LockPolicy())


def _capture(db: peewee.Database, current: Plan, target: str | None, down: bool, steps: int | None,
             app: str | None, policy: LockPolicy) -> list[MigrationSql]:
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
                writes = scratch.writes()
            finally:
                scratch.captured = None
            atomic = bool(getattr(f.load(), "atomic", True))
            out.append(MigrationSql(
                current.label(f), "down" if down else "up",
                [render(c.sql, c.params, scratch.param) for c in writes if not c.after_commit],
                [render(c.sql, c.params, scratch.param) for c in writes if c.after_commit],
                _settings(policy, atomic) if is_postgres(db) else [], atomic))
    return out


def _settings(policy: LockPolicy, atomic: bool) -> list[str]:
    first = policy.attempts()[0].lock_timeout
    if not atomic:  # no transaction: session settings, no statement timeout (such migrations run long on purpose)
        return [f"SET lock_timeout = '{first * 1000:g}ms'", "SET statement_timeout = 0"]
    return [f"SET LOCAL lock_timeout = '{first * 1000:g}ms'",
            f"SET LOCAL statement_timeout = '{policy.statement_timeout * 1000:g}ms'"]


def render(sql: str, params: Sequence[Any], placeholder: str) -> str:
    """``sql`` with its parameters written in as literals, for a person to read (not to execute)."""
    return inline(sql, params, placeholder)
