"""Chunked bulk inserts that validate every row and stream: multi-row INSERTs on SQLite, COPY on PostgreSQL.

A :class:`BulkWriter` buffers rows per table and writes a chunk at a time. When any buffer fills, every
buffer is flushed in the order the tables were declared, so a parent row always reaches the database
before its children. As a context manager it flushes what is left on the way out, and after an error
discards it instead (the caller's transaction then rolls back what was written)::

    with db.atomic(), BulkWriter(db, on_flush=print) as writer:
        writer.table(Release, ["id", "service", "version", "commit_sha", "ref", "committed_at", "created_at"])
        writer.table(Deployment, ["id", "service", "environment", "release", "status", ...])
        for release, deployments in history():       # a generator: nothing is held but one chunk
            writer.add(Release, release)
            for row in deployments:
                writer.add(Deployment, row)

How a chunk is written:

* SQLite: one multi-row ``INSERT``, sized to the connection's parameter limit; the statement for a
  full chunk is built once per table and reused (SQLite keeps it prepared).
* PostgreSQL with psycopg 3: ``COPY table (columns) FROM STDIN``, the rows streamed in one
  statement; nothing for the server to parse per chunk. With psycopg2, on CockroachDB, or with
  ``copy=False``: one single-row INSERT that the driver prepares once and runs for every row
  (``executemany``), never a 65,535-parameter statement parsed again on every chunk.

Each row is checked by its model's compiled rules (:meth:`~orm_kit.model.Model.row_checker`: exactly
the errors ``insert_many`` would report, one type test per good value, a record built only for
models with cross-field rules) before its chunk is sent, so a bad row raises
:class:`~orm_kit.errors.ValidationError` naming the row, and nothing of its chunk is written.
``validate=False`` skips that for callers that have proved their rows valid another way. Values are
converted for the driver per column by code compiled once per table
(:func:`orm_kit.fields.writer`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import peewee
from playhouse.cockroachdb import CockroachDatabase

from orm_kit import dialect
from orm_kit._sql import connection, cursor, driver_errors, execute, fetchall, quote, scalar
from orm_kit.bounds import check_count
from orm_kit.dialect import is_postgres, is_sqlite
from orm_kit.errors import ValidationError
from orm_kit.fields import Conversion, writer
from orm_kit.integrity import translate
from orm_kit.model import Model
from orm_kit.query.statements import compile_function

__all__ = ["BulkWriter", "larger_cache", "max_parameters", "next_id", "rows_per_chunk", "sync_id_sequence"]

# PostgreSQL's wire protocol counts bind parameters in 16 bits.
_POSTGRES_MAX_PARAMETERS = 65535
# SQLite's compile-time default before 3.32 (newer builds report theirs through getlimit()).
_SQLITE_OLD_DEFAULT = 999
# Past a few thousand rows a longer statement saves nothing and only costs memory.
DEFAULT_MAX_ROWS = 2000
MAX_ROWS_BOUND = 1_000_000  # rows held in memory per table before a flush: far past what any chunk needs
# Column types COPY writes in binary from what orm-kit's writers make (UUID, int, str, aware datetime, ...).
_BINARY_COPY_TYPES = frozenset({
    "uuid", "smallint", "integer", "bigint", "text", "character varying", "boolean", "real", "double precision",
    "numeric", "timestamp with time zone", "timestamp without time zone", "date",
})


def max_parameters(db: peewee.Database) -> int:
    """How many bound parameters one statement may carry on ``db``."""
    if is_sqlite(db):
        getlimit = getattr(connection(db), "getlimit", None)  # Python 3.11+
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
def larger_cache(db: peewee.Database, mebibytes: int = 64) -> Iterator[None]:
    """On SQLite, a page cache of ``mebibytes`` for this connection while the block runs (restored after).

    Random UUID keys scatter inserts over the whole primary-key index; once the index outgrows SQLite's
    default 2 MiB cache every chunk rereads pages, and a million-row load slows down as it grows.
    64 MiB holds the hot part of the indexes: generating a million deployments with 32, 64 and
    256 MiB took 79, 80 and 102 s (peak memory 114, 151 and 385 MiB), so more only costs memory.
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
    derived: list[str]  # fields the model derives from the others (Model.derive), filled (or refilled) per row
    check: Callable[[Sequence[Any]], dict[str, list[str]] | None]  # the model's rules, compiled for these names
    convert: Callable[[list[tuple[Any, ...]]], list[Any]]  # rows -> the driver's values, flat (or per row)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    statement: str | None = None  # the full-chunk INSERT (or the COPY), built on first use
    types: list[str] | None = None  # COPY in binary: the columns' types, when every one has a binary form
    written: int = 0


class BulkWriter:
    """Buffers rows per table and writes them in chunks (see the module docstring); also a context manager."""

    def __init__(self, db: peewee.Database, *, validate: bool = True, max_rows: int = DEFAULT_MAX_ROWS,
                 on_flush: Callable[[type[Model], int], None] | None = None, copy: bool | None = None) -> None:
        self.db = db
        self.validate = validate
        self.max_rows = check_count(max_rows, "max_rows", low=1, high=MAX_ROWS_BOUND)
        self.on_flush = on_flush
        self._postgres = is_postgres(db)
        # COPY needs psycopg 3's cursor.copy(); psycopg2 (or copy=False) writes prepared INSERTs instead.
        self.copy = self._postgres and (copy if copy is not None else True) and _has_copy(db)
        self._buffers: dict[type[Model], _Buffer] = {}

    def __enter__(self) -> BulkWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: Any) -> None:
        """Flush what is buffered; after an error, discard it instead (the caller's transaction rolls back)."""
        if kind is None:
            self.flush()
        else:
            self.discard()

    def table(self, model: type[Model], fields: Sequence[str]) -> None:
        """Declare a table and the fields its rows give, in order; declare parents before children."""
        meta = model._meta
        given = [meta.fields[name] for name in fields]
        # Like insert_many: a field the rows leave out gets its default (created_at=utcnow, ...).
        defaulted = [f for f in meta.sorted_fields if f.name not in fields and f in meta.defaults
                     and not (f is meta.primary_key and meta.auto_increment)]
        # Which fields Model.derive fills from these (a duration from two times, say): ask it once. One the
        # rows give themselves is derived again all the same: a derived field is never written as given.
        probe: dict[str, Any] = dict.fromkeys(f.name for f in given + defaulted)
        model.derive(probe)
        known = {f.name for f in given + defaulted}  # by name: a Field's == builds SQL, so `in` on Fields lies
        derived = [meta.fields[name] for name in probe if name not in known]
        resolved = given + defaulted + derived
        names = [f.name for f in resolved]
        rederived = [name for name in names if name in model.derived_fields()]
        chunk = rows_per_chunk(self.db, len(resolved), self.max_rows)
        self._buffers[model] = _Buffer(model, resolved, names, chunk, [meta.defaults[f] for f in defaulted],
                                       rederived, model.row_checker(names),
                                       _converter([writer(f, postgres=self._postgres) for f in resolved],
                                                  flat=not self.copy and not self._postgres))

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

    def discard(self) -> None:
        """Drop every buffered row without writing it."""
        for buffer in self._buffers.values():
            buffer.rows = []

    def _write(self, buffer: _Buffer) -> None:
        rows, buffer.rows = buffer.rows, []
        if buffer.defaults:
            rows = [row + tuple(d() if callable(d) else d for d in buffer.defaults) for row in rows]
        if buffer.derived:
            rows = [self._derive(buffer, row) for row in rows]
        if self.validate:
            check = buffer.check
            for index, row in enumerate(rows):
                errors = check(row)
                if errors:
                    raise ValidationError(buffer.model.__name__, errors, row=buffer.written + index)
        values = buffer.convert(rows)
        try:
            if self.copy:
                self._copy(buffer, values)
            elif self._postgres:
                self._execute_many(buffer, values)
            else:
                if len(rows) == buffer.chunk:
                    if buffer.statement is None:
                        buffer.statement = self._statement(buffer, len(rows))
                    statement = buffer.statement
                else:
                    statement = self._statement(buffer, len(rows))
                execute(self.db, statement, values)
        except peewee.IntegrityError as exc:  # typed, naming the row over everything written so far
            raise translate(buffer.model, exc, rows, columns=[f.name for f in buffer.fields], db=self.db,
                            first_row=buffer.written) from exc
        buffer.written += len(rows)
        if self.on_flush is not None:
            self.on_flush(buffer.model, buffer.written)

    def _copy(self, buffer: _Buffer, rows: list[Any]) -> None:
        """PostgreSQL's COPY ... FROM STDIN: the rows streamed in one statement, no parameters to parse.

        Binary when every column's type is one psycopg writes in binary from the values the writers
        make (three times faster than text: nothing is formatted or parsed as text); text otherwise.
        """
        if buffer.statement is None:
            buffer.types = self._binary_types(buffer)
            columns = ", ".join(quote(f.column_name) for f in buffer.fields)
            binary = " (FORMAT BINARY)" if buffer.types is not None else ""
            buffer.statement = f"COPY {_table(buffer.model)} ({columns}) FROM STDIN{binary}"
        with driver_errors:  # driver errors as peewee's, as on every other path
            copying = cursor(self.db)
            try:
                with copying.copy(buffer.statement) as copy:
                    if buffer.types is not None:
                        copy.set_types(buffer.types)
                    write = copy.write_row
                    for row in rows:
                        write(row)
            finally:
                copying.close()

    def _binary_types(self, buffer: _Buffer) -> list[str] | None:
        """The columns' types as the table has them, if each has a binary form the writers' values fit."""
        found = dict(fetchall(self.db, "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
                                       "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
                              [_table(buffer.model)]))
        types = [found.get(f.column_name) for f in buffer.fields]
        if not all(t in _BINARY_COPY_TYPES for t in types):
            return None
        return [str(t) for t in types]

    def _execute_many(self, buffer: _Buffer, rows: list[Any]) -> None:
        """One single-row INSERT, prepared once by the driver and run for every row."""
        param: str = self.db.param
        columns = ", ".join(quote(f.column_name) for f in buffer.fields)
        sql = f"INSERT INTO {_table(buffer.model)} ({columns}) VALUES ({', '.join([param] * len(buffer.fields))})"
        with driver_errors:
            inserting = cursor(self.db)
            try:
                inserting.executemany(sql, rows)
            finally:
                inserting.close()

    @staticmethod
    def _derive(buffer: _Buffer, row: tuple[Any, ...]) -> tuple[Any, ...]:
        data = dict(zip(buffer.names, row, strict=False))  # the derived fields the rows leave out are not in it yet
        buffer.model.derive(data)
        return tuple(data.get(name) for name in buffer.names)

    def _statement(self, buffer: _Buffer, count: int) -> str:
        param: str = self.db.param
        columns = ", ".join(quote(f.column_name) for f in buffer.fields)
        one = "(" + ", ".join([param] * len(buffer.fields)) + ")"
        return f"INSERT INTO {_table(buffer.model)} ({columns}) VALUES " + ", ".join([one] * count)


def _table(model: type[peewee.Model]) -> str:
    meta = model._meta
    return quote(meta.table_name) if not meta.schema else f"{quote(meta.schema)}.{quote(meta.table_name)}"


def _has_copy(db: peewee.Database) -> bool:
    """Whether ``db``'s driver streams COPY (psycopg 3 does; psycopg2 and CockroachDB's wire need INSERTs)."""
    if isinstance(dialect.unwrap(db), CockroachDatabase):
        return False
    try:
        import psycopg
    except ImportError:
        return False
    return hasattr(psycopg.Cursor, "copy") and isinstance(connection(db), psycopg.Connection)


def _converter(conversions: list[Conversion], *, flat: bool) -> Callable[[list[tuple[Any, ...]]], list[Any]]:
    """Rows -> the driver's values: one flat list (a multi-row INSERT) or a tuple per row (COPY, executemany).

    Compiled to one expression per column, so a value already of the type the driver takes costs no call.
    """
    namespace: dict[str, Any] = {}
    parts = []
    for i, conversion in enumerate(conversions):
        value = f"row[{i}]"
        if conversion.convert is not None:
            namespace[f"_c{i}"] = conversion.convert
            namespace[f"_k{i}"] = conversion.keep
            if conversion.none_too:
                value = f"_c{i}(row[{i}])"
            elif conversion.keep is not None:
                value = f"(v if (v := row[{i}]) is None or type(v) is _k{i} else _c{i}(v))"
            else:
                value = f"(None if (v := row[{i}]) is None else _c{i}(v))"
        parts.append(value)
    add = "out.extend" if flat else "out.append"
    lines = ["out = []", f"add = {add}", "for row in rows:", f"    add(({', '.join(parts)},))", "return out"]
    body = "\n    ".join(lines)
    return compile_function("convert_rows", body, namespace, argument="rows")


def _pk_column(model: type[peewee.Model]) -> str:
    return str(model._meta.primary_key.column_name)  # type: ignore[union-attr]
