"""The history table: which migrations a database has, recorded through a peewee model bound to it.

    history = History(db)                        # schema_migration, peewee's own table name
    history.ensure(files)                        # create it, or adopt one written by peewee's runner
    history.record(files[0], APPLIED, 12)        # INSERT, inside the caller's transaction
    [row.name for row in history.read()]         # in the order they were written

The table is peewee's (``playhouse.migrations``: ``id``, ``name`` unique, ``applied``), extended with
``checksum`` (sha256 of the file), ``duration_ms``, ``outcome`` and ``app`` (which app's migration the row
records; apps number their files independently, so a row is unique per app and name). A table written
by peewee's runner (or by an earlier orm-kit) is adopted in place: the columns are added, ``app`` with
the database default ``'platform'`` (:data:`~orm_kit.migrate.files.DEFAULT_APP`: the rows written before
apps existed are the platform's), peewee's unique index on ``name`` becomes one on ``(app, name)`` (under
the same index name, so that peewee's runner does not add its own back), and
rows without a checksum take their file's current checksum. peewee's runner still reads the table
orm-kit writes, since its two columns keep their meaning, and a row it inserts gets the default app;
it sees every app's rows by name alone, so run it only where the platform is the only app.

``outcome`` is one of ``applied``, ``baseline`` (recorded by ``baseline`` without running), and the
states of an ``atomic = False`` run in progress or gone wrong: ``running``, ``reverting``, ``failed``,
``revert_failed``. A row peewee wrote has none, which counts as ``applied``.

Every write names the outcome it expects to replace and fails with :class:`MigrationError` when the row
is no longer in it (changed by another process, such as a ``repair``, while a runner worked), rather
than report a migration applied or reverted that the history no longer shows.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import peewee
from playhouse.migrate import migrate

from orm_kit._sql import execute, quote
from orm_kit.dialect import is_postgres
from orm_kit.errors import MigrationError
from orm_kit.migrate.files import DEFAULT_APP, MigrationFile
from orm_kit.migrate.migrator import migrator_for

__all__ = [
    "APPLIED",
    "BASELINE",
    "FAILED",
    "HISTORY_TABLE",
    "REVERTING",
    "REVERT_FAILED",
    "RUNNING",
    "UNFINISHED",
    "History",
    "HistoryRow",
    "format_utc",
]

HISTORY_TABLE = "schema_migration"
APPLIED, BASELINE, FAILED, RUNNING, REVERTING, REVERT_FAILED = (
    "applied", "baseline", "failed", "running", "reverting", "revert_failed")
UNFINISHED = (FAILED, RUNNING, REVERTING, REVERT_FAILED)
_ADDED_COLUMNS: dict[str, Callable[[], peewee.Field]] = {
    "checksum": lambda: peewee.CharField(max_length=64, null=True),
    "duration_ms": lambda: peewee.IntegerField(null=True),
    "outcome": lambda: peewee.CharField(max_length=16, null=True),
}
_APP_DEFAULT = f"DEFAULT '{DEFAULT_APP}'"


@dataclass(frozen=True)
class HistoryRow:
    """One row of the history table."""

    id: int
    name: str
    applied_at: datetime.datetime | None
    checksum: str | None
    duration_ms: int | None
    outcome: str | None
    app: str = DEFAULT_APP


def format_utc(moment: datetime.datetime) -> str:
    """``2026-11-26 06:23:52 UTC``: how history times are shown."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _utcnow() -> datetime.datetime:
    # Naive UTC: peewee's history column is a plain DateTimeField (TIMESTAMP on PostgreSQL).
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def _as_utc(value: Any) -> datetime.datetime | None:
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value.astimezone(datetime.UTC)
    return None


class History:
    """The history table ``table`` of ``db``, as a model bound to that database only (no global binding)."""

    def __init__(self, db: peewee.Database, table: str = HISTORY_TABLE) -> None:
        class Record(peewee.Model):
            # peewee's runner declares name and applied; orm-kit adds the rest (nullable, for adoption).
            id = peewee.AutoField()
            name = peewee.CharField(max_length=255)
            applied = peewee.DateTimeField()
            checksum = peewee.CharField(max_length=64, null=True)
            duration_ms = peewee.IntegerField(null=True)
            outcome = peewee.CharField(max_length=16, null=True)
            # A database default, so that a row peewee's runner inserts (it knows no app) is the platform's.
            app = peewee.CharField(max_length=64, default=DEFAULT_APP, constraints=[peewee.SQL(_APP_DEFAULT)])

            class Meta:
                database = db
                table_name = table

        # Named as peewee's runner names its unique index on name alone: its create_table(safe=True), run
        # on every `up`, then finds the name taken and leaves the key (app, name) be instead of re-adding a
        # key on name that two apps' 0001_initial would break.
        Record.add_index(Record.app, Record.name, unique=True, name=f"{table}_name")
        self.db = db
        self.table = table
        self.model = Record

    def exists(self) -> bool:
        """Whether the table is there."""
        return self.table in self.db.get_tables()

    def ensure(self, files: Iterable[MigrationFile]) -> None:
        """Create the table, or adopt one written by peewee's runner (add the columns, checksum its rows)."""
        if not self.exists():
            self.model.create_table(safe=False)
            return
        columns = self._columns()
        added = [name for name in _ADDED_COLUMNS if name not in columns]
        if added:
            migrator = migrator_for(self.db)
            # Fresh, nullable copies of the model's fields: adding them is a plain ALTER on both databases.
            migrate(*(migrator.add_column(self.table, name, _ADDED_COLUMNS[name]())  # type: ignore[no-untyped-call]  # peewee untyped
                      for name in added))
        if "app" not in columns:
            self._adopt_app()
        sums = {(f.app, f.name): f.checksum for f in files}
        record = self.model
        for row in self.read():
            if row.checksum is None and (row.app, row.name) in sums:
                record.update(checksum=sums[(row.app, row.name)],
                              outcome=peewee.fn.COALESCE(record.outcome, APPLIED)).where(record.id == row.id).execute()

    def _adopt_app(self) -> None:
        """Add ``app`` (existing rows are the platform's) and make the key (app, name) instead of name alone."""
        table = quote(self.table)
        # NOT NULL with a constant default: one catalog change on both databases, no rewrite, no rebuild.
        execute(self.db, f"ALTER TABLE {table} ADD COLUMN {quote('app')} VARCHAR(64) NOT NULL {_APP_DEFAULT}")
        for index in self.db.get_indexes(self.table):
            if index.unique and list(index.columns) == ["name"]:  # peewee's, whatever it is called
                if is_postgres(self.db):  # a UNIQUE constraint owns its index; a plain unique index has none
                    execute(self.db, f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {quote(index.name)}")
                execute(self.db, f"DROP INDEX IF EXISTS {quote(index.name)}")
        peewee.SchemaManager(self.model).create_indexes(safe=True)

    def _columns(self) -> set[str]:
        return {c.name for c in self.db.get_columns(self.table)}

    def read(self) -> list[HistoryRow]:
        """The rows in the order they were written (empty when there is no table)."""
        if not self.exists():
            return []
        columns = self._columns()
        record = self.model
        present = [f for f in record._meta.sorted_fields if f.column_name in columns]
        rows = []
        found: dict[str, Any]
        for found in record.select(*present).order_by(record.id).dicts():  # type: ignore[assignment]  # stubs: rows as models
            rows.append(HistoryRow(int(found["id"]), str(found["name"]), _as_utc(found.get("applied")),
                                   found.get("checksum"), found.get("duration_ms"), found.get("outcome"),
                                   str(found.get("app") or DEFAULT_APP)))
        return rows

    def record(self, f: MigrationFile, outcome: str, duration_ms: int | None) -> None:
        """A new row for ``f`` (inside the caller's transaction)."""
        self.model.insert(name=f.name, app=f.app, applied=_utcnow(), checksum=f.checksum, duration_ms=duration_ms,
                          outcome=outcome).execute()

    def set_outcome(self, name: str, outcome: str, duration_ms: int | None = None, *,
                    expected: Sequence[str], app: str = DEFAULT_APP) -> None:
        """Move ``app``'s ``name`` row from one of the ``expected`` outcomes to ``outcome`` (a duration, if given)."""
        record = self.model
        changes: dict[Any, Any] = {record.outcome: outcome}
        if duration_ms is not None:
            changes[record.duration_ms] = duration_ms
        count = record.update(changes).where(self._is(app, name), self._outcome_in(expected)).execute()
        self._exactly_one(count, name, expected)

    def forget(self, name: str, *, expected: Sequence[str] = (APPLIED, BASELINE), app: str = DEFAULT_APP) -> None:
        """Delete ``app``'s ``name`` row, which must be in one of the ``expected`` outcomes."""
        record = self.model
        count = record.delete().where(self._is(app, name), self._outcome_in(expected)).execute()
        self._exactly_one(count, name, expected)

    def _is(self, app: str, name: str) -> peewee.Expression:
        record = self.model
        return (record.app == app) & (record.name == name)

    def set_checksum(self, row: HistoryRow, checksum: str) -> None:
        """Record ``checksum`` as ``row``'s (``repair`` accepting a deliberate edit)."""
        record = self.model
        record.update(checksum=checksum).where(record.id == row.id).execute()

    def _outcome_in(self, expected: Sequence[str]) -> peewee.Expression:
        return peewee.fn.COALESCE(self.model.outcome, APPLIED).in_(list(expected))

    @staticmethod
    def _exactly_one(count: int, name: str, expected: Sequence[str]) -> None:
        if count != 1:
            raise MigrationError(
                f"the history row of {name} is no longer {' or '.join(expected)} (changed by another process, such "
                "as a `migrate repair`, while this runner worked): check the schema by hand, then run "
                "`orm-kit migrate status`")
