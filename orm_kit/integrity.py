"""Integrity errors from the database, as typed errors that name the table, the field(s) and what they refer to.

Validation runs before any SQL, but the database has the last word: a unique index, a foreign key, a NOT
NULL column or a CHECK constraint can still refuse a write (a race, a row validation cannot see, a raw
``update()``, a constraint only the schema has). peewee reports those as a bare ``IntegrityError``, and
SQLite's messages say little ("FOREIGN KEY constraint failed" names neither table nor column).
:func:`translate` turns them into :class:`~orm_kit.errors.UniqueViolationError`,
:class:`~orm_kit.errors.ForeignKeyViolationError`, :class:`~orm_kit.errors.NotNullViolationError` and
:class:`~orm_kit.errors.CheckViolationError`, each still a :class:`peewee.IntegrityError`::

    try:
        Service.create(name="checkout-api", tier="low", owner=9999)
    except ForeignKeyViolationError as error:
        error.table, error.fields, error.referenced_table, error.value   # 'service', ('owner',), 'team', 9999
        str(error)   # Service.owner = 9999 refers to a team that does not exist (service.owner_id -> team.id); ...

Every write path of :class:`~orm_kit.model.Model` and :class:`~orm_kit.repository.Repository` calls it, and
:func:`~orm_kit.transactions.transaction` calls :func:`at_commit` for a deferred foreign key broken at COMMIT.

Where the answer comes from:

* PostgreSQL says it all in the error's diagnostics (SQLSTATE, table, column, constraint, and the detail's
  ``(columns)=(values)``), whatever the server's language; no query is sent (the transaction is aborted).
* SQLite names the table and column of a NOT NULL or UNIQUE violation, and the constraint (or its text) of a
  CHECK; for a foreign key it says nothing, so the rows the statement tried to write are checked against
  their parents (one query per foreign key, over the distinct values), and a DELETE or key UPDATE is checked
  for child rows still referring to the rows it aimed at (``PRAGMA foreign_key_list`` of every table). A
  failed statement leaves SQLite's transaction usable, so these queries run where it failed. A deferred
  foreign key broken at COMMIT is found with ``PRAGMA foreign_key_check`` before the transaction rolls back.

Anything else (an error this module does not recognise) comes back unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import peewee

from orm_kit import dialect
from orm_kit._sql import closing_paren, fetchall, quote
from orm_kit.errors import (
    CheckViolationError,
    ForeignKeyViolationError,
    NotNullViolationError,
    UniqueViolationError,
)

__all__ = ["at_commit", "checks_of", "translate"]

_UNIQUE, _FOREIGN_KEY, _NOT_NULL, _CHECK = "23505", "23503", "23502", "23514"
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)")
_SQLITE_NOT_NULL = re.compile(r"NOT NULL constraint failed: (.+)")
_SQLITE_CHECK = re.compile(r"CHECK constraint failed: (.+)", re.S)
_SQLITE_FOREIGN_KEY = "FOREIGN KEY constraint failed"
_PG_DETAIL = re.compile(r"\((.+?)\)=\((.*)\)")
_QUOTES = '"\u00ab\u00bb\u201c\u201d\u201e'  # "table", and German, French, ... quotation marks
_QUOTED_AT_END = re.compile(rf"[{_QUOTES}]([^{_QUOTES}]+)[{_QUOTES}]\W*$")
_IDENTIFIER = re.compile(r'"((?:[^"]|"")*)"|`([^`]*)`|\[([^\]]*)\]|\'(?:[^\']|\'\')*\'|([A-Za-z_][A-Za-z0-9_$]*)')
_SQL_WORDS = frozenset({"and", "or", "not", "is", "null", "in", "between", "like", "glob", "check", "constraint",
                        "true", "false", "case", "when", "then", "else", "end", "cast", "as", "escape", "collate"})
_MAX_SQLITE_PARAMETERS = 999  # the oldest limit: IN lists of the error path stay under every build's


@dataclass(frozen=True)
class Check:
    """A CHECK constraint of a table: its name (None when unnamed), its expression, and the columns it reads."""

    name: str | None
    expression: str
    columns: tuple[str, ...]


def translate(model: type[peewee.Model], exc: peewee.IntegrityError, known: Mapping[Any, Any] | Sequence[Any] = (),
              *, columns: Sequence[Any] | None = None, where: peewee.Node | None = None,
              deleting: bool = False, db: peewee.Database | None = None, first_row: int = 0) -> Exception:
    """``exc`` (raised by a write to ``model``'s table) as a typed error; unchanged when it is none of the four.

    ``known``: what the statement wrote, one row (``{field or name: value}``) or several (mappings, or
    tuples in the order of ``columns``; ``first_row``: the number of the first, when the statement wrote one
    chunk of a longer list); ``where``: the rows an UPDATE or DELETE aimed at; ``deleting``: it was a DELETE.
    They only sharpen the message: each may be left out.
    """
    rows = _Rows(_rows(model, known, columns))
    rows.first = first_row
    original = _driver_error(exc)
    state = getattr(original, "sqlstate", None)
    database = db if db is not None else dialect.unwrap(model._meta.database)
    try:
        if state is not None:
            return _postgres(model, exc, original, state, rows, deleting) or exc
        return _sqlite(model, exc, rows, where, deleting, database) or exc
    except peewee.DatabaseError:
        return exc  # looking closer failed (a closed connection, say): the plain error is better than a new one


def at_commit(db: peewee.Database, exc: peewee.IntegrityError) -> Exception:
    """A COMMIT refused by a deferred constraint, as a typed error; call it before the transaction rolls back."""
    original = _driver_error(exc)
    state = getattr(original, "sqlstate", None)
    try:
        if state is not None:
            return _postgres(None, exc, original, state, [], False, at_commit=True) or exc
        if _SQLITE_FOREIGN_KEY in str(exc) and dialect.is_sqlite(db):
            return _sqlite_deferred(db) or exc
    except peewee.DatabaseError:
        pass
    return exc


# --- what the statement wrote -------------------------------------------------------------------------------

def _rows(model: type[peewee.Model], known: Mapping[Any, Any] | Sequence[Any],
          columns: Sequence[Any] | None) -> list[dict[str, Any]]:
    """The rows a statement wrote, each as ``{field name: value}`` (only the model's own fields)."""
    combined = model._meta.combined
    given = [known] if isinstance(known, Mapping) else list(known) if isinstance(known, list | tuple) else []
    names: list[str | None] = [_name(combined, c) for c in columns] if columns else []
    if not names and any(not isinstance(row, Mapping | peewee.Model) for row in given):
        fields = model._meta.sorted_fields
        names = [f.name for f in (fields[1:] if model._meta.auto_increment else fields)]
    out = []
    for row in given:
        if isinstance(row, peewee.Model):
            row = row.__data__
        if isinstance(row, Mapping):
            pairs = [(_name(combined, key), value) for key, value in row.items()]
        elif isinstance(row, list | tuple):
            pairs = list(zip(names, row, strict=False))
        else:
            continue
        out.append({name: value for name, value in pairs if name is not None})
    return out


class _Rows(list[dict[str, Any]]):
    """The rows a statement wrote, and the number of the first (a chunk of a longer list starts past 0)."""

    first = 0

    def number(self, index: int | None) -> int | None:
        """The row number an error shows for ``index`` (None: one row, or not known)."""
        return None if index is None or (len(self) < 2 and not self.first) else self.first + index


def _name(combined: Mapping[str, peewee.Field], key: Any) -> str | None:
    if isinstance(key, peewee.Field):
        return str(key.name) if combined.get(key.name) is key else None  # identity: `==` would build SQL
    if isinstance(key, str) and key in combined:
        return str(combined[key].name)
    return None


def _driver_error(exc: BaseException) -> BaseException | None:
    return getattr(exc, "orig", None) or exc.__context__


def _fields_by_column(model: type[peewee.Model] | None) -> dict[str, peewee.Field]:
    return {} if model is None else {f.column_name: f for f in model._meta.sorted_fields}


def _field_names(model: type[peewee.Model] | None, columns: Sequence[str]) -> tuple[str, ...]:
    by_column = _fields_by_column(model)
    return tuple(by_column[c].name if c in by_column else c for c in columns)


def _shown(value: Any) -> str:
    return repr(str(value)) if not isinstance(value, int | float | bool) or isinstance(value, bool) else str(value)


def _number(rows: Sequence[Any], index: int | None) -> int | None:
    return rows.number(index) if isinstance(rows, _Rows) else index


def _which_row(rows: Sequence[Mapping[str, Any]], names: Sequence[str], values: Sequence[Any]) -> int | None:
    """Among several rows, the one whose ``names`` hold ``values`` (compared as text); when several do, the
    second (a duplicate within the statement: the first went in, the second clashed)."""
    if len(rows) < 2:
        return 0 if rows else None
    wanted = [str(v) for v in values]
    found = [index for index, row in enumerate(rows)
             if all(name in row for name in names) and [str(_key_of(row[n])) for n in names] == wanted]
    return found[1] if len(found) > 1 else found[0] if found else None


def _key_of(value: Any) -> Any:
    """A value as the database stores it for a key: a related row by its primary key."""
    return value._pk if isinstance(value, peewee.Model) else value  # type: ignore[attr-defined]  # _pk: not in the stubs


# --- PostgreSQL: everything is in the diagnostics ---------------------------------------------------------------

def _postgres(model: type[peewee.Model] | None, exc: peewee.IntegrityError, original: Any, state: str,
              rows: list[dict[str, Any]], deleting: bool, *, at_commit: bool = False) -> Exception | None:
    diag = getattr(original, "diag", None)
    table = getattr(diag, "table_name", None) or (str(model._meta.table_name) if model is not None else "")
    constraint = getattr(diag, "constraint_name", None)
    detail = _PG_DETAIL.search(getattr(diag, "message_detail", None) or "")
    detail_columns = [c.strip().strip('"') for c in detail.group(1).split(",")] if detail else []
    detail_values = _split_values(detail.group(2)) if detail else []
    mine = model if model is not None and table == model._meta.table_name else None
    if state == _UNIQUE and model is not None:
        columns = _unique_columns(model).get(constraint or "", []) or detail_columns
        value = detail_values[0] if detail and len(columns) == 1 and len(detail_values) == 1 else None
        names = _field_names(model, columns)
        return _unique(model, names, value, rows,
                       row=_number(rows, _which_row(rows, names, detail_values) if detail else None))
    if state == _NOT_NULL:
        column = getattr(diag, "column_name", None) or ""
        return _not_null(mine, table, column, _number(rows, _which_row_missing(rows, _field_names(mine, [column]))))
    if state == _CHECK:
        checks = checks_of(mine) if mine is not None else []
        found = [c for c in checks if c.name == constraint] or [
            c for name, c in _postgres_names(table, checks) if name == constraint]
        return _check(mine, table, constraint, found[0] if found else None, rows)
    if state == _FOREIGN_KEY:
        return _postgres_foreign_key(model, table, constraint, detail_columns, detail_values, rows, deleting,
                                     at_commit, getattr(diag, "message_detail", None) or "")
    return None


def _split_values(text: str) -> list[str]:
    # "(a, b)=(1, x)": PostgreSQL joins the values with ", "; a value holding ", " is ambiguous, and rare.
    return [part.strip() for part in text.split(", ")]


def _postgres_foreign_key(model: type[peewee.Model] | None, table: str, constraint: str | None,
                          detail_columns: list[str], detail_values: list[str], rows: list[dict[str, Any]],
                          deleting: bool, at_commit: bool, detail_text: str) -> Exception:
    """23503: ``table`` is always the referencing table; the detail's columns say which side the statement hit."""
    child = None
    if model is not None:
        candidates = [f for f in model._meta.sorted_fields if isinstance(f, peewee.ForeignKeyField)] + list(
            model._meta.backrefs)
        child = next((f for f in candidates if f.model._meta.table_name == table
                      and (_fk_name(f) == constraint or constraint is None)), None)
    if child is not None:
        referring_columns = [child.column_name]
        referenced_table = str(child.rel_model._meta.table_name)
        referenced_columns = [child.rel_field.column_name]
        names: tuple[str, ...] = (child.name,)
        child_model: type[peewee.Model] | None = child.model
    else:  # a table no model of this write knows: the constraint's default name says the column
        prefix = f"{table}_"
        guess = constraint[len(prefix):-len("_fkey")] if constraint and constraint.startswith(prefix) \
            and constraint.endswith("_fkey") else None
        referring_columns = [guess] if guess else []
        named = _QUOTED_AT_END.search(detail_text)  # the table a missing row was looked for, in any language
        referenced_table = named.group(1) if named else ""
        referenced_columns = []
        names = tuple(referring_columns)
        child_model = None
    # "is not present in table": the detail names the referring columns; "is still referenced": the referenced ones.
    still_referenced = deleting or (bool(detail_columns) and detail_columns != referring_columns
                                    and (not referenced_columns or detail_columns == referenced_columns))
    if child is None and still_referenced and model is not None:
        referenced_table = str(model._meta.table_name)
    value: Any = detail_values[0] if len(detail_values) == 1 else (tuple(detail_values) or None)
    row = None if still_referenced else _which_row(rows, names, detail_values)
    written = rows[row] if row is not None else rows[0] if len(rows) == 1 else {}
    if not still_referenced and names and names[0] in written:
        value = _key_of(written[names[0]])  # the value as given, not as the server printed it
    elif still_referenced and child is not None and isinstance(value, str):
        value = _python(child.rel_field, value)
    return _foreign_key(child_model, table, names, referring_columns, referenced_table, referenced_columns, value,
                        still_referenced, constraint, row=_number(rows, row), at_commit=at_commit)


def _python(field: peewee.Field, text: str) -> Any:
    try:
        return field.python_value(text)  # type: ignore[no-untyped-call]  # peewee untyped
    except (TypeError, ValueError):
        return text


def _fk_name(field: peewee.ForeignKeyField) -> str:
    return field.constraint_name or f"{field.model._meta.table_name}_{field.column_name}_fkey"


def _postgres_names(table: str, checks: Sequence[Check]) -> Iterator[tuple[str, Check]]:
    """Each unnamed CHECK with the name PostgreSQL gives it: ``<table>_<column>_check`` when it reads one
    column, else ``<table>_check``; a taken name gets 1, 2, ... appended (ChooseConstraintName)."""
    taken = {c.name for c in checks if c.name}
    for check in checks:
        if check.name:
            continue
        base = f"{table}_{check.columns[0]}_check" if len(check.columns) == 1 else f"{table}_check"
        name, suffix = base, 0
        while name in taken:
            suffix += 1
            name = f"{base}{suffix}"
        taken.add(name)
        yield name, check


def _unique_columns(model: type[peewee.Model]) -> dict[str, list[str]]:
    """Constraint or index name -> column names, for the unique ones PostgreSQL may report."""
    meta = model._meta
    found = {f"{meta.table_name}_pkey": [f.column_name for f in meta.get_primary_keys()]}  # type: ignore[no-untyped-call]  # peewee untyped
    for index in meta.fields_to_index():
        if index._unique:
            found[index._name] = [getattr(e, "column_name", str(e)) for e in index._expressions]
    return found


# --- SQLite: the message names less, the database answers the rest ----------------------------------------------

def _sqlite(model: type[peewee.Model], exc: peewee.IntegrityError, rows: list[dict[str, Any]],
            where: peewee.Node | None, deleting: bool, db: peewee.Database | None) -> Exception | None:
    text = str(exc)
    unique = _SQLITE_UNIQUE.search(text)
    if unique:
        columns = [c.strip().rsplit(".", 1)[-1] for c in unique.group(1).split(",")]
        names = _field_names(model, columns)
        row = _sqlite_duplicate_row(model, names, rows, db)
        value = rows[row].get(names[0]) if row is not None and len(names) == 1 else (
            rows[0].get(names[0]) if len(rows) == 1 and len(names) == 1 else None)
        return _unique(model, names, value, rows, row=_number(rows, row))
    not_null = _SQLITE_NOT_NULL.search(text)
    if not_null:
        table, _, column = not_null.group(1).strip().rpartition(".")
        mine = model if table == model._meta.table_name else None
        return _not_null(mine, table, column, _number(rows, _which_row_missing(rows, _field_names(mine, [column]))))
    check = _SQLITE_CHECK.search(text)
    if check:
        table = str(model._meta.table_name)
        said = check.group(1).strip()
        checks = _sqlite_checks(db, table) if db is not None else checks_of(model)
        found = _match_sqlite_check(said, checks)
        return _check(model, table, found.name if found else said, found, rows)
    if _SQLITE_FOREIGN_KEY in text and db is not None and dialect.is_sqlite(db):
        return _sqlite_foreign_key(model, rows, where, deleting, db)
    return None


def _sqlite_duplicate_row(model: type[peewee.Model], names: Sequence[str], rows: list[dict[str, Any]],
                          db: peewee.Database | None) -> int | None:
    """Of several rows, the first that repeats an earlier one's unique value, or that the table already has."""
    if len(rows) < 2 or not all(n in model._meta.fields for n in names):
        return 0 if len(rows) == 1 else None
    seen: set[tuple[Any, ...]] = set()
    for index, row in enumerate(rows):
        if not all(n in row for n in names):
            continue
        key = tuple(str(_key_of(row[n])) for n in names)
        if key in seen:
            return index
        seen.add(key)
    if db is None or not dialect.is_sqlite(db):
        return None
    fields = [model._meta.fields[n] for n in names]
    for index, row in enumerate(rows):
        if all(n in row for n in names):
            query = model.select(peewee.SQL("1")).where(*[f == f.db_value(_key_of(row[f.name])) for f in fields])
            if query.exists():
                return index
    return None


def _which_row_missing(rows: list[dict[str, Any]], names: Sequence[str]) -> int | None:
    if len(rows) < 2 or not names:
        return 0 if len(rows) == 1 else None
    return next((i for i, row in enumerate(rows) if row.get(names[0]) is None), None)


def _sqlite_checks(db: peewee.Database, table: str) -> list[Check]:
    """The CHECK constraints of ``table`` as SQLite stored them (its CREATE TABLE text)."""
    found = fetchall(db, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [table])
    if not found or not found[0][0]:
        return []
    columns = {str(row[1]) for row in fetchall(db, f"PRAGMA table_info({quote(table)})")}
    return _parse_checks(str(found[0][0]), columns)


def checks_of(model: type[peewee.Model]) -> list[Check]:
    """The CHECK constraints ``model`` declares: its fields' (in field order), then its ``Meta.constraints``."""
    columns = {f.column_name for f in model._meta.sorted_fields}
    nodes = [node for field in model._meta.sorted_fields for node in (field.constraints or ())]
    texts = [_text(node) for node in [*nodes, *(model._meta.constraints or ())]]
    return [check for text in texts for check in _parse_checks(text, columns)]


def _text(node: Any) -> str:
    if not isinstance(node, peewee.Node):
        return str(node)
    return str(peewee.Context().sql(node).query()[0])  # type: ignore[no-untyped-call]  # untyped in the stubs


def _parse_checks(sql: str, columns: set[str]) -> list[Check]:
    """Every ``[CONSTRAINT name] CHECK (expression)`` in ``sql``, with the ``columns`` each expression reads."""
    found = []
    for match in re.finditer(r"\bCHECK\s*\(", sql, re.I):
        if _inside_quotes(sql, match.start()):
            continue
        expression = _balanced(sql, match.end() - 1)
        if expression is None:
            continue
        named = re.search(r'CONSTRAINT\s+("(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\]|\w+)\s*$', sql[:match.start()], re.I)
        name = _unquote(named.group(1)) if named else None
        read = tuple(dict.fromkeys(ident for ident in _identifiers(expression) if ident in columns))
        found.append(Check(name, expression.strip(), read))
    return found


def _inside_quotes(sql: str, position: int) -> bool:
    return sql.count("'", 0, position) % 2 == 1 or sql.count('"', 0, position) % 2 == 1


def _balanced(sql: str, start: int) -> str | None:
    """The text inside the parenthesis opening at ``start`` (quotes respected)."""
    end = closing_paren(sql, start)
    return None if end is None else sql[start + 1:end]


def _unquote(identifier: str) -> str:
    if identifier[:1] in "\"`[":
        return identifier[1:-1].replace('""', '"')
    return identifier


def _identifiers(expression: str) -> list[str]:
    out = []
    for match in _IDENTIFIER.finditer(expression):
        quoted = match.group(1) if match.group(1) is not None else match.group(2) or match.group(3)
        if quoted is not None:
            out.append(quoted.replace('""', '"'))
        elif match.group(4) and match.group(4).lower() not in _SQL_WORDS:
            out.append(match.group(4))
    return out


def _normal(sql: str) -> str:
    return re.sub(r"\s+", "", sql.replace('"', "").replace("`", "")).lower()


def _match_sqlite_check(said: str, checks: Sequence[Check]) -> Check | None:
    """The CHECK SQLite's message means: by name, by its text, or (SQLite's habit for an expression that starts
    with a quoted name) by that first name."""
    for test in (lambda c: c.name == said, lambda c: _normal(c.expression) == _normal(said),
                 lambda c: not c.name and (_identifiers(c.expression)[:1] == [said])):
        matches = [c for c in checks if test(c)]
        if len(matches) == 1:
            return matches[0]
        if matches:  # several start with the same name: the columns of all of them, the first one's text
            columns = tuple(dict.fromkeys(col for c in matches for col in c.columns))
            return Check(None, " / ".join(c.expression for c in matches), columns)
    return None


@dataclass(frozen=True)
class _ForeignKey:
    table: str
    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]
    on_delete: str
    on_update: str


def _foreign_keys(db: peewee.Database, table: str) -> list[_ForeignKey]:
    """``table``'s foreign keys as SQLite has them (``PRAGMA foreign_key_list``), composite ones grouped."""
    grouped: dict[int, list[tuple[Any, ...]]] = {}
    for row in fetchall(db, f"PRAGMA foreign_key_list({quote(table)})"):
        grouped.setdefault(int(row[0]), []).append(row)
    out = []
    for parts in grouped.values():
        parts.sort(key=lambda r: int(r[1]))
        parent = str(parts[0][2])
        to = [p[4] for p in parts]
        if any(t is None for t in to):  # REFERENCES parent with no column: its primary key
            to = [str(r[1]) for r in fetchall(db, f"PRAGMA table_info({quote(parent)})") if int(r[5])]
        out.append(_ForeignKey(table, tuple(str(p[3]) for p in parts), parent, tuple(str(t) for t in to),
                               str(parts[0][6]).upper(), str(parts[0][5]).upper()))
    return out


def _sqlite_foreign_key(model: type[peewee.Model], rows: list[dict[str, Any]], where: peewee.Node | None,
                        deleting: bool, db: peewee.Database) -> Exception:
    table = str(model._meta.table_name)
    if not deleting:
        missing = _missing_parent(model, rows, db)
        if missing is not None:
            return missing
    if where is not None or deleting:
        held = _still_referenced(model, where, deleting, db)
        if held is not None:
            return held
    return ForeignKeyViolationError(
        f"{model.__name__}: the database refused the write to {table}: a foreign key of {table}, or of a table "
        "referring to it, would point at a row that does not exist (check the values of its references, or the "
        "rows that refer to the ones changed)", table=table, model=model.__name__)


def _missing_parent(model: type[peewee.Model], rows: list[dict[str, Any]], db: peewee.Database) -> Exception | None:
    """The first written value of a foreign key whose parent row does not exist."""
    table = str(model._meta.table_name)
    by_column = _fields_by_column(model)
    for fk in _foreign_keys(db, table):
        fields = [by_column.get(c) for c in fk.columns]
        if any(f is None for f in fields):
            continue
        names = [f.name for f in fields if f is not None]
        wanted: dict[tuple[Any, ...], int] = {}
        for index, row in enumerate(rows):
            if all(n in row for n in names):
                values = tuple(_db_value(f, row[f.name]) for f in fields if f is not None)
                if None not in values:
                    wanted.setdefault(values, index)
        if fk.parent == table:  # a row of the same statement may be the parent
            keys = [by_column.get(c) for c in fk.parent_columns]
            for row in rows:
                if all(k is not None and k.name in row for k in keys):
                    wanted.pop(tuple(_db_value(k, row[k.name]) for k in keys if k is not None), None)
        if not wanted:
            continue
        present = _present(db, fk.parent, fk.parent_columns, list(wanted))
        for values, index in wanted.items():
            if values not in present:
                value = values[0] if len(values) == 1 else values
                return _foreign_key(model, table, tuple(names), list(fk.columns), fk.parent, list(fk.parent_columns),
                                    value, False, None, row=_number(rows, index))
    return None


def _db_value(field: peewee.Field, value: Any) -> Any:
    value = _key_of(value)
    if isinstance(field, peewee.ForeignKeyField):
        return field.rel_field.db_value(value)
    return field.db_value(value)  # type: ignore[no-untyped-call]  # untyped in the stubs


def _present(db: peewee.Database, table: str, columns: Sequence[str], wanted: list[tuple[Any, ...]]
             ) -> set[tuple[Any, ...]]:
    """Which of the ``wanted`` key values ``table`` has in ``columns``."""
    found: set[tuple[Any, ...]] = set()
    names = ", ".join(quote(c) for c in columns)
    per = max(1, _MAX_SQLITE_PARAMETERS // len(columns))
    one = "(" + ", ".join("?" for _ in columns) + ")"
    for start in range(0, len(wanted), per):
        chunk = wanted[start:start + per]
        sql = (f"SELECT {names} FROM {quote(table)} WHERE ({names}) IN (VALUES {', '.join(one for _ in chunk)})"
               if len(columns) > 1 else f"SELECT {names} FROM {quote(table)} WHERE {names} IN "
                                        f"({', '.join('?' for _ in chunk)})")
        found.update(tuple(row) for row in fetchall(db, sql, [v for values in chunk for v in values]))
    # SQLite compares by type affinity; the values sent were already the columns' own (db_value).
    return found


def _still_referenced(model: type[peewee.Model], where: peewee.Node | None, deleting: bool,
                      db: peewee.Database) -> Exception | None:
    """A table with rows that still refer to the rows a DELETE (or a key UPDATE) aimed at."""
    table = str(model._meta.table_name)
    every = [str(r[0]) for r in fetchall(db, "SELECT name FROM sqlite_master WHERE type = 'table' "
                                             "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")]
    by_column = _fields_by_column(model)
    for other in every:
        for fk in _foreign_keys(db, other):
            if fk.parent != table:
                continue
            if deleting and fk.on_delete in ("CASCADE", "SET NULL", "SET DEFAULT"):
                continue  # it follows the delete (a SET NULL on a NOT NULL column fails as NOT NULL instead)
            keys = [by_column.get(c) for c in fk.parent_columns]
            if any(k is None for k in keys):
                continue
            aimed = model.select(*[k for k in keys if k is not None])
            if where is not None:
                aimed = aimed.where(where)
            inner, params = aimed.sql()
            names = ", ".join(quote(c) for c in fk.columns)
            found = fetchall(db, f"SELECT {names} FROM {quote(other)} WHERE ({names}) IN ({inner}) LIMIT 1", params)
            if found:
                value = found[0][0] if len(found[0]) == 1 else tuple(found[0])
                child_names = tuple(fk.columns)
                return _foreign_key(None, other, child_names, list(fk.columns), table, list(fk.parent_columns),
                                    value, True, None, deleting=deleting, action=fk.on_delete if deleting
                                    else fk.on_update)
    return None


def _sqlite_deferred(db: peewee.Database) -> Exception | None:
    """At a refused COMMIT, still inside the transaction: the first row ``PRAGMA foreign_key_check`` finds."""
    found = fetchall(db, "PRAGMA foreign_key_check")
    if not found:
        return None
    table, rowid, parent, number = str(found[0][0]), found[0][1], str(found[0][2]), int(found[0][3])
    keys = _foreign_keys(db, table)
    by_id = {int(r[0]): r for r in fetchall(db, f"PRAGMA foreign_key_list({quote(table)})")}
    fk = next((k for k in keys if by_id.get(number) is not None and k.columns[0] == str(by_id[number][3])), None)
    columns = list(fk.columns) if fk else []
    value: Any = None
    if fk is not None and rowid is not None:
        got = fetchall(db, f"SELECT {', '.join(quote(c) for c in columns)} FROM {quote(table)} WHERE rowid = ?",
                       [rowid])
        if got:
            value = got[0][0] if len(columns) == 1 else tuple(got[0])
    return _foreign_key(None, table, tuple(columns), columns, parent, list(fk.parent_columns) if fk else [], value,
                        False, None, at_commit=True)


# --- the errors ----------------------------------------------------------------------------------------------

def _unique(model: type[peewee.Model], names: Sequence[str], value: Any, rows: list[dict[str, Any]], *,
            row: int | None) -> Exception:
    if not names:
        return UniqueViolationError(model.__name__, {"(unknown)": ["has already been taken"]}, row=row)
    if len(names) == 1:
        if value is None and len(rows) == 1:
            value = rows[0].get(names[0])
        value = _key_of(value)
        shown = f" ({str(value)!r})" if value is not None and not isinstance(value, peewee.Node) else ""
        message = f"has already been taken{shown}; choose another value"
    else:
        message = f"has already been taken: {' and '.join(names)} must be unique together"
    return UniqueViolationError(model.__name__, {names[-1]: [message]}, row=row)


def _where(model: type[peewee.Model] | None, table: str, row: int | None) -> str:
    subject = model.__name__ if model is not None else f"table {table}"
    return f"{subject} row {row}" if row is not None else subject


def _not_null(model: type[peewee.Model] | None, table: str, column: str, row: int | None) -> Exception:
    name = _field_names(model, [column])[0]
    return NotNullViolationError(
        f"{_where(model, table, row)}: {name} can't be blank: column {table}.{column} is NOT NULL in the database "
        f"(give {name} a value; if it may be empty, make the field null=True and migrate)",
        table=table, fields=(name,), model=model.__name__ if model else None, row=row,
        errors={name: ["can't be blank (the database's NOT NULL constraint)"]})


def _check(model: type[peewee.Model] | None, table: str, constraint: str | None, check: Check | None,
           rows: list[dict[str, Any]]) -> Exception:
    columns = check.columns if check else ()
    names = _field_names(model, columns)
    values = rows[0] if len(rows) == 1 else {}
    given = ", ".join(f"{n} = {_shown(values[n])}" for n in names if n in values and values[n] is not None)
    label = f"check constraint {constraint!r}" if constraint else "a check constraint"
    what = f"CHECK ({check.expression})" if check else "its condition"
    fields = f" (on {', '.join(names)})" if names else ""
    message = (f"{_where(model, table, None)}: the database refused the row: {label} of table {table}{fields} "
               f"failed: {what} is false" + (f" for {given}" if given else "") +
               "; change the values so that it holds")
    return CheckViolationError(message, table=table, fields=names, constraint=constraint,
                               model=model.__name__ if model else None,
                               errors={n: [f"breaks the database's {what}"] for n in names})


def _foreign_key(model: type[peewee.Model] | None, table: str, names: tuple[str, ...], columns: list[str],
                 referenced_table: str, referenced_columns: list[str], value: Any, still_referenced: bool,
                 constraint: str | None, *, row: int | None = None, at_commit: bool = False, deleting: bool = True,
                 action: str | None = None) -> Exception:
    to = f"{referenced_table}.{', '.join(referenced_columns)}" if referenced_columns else referenced_table
    link = (f"{table}.{', '.join(columns)} -> {to}" if columns and referenced_table
            else f"constraint {constraint}" if constraint else "a foreign key")
    when = " at COMMIT (a deferred foreign key)" if at_commit else ""
    if still_referenced:
        verb = "delete" if deleting else "change the key of"
        of = f" {_shown(value)}" if value is not None and not isinstance(value, tuple) else ""
        rule = f", ON {'DELETE' if deleting else 'UPDATE'} {action}" if action else ""
        message = (f"cannot {verb} {referenced_table or 'the row'}{of}{when}: {table} rows still refer to it "
                   f"({link}{rule}); delete those {table} rows or point them elsewhere first")
        errors: dict[str, list[str]] = {}
    else:
        subject = (f"{model.__name__}.{names[0]}" if model is not None and names else
                   f"{table}.{', '.join(columns)}" if columns else f"a row of {table}")
        shown = f" = {_shown(value)}" if value is not None and not isinstance(value, tuple) else (
            f" = {value!r}" if value is not None else "")
        at = f" (row {row})" if row is not None else ""
        target = referenced_table or "row"
        message = (f"{subject}{shown}{at} refers to a {target} that does not exist{when} ({link}); create that "
                   f"{referenced_table + ' ' if referenced_table else ''}row first, or refer to one that exists")
        errors = {n: [f"refers to a {target} that does not exist" + (f" ({_shown(value)})" if value is not None
                                                                        and not isinstance(value, tuple) else "")]
                  for n in names[:1]}
    return ForeignKeyViolationError(message, table=table, fields=names, constraint=constraint,
                                    model=model.__name__ if model else None, row=row, errors=errors,
                                    referenced_table=referenced_table, value=value,
                                    still_referenced=still_referenced)
