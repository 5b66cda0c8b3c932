"""``migrate lint``: what each pending migration would lock on the live PostgreSQL database, and the safe recipe.

    report = lint(db, Path("migrations"), MODELS)
    for finding in report.unsafe:
        print(finding)   # 0004_region: non-concurrent-index on deployment (about 1,000,000 rows): CREATE INDEX ...
    report.ok            # False while anything unsafe is left without a reviewed opt-out
    lint(db, apps, app="flags")   # several apps: what `up --app flags` would run (every app's pending: no app)

It judges the SQL a migration really runs: the applied migrations are replayed on a scratch database,
then each pending one runs there while its statements are captured, safe forms and deferred steps
included (what ``migrate sql`` prints). A statement is checked when it touches a table the live database
has now (a table a pending migration creates is new and empty); the finding says how many rows it has
(``pg_class.reltuples``). What the statement in the migration's transaction does is judged as locking
for the whole transaction; what runs after the commit (``after_commit``) holds no DDL lock.

The rules (:data:`RULES`), with why each hurts a busy table and what to write instead:
non-concurrent-index, constraint-without-not-valid, validate-in-same-transaction, set-not-null,
not-null-without-default, volatile-default, column-type-change, rename-column, rename-table,
drop-column-in-use, drop-table-in-use, backfill-in-transaction, unique-constraint-under-lock,
full-table-lock, cascade.

A migration opts out of a rule explicitly, with a reason a reviewer reads, at module level::

    lint_ignore = {"backfill-in-transaction": "deployment has 40 rows in every environment we run"}

Ignored findings are still reported (with the reason) and do not fail. An unknown rule name or an empty
reason is a problem that fails the lint. SQLite is the local database: one writer at a time and no lock
queue per table, so there is nothing to find there (the report says so).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import peewee

from orm_kit._sql import fetchall, quote, scalar
from orm_kit.dialect import is_postgres, unwrap
from orm_kit.migrate.apps import AppMigrations, as_apps, label
from orm_kit.migrate.files import MigrationFile
from orm_kit.migrate.history import HISTORY_TABLE
from orm_kit.migrate.plan import read
from orm_kit.migrate.scratch import Captured, ScratchPostgres, ScratchSqlite, replay, scratch_database
from orm_kit.migrate.snapshot import tables

__all__ = ["RULES", "LintFinding", "LintReport", "Rule", "lint", "lint_pending"]

Models = Sequence[type[peewee.Model]]


@dataclass(frozen=True)
class Rule:
    """Why a kind of statement hurts a table in use, and what to write instead."""

    why: str
    recipe: str


RULES: dict[str, Rule] = {
    "non-concurrent-index": Rule(
        "CREATE INDEX holds a SHARE lock for the whole build: every write to the table waits until it ends",
        "migrator.add_index(...) (orm-kit builds it CONCURRENTLY after the commit), or CREATE INDEX CONCURRENTLY "
        "in an atomic = False migration"),
    "constraint-without-not-valid": Rule(
        "adding a CHECK or FOREIGN KEY checks every row while holding the lock it took (ACCESS EXCLUSIVE for a "
        "CHECK, SHARE ROW EXCLUSIVE for a foreign key): writes (and, for a CHECK, reads) wait for the scan",
        "migrator.add_constraint / add_foreign_key_constraint (ADD ... NOT VALID now, VALIDATE CONSTRAINT after "
        "the commit, which blocks neither reads nor writes)"),
    "validate-in-same-transaction": Rule(
        "VALIDATE CONSTRAINT scans the table, and in the transaction that just altered the table the ALTER's "
        "strong lock is held through the whole scan",
        "let migrator.add_constraint validate after the commit, or VALIDATE in a later migration"),
    "set-not-null": Rule(
        "SET NOT NULL scans every row under an ACCESS EXCLUSIVE lock: reads and writes wait for the scan",
        "migrator.add_not_null(...) (CHECK (c IS NOT NULL) NOT VALID, VALIDATE, then SET NOT NULL without a scan, "
        "all after the commit)"),
    "not-null-without-default": Rule(
        "a NOT NULL column without a default cannot be added to a table that has rows: it fails, or needs the "
        "whole table updated under the lock",
        "give the column a constant default (one catalog-only ADD COLUMN ... NOT NULL DEFAULT), or add it nullable, "
        "fill it with migrator.backfill, then migrator.add_not_null"),
    "volatile-default": Rule(
        "a column whose default is volatile (random(), gen_random_uuid(), clock_timestamp(), a serial, a stored "
        "generated column, an identity) makes PostgreSQL rewrite the whole table under an ACCESS EXCLUSIVE lock",
        "add it nullable or with a constant default, fill it with migrator.backfill, then SET DEFAULT for new rows"),
    "column-type-change": Rule(
        "changing a column's type rewrites the table (and its indexes) under an ACCESS EXCLUSIVE lock; only "
        "widening a varchar, or varchar to text, is free",
        "expand and contract: add a new column, write both, migrator.backfill it, switch the code, drop the old one "
        "in a later migration"),
    "rename-column": Rule(
        "the code deployed now reads and writes the old name, and fails the moment this commits",
        "expand and contract: add the new column, write both, backfill, switch reads, drop the old one later"),
    "rename-table": Rule(
        "the code deployed now reads and writes the old name, and fails the moment this commits",
        "create the new table (or a view with the old name while code moves over), move the code, drop the old one "
        "later"),
    "drop-column-in-use": Rule(
        "the models still have this column, so the code built from them reads and writes it and fails once it is "
        "gone",
        "remove the field from the model and deploy that first; drop the column in a later migration"),
    "drop-table-in-use": Rule(
        "a model still maps this table, so the code built from it fails once it is gone",
        "remove the model and deploy that first; drop the table in a later migration"),
    "backfill-in-transaction": Rule(
        "an UPDATE or DELETE in the migration's transaction keeps every row it touched locked, and every lock the "
        "transaction's DDL took held, until the migration commits",
        "migrator.backfill(table, {column: value}, where=...) (batches over the primary key, each its own "
        "transaction, after the commit)"),
    "unique-constraint-under-lock": Rule(
        "adding a UNIQUE or PRIMARY KEY constraint builds its index while holding an ACCESS EXCLUSIVE lock",
        "migrator.add_unique / add_constraint(..., UNIQUE) (CREATE UNIQUE INDEX CONCURRENTLY after the commit, "
        "then ADD CONSTRAINT ... USING INDEX)"),
    "full-table-lock": Rule(
        "LOCK TABLE, VACUUM FULL, CLUSTER, REINDEX (without CONCURRENTLY), SET TABLESPACE and SET LOGGED / "
        "UNLOGGED hold an ACCESS EXCLUSIVE lock for as long as they run",
        "REINDEX CONCURRENTLY or pg_repack outside migrations; never LOCK TABLE in a migration"),
    "cascade": Rule(
        "CASCADE silently drops whatever depends on it: views, other tables' foreign keys",
        "drop the dependent objects explicitly first; orm-kit's drop_column / drop_table use RESTRICT and name them"),
}


@dataclass(frozen=True)
class LintFinding:
    """One statement of a pending migration that takes a long or strong lock on a table in use."""

    migration: str
    rule: str
    table: str
    rows: int | None
    statement: str
    why: str
    recipe: str
    after_commit: bool = False
    ignored: str | None = None

    def __str__(self) -> str:
        size = f" ({self.rows:,} rows)" if self.rows is not None else ""
        line = (f"{self.migration}: {self.rule} on {self.table}{size}: {_short(self.statement)}: {self.why}; "
                f"instead: {self.recipe}")
        return f"{line} [ignored: {self.ignored}]" if self.ignored is not None else line

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class LintReport:
    """Every finding (ignored ones too), the problems with opt-outs, and what was linted on which database.

    ``created``: the tables the linted migrations create, each with the app whose migration creates it.
    """

    findings: list[LintFinding] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    note: str = ""
    created: dict[str, str] = field(default_factory=dict)

    @property
    def unsafe(self) -> list[LintFinding]:
        """The findings no ``lint_ignore`` accepted."""
        return [f for f in self.findings if f.ignored is None]

    @property
    def ok(self) -> bool:
        """True when nothing unsafe is left and every opt-out names a known rule and a reason."""
        return not self.unsafe and not self.problems

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"ok": self.ok, "checked": self.checked, "note": self.note, "problems": self.problems,
                "findings": [f.to_dict() for f in self.findings]}


def _short(sql: str, limit: int = 160) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


SQLITE_NOTE = ("SQLite is the local database (one writer at a time, no lock queue per table): lint judges "
               "PostgreSQL migrations; run it against PostgreSQL")


def lint(db: peewee.Database, source: Path | Sequence[AppMigrations], models: Models = (), *,
         app: str | None = None, history_table: str = HISTORY_TABLE, allow_out_of_order: bool = False) -> LintReport:
    """Lint the pending migrations against the live ``db`` (which is only read): of the folder ``source`` (its
    models: ``models``), or of every app in ``source`` (their models are theirs; only what ``up`` would apply for
    ``app``, when given)."""
    db = unwrap(db) or db
    apps = as_apps(source, models)
    plan = read(db, apps, history_table=history_table, allow_out_of_order=allow_out_of_order)
    pending = plan.up(app=app) if app is not None else plan.pending
    with scratch_database(db) as scratch:
        replay(scratch, plan.applied)
        return lint_pending(db, scratch, pending, [m for a in apps for m in a.models], history_table=history_table,
                            qualified=plan.qualified)


def lint_pending(db: peewee.Database, scratch: ScratchSqlite | ScratchPostgres, pending: Sequence[MigrationFile],
                 models: Models = (), *, history_table: str = HISTORY_TABLE, qualified: bool = False) -> LintReport:
    """Run ``pending`` on ``scratch`` (at the live database's applied state) and lint what they run there;
    ``qualified``: name migrations ``app:name`` (several apps)."""
    findings: list[LintFinding] = []
    problems: list[str] = []
    created: dict[str, str] = {}
    postgres = is_postgres(db)
    live = set(tables(db, exclude=(history_table,))) if postgres else set()
    sizes: dict[str, int | None] = {}
    model_columns = {(m._meta.table_name, f.column_name) for m in models for f in m._meta.sorted_fields}
    model_tables = {m._meta.table_name for m in models}
    present = set(tables(scratch))
    for f in pending:
        name = label(f.app, f.name, qualified)
        ignores = _ignores(f, f"{f.app} {f.path.name}" if qualified else f.path.name, problems)
        before = _column_types(scratch) if postgres else {}
        existing = live & present
        scratch.captured = []
        try:
            replay(scratch, [f])
            statements = scratch.writes()
        finally:
            scratch.captured = None
        after = set(tables(scratch))
        for table in sorted(after - present):
            created.setdefault(table, f.app)
        present = after
        if not postgres:
            continue
        checker = _Checker(name, existing, before, model_columns, model_tables)
        for rule, table, statement in checker.run(statements):
            if table not in sizes:
                sizes[table] = _rows(db, table)
            r = RULES[rule]
            findings.append(LintFinding(name, rule, table, sizes[table], statement.sql, r.why, r.recipe,
                                        statement.after_commit, ignores.get(rule)))
    return LintReport(findings, problems, [label(f.app, f.name, qualified) for f in pending],
                      "" if postgres else SQLITE_NOTE, created)


def _ignores(f: MigrationFile, where: str, problems: list[str]) -> dict[str, str]:
    raw = getattr(f.load(), "lint_ignore", {})
    if not isinstance(raw, dict):
        problems.append(f"{where}: lint_ignore must be a dict of rule name to reason, e.g. "
                        "{'backfill-in-transaction': 'the table holds 40 rows'} (got " + type(raw).__name__ + ")")
        return {}
    accepted: dict[str, str] = {}
    for rule, reason in raw.items():
        if rule not in RULES:
            problems.append(f"{where}: lint_ignore names {rule!r}, which is no lint rule (known: "
                            f"{', '.join(sorted(RULES))})")
        elif not isinstance(reason, str) or not reason.strip():
            problems.append(f"{where}: lint_ignore[{rule!r}] gives no reason: say why it is safe here, for the "
                            "reviewer")
        else:
            accepted[rule] = reason.strip()
    return accepted


def _rows(db: peewee.Database, table: str) -> int | None:
    estimate = scalar(db, "SELECT reltuples::bigint FROM pg_class WHERE relname = %s AND relkind = 'r' "
                          "AND relnamespace = current_schema()::regnamespace", (table,))
    if estimate is not None and estimate >= 0:
        return int(estimate)
    # Never analyzed: count, but never more than a million rows' worth.
    return int(scalar(db, f"SELECT count(*) FROM (SELECT 1 FROM {quote(table)} LIMIT 1000000) AS sample"))


def _column_types(scratch: peewee.Database) -> dict[tuple[str, str], str]:
    rows = fetchall(scratch, """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute AS a
        JOIN pg_class AS c ON c.oid = a.attrelid
        WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' AND a.attnum > 0
          AND NOT a.attisdropped""")
    return {(str(t), str(c)): str(kind) for t, c, kind in rows}


_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_NAME = rf"(?:{_IDENT}\.)?({_IDENT})"
_ALTER = re.compile(rf"^ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?{_NAME}\s*(.*)$", re.I | re.S)
_INDEX = re.compile(rf"^CREATE\s+(?:UNIQUE\s+)?INDEX\s+(CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(?:{_IDENT}\s+)?"
                    rf"ON\s+(?:ONLY\s+)?{_NAME}", re.I | re.S)
_UPDATE = re.compile(rf"(?:^|\)\s*|\bAS\s*\(\s*)UPDATE\s+(?:ONLY\s+)?{_NAME}\s+(?:AS\s+\w+\s+)?SET\b", re.I | re.S)
_DELETE = re.compile(rf"^(?:WITH\b.*?\)\s*)?DELETE\s+FROM\s+(?:ONLY\s+)?{_NAME}", re.I | re.S)
_DROP_TABLE = re.compile(r"^DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(.*?)(\s+(?:CASCADE|RESTRICT))?\s*$", re.I | re.S)
_LOCKING = re.compile(rf"^(?:LOCK\s+(?:TABLE\s+)?(?:ONLY\s+)?|"
                      rf"VACUUM\s+(?:\([^)]*\bFULL\b[^)]*\)|FULL(?:\s+(?:FREEZE|VERBOSE|ANALYZE))*)\s+|"
                      rf"CLUSTER\s+(?:VERBOSE\s+)?|REINDEX\s+(?:\([^)]*\)\s*)?TABLE\s+(?!CONCURRENTLY\b)){_NAME}",
                      re.I | re.S)
_VOLATILE = re.compile(r"\b(random|gen_random_uuid|uuid_generate_v[14]\w*|clock_timestamp|timeofday|nextval|"
                       r"txid_current|statement_timestamp)\s*\(|\b(small|big)?serial\b|\bGENERATED\s+ALWAYS\s+AS\s*\("
                       r"|\bGENERATED\s+(ALWAYS|BY\s+DEFAULT)\s+AS\s+IDENTITY\b", re.I)
_CHECK_NOT_NULL = re.compile(
    rf"ADD\s+CONSTRAINT\s+({_IDENT})\s+CHECK\s*\(\s*\(?\s*({_IDENT})\s+IS\s+NOT\s+NULL\s*\)?\s*\)", re.I)
_VALIDATE = re.compile(rf"VALIDATE\s+CONSTRAINT\s+({_IDENT})", re.I)
_SET_NOT_NULL = re.compile(rf"ALTER\s+(?:COLUMN\s+)?({_IDENT})\s+SET\s+NOT\s+NULL", re.I)
_TYPE = re.compile(rf"ALTER\s+(?:COLUMN\s+)?({_IDENT})\s+(?:SET\s+DATA\s+)?TYPE\s+([^,]+?)(?:\s+USING\b[^,]*)?"
                   r"(?:,|$)", re.I | re.S)
_RENAME_COLUMN = re.compile(rf"^RENAME\s+(?:COLUMN\s+)?(?!TO\b|CONSTRAINT\b)({_IDENT})\s+TO\s+", re.I)
_RENAME_TABLE = re.compile(r"^RENAME\s+TO\s+", re.I)
_DROP_COLUMN = re.compile(rf"DROP\s+(?:COLUMN\s+)?(?!CONSTRAINT\b|DEFAULT\b|NOT\b|EXPRESSION\b|IDENTITY\b)"
                          rf"(?:IF\s+EXISTS\s+)?({_IDENT})", re.I)
_ADD_COLUMN = re.compile(rf"ADD\s+(?:COLUMN\s+)?(?!CONSTRAINT\b|CHECK\b|FOREIGN\b|UNIQUE\b|PRIMARY\b|EXCLUDE\b)"
                         rf"(?:IF\s+NOT\s+EXISTS\s+)?({_IDENT})\s+(.*?)(?=,\s*(?:ADD|ALTER|DROP|VALIDATE|RENAME)\b|$)",
                         re.I | re.S)


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()


def _free_type_change(before: str | None, after: str) -> bool:
    """Widening a varchar, or varchar to text: no rewrite (PostgreSQL only checks the catalog)."""
    if before is None:
        return False
    old = re.match(r"character varying(?:\((\d+)\))?$", before)
    new = after.strip().lower()
    if old is None:
        return False
    if new in ("text", "varchar", "character varying"):
        return True
    widened = re.match(r"(?:character varying|varchar)\s*\((\d+)\)$", new)
    return bool(widened and old.group(1) and int(widened.group(1)) >= int(old.group(1)))


class _Checker:
    """The rules, applied to one migration's captured statements in order."""

    def __init__(self, migration: str, existing: set[str], types: dict[tuple[str, str], str],
                 model_columns: set[tuple[str, str]], model_tables: set[str]) -> None:
        self.migration = migration
        self.existing = existing
        self.types = types
        self.model_columns = model_columns
        self.model_tables = model_tables
        self.not_null_checks: dict[str, tuple[str, str]] = {}  # constraint -> (table, column)
        self.proven_not_null: set[tuple[str, str]] = set()
        self.altered_in_transaction: set[str] = set()

    def run(self, statements: Iterable[Captured]) -> Iterable[tuple[str, str, Captured]]:
        for statement in statements:
            sql = " ".join(statement.sql.split())
            for rule, table in self._check(sql, statement.after_commit):
                if table in self.existing:
                    yield rule, table, statement

    def _check(self, sql: str, after_commit: bool) -> Iterable[tuple[str, str]]:
        index = _INDEX.match(sql)
        if index:
            if not index.group(1):
                yield "non-concurrent-index", _unquote(index.group(2))
            return
        for found in _UPDATE.finditer(sql):
            if not after_commit:
                yield "backfill-in-transaction", _unquote(found.group(1))
        delete = _DELETE.match(sql)
        if delete and not after_commit:
            yield "backfill-in-transaction", _unquote(delete.group(1))
        drop = _DROP_TABLE.match(sql)
        if drop:
            cascade = bool(drop.group(2)) and "CASCADE" in drop.group(2).upper()
            for name in re.findall(_NAME, drop.group(1)):
                table = _unquote(name)
                if table in self.model_tables:
                    yield "drop-table-in-use", table
                if cascade:
                    yield "cascade", table
            return
        locking = _LOCKING.match(sql)
        if locking:
            yield "full-table-lock", _unquote(locking.group(1))
            return
        alter = _ALTER.match(sql)
        if alter:
            yield from self._alter(_unquote(alter.group(1)), alter.group(2), after_commit)

    def _alter(self, table: str, actions: str, after_commit: bool) -> Iterable[tuple[str, str]]:
        validates = [_unquote(v) for v in _VALIDATE.findall(actions)]
        if validates and not after_commit and table in self.altered_in_transaction:
            yield "validate-in-same-transaction", table
        for name in validates:
            if name in self.not_null_checks:
                self.proven_not_null.add(self.not_null_checks[name])
        for constraint, column in _CHECK_NOT_NULL.findall(actions):
            if re.search(r"\bNOT\s+VALID\b", actions, re.I):
                self.not_null_checks[_unquote(constraint)] = (table, _unquote(column))
        if re.search(r"\bADD\s+(?:CONSTRAINT\s+\S+\s+)?(?:CHECK|FOREIGN\s+KEY)\b", actions, re.I) and not re.search(
                r"\bNOT\s+VALID\b", actions, re.I):
            yield "constraint-without-not-valid", table
        if re.search(r"\bADD\s+(?:CONSTRAINT\s+\S+\s+)?(?:UNIQUE|PRIMARY\s+KEY)\b(?!.*\bUSING\s+INDEX\b)", actions,
                     re.I | re.S):
            yield "unique-constraint-under-lock", table
        for _column, definition in _ADD_COLUMN.findall(actions):
            if re.search(r"\bREFERENCES\b", definition, re.I):
                yield "constraint-without-not-valid", table
            if re.search(r"\bCHECK\b", definition, re.I):
                yield "constraint-without-not-valid", table
            if re.search(r"\b(UNIQUE|PRIMARY\s+KEY)\b", definition, re.I):
                yield "unique-constraint-under-lock", table
            if _VOLATILE.search(definition):
                yield "volatile-default", table
            elif re.search(r"\bNOT\s+NULL\b", definition, re.I) and not re.search(r"\bDEFAULT\b", definition, re.I):
                yield "not-null-without-default", table
        for column in _SET_NOT_NULL.findall(actions):
            if (table, _unquote(column)) not in self.proven_not_null:
                yield "set-not-null", table
        for column, kind in _TYPE.findall(actions):
            if not _free_type_change(self.types.get((table, _unquote(column))), kind):
                yield "column-type-change", table
        if _RENAME_COLUMN.match(actions):
            yield "rename-column", table
        if _RENAME_TABLE.match(actions):
            yield "rename-table", table
        for column in _DROP_COLUMN.findall(actions):
            if (table, _unquote(column)) in self.model_columns:
                yield "drop-column-in-use", table
        if re.search(r"\bDROP\b.*\bCASCADE\b", actions, re.I | re.S):
            yield "cascade", table
        if re.search(r"\bSET\s+(TABLESPACE|LOGGED|UNLOGGED)\b", actions, re.I):
            yield "full-table-lock", table
        if not after_commit:
            self.altered_in_transaction.add(table)
