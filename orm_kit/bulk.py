"""Chunked bulk inserts that respect the driver's parameter limit, validate every row, and stream.

A :class:`BulkWriter` buffers rows per table and inserts a chunk as one multi-row ``INSERT``. The
statement for a full chunk is built once per table and reused with new parameters (peewee would
build and compile it again for every chunk). When any buffer fills, every buffer is flushed in the
order the tables were declared, so a parent row always reaches the database before its children::

    writer = BulkWriter(db, validate=True, on_flush=print)
    writer.table(Release, ["id", "service", "version", "commit_sha", "ref", "committed_at", "created_at"])
    writer.table(Deployment, ["id", "service", "environment", "release", "status", ...])
    for release, deployments in history():          # a generator: nothing is held but one chunk
        writer.add(Release, release)
        for row in deployments:
            writer.add(Deployment, row)
    writer.flush()

Each row goes through the model's own :meth:`~orm_kit.model.Model.check_data` (what ``insert_many``
runs) before its chunk is sent, so a bad row raises :class:`~orm_kit.errors.ValidationError` and the
caller's transaction rolls everything back. ``validate=False`` skips that for callers that have
proved their rows valid another way (``bench/bench_seed.py`` measures what it saves).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import peewee

from orm_kit._sql import execute, quote, scalar
from orm_kit.dialect import is_postgres, is_sqlite
from orm_kit.errors import ValidationError
from orm_kit.integrity import translate
from orm_kit.model import Model

__all__ = ["BulkWriter", "larger_cache", "max_parameters", "next_id", "rows_per_chunk", "sync_id_sequence"]

# PostgreSQL's wire protocol counts bind parameters in 16 bits.
_POSTGRES_MAX_PARAMETERS = 65535
# SQLite's compile-time default before 3.32 (newer builds report theirs through getlimit()).
_SQLITE_OLD_DEFAULT = 999
# Past a few thousand rows a longer statement saves nothing and only costs memory.
DEFAULT_MAX_ROWS = 2000


def max_parameters(db: peewee.Database) -> int:
    """How many bound parameters one statement may carry on ``db``."""
    if is_sqlite(db):
        connection = db.connection()  # type: ignore[no-untyped-call]
        getlimit = getattr(connection, "getlimit", None)  # Python 3.11+
        if getlimit is not None:
            return int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
        return 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else _SQLITE_OLD_DEFAULT
    if is_postgres(db):
        return _POSTGRES_MAX_PARAMETERS
    return _SQLITE_OLD_DEFAULT


def rows_per_chunk(db: peewee.Database, columns: int, max_rows: int = DEFAULT_MAX_ROWS) -> int:
    """Rows of ``columns`` values that fit one INSERT on ``db`` (at most ``max_rows``)."""
    return max(1, min(max_rows, max_parameters(db) // max(1, columns)))


@contextlib.contextmanager
def larger_cache(db: peewee.Database, mebibytes: int = 256) -> Iterator[None]:
    """On SQLite, a page cache of ``mebibytes`` for this connection while the block runs (restored after).

    Random UUID keys scatter inserts over the whole primary-key index; once the index outgrows SQLite's
    default 2 MiB cache every chunk rereads pages, and a million-row load slows down as it grows.
    The setting is per connection and never stored in the file. Other databases: nothing to do.
    """
    if not is_sqlite(db):
        yield
        return
    previous = scalar(db, "PRAGMA cache_size")
    execute(db, f"PRAGMA cache_size = {-1024 * int(mebibytes)}")
    try:
        yield
    finally:
        execute(db, f"PRAGMA cache_size = {int(previous)}")


def next_id(db: peewee.Database, model: type[peewee.Model]) -> int:
    """The first free integer primary key of ``model``, for rows that need their ids before they are inserted.

    Call it inside the transaction that inserts them. On PostgreSQL the table is locked against other
    writers until that transaction ends (SQLite's write lock is already exclusive), and
    :func:`sync_id_sequence` must follow the inserts.
    """
    table = quote(model._meta.table_name)
    column = quote(_pk_column(model))
    if is_postgres(db):
        execute(db, f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
    return int(scalar(db, f"SELECT COALESCE(MAX({column}), 0) + 1 FROM {table}"))


def sync_id_sequence(db: peewee.Database, model: type[peewee.Model]) -> None:
    """After explicit ids were inserted: move PostgreSQL's serial sequence past them (SQLite needs nothing)."""
    if is_postgres(db):
        table = quote(model._meta.table_name)
        column = _pk_column(model)
        # pg_get_serial_sequence takes the table as SQL text (quoted) and the column as a plain name.
        execute(db, f"SELECT setval(pg_get_serial_sequence(%s, %s), (SELECT COALESCE(MAX({quote(column)}), 1) "
                    f"FROM {table}))", [table, column])


@dataclass
class _Buffer:
    model: type[Model]
    fields: list[peewee.Field]
    names: list[str]
    chunk: int
    defaults: list[Any]  # values (or callables) for the model's defaulted fields the rows leave out
    derived: list[str]  # fields the model derives from the others (Model.derive), filled per row
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    statement: str | None = None  # the full-chunk INSERT, built on first use
    written: int = 0


class BulkWriter:
    """Buffers rows per table and writes them as chunked multi-row INSERTs (see the module docstring)."""

    def __init__(self, db: peewee.Database, *, validate: bool = True, max_rows: int = DEFAULT_MAX_ROWS,
                 on_flush: Callable[[type[Model], int], None] | None = None) -> None:
        self.db = db
        self.validate = validate
        self.max_rows = max_rows
        self.on_flush = on_flush
        self._buffers: dict[type[Model], _Buffer] = {}

    def table(self, model: type[Model], fields: Sequence[str]) -> None:
        """Declare a table and the fields its rows give, in order; declare parents before children."""
        meta = model._meta
        given = [meta.fields[name] for name in fields]
        # Like insert_many: a field the rows leave out gets its default (created_at=utcnow, ...).
        defaulted = [f for f in meta.sorted_fields if f.name not in fields and f in meta.defaults
                     and not (f is meta.primary_key and meta.auto_increment)]
        # Which fields Model.derive fills from these (a duration from two times, say): ask it once.
        probe: dict[str, Any] = dict.fromkeys(f.name for f in given + defaulted)
        model.derive(probe)
        known = {f.name for f in given + defaulted}  # by name: a Field's == builds SQL, so `in` on Fields lies
        derived = [meta.fields[name] for name in probe if name not in known]
        resolved = given + defaulted + derived
        chunk = rows_per_chunk(self.db, len(resolved), self.max_rows)
        self._buffers[model] = _Buffer(model, resolved, [f.name for f in resolved], chunk,
                                       [meta.defaults[f] for f in defaulted], [f.name for f in derived])

    def add(self, model: type[Model], row: tuple[Any, ...]) -> None:
        """Queue one row (values in the declared field order); may flush every table."""
        buffer = self._buffers[model]
        buffer.rows.append(row)
        if len(buffer.rows) >= buffer.chunk:
            self.flush()

    def columns(self, model: type[Model]) -> list[str]:
        """The fields each row of ``model`` is written with: the declared ones, then defaulted and derived ones."""
        return list(self._buffers[model].names)

    def written(self, model: type[Model]) -> int:
        """How many rows of ``model`` have reached the database so far."""
        return self._buffers[model].written

    def flush(self) -> None:
        """Write every buffered row, parents first."""
        for buffer in self._buffers.values():
            if buffer.rows:
                self._write(buffer)

    def _write(self, buffer: _Buffer) -> None:
        rows, buffer.rows = buffer.rows, []
        if buffer.defaults:
            rows = [row + tuple(d() if callable(d) else d for d in buffer.defaults) for row in rows]
        if buffer.derived:
            rows = [self._derive(buffer, row) for row in rows]
        if self.validate:
            model, names = buffer.model, buffer.names
            for index, row in enumerate(rows):
                errors = model.check_data(dict(zip(names, row, strict=True)))
                if errors:
                    raise ValidationError(model.__name__, errors, row=buffer.written + index)
        if len(rows) == buffer.chunk:
            if buffer.statement is None:
                buffer.statement = self._statement(buffer, len(rows))
            statement = buffer.statement
        else:
            statement = self._statement(buffer, len(rows))
        fields = buffer.fields
        params = [f.db_value(value)  # type: ignore[no-untyped-call]
                  for row in rows for f, value in zip(fields, row, strict=True)]
        try:
            execute(self.db, statement, params)
        except peewee.IntegrityError as exc:  # typed, naming the row over everything written so far
            raise translate(buffer.model, exc, rows, columns=buffer.names, db=self.db,
                            first_row=buffer.written) from exc
        buffer.written += len(rows)
        if self.on_flush is not None:
            self.on_flush(buffer.model, buffer.written)

    @staticmethod
    def _derive(buffer: _Buffer, row: tuple[Any, ...]) -> tuple[Any, ...]:
        data = dict(zip(buffer.names, row, strict=False))  # the derived fields are not in the row yet
        buffer.model.derive(data)
        return row + tuple(data[name] for name in buffer.derived)

    def _statement(self, buffer: _Buffer, count: int) -> str:
        param: str = self.db.param
        columns = ", ".join(quote(f.column_name) for f in buffer.fields)
        one = "(" + ", ".join([param] * len(buffer.fields)) + ")"
        return f"INSERT INTO {quote(buffer.model._meta.table_name)} ({columns}) VALUES " + ", ".join([one] * count)


def _pk_column(model: type[peewee.Model]) -> str:
    return str(model._meta.primary_key.column_name)  # type: ignore[union-attr]
