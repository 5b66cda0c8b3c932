"""Safe forms on PostgreSQL: migrator operations on a table in use take their strong locks only for an instant.

    migrator = SafePostgresqlMigrator(db)          # what migrator_for(db) hands to up(migrator, db) on PostgreSQL
    migrator.migrate(migrator.add_column("deployment", "region", peewee.CharField(max_length=16, default="eu",
                                                                                  index=True)))
    # now:    ALTER TABLE "deployment" ADD COLUMN "region" VARCHAR(16) NOT NULL DEFAULT 'eu'
    migrator.deferred      # after COMMIT: CREATE INDEX CONCURRENTLY IF NOT EXISTS "deployment_region" ...

A table *in use* is one that existed when the migration began (the migrator notes the tables when it is
made); a table the migration creates itself is empty and unseen, so it keeps peewee's plain forms. The
decision never looks at row counts, so ``migrate sql`` (which replays on an empty scratch database)
shows exactly what the live run does.

What each operation does on a table in use (peewee's plain form, then the safe one):

* ``add_column`` NOT NULL with a default. Plain: ADD COLUMN (nullable), UPDATE every row, SET NOT NULL,
  the table locked throughout. Safe: one ``ADD COLUMN ... NOT NULL DEFAULT x``, catalog only since
  PostgreSQL 11. The default stays, so code that does not know the column yet can still insert; a
  callable default is computed once (as peewee does) and dropped right after.
* ``add_column`` of a foreign key. Plain: REFERENCES inline, which scans under the lock. Safe: ADD
  COLUMN, ``ADD CONSTRAINT ... NOT VALID``, and VALIDATE after COMMIT.
* ``add_index`` (and ``index=True`` / ``unique=True`` columns). Plain: CREATE INDEX, writes blocked
  while it builds. Safe: ``CREATE INDEX CONCURRENTLY IF NOT EXISTS`` after COMMIT, an invalid leftover
  dropped concurrently.
* ``add_constraint`` (CHECK, FOREIGN KEY) and ``add_foreign_key_constraint``. Plain: scans the table
  under the lock. Safe: ``... NOT VALID`` now, ``VALIDATE CONSTRAINT`` after COMMIT.
* ``add_constraint`` UNIQUE (``add_unique``). Plain: builds the index under the lock. Safe: ``CREATE
  UNIQUE INDEX CONCURRENTLY``, then ``ADD CONSTRAINT ... UNIQUE USING INDEX``.
* ``add_not_null``. Plain: SET NOT NULL scans under ACCESS EXCLUSIVE. Safe, all after COMMIT: ``CHECK
  (c IS NOT NULL) NOT VALID``, VALIDATE, then SET NOT NULL (no scan since PostgreSQL 12) and DROP CHECK.
* ``backfill`` (orm-kit's own): ``UPDATE`` in batches over the primary key, each batch its own
  transaction, after COMMIT.
* ``drop_column`` and ``drop_table``. Plain (for columns, peewee's default): CASCADE, which takes views
  along. Safe, on every table: RESTRICT, refused up front naming every view and constraint that depends
  on it. ``drop_index`` of an index that is not there names the indexes the table has.

What runs "after COMMIT" is a list of :mod:`~orm_kit.migrate.steps` the runner executes once the
migration's transaction has committed, in the order the operations were called.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import peewee
from playhouse.migrate import PostgresqlMigrator, make_index_name, operation

from orm_kit._sql import fetchall, literal, quote, scalar
from orm_kit.errors import DependentObjectsError, MigrationError
from orm_kit.fields import with_database
from orm_kit.migrate.snapshot import tables
from orm_kit.migrate.steps import Backfill, ConcurrentIndex, ShortTransaction, Step, render_assignments

__all__ = ["SafePostgresqlMigrator", "dependents"]

# peewee's operations wrap their functions; the plain forms are called through the originals.
_plain: Any = PostgresqlMigrator
_truncate: Any = getattr(peewee, "_truncate_constraint_name")  # noqa: B009 - private in peewee's stubs


_NO_CONSTRAINT = "SELECT NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = %s AND conrelid = to_regclass(%s))"
_NOT_VALIDATED = ("SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = %s AND conrelid = to_regclass(%s) "
                  "AND NOT convalidated)")


class SafePostgresqlMigrator(PostgresqlMigrator):
    """peewee's PostgresqlMigrator whose operations on tables in use take only brief locks (see the module)."""

    def __init__(self, database: peewee.Database, existing: Iterable[str] | None = None) -> None:
        super().__init__(database)  # type: ignore[no-untyped-call]  # peewee untyped
        self.existing: set[str] = set(existing if existing is not None else tables(database))
        self.deferred: list[Step] = []

    def _context(self) -> Any:
        return self.make_context()  # type: ignore[no-untyped-call]  # peewee untyped

    def _alter(self, table: str) -> Any:
        return self._alter_table(self._context(), table)  # type: ignore[no-untyped-call]  # peewee untyped

    def in_use(self, table: str) -> bool:
        """True when ``table`` existed before this migration began (so others may be reading and writing it)."""
        return table in self.existing

    # -- adding ---------------------------------------------------------------------------------

    @operation  # type: ignore[untyped-decorator]  # playhouse untyped
    def add_column(self, table: str, column_name: str, field: Any, allow_not_null: bool = False) -> Any:
        field = with_database(field.clone(), self.database)
        if field.column_name != column_name:
            field.name = field.column_name = column_name
        foreign = isinstance(field, peewee.ForeignKeyField)
        if foreign and not field.rel_field:
            raise MigrationError(f"add_column({table!r}, {column_name!r}): the foreign key names no field it points "
                                 "at; give it one (ForeignKeyField(Team, field=Team.id))")
        needs_value = not field.null and not allow_not_null
        if needs_value and field.default is None:
            raise MigrationError(
                f"column {table}.{column_name} is NOT NULL without a default, so the rows already there have no "
                "value for it: give the field a default, or add it with null=True, fill it with "
                "migrator.backfill(...) and then migrator.add_not_null(...)")
        ctx = self._alter(table)
        ctx.literal(" ADD COLUMN ").sql(field.ddl(ctx))
        if needs_value:
            value = field.default() if callable(field.default) else field.default
            # Written in as a literal: DDL takes no bound parameters (psycopg 3 binds on the server).
            ctx.literal(" DEFAULT " + literal(field.db_value(value)))
        operations: list[Any] = [ctx]
        if needs_value and callable(field.default):
            # One value computed now, as peewee's plain form would: right for the rows already there, not a
            # default for new ones (the model computes those).
            operations.append(self.drop_column_default(table, column_name))
        if foreign:
            rel = field.rel_model._meta
            if self.in_use(table):
                operations.append(self.add_foreign_key_constraint(
                    table, column_name, rel.table_name, field.rel_field.column_name, field.on_delete,
                    field.on_update, constraint_name=f"{table}_{column_name}_fkey", rel_schema=rel.schema))
            else:
                self.add_inline_fk_sql(ctx, field)  # type: ignore[no-untyped-call]  # peewee untyped
        if field.index or field.unique:
            operations.append(self.add_index(table, (column_name,), field.unique, getattr(field, "index_type", None)))
        return operations

    @operation  # type: ignore[untyped-decorator]  # playhouse untyped
    def add_index(self, table: str, columns: Any, unique: bool = False, using: str | None = None,
                  where: Any = None, nulls_distinct: bool | None = None, name: str | None = None) -> Any:
        if not self.in_use(table):
            return _plain.add_index.__wrapped__(self, table, columns, unique, using, where, nulls_distinct, name)
        index_name = name or make_index_name(table, columns)  # type: ignore[no-untyped-call]  # peewee untyped
        target = peewee.Table(table)
        index = peewee.Index(index_name, target, [getattr(target.c, column) for column in columns], unique=unique,
                             safe=True, where=where, using=using, nulls_distinct=nulls_distinct)
        sql, _ = self._context().sql(peewee.ValueLiterals(index)).query()
        sql = sql.replace(" INDEX IF NOT EXISTS ", " INDEX CONCURRENTLY IF NOT EXISTS ", 1)
        self.deferred.append(ConcurrentIndex(table, index_name, sql))
        return []

    @operation  # type: ignore[untyped-decorator]  # playhouse untyped
    def add_constraint(self, table: str, name: str, constraint: Any) -> Any:
        ctx = _plain.add_constraint.__wrapped__(self, table, name, constraint)
        if not self.in_use(table):
            return ctx
        body = str(self._context().sql(constraint).query()[0]).strip()
        head = body.upper()
        if head.startswith(("CHECK", "FOREIGN KEY")) and "NOT VALID" not in head:
            ctx.literal(" NOT VALID")
            self.deferred.append(self._validate(table, name))
            return ctx
        if head.startswith("UNIQUE") and "USING INDEX" not in head and "(" in body:
            columns = body[body.index("("):]
            self.deferred.append(ConcurrentIndex(
                table, name, f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {quote(name)} ON {quote(table)} "
                             f"{columns}"))
            self.deferred.append(ShortTransaction(table, [
                f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} UNIQUE USING INDEX {quote(name)}"],
                only_if=(_NO_CONSTRAINT, (name, quote(table)))))
            return []
        return ctx

    @operation  # type: ignore[untyped-decorator]  # playhouse untyped
    def add_foreign_key_constraint(self, table: str, column_name: str, rel: str, rel_column: str,
                                   on_delete: str | None = None, on_update: str | None = None,
                                   constraint_name: str | None = None, rel_schema: str | None = None) -> Any:
        ctx = _plain.add_foreign_key_constraint.__wrapped__(
            self, table, column_name, rel, rel_column, on_delete, on_update, constraint_name, rel_schema)
        if not self.in_use(table):
            return ctx
        name = _truncate(constraint_name or f"fk_{table}_{column_name}_refs_{rel}")  # peewee's own naming
        ctx.literal(" NOT VALID")
        self.deferred.append(self._validate(table, name))
        return ctx

    @operation  # type: ignore[untyped-decorator]  # playhouse untyped
    def add_not_null(self, table: str, column: str) -> Any:
        if not self.in_use(table):
            return _plain.add_not_null.__wrapped__(self, table, column)
        name = _truncate(f"{table}_{column}_not_null")
        t, c, n = quote(table), quote(column), quote(name)
        # Each step checks first whether an earlier (crashed or failed) run already did it: repair runs them again.
        nullable = ("SELECT NOT attnotnull FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = %s",
                    (t, column))
        self.deferred += [
            ShortTransaction(table, [f"ALTER TABLE {t} ADD CONSTRAINT {n} CHECK ({c} IS NOT NULL) NOT VALID"],
                             only_if=(f"SELECT ({nullable[0]}) AND ({_NO_CONSTRAINT})", (t, column, name, t))),
            self._validate(table, name),
            ShortTransaction(table, [f"ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL, DROP CONSTRAINT IF EXISTS {n}"],
                             only_if=nullable),
        ]
        return []

    @operation  # type: ignore[untyped-decorator]  # playhouse untyped
    def backfill(self, table: str, values: Mapping[str, Any], where: str | None = None, batch_size: int = 10_000,
                 pause: float = 0.0) -> Any:
        """``UPDATE table SET values [WHERE where]``: in batches after COMMIT on a table in use, at once otherwise.

        ``values`` maps columns to values (bound) or ``peewee.SQL(...)`` expressions; ``where`` is SQL (write
        ``%%`` for a literal ``%``). Batches walk the single-column primary key, each its own transaction.
        """
        assignments, params = render_assignments(self.database, values)
        if not self.in_use(table):
            where_sql = f" WHERE {where}" if where else ""
            return peewee.SQL(f"UPDATE {quote(table)} SET {assignments}{where_sql}", params)
        keys = self._primary_key_columns(table)  # type: ignore[no-untyped-call]  # peewee untyped
        if len(keys) != 1:
            raise MigrationError(
                f"a batched backfill walks a single-column primary key, and {table!r} has "
                f"{'none' if not keys else ', '.join(keys)}: update it with db.execute_sql in its own atomic = False "
                "migration instead")
        self.deferred.append(Backfill(table, keys[0], assignments, params, where, batch_size, pause))
        return []

    def _validate(self, table: str, name: str) -> ShortTransaction:
        # SHARE UPDATE EXCLUSIVE: the scan blocks neither reads nor writes, so it may take as long as it needs.
        return ShortTransaction(table, [f"ALTER TABLE {quote(table)} VALIDATE CONSTRAINT {quote(name)}"], long=True,
                                only_if=(_NOT_VALIDATED, (name, quote(table))))

    # -- dropping -------------------------------------------------------------------------------

    @operation  # type: ignore[untyped-decorator]  # playhouse untyped
    def drop_column(self, table: str, column_name: str, cascade: bool = False) -> Any:
        if not cascade:
            _refuse_dependents(self.database, table, column_name)
        ctx = self._alter(table).literal(" DROP COLUMN ").sql(peewee.Entity(column_name))
        return ctx.literal(" CASCADE" if cascade else " RESTRICT")

    @operation  # type: ignore[untyped-decorator]  # playhouse untyped
    def drop_table(self, table: str, safe: bool = False, cascade: bool = False, schema: str | None = None) -> Any:
        if not cascade and schema is None:
            _refuse_dependents(self.database, table)
        return _plain.drop_table.__wrapped__(self, table, safe, cascade, schema)

    @operation  # type: ignore[untyped-decorator]  # playhouse untyped
    def drop_index(self, table: str, index_name: str) -> Any:
        present = [str(row[0]) for row in fetchall(self.database, """
            SELECT i.relname FROM pg_index AS ix JOIN pg_class AS i ON i.oid = ix.indexrelid
            JOIN pg_class AS t ON t.oid = ix.indrelid
            WHERE t.relname = %s AND t.relnamespace = current_schema()::regnamespace ORDER BY 1""", (table,))]
        if index_name not in present:
            elsewhere = scalar(self.database, "SELECT 1 FROM pg_class WHERE relname = %s AND relkind = 'i' AND "
                                              "relnamespace = current_schema()::regnamespace", (index_name,))
            if not elsewhere:
                raise MigrationError(
                    f"index {index_name!r} does not exist (table {table!r} has {', '.join(present) or 'no indexes'}): "
                    "was it renamed or dropped by hand? `orm-kit migrate check` compares index names; rename it "
                    f"back with ALTER INDEX ... RENAME TO {quote(index_name)}")
        return _plain.drop_index.__wrapped__(self, table, index_name)


def dependents(db: peewee.Database, table: str, column: str | None = None) -> list[str]:
    """What a RESTRICT drop of ``table`` (or its ``column``) would trip over: other tables' constraints, views, ..."""
    rows = fetchall(db, """
        SELECT DISTINCT COALESCE(
            (SELECT CASE v.relkind WHEN 'm' THEN 'materialized view ' ELSE 'view ' END || v.relname
             FROM pg_rewrite AS r JOIN pg_class AS v ON v.oid = r.ev_class
             WHERE d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid),
            pg_describe_object(d.classid, d.objid, 0))
        FROM pg_depend AS d
        JOIN pg_class AS t ON t.oid = d.refobjid
        WHERE d.refclassid = 'pg_class'::regclass AND d.deptype = 'n'
          AND t.relname = %s AND t.relnamespace = current_schema()::regnamespace
          AND (%s::text IS NULL OR d.refobjsubid = (
                SELECT a.attnum FROM pg_attribute AS a WHERE a.attrelid = t.oid AND a.attname = %s))
          -- the table's own parts go with it; only what lies outside it stops a RESTRICT drop
          AND NOT (d.classid = 'pg_constraint'::regclass
                   AND (SELECT c.conrelid FROM pg_constraint AS c WHERE c.oid = d.objid) = t.oid)
          AND NOT (d.classid = 'pg_rewrite'::regclass
                   AND (SELECT r.ev_class FROM pg_rewrite AS r WHERE r.oid = d.objid) = t.oid)
        ORDER BY 1""", (table, column, column))
    return [str(row[0]) for row in rows]


def _refuse_dependents(db: peewee.Database, table: str, column: str | None = None) -> None:
    found = dependents(db, table, column)
    if not found:
        return
    what = f"column {table}.{column}" if column else f"table {table}"
    raise DependentObjectsError(
        f"refusing to drop {what}: {', '.join(found)} depend{'s' if len(found) == 1 else ''} on it, and orm-kit "
        "never drops with CASCADE on its own (drop or change "
        f"{'it' if len(found) == 1 else 'them'} first, in the migration or by hand; or pass cascade=True to take "
        f"{'it' if len(found) == 1 else 'them'} along on purpose)")
