"""What a database's schema is, as comparable facts, and scratch databases to build schemas in.

    with scratch_database(db) as scratch:          # same backend as db, thrown away afterwards
        realize_models(scratch, MODELS)            # what the models would create
        facts = snapshot(scratch)                  # {("deployment", "column status", "type"): "VARCHAR(16)", ...}

A snapshot flattens tables, columns (type, nullability, default, primary key), indexes and unique
constraints (by columns and predicate, names do not matter; the kind says DESC, collations, expressions,
the index method and INCLUDE columns), foreign keys (target and ``ON DELETE`` / ``ON UPDATE``), CHECK
constraints and triggers (by name, with their full definition; a trigger's function body is not compared)
into ``{(table, subject, attribute): value}``, so two snapshots compare with ``==`` and a difference
names exactly what differs.

Like is compared with like: every side of a comparison is introspected from the same backend, after
peewee itself wrote the DDL (the models are realized on a scratch database rather than read from
Python), so peewee-side defaults, which never reach the database, are never mistaken for drift, and the
type names are the database's own. peewee's ``get_columns`` / ``get_indexes`` / ``get_foreign_keys`` are
used as they are; what they do not tell is read here: CHECK constraints (neither backend), which SQLite
index backs the primary key, and partial-index predicates.

A scratch database is a temporary SQLite file, or on PostgreSQL a schema created inside a transaction
that is always rolled back (with ``search_path`` pointing only at it): nothing is ever committed, other
sessions never see it, and only the CREATE privilege on the database is needed.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import peewee

from orm_kit._sql import execute, fetchall
from orm_kit.dialect import is_postgres, is_sqlite
from orm_kit.errors import MigrationError, first_line

__all__ = ["Facts", "realize_models", "scratch_copy", "scratch_database", "snapshot"]

Facts = dict[tuple[str, str, str], str]

_WS = re.compile(r"\s+")
_CONCURRENTLY = re.compile(r"\bCONCURRENTLY\b", re.I)
_READS = ("SELECT", "PRAGMA", "SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT", "SET LOCAL")


class _Capturing:
    """A scratch database that can record the statements it runs (for ``migrate sql``)."""

    captured: list[tuple[str, tuple[Any, ...]]] | None = None

    def execute_sql(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        if self.captured is not None:
            self.captured.append((sql, tuple(params or ())))
        return super().execute_sql(sql, params)  # type: ignore[misc]

    def writes(self) -> list[tuple[str, tuple[Any, ...]]]:
        """The captured statements that change something (catalog reads and savepoints left out)."""
        return [(sql, params) for sql, params in self.captured or [] if not sql.lstrip().upper().startswith(_READS)]


class ScratchSqlite(_Capturing, peewee.SqliteDatabase):
    """A throwaway SQLite database."""


class ScratchPostgres(_Capturing, peewee.PostgresqlDatabase):
    """A throwaway schema on the PostgreSQL server, inside a transaction that is rolled back."""

    def execute_sql(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        # CONCURRENTLY cannot run inside a transaction, and the scratch schema lives in one; on an empty
        # private schema a plain build makes the same index. The capture keeps the statement as written.
        if _CONCURRENTLY.search(sql):
            if self.captured is not None:
                self.captured.append((sql, tuple(params or ())))
            return peewee.PostgresqlDatabase.execute_sql(self, _CONCURRENTLY.sub("", sql), params)  # type: ignore[no-untyped-call]
        return super().execute_sql(sql, params)


class _Discard(Exception):
    """Raised to roll the scratch transaction back."""


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
        with pg.atomic():
            try:
                execute(pg, f'CREATE SCHEMA "{name}"')
            except peewee.DatabaseError as exc:
                reason = first_line(exc, typed=False)
                raise MigrationError(
                    f"cannot create a scratch schema to replay migrations in: {reason} (check, verify, sql and "
                    "make need the CREATE privilege on the database; nothing is ever committed there)") from None
            # Only the scratch schema: an unqualified name must never reach a live table.
            execute(pg, f'SET LOCAL search_path TO "{name}"')
            yield pg
            raise _Discard
    except _Discard:
        pass
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
            db.connection().backup(copy.connection())  # type: ignore[no-untyped-call]
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


# orm-kit's own bookkeeping (the seed loader's orm_kit_seed, orm_kit_seed_row) is no part of the
# schema that models and migrations describe, so no comparison sees it.
BOOKKEEPING_PREFIX = "orm_kit_"


def tables(db: peewee.Database, exclude: Sequence[str] = ()) -> list[str]:
    """User tables of ``db``'s current schema, without SQLite's, orm-kit's bookkeeping and ``exclude``."""
    return [t for t in db.get_tables()
            if not t.startswith(("sqlite_", BOOKKEEPING_PREFIX)) and t not in exclude]


def snapshot(db: peewee.Database, exclude: Sequence[str] = ()) -> Facts:
    """Every table of ``db`` (but ``exclude``) flattened into comparable facts."""
    facts: Facts = {}
    for table in tables(db, exclude):
        facts[(table, "table", "exists")] = "yes"
        for column in db.get_columns(table):
            subject = f"column {column.name}"
            kind = column.full_type if is_postgres(db) else column.data_type
            facts[(table, subject, "type")] = _WS.sub(" ", str(kind or "")).strip().upper()
            facts[(table, subject, "null")] = "NULL" if column.null else "NOT NULL"
            facts[(table, subject, "default")] = _norm(str(column.default)) if column.default is not None else "none"
            facts[(table, subject, "primary key")] = "yes" if column.primary_key else "no"
        for columns, unique, where, detail in _indexes(db, table):
            subject = f"index ({', '.join(columns)})" + (f" WHERE {where}" if where else "")
            kind = ("UNIQUE" if unique else "INDEX") + (f" {detail}" if detail else "")
            kinds = set(facts.get((table, subject, "kind"), "").split(" + ")) - {""}
            facts[(table, subject, "kind")] = " + ".join(sorted(kinds | {kind}))
        for name, definition in _triggers(db, table):
            facts[(table, f"trigger {name}", "definition")] = definition
        for fk in db.get_foreign_keys(table):
            facts[(table, f"foreign key {fk.column}", "references")] = (
                f"{fk.dest_table}({fk.dest_column}) ON DELETE {(fk.on_delete or 'NO ACTION').upper()} "
                f"ON UPDATE {(fk.on_update or 'NO ACTION').upper()}")
        for check in _checks(db, table):
            facts[(table, f"check {check}", "exists")] = "yes"
    return facts


def _norm(sql: str) -> str:
    sql = _WS.sub(" ", sql).strip()
    return re.sub(r"\(\s+", "(", re.sub(r"\s+\)", ")", sql))


_INDEX_HEAD = re.compile(r'^CREATE\s+(UNIQUE\s+)?INDEX\s+(IF\s+NOT\s+EXISTS\s+)?\S+\s+ON\s+("[^"]*"|\S+)\s*', re.I)


def _indexes(db: peewee.Database, table: str) -> list[tuple[tuple[str, ...], bool, str | None, str]]:
    """(columns, unique, predicate, detail) of each index; detail is empty for a plain ascending column index
    and otherwise says what the columns alone do not (DESC, a collation, an expression, a method, INCLUDE)."""
    if is_postgres(db):
        rows = fetchall(db, """
            SELECT ix.indisunique, pg_get_expr(ix.indpred, ix.indrelid),
                   ARRAY(SELECT pg_get_indexdef(ix.indexrelid, k + 1, TRUE)
                         FROM generate_subscripts(ix.indkey, 1) AS k ORDER BY k),
                   pg_get_indexdef(ix.indexrelid, 0, TRUE)
            FROM pg_index AS ix
            JOIN pg_class AS t ON t.oid = ix.indrelid
            JOIN pg_namespace AS n ON n.oid = t.relnamespace
            WHERE t.relname = %s AND n.nspname = current_schema() AND NOT ix.indisprimary""", (table,))
        found = []
        for unique, where, cols, definition in rows:
            # "CREATE INDEX name ON table USING btree (a DESC, b) WHERE ...": the method and key list.
            using = _norm(str(definition).split(" USING ", 1)[-1])
            using = re.split(r"\s+WHERE\s+", using, maxsplit=1, flags=re.I)[0] if where else using
            plain = using == f"btree ({', '.join(cols)})"
            found.append((tuple(c.strip('"') for c in cols), bool(unique), _norm(where) if where else None,
                          "" if plain else f"USING {using}"))
        return found
    found_lite: list[tuple[tuple[str, ...], bool, str | None, str]] = []
    sql_by_name = dict(fetchall(db, "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
                                (table,)))
    for _, name, unique, origin, partial in fetchall(db, f'PRAGMA index_list("{table}")'):
        if origin == "pk":
            continue  # the primary key's own index (a non-INTEGER key); the column says "primary key"
        keys = [row for row in fetchall(db, f'PRAGMA index_xinfo("{name}")') if row[5]]
        columns = tuple(str(row[2]) if row[2] is not None else "<expression>" for row in keys)
        sql = str(sql_by_name.get(name) or "")
        where = None
        if partial:
            match = re.search(r"\)\s*WHERE\s+(.*)$", sql, re.I | re.S)
            where = _norm(match.group(1)) if match else "<predicate>"
        if any(row[2] is None for row in keys):
            body = _INDEX_HEAD.sub("", _norm(sql))
            detail = re.split(r"\s+WHERE\s+", body, maxsplit=1, flags=re.I)[0]
        else:
            parts = [f"{row[2]}{' DESC' if row[3] else ''}"
                     f"{'' if str(row[4]).upper() == 'BINARY' else ' COLLATE ' + str(row[4])}" for row in keys]
            detail = "" if parts == list(columns) else f"({', '.join(parts)})"
        found_lite.append((columns, bool(unique), where, detail))
    return found_lite


def _triggers(db: peewee.Database, table: str) -> list[tuple[str, str]]:
    if is_postgres(db):
        rows = fetchall(db, """
            SELECT tg.tgname, pg_get_triggerdef(tg.oid, TRUE) FROM pg_trigger AS tg
            JOIN pg_class AS t ON t.oid = tg.tgrelid
            JOIN pg_namespace AS n ON n.oid = t.relnamespace
            WHERE t.relname = %s AND n.nspname = current_schema() AND NOT tg.tgisinternal""", (table,))
    else:
        rows = fetchall(db, "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,))
    return sorted((str(name), _norm(str(sql))) for name, sql in rows)


def _checks(db: peewee.Database, table: str) -> list[str]:
    if is_postgres(db):
        rows = fetchall(db, """
            SELECT pg_get_constraintdef(c.oid) FROM pg_constraint AS c
            JOIN pg_class AS t ON t.oid = c.conrelid
            JOIN pg_namespace AS n ON n.oid = t.relnamespace
            WHERE c.contype = 'c' AND t.relname = %s AND n.nspname = current_schema()""", (table,))
        return sorted(_norm(str(r[0])) for r in rows)
    rows = fetchall(db, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
    return sorted(_norm(c) for c in sqlite_checks(str(rows[0][0] or ""))) if rows else []


def sqlite_checks(create_sql: str) -> list[str]:
    """Every ``CHECK (...)`` in a CREATE TABLE statement, parentheses balanced and string literals respected."""
    found: list[str] = []
    upper = create_sql.upper()
    i = 0
    while True:
        i = _find_keyword(create_sql, upper, "CHECK", i)
        if i < 0:
            return found
        j = create_sql.index("(", i)
        depth, k, quote = 0, j, ""
        while k < len(create_sql):
            ch = create_sql[k]
            if quote:
                if ch == quote:
                    quote = ""
            elif ch in "'\"`":
                quote = ch
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        found.append("CHECK " + create_sql[j:k + 1])
        i = k + 1


def _find_keyword(sql: str, upper: str, word: str, start: int) -> int:
    quote = ""
    for i in range(start, len(sql)):
        ch = sql[i]
        if quote:
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"`":
            quote = ch
            continue
        if upper.startswith(word, i) and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            end = i + len(word)
            if end < len(sql) and (sql[end].isalnum() or sql[end] == "_"):
                continue
            return i
    return -1
