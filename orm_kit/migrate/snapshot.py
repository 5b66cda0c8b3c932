"""What a database's schema is, as comparable facts.

    facts = snapshot(db)      # {("deployment", "column status", "type"): "VARCHAR(16)", ...}
    facts == snapshot(other)  # two schemas compare with ==; a difference names exactly what differs

A snapshot flattens tables, columns (type, nullability, default, primary key; on PostgreSQL the
collation), indexes and unique constraints (by columns and predicate; the kind says DESC, collations,
expressions, the index method and INCLUDE columns; the name is a fact of its own, since a migration drops
an index by name), foreign keys (target and ``ON DELETE`` / ``ON UPDATE``; on PostgreSQL whether they are
DEFERRABLE and validated), CHECK constraints (``NOT VALID`` ones say so), triggers (by name, with their full
definition; a trigger's function body is not compared) and, on PostgreSQL, row-level security and its
policies into ``{(table, subject, attribute): value}``. Objects that are not tables are facts of their own,
``(name, kind, attribute)``: views (both databases), and on PostgreSQL materialized views, sequences no
column owns, user-defined types and functions (those an extension brought are left out).

Like is compared with like: every side of a comparison is introspected from the same backend (the
models are realized on a scratch database by :mod:`orm_kit.migrate.scratch` rather than read from
Python), so peewee-side defaults, which never reach the database, are never mistaken for drift, and the
type names are the database's own. peewee's ``get_columns`` / ``get_indexes`` / ``get_foreign_keys`` are
used as they are; what they do not tell is read here: CHECK constraints (neither backend), which SQLite
index backs the primary key, and partial-index predicates.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import peewee

from orm_kit._sql import closing_paren, fetchall
from orm_kit.bookkeeping import SEED_TABLES
from orm_kit.dialect import is_postgres

__all__ = ["OBJECT_KINDS", "SECONDARY", "Facts", "snapshot", "sqlite_checks", "tables"]

Facts = dict[tuple[str, str, str], str]

_WS = re.compile(r"\s+")


# orm-kit's own bookkeeping (the seed loader's orm_kit_seed, orm_kit_seed_row) is no part of the schema
# that models and migrations describe, so no comparison sees it: by exact name, never by a prefix (a user's
# table may start with orm_kit_ too).
_BOOKKEEPING = frozenset(SEED_TABLES)

# The subjects that stand for a whole object (the table slot holds its name), and the attributes that only
# say more about a subject both sides have (a missing index is reported once, by its kind, not its name too).
OBJECT_KINDS = ("table", "view", "materialized view", "sequence", "type", "function")
SECONDARY = ("name", "state", "collation")


def tables(db: peewee.Database, exclude: Sequence[str] = ()) -> list[str]:
    """User tables of ``db``'s current schema, without SQLite's, orm-kit's bookkeeping and ``exclude``."""
    return [t for t in db.get_tables() if not t.startswith("sqlite_") and t not in _BOOKKEEPING and t not in exclude]


def snapshot(db: peewee.Database, exclude: Sequence[str] = ()) -> Facts:
    """Every table of ``db`` (but ``exclude``), and every other object of its schema, flattened into facts."""
    facts: Facts = {}
    postgres = is_postgres(db)
    for table in tables(db, exclude):
        facts[(table, "table", "exists")] = "yes"
        for column in db.get_columns(table):
            subject = f"column {column.name}"
            kind = column.full_type if postgres else column.data_type
            facts[(table, subject, "type")] = _WS.sub(" ", str(kind or "")).strip().upper()
            facts[(table, subject, "null")] = "NULL" if column.null else "NOT NULL"
            facts[(table, subject, "default")] = _norm(str(column.default)) if column.default is not None else "none"
            facts[(table, subject, "primary key")] = "yes" if column.primary_key else "no"
        for columns, unique, where, detail, name in _indexes(db, table):
            subject = f"index ({', '.join(columns)})" + (f" WHERE {where}" if where else "")
            kind = ("UNIQUE" if unique else "INDEX") + (f" {detail}" if detail else "")
            for attribute, value in (("kind", kind), ("name", name)):
                values = set(facts.get((table, subject, attribute), "").split(" + ")) - {""}
                facts[(table, subject, attribute)] = " + ".join(sorted(values | {value}))
        for name, definition in _triggers(db, table):
            facts[(table, f"trigger {name}", "definition")] = definition
        for fk in db.get_foreign_keys(table):
            facts[(table, f"foreign key {fk.column}", "references")] = (
                f"{fk.dest_table}({fk.dest_column}) ON DELETE {(fk.on_delete or 'NO ACTION').upper()} "
                f"ON UPDATE {(fk.on_update or 'NO ACTION').upper()}")
        for check in _checks(db, table):
            facts[(table, f"check {check}", "exists")] = "yes"
        if postgres:
            facts.update(_postgres_table_facts(db, table))
    facts.update(_objects(db, exclude))
    return facts


def _postgres_table_facts(db: peewee.Database, table: str) -> Facts:
    """What only PostgreSQL has per table: column collations, foreign-key state, row-level security."""
    facts: Facts = {}
    for column, collation in fetchall(db, """
            SELECT a.attname, CASE WHEN a.attcollation = ty.typcollation THEN 'default' ELSE co.collname END
            FROM pg_attribute AS a JOIN pg_class AS t ON t.oid = a.attrelid
            JOIN pg_type AS ty ON ty.oid = a.atttypid LEFT JOIN pg_collation AS co ON co.oid = a.attcollation
            WHERE t.relname = %s AND t.relnamespace = current_schema()::regnamespace AND a.attnum > 0
              AND NOT a.attisdropped AND a.attcollation <> 0""", (table,)):
        facts[(table, f"column {column}", "collation")] = str(collation)
    for column, deferrable, deferred, validated in fetchall(db, """
            SELECT a.attname, c.condeferrable, c.condeferred, c.convalidated
            FROM pg_constraint AS c JOIN pg_class AS t ON t.oid = c.conrelid
            JOIN pg_attribute AS a ON a.attrelid = t.oid AND a.attnum = c.conkey[1]
            WHERE c.contype = 'f' AND t.relname = %s AND t.relnamespace = current_schema()::regnamespace
              AND array_length(c.conkey, 1) = 1""", (table,)):
        when = ("DEFERRABLE INITIALLY DEFERRED" if deferred else "DEFERRABLE INITIALLY IMMEDIATE") if deferrable \
            else "NOT DEFERRABLE"
        facts[(table, f"foreign key {column}", "state")] = f"{when}, {'VALID' if validated else 'NOT VALID'}"
    for enabled, forced in fetchall(db, "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = %s "
                                        "AND relnamespace = current_schema()::regnamespace", (table,)):
        facts[(table, "row level security", "setting")] = ("on, forced" if forced else "on") if enabled else "off"
    for name, definition in fetchall(db, """
            SELECT p.polname, concat_ws(' ', CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                   'FOR', CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                                        WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
                   'TO', (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE r::regrole::text END, ', ' ORDER BY r)
                          FROM unnest(p.polroles) AS r),
                   'USING (' || pg_get_expr(p.polqual, p.polrelid) || ')',
                   'WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')')
            FROM pg_policy AS p JOIN pg_class AS t ON t.oid = p.polrelid
            WHERE t.relname = %s AND t.relnamespace = current_schema()::regnamespace""", (table,)):
        facts[(table, f"policy {name}", "definition")] = _norm(str(definition))
    return facts


def _objects(db: peewee.Database, exclude: Sequence[str] = ()) -> Facts:
    """Views, and on PostgreSQL materialized views, free sequences, types and functions: ``(name, kind, ...)``."""
    if not is_postgres(db):
        rows = fetchall(db, "SELECT name, sql FROM sqlite_master WHERE type = 'view'")
        return {(str(name), "view", "definition"): _norm(str(sql)) for name, sql in rows
                if name not in _BOOKKEEPING and name not in exclude}
    # An extension's objects (pg_depend 'e') are its business, not the schema's.
    extension = """NOT EXISTS (SELECT 1 FROM pg_depend AS e WHERE e.classid = %s::regclass AND e.objid = {oid}
                               AND e.deptype = 'e')"""
    found: list[tuple[str, str, str, str]] = []
    found += [(str(n), "view" if k == "v" else "materialized view", "definition", _norm(str(d)))
              for n, k, d in fetchall(db, f"""
        SELECT c.relname, c.relkind, pg_get_viewdef(c.oid, TRUE) FROM pg_class AS c
        WHERE c.relkind IN ('v', 'm') AND c.relnamespace = current_schema()::regnamespace
          AND {extension.format(oid="c.oid")}""", ("pg_class",))]
    found += [(str(n), "sequence", "exists", "yes") for (n,) in fetchall(db, f"""
        SELECT c.relname FROM pg_class AS c
        WHERE c.relkind = 'S' AND c.relnamespace = current_schema()::regnamespace
          AND NOT EXISTS (SELECT 1 FROM pg_depend AS d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                          AND d.deptype IN ('a', 'i'))
          AND {extension.format(oid="c.oid")}""", ("pg_class",))]
    found += [(str(n), "type", "kind", str(k)) for n, k in fetchall(db, f"""
        SELECT t.typname, CASE t.typtype WHEN 'e' THEN 'enum (' || (SELECT string_agg(quote_literal(e.enumlabel), ', '
                                                                     ORDER BY e.enumsortorder)
                                                                     FROM pg_enum AS e WHERE e.enumtypid = t.oid) || ')'
                                         WHEN 'd' THEN 'domain over ' || format_type(t.typbasetype, t.typtypmod)
                                         WHEN 'r' THEN 'range' WHEN 'm' THEN 'multirange' ELSE 'composite' END
        FROM pg_type AS t
        WHERE t.typnamespace = current_schema()::regnamespace AND t.typtype IN ('e', 'd', 'r', 'm', 'c')
          AND (t.typrelid = 0 OR (SELECT c.relkind FROM pg_class AS c WHERE c.oid = t.typrelid) = 'c')
          AND t.typelem = 0 AND {extension.format(oid="t.oid")}""", ("pg_type",))]
    found += [(str(n), "function", "definition", _norm(str(d))) for n, d in fetchall(db, f"""
        SELECT p.oid::regprocedure::text, pg_get_function_result(p.oid) FROM pg_proc AS p
        WHERE p.pronamespace = current_schema()::regnamespace AND {extension.format(oid="p.oid")}""",
        ("pg_proc",))]
    return {(name, kind, attribute): value for name, kind, attribute, value in found
            if name not in _BOOKKEEPING and name not in exclude}


def _norm(sql: str) -> str:
    sql = _WS.sub(" ", sql).strip()
    return re.sub(r"\(\s+", "(", re.sub(r"\s+\)", ")", sql))


_INDEX_HEAD = re.compile(r'^CREATE\s+(UNIQUE\s+)?INDEX\s+(IF\s+NOT\s+EXISTS\s+)?\S+\s+ON\s+("[^"]*"|\S+)\s*', re.I)


Index = tuple[tuple[str, ...], bool, str | None, str, str]


def _indexes(db: peewee.Database, table: str) -> list[Index]:
    """(columns, unique, predicate, detail, name) of each index; detail is empty for a plain ascending column
    index and otherwise says what the columns alone do not (DESC, a collation, an expression, a method, INCLUDE)."""
    if is_postgres(db):
        rows = fetchall(db, """
            SELECT ix.indisunique, pg_get_expr(ix.indpred, ix.indrelid),
                   ARRAY(SELECT pg_get_indexdef(ix.indexrelid, k + 1, TRUE)
                         FROM generate_subscripts(ix.indkey, 1) AS k ORDER BY k),
                   pg_get_indexdef(ix.indexrelid, 0, TRUE), i.relname
            FROM pg_index AS ix
            JOIN pg_class AS t ON t.oid = ix.indrelid
            JOIN pg_class AS i ON i.oid = ix.indexrelid
            JOIN pg_namespace AS n ON n.oid = t.relnamespace
            WHERE t.relname = %s AND n.nspname = current_schema() AND NOT ix.indisprimary""", (table,))
        found: list[Index] = []
        for unique, where, cols, definition, name in rows:
            # "CREATE INDEX name ON table USING btree (a DESC, b) WHERE ...": the method and key list.
            using = _norm(str(definition).split(" USING ", 1)[-1])
            using = re.split(r"\s+WHERE\s+", using, maxsplit=1, flags=re.I)[0] if where else using
            plain = using == f"btree ({', '.join(cols)})"
            found.append((tuple(c.strip('"') for c in cols), bool(unique), _norm(where) if where else None,
                          "" if plain else f"USING {using}", str(name)))
        return found
    found_lite: list[Index] = []
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
        # SQLite names the index of an inline UNIQUE constraint itself; no migration can drop it by that name.
        shown = "<automatic>" if str(name).startswith("sqlite_autoindex_") else str(name)
        found_lite.append((columns, bool(unique), where, detail, shown))
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
        k = closing_paren(create_sql, j)
        if k is None:
            k = len(create_sql)  # unbalanced: the rest of the statement
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
