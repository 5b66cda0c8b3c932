"""Scratch databases to build schemas in, and replaying migrations or realizing models there.

    with scratch_database(db) as scratch:          # same backend as db, thrown away afterwards
        realize_models(scratch, MODELS)            # what the models would create (peewee's own DDL)
        replay(scratch, files)                     # or: what the migrations create
    models_facts(db, MODELS)                       # the models' schema as snapshot facts

A scratch database is a temporary SQLite file, or on PostgreSQL a schema created inside a transaction
that is always rolled back (with ``search_path`` pointing only at it): nothing is ever committed, other
sessions never see it, and only the CREATE privilege on the database is needed. :func:`scratch_copy`
is a throwaway copy of a SQLite file, rows included (``verify`` runs on one).

Scratch databases can record the statements they run (``captured``), which is how ``migrate sql``
previews a migration and ``migrate lint`` judges it without touching the live database. A migration's
deferred steps (:mod:`~orm_kit.migrate.steps`: concurrent index builds, validations, batched backfills)
run inline there, right after its up() or down(), and are captured marked ``after_commit``: on the live
database the runner runs them once the migration's transaction has committed.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peewee

from orm_kit._sql import execute, quote
from orm_kit.dialect import is_postgres, is_sqlite
from orm_kit.errors import MigrationError, MigrationFailedError, first_line
from orm_kit.migrate.apps import label
from orm_kit.migrate.files import DEFAULT_APP, MigrationFile
from orm_kit.migrate.lock import foreign_keys_off
from orm_kit.migrate.migrator import run_step
from orm_kit.migrate.snapshot import Facts, snapshot
from orm_kit.migrate.steps import Backfill, Step

__all__ = [
    "Captured",
    "ScratchPostgres",
    "ScratchSqlite",
    "models_facts",
    "realize_models",
    "replay",
    "run_deferred_inline",
    "scratch_copy",
    "scratch_database",
]

_CONCURRENTLY = re.compile(r"\bCONCURRENTLY\b", re.I)
_READS = ("SELECT", "PRAGMA", "SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT", "SET LOCAL")


@dataclass(frozen=True)
class Captured:
    """One statement a scratch database ran: its SQL, parameters, and whether it was a deferred step's."""

    sql: str
    params: tuple[Any, ...]
    after_commit: bool = False


class _Capturing:
    """A scratch database that can record the statements it runs (for ``migrate sql`` and ``migrate lint``)."""

    captured: list[Captured] | None = None
    in_deferred = False

    def execute_sql(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        if self.captured is not None:
            self.captured.append(Captured(sql, tuple(params or ()), self.in_deferred))
        return super().execute_sql(sql, params)  # type: ignore[misc]  # a mixin: mypy cannot see the peewee base

    def writes(self) -> list[Captured]:
        """The captured statements that change something (catalog reads and savepoints left out)."""
        return [c for c in self.captured or [] if not c.sql.lstrip().upper().startswith(_READS)]


class ScratchSqlite(_Capturing, peewee.SqliteDatabase):
    """A throwaway SQLite database."""


class ScratchPostgres(_Capturing, peewee.PostgresqlDatabase):
    """A throwaway schema on the PostgreSQL server, inside a transaction that is rolled back."""

    def execute_sql(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        # CONCURRENTLY cannot run inside a transaction, and the scratch schema lives in one; on an empty
        # private schema a plain build makes the same index. The capture keeps the statement as written.
        if _CONCURRENTLY.search(sql):
            if self.captured is not None:
                self.captured.append(Captured(sql, tuple(params or ()), self.in_deferred))
            return peewee.PostgresqlDatabase.execute_sql(self, _CONCURRENTLY.sub("", sql), params)  # type: ignore[no-untyped-call]  # peewee untyped
        return super().execute_sql(sql, params)


@contextmanager
def scratch_database(db: peewee.Database) -> Iterator[ScratchSqlite | ScratchPostgres]:
    """An empty database of ``db``'s kind, discarded on exit (``db`` itself is never written to)."""
    if is_sqlite(db):
        with tempfile.TemporaryDirectory(prefix="orm-kit-scratch-") as folder:
            lite = ScratchSqlite(str(Path(folder) / "scratch.db"),  # thrown away: no durability needed
                                 pragmas={"foreign_keys": 1, "synchronous": 0, "journal_mode": "memory"})
            lite.connect()
            try:
                yield lite
            finally:
                lite.close()
        return
    if not is_postgres(db):
        raise MigrationError(f"no scratch database for {type(db).__name__}; orm-kit supports SQLite and PostgreSQL")
    pg = ScratchPostgres(db.database, prefer_psycopg3=True, **db.connect_params)
    pg.connect()
    name = f"orm_kit_scratch_{uuid.uuid4().hex[:12]}"
    try:
        with pg.atomic() as scratch_transaction:
            try:
                execute(pg, f"CREATE SCHEMA {quote(name)}")
            except peewee.DatabaseError as exc:
                reason = first_line(exc, typed=False)
                raise MigrationError(
                    f"cannot create a scratch schema to replay migrations in: {reason} (check, verify, sql and "
                    "make need the CREATE privilege on the database; nothing is ever committed there)") from None
            # Only the scratch schema: an unqualified name must never reach a live table.
            execute(pg, f"SET LOCAL search_path TO {quote(name)}")
            yield pg
            scratch_transaction.rollback()  # never committed: the schema and all in it vanish
    finally:
        pg.close()


@contextmanager
def scratch_copy(db: peewee.Database) -> Iterator[ScratchSqlite]:
    """A throwaway copy of a SQLite database file, schema and rows (sqlite3's online backup API)."""
    if not is_sqlite(db) or str(db.database or ":memory:") == ":memory:":
        raise MigrationError("only a SQLite database file can be copied to a scratch database")
    with tempfile.TemporaryDirectory(prefix="orm-kit-copy-") as folder:
        copy = ScratchSqlite(str(Path(folder) / "copy.db"), pragmas={"foreign_keys": 1, "synchronous": 0})
        copy.connect()
        try:
            # A consistent snapshot even while others write; the live database is only read.
            db.connection().backup(copy.connection())  # type: ignore[no-untyped-call]  # peewee untyped
            yield copy
        finally:
            copy.close()


def realize_models(scratch: peewee.Database, models: Sequence[type[peewee.Model]]) -> None:
    """Create ``models``' tables, indexes and constraints on ``scratch`` with peewee's own DDL (no rebinding)."""
    for model in _by_table_dependencies(models):
        peewee.SchemaManager(model, scratch).create_all(safe=False)


def _by_table_dependencies(models: Sequence[type[peewee.Model]]) -> list[type[peewee.Model]]:
    # By table name, not class: a model may point at a different class mapped to the same table.
    by_table = {m._meta.table_name: m for m in models}
    ordered: list[type[peewee.Model]] = []
    seen: set[str] = set()

    def visit(table: str) -> None:
        if table in seen or table not in by_table:
            return
        seen.add(table)
        for fk in by_table[table]._meta.refs:
            visit(fk.rel_model._meta.table_name)
        ordered.append(by_table[table])

    for model in models:
        visit(model._meta.table_name)
    return ordered


def replay(scratch: peewee.Database, files: Iterable[MigrationFile], direction: str = "up") -> None:
    """Run migrations on a scratch database, each in its own transaction (deferred steps too), as the runner does."""
    for f in files:
        module = f.load_for(direction)
        try:
            with foreign_keys_off(scratch), scratch.atomic():
                run_deferred_inline(scratch, run_step(scratch, module, direction).deferred)
        except Exception as exc:  # noqa: BLE001 - reported with the migration's name
            raise MigrationFailedError(
                f"{label(f.app, f.name, f.app != DEFAULT_APP)} {direction}() fails on a scratch database: "
                f"{first_line(exc)}") from None


def run_deferred_inline(scratch: peewee.Database, steps: Sequence[Step]) -> None:
    """A migration's deferred steps, inside the scratch transaction (captured as running after the commit)."""
    for step in steps:
        if isinstance(scratch, _Capturing):
            scratch.in_deferred = True
            first = len(scratch.captured) + 1 if scratch.captured is not None else 0
        try:
            step.run_inline(scratch)
        finally:
            if isinstance(scratch, _Capturing):
                scratch.in_deferred = False
                if isinstance(step, Backfill) and scratch.captured is not None:
                    del scratch.captured[first:]  # one batch shows the statement; the rest only repeat it


def models_facts(db: peewee.Database, models: Sequence[type[peewee.Model]]) -> Facts:
    """The schema ``models`` would create, on a scratch database of ``db``'s kind."""
    with scratch_database(db) as scratch:
        realize_models(scratch, models)
        return snapshot(scratch)
