"""The migrator handed to ``up(migrator, db)`` / ``down(migrator, db)``, and the checks around one step.

    migrator = migrator_for(db)                 # playhouse.migrate's SchemaMigrator for this database
    migrator.migrate(migrator.add_not_null("team", "email"))
    result = run_step(db, module, "up")         # a loaded migration's up(), then the foreign-key check
    result.deferred                             # what must run after its transaction commits (PostgreSQL)

On PostgreSQL this is :class:`~orm_kit.migrate.safe.SafePostgresqlMigrator`, peewee's ``PostgresqlMigrator``
with safe forms for tables in use: the slow halves of its operations (concurrent index builds, constraint
validation, batched backfills) are handed back as *deferred steps* for the runner to run after the
migration's transaction committed. On SQLite, the local database, it is :class:`CheckedSqliteMigrator`, a
``SqliteMigrator`` whose table rebuilds (SQLite's ALTER cannot change a column's type, nullability or
default in place, so peewee copies the table) refuse to run with foreign keys on, and prove after the
copy that the table and the tables referencing it kept every row, and the table every index.
Triggers, which peewee's rebuild drops with the old table, are recreated. ``PRAGMA foreign_key_check``
runs after every step. SQLite has a single writer and no per-table lock queue, so nothing is deferred
there: every operation runs at once, inside the migration's transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import peewee
from playhouse.migrate import SchemaMigrator, SqliteMigrator, operation

from orm_kit._shown import shown
from orm_kit._sql import execute, quote
from orm_kit.dialect import is_postgres, is_sqlite
from orm_kit.errors import MigrationError, first_line
from orm_kit.fields import with_database
from orm_kit.migrate.safe import SafePostgresqlMigrator
from orm_kit.migrate.steps import Step, render_assignments

__all__ = ["CheckedSqliteMigrator", "StepResult", "foreign_key_violations", "migrator_for", "run_step"]

_raw_update_column: Callable[..., Any] = SqliteMigrator._update_column.__wrapped__


class CheckedSqliteMigrator(SqliteMigrator):
    """peewee's SqliteMigrator, with table rebuilds that cannot lose child rows, rows or indexes."""

    def add_column(self, table: str, column_name: str, field: Any, *args: Any, **kwargs: Any) -> Any:
        """peewee's ``add_column``; a field of no model writes its default for SQLite (a callable one once)."""
        return super().add_column(table, column_name, with_database(field, self.database), *args, **kwargs)

    @operation  # type: ignore[untyped-decorator]  # playhouse untyped
    def backfill(self, table: str, values: Mapping[str, Any], where: str | None = None, batch_size: int = 10_000,
                 pause: float = 0.0) -> Any:
        """``UPDATE table SET values [WHERE where]`` at once (batches only matter where others are waiting)."""
        assignments, params = render_assignments(self.database, values)
        return peewee.SQL(f"UPDATE {quote(table)} SET {assignments}" + (f" WHERE {where}" if where else ""), params)

    @operation  # type: ignore[untyped-decorator]  # playhouse untyped
    def _update_column(self, table: str, column_to_update: str, fn: Callable[[str, str], str | None]) -> Any:
        if execute(self.database, "PRAGMA foreign_keys").fetchone()[0]:
            raise MigrationError(
                f"rebuilding table {table!r} with foreign keys ON would cascade-delete its child rows "
                "(run the migration through `orm-kit migrate`, which switches them off for the rebuild)"
            )
        # The table and every table whose foreign keys point at it: a rebuild must not change a count.
        family = [table, *_children(self.database, table)]
        rows = {name: _count(self.database, name) for name in family}
        indexes = _user_indexes(self.database, table)
        triggers = dict(execute(self.database, "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND "
                                               "tbl_name = ?", (table,)).fetchall())
        queries = _raw_update_column(self, table, column_to_update, fn)
        return [*queries, self._check_rebuild(table, column_to_update, rows, indexes, triggers)]

    @operation  # type: ignore[untyped-decorator]  # playhouse untyped
    def _check_rebuild(self, table: str, column: str, rows: dict[str, int], indexes: dict[str, list[str]],
                       triggers: dict[str, str]) -> None:
        # peewee recreates the indexes of a rebuilt table but not its triggers (DROP TABLE takes them along).
        for name, sql in triggers.items():
            if not execute(self.database, "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?",
                           (name,)).fetchone():
                try:
                    execute(self.database, sql)
                except peewee.DatabaseError as exc:
                    raise MigrationError(
                        f"rebuilding table {table!r} dropped trigger {name!r}, which cannot be recreated on the new "
                        f"table ({first_line(exc)}): drop the trigger before the rebuild, create the new one after it"
                    ) from None
        for name, count in rows.items():
            after = _count(self.database, name)
            if after != count:
                raise MigrationError(
                    f"rebuilding table {table!r} changed the row count of {name!r} from {count} to {after} (run "
                    "rebuilds through `orm-kit migrate`, which keeps foreign keys off for them; delete rows in a "
                    "separate, explicit step if that is the intent)")
        kept = _user_indexes(self.database, table)
        # An index on a column the rebuild drops goes with the column; any other loss is a bug.
        lost = {name for name, columns in indexes.items() if name not in kept and column not in columns}
        if lost:
            raise MigrationError(f"rebuilding table {table!r} lost indexes {sorted(lost)} (recreate them in the "
                                 "migration with migrator.add_index after the rebuild)")


def migrator_for(db: peewee.Database) -> SchemaMigrator:
    """playhouse.migrate's SchemaMigrator for ``db``: the safe one on PostgreSQL, the checked one on SQLite."""
    if is_sqlite(db):
        return CheckedSqliteMigrator(db)  # type: ignore[no-untyped-call]  # peewee untyped
    if is_postgres(db):
        return SafePostgresqlMigrator(db)
    migrator: SchemaMigrator = SchemaMigrator.from_database(db)  # type: ignore[no-untyped-call]  # peewee untyped
    return migrator


@dataclass(frozen=True)
class StepResult:
    """What running one migration's up() or down() took, and the steps left for after its transaction."""

    duration_ms: int
    deferred: list[Step] = field(default_factory=list)


def run_step(db: peewee.Database, module: ModuleType, direction: str) -> StepResult:
    """Run a loaded migration's up() or down(), then the foreign-key check; what it took and left to run."""
    started = time.perf_counter()
    migrator = migrator_for(db)
    try:
        getattr(module, direction)(migrator, db)
    except SystemExit as exc:
        # A migration is a function the runner calls, not a program: sys.exit() in it would end the runner
        # with exit code 0 and its transaction rolled back, so it fails like any other error instead.
        raise MigrationError(f"{direction}() called sys.exit({shown(exc.code)}); a migration returns when it is "
                             "done and raises an exception when it cannot go on") from None
    broken = foreign_key_violations(db)
    if broken:
        raise MigrationError(
            f"foreign keys point nowhere afterwards: {', '.join(broken)} (delete or re-point those rows in the "
            "migration, or add the parent rows first)")
    return StepResult(round((time.perf_counter() - started) * 1000), list(getattr(migrator, "deferred", [])))


def foreign_key_violations(db: peewee.Database, limit: int = 5) -> list[str]:
    """Rows whose foreign key points nowhere (SQLite's ``PRAGMA foreign_key_check``); empty elsewhere."""
    if not is_sqlite(db):
        return []  # PostgreSQL enforces foreign keys during the migration itself.
    rows = execute(db, "PRAGMA foreign_key_check").fetchall()
    return [f"{table} rowid {rowid} -> {parent}" for table, rowid, parent, _ in rows[:limit]]


def _count(db: peewee.Database, table: str) -> int:
    return int(execute(db, f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])


def _children(db: peewee.Database, table: str) -> list[str]:
    return sorted({t for t in db.get_tables() if not t.startswith("sqlite_") and t != table
                   and any(fk.dest_table == table for fk in db.get_foreign_keys(t))})


def _user_indexes(db: peewee.Database, table: str) -> dict[str, list[str]]:
    return {index.name: list(index.columns) for index in db.get_indexes(table) if index.sql}
