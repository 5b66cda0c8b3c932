"""The repository base: typed, thin data access for one model, built so callers cannot inject SQL.

    class TeamRepository(Repository[Team]):
        model = Team
        search_fields = ("name", "display_name")

    teams = TeamRepository(db)                      # the database is passed, never global
    flags = Repository(FeatureFlag, db)             # any model, no subclass: a Repository[FeatureFlag]
    team = teams.get(7)                             # a Team, or NotFoundError naming model and key
    teams.find(parent=None, order_by=["-created_at"], limit=10)
    teams.find(name__contains="50%_off")            # % and _ match literally
    teams.search("pay")                             # over search_fields
    page = teams.page(2, size=20, order_by=["name"])            # Page: items, total, pages ...
    first = teams.cursor_page(size=20, order_by=["-created_at"])
    more = teams.cursor_page(size=20, order_by=["-created_at"], after=first.next_cursor)
    team = teams.update(team, display_name="Payments")          # validated; versioned models are checked

Filters are keyword arguments ``field=value`` or ``field__op=value`` with ``op`` one of
:data:`OPERATORS`. Filter and sort names are checked against the fields the model exposes (narrowed by
``filter_fields`` / ``sort_fields``) and anything else is an :class:`InvalidQueryError` before any SQL
is built; values are always bound parameters and are type-checked first (so a malformed value is a
typed error, not a PostgreSQL error that aborts the transaction). ``contains`` and ``startswith`` (text
fields only) match ASCII letters in either case and every other character exactly (``"äbc"`` does not
find ``"ÄBC"``), the same on both databases whatever their locale, and match ``%``, ``_`` and ``\\``
literally (``LIKE ... ESCAPE``).
``order_by``, ``limit``, ``offset``, ``size`` and ``after`` are keyword arguments of their own, so
they cannot be filters.

The hot paths (``get``, ``get_or_none``, ``create``, ``save``/``update``, ``delete``) run SQL that is
built once per model, dialect and column set and then reused with new parameters, and turn rows into
models by applying each field's ``python_value`` directly -- the same conversion peewee's cursor
wrapper does, without building and compiling a query per call. Validation, ``updated_at``, unique
violations reported as :class:`~orm_kit.errors.ValidationError`, derived fields (``Model.derive``) and
optimistic locking (:class:`~orm_kit.locking.Versioned`) behave as on ``Model.save()``; a model that
overrides ``save()`` goes through it. :meth:`Repository.save` lists the two deliberate differences.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import functools
import json
import operator
import threading
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar, overload

import peewee

from orm_kit import dialect
from orm_kit._sql import quote
from orm_kit.errors import ConfigurationError, InvalidQueryError, NotFoundError
from orm_kit.fields import utcnow
from orm_kit.integrity import translate as _translate
from orm_kit.locking import Versioned, conflict_error, missing_version_error, restore, snapshot
from orm_kit.model import Model
from orm_kit.validation import field_type_error

__all__ = [
    "MAX_PAGE_SIZE",
    "OPERATORS",
    "CursorPage",
    "Page",
    "Repository",
    "escape_like",
]

ModelT = TypeVar("ModelT", bound=Model)
T = TypeVar("T")

MAX_PAGE_SIZE = 1000
OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "isnull", "contains", "startswith")
_TEXT_OPERATORS = frozenset({"contains", "startswith"})
_LIKE_ESCAPE = "\\"
_TO_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def escape_like(text: str) -> str:
    """``text`` with the LIKE wildcards ``%`` and ``_`` (and the escape character) escaped."""
    escaped = text.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2)
    return escaped.replace("%", _LIKE_ESCAPE + "%").replace("_", _LIKE_ESCAPE + "_")


def like(column: peewee.Node, pattern: str, db: peewee.Database) -> peewee.Node:
    """``column LIKE pattern ESCAPE '\\'``, ASCII letters in either case, every other character exactly.

    The same answer on both databases, whatever their locale: SQLite's LIKE folds ASCII letters only
    (its LOWER() too), while PostgreSQL's LOWER()/ILIKE fold by the database's ctype, so ``"äbc"``
    would find ``"ÄBC"`` there and not on SQLite. So the pattern is lower-cased here (ASCII only),
    and on PostgreSQL the column goes through ``translate(column, 'A..Z', 'a..z')``. Spelled out as
    SQL words: peewee maps its LIKE operator to GLOB on SQLite, which has no ESCAPE.
    """
    return peewee.NodeList((dialect.fold_for_like(db, column), peewee.SQL("LIKE"),
                            peewee.Value(pattern.translate(_TO_ASCII_LOWER)),
                            peewee.SQL(f"ESCAPE '{_LIKE_ESCAPE}'")))


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a page-numbered listing (``number`` starts at 1)."""

    items: tuple[T, ...]
    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        """How many pages the listing has (at least 1)."""
        return max(1, -(-self.total // self.size))

    @property
    def has_next(self) -> bool:
        """Whether a page follows this one."""
        return self.number < self.pages


@dataclass(frozen=True)
class CursorPage(Generic[T]):
    """One page of a keyset listing; pass ``next_cursor`` as ``after`` for the next (None: no more)."""

    items: tuple[T, ...]
    next_cursor: str | None


# --- SQL built once ------------------------------------------------------------------------------

class _Plan:
    """The reusable SQL and converters of one model on one SQL dialect."""

    def __init__(self, model: type[Model], db: peewee.Database) -> None:
        meta = model._meta
        self.model = model
        self.param = db.param
        self.returning = bool(db.returning_clause)
        self.for_update = bool(db.for_update)
        self.table = quote(meta.table_name) if not meta.schema else f"{quote(meta.schema)}.{quote(meta.table_name)}"
        self.pk: peewee.Field = meta.primary_key  # type: ignore[assignment]  # never False on orm-kit models
        self.fields: dict[str, peewee.Field] = {f.name: f for f in meta.sorted_fields}
        self.names = tuple(self.fields)
        self.readers: tuple[tuple[str, Callable[[Any], Any]], ...] = tuple(
            (f.name, f.python_value) for f in meta.sorted_fields
        )
        self.writers: dict[str, Callable[[Any], Any]] = {f.name: f.db_value for f in meta.sorted_fields}
        columns = ", ".join(quote(f.column_name) for f in meta.sorted_fields)
        self.select_by_pk = f"SELECT {columns} FROM {self.table} WHERE {quote(self.pk.column_name)} = {self.param}"
        self.version: str | None = model.version_field if issubclass(model, Versioned) else None
        # A save() of the model's own (or playhouse.signals') must run: only orm-kit's are re-done here.
        self.fast_save = model.save in (Model.save, Versioned.save)
        self._sql: dict[tuple[str, tuple[str, ...]], str] = {}

    def pk_value(self, key: object) -> Any:
        return self.writers[self.pk.name](key)

    def column(self, name: str) -> str:
        return quote(self.fields[name].column_name)

    def select_by(self, name: str) -> str:
        key = ("select", (name,))
        sql = self._sql.get(key)
        if sql is None:
            head = self.select_by_pk.rsplit(" WHERE ", 1)[0]
            sql = self._sql[key] = f"{head} WHERE {self.column(name)} = {self.param}"
        return sql

    def insert_sql(self, names: tuple[str, ...]) -> str:
        key = ("insert", names)
        sql = self._sql.get(key)
        if sql is None:
            columns = ", ".join(self.column(n) for n in names)
            values = ", ".join([self.param] * len(names))
            sql = f"INSERT INTO {self.table} ({columns}) VALUES ({values})"
            if self.returning and self.model._meta.auto_increment:
                sql += f" RETURNING {quote(self.pk.column_name)}"
            self._sql[key] = sql
        return sql

    def update_sql(self, names: tuple[str, ...]) -> str:
        key = ("update", names)
        sql = self._sql.get(key)
        if sql is None:
            assignments = ", ".join(f"{self.column(n)} = {self.param}" for n in names)
            sql = f"UPDATE {self.table} SET {assignments} WHERE {self._where_key()}"
            self._sql[key] = sql
        return sql

    def delete_sql(self) -> str:
        return f"DELETE FROM {self.table} WHERE {self._where_key()}"

    def _where_key(self) -> str:
        where = f"{quote(self.pk.column_name)} = {self.param}"
        if self.version is not None:
            where += f" AND {self.column(self.version)} = {self.param}"
        return where


def _is_text(field: peewee.Field) -> bool:
    return isinstance(field, peewee.CharField | peewee.TextField)


_plans: dict[tuple[type[Model], str, bool, bool], _Plan] = {}
_checked_classes: set[tuple[type[Repository[Any]], type[Model]]] = set()  # (class, model) pairs checked
_plans_lock = threading.Lock()


def _plan_for(model: type[Model], db: peewee.Database) -> _Plan:
    key = (model, db.param, bool(db.returning_clause), bool(db.for_update))
    plan = _plans.get(key)
    if plan is None:
        with _plans_lock:
            plan = _plans.setdefault(key, _Plan(model, db))
    return plan


# --- the repository ------------------------------------------------------------------------------

class Repository(Generic[ModelT]):
    """Data access for one model on one database (see the module docstring)."""

    model: type[ModelT]
    #: Field names callers may filter / sort on; ``None`` means every field of the model.
    filter_fields: ClassVar[Collection[str] | None] = None
    sort_fields: ClassVar[Collection[str] | None] = None
    #: Fields :meth:`search` matches (case-insensitive substring, wildcards literal).
    search_fields: ClassVar[Sequence[str]] = ()
    #: Order of :meth:`find` and the listings when the caller gives none (the key always breaks ties).
    default_order: ClassVar[Sequence[str]] = ()

    @overload
    def __init__(self, db: peewee.Database) -> None: ...

    @overload
    def __init__(self, model: type[ModelT], db: peewee.Database) -> None: ...

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """``Repository(Model, db)`` for any model, or ``SubclassWithModel(db)``."""
        given = [*args, *(kwargs.pop(name) for name in ("model", "db") if name in kwargs)]
        if kwargs or not 1 <= len(given) <= 2:
            raise TypeError(f"{type(self).__name__}() takes the database, or a model and the database")
        model, database = (None, given[0]) if len(given) == 1 else (given[0], given[1])
        if not isinstance(database, peewee.Database):
            raise TypeError(f"{type(self).__name__}() takes the database last (got {type(database).__name__})")
        db: peewee.Database = database
        declared = getattr(type(self), "model", None)
        if isinstance(model, type) and declared is not None and declared is not model:
            raise ConfigurationError(f"{type(self).__name__} is the repository of {declared.__name__}, not of "
                                     f"{model.__name__}; use Repository({model.__name__}, db) for that model")
        if isinstance(model, type):
            self.model = model
        model = getattr(self, "model", None)
        if model is None:
            raise ConfigurationError(
                f"{type(self).__name__} names no model; pass it (Repository(YourModel, db)) or set "
                "`model = YourModel` on the class")
        bound = dialect.unwrap(model._meta.database)
        if bound is not db:
            raise ConfigurationError(
                f"{model.__name__} is bound to {type(bound).__name__ if bound else 'no database'}, not to the "
                f"database given to {type(self).__name__}; bind the models to it first (db.bind(MODELS))"
            )
        if (type(self), model) not in _checked_classes:
            self._check_configuration(model)
            _checked_classes.add((type(self), model))
        self.db = db
        # peewee's stubs leave execute_sql untyped; the by-key paths call it directly (no wrapper on the hot path).
        self._execute: Callable[..., Any] = db.execute_sql
        # Reads by key may go to a read replica (orm_kit.replicas); raw execute_sql always goes to the primary.
        self._read: Callable[..., Any] = getattr(db, "execute_read_sql", db.execute_sql)
        self._plan = _plan_for(model, db)

    @classmethod
    def _check_configuration(cls, model: type[Model]) -> None:
        """Every field name the class lists is one of the model's (a typo fails here, not mid-query)."""
        fields = model._meta.fields
        listed: dict[str, Collection[str]] = {
            "filter_fields": cls.filter_fields or (), "sort_fields": cls.sort_fields or (),
            "search_fields": cls.search_fields, "default_order": [n.lstrip("-") for n in cls.default_order],
        }
        for setting, names in listed.items():
            for name in names:
                if name not in fields:
                    raise ConfigurationError(
                        f"{cls.__name__}.{setting} names {name!r}, which is not a field of {model.__name__}; "
                        f"use some of {', '.join(sorted(fields))}"
                    )
                if setting == "search_fields" and not _is_text(fields[name]):
                    raise ConfigurationError(
                        f"{cls.__name__}.search_fields names {name!r}, which is not a text field of "
                        f"{model.__name__}; search only CharField or TextField fields"
                    )

    # --- reading by key ----------------------------------------------------------------------------

    def get(self, key: object, *, for_update: bool = False) -> ModelT:
        """The row with primary key ``key``; :class:`NotFoundError` naming model and key when there is none.

        ``for_update`` locks the row until the transaction ends (``SELECT ... FOR UPDATE`` on
        PostgreSQL; SQLite's IMMEDIATE transaction already holds the write lock).
        """
        found = self.get_or_none(key, for_update=for_update)
        if found is None:
            problem = None if key is None else field_type_error(self._plan.pk, key)
            hint = (f"that is no {self.model.__name__} key: its primary key {problem}; to look a row up by "
                    "another column use find_unique() or the repository's find_by_... method") if problem else None
            raise NotFoundError(self.model.__name__, key, hint)
        return found

    def get_or_none(self, key: object, *, for_update: bool = False) -> ModelT | None:
        """The row with primary key ``key``, or ``None`` (a key of the wrong type is simply not found)."""
        plan = self._plan
        if key is None or field_type_error(plan.pk, key) is not None:
            return None
        if for_update and plan.for_update:
            row = self._execute(plan.select_by_pk + " FOR UPDATE", (plan.pk_value(key),)).fetchone()
        else:
            row = self._read(plan.select_by_pk, (plan.pk_value(key),)).fetchone()
        return None if row is None else self._load(row)

    def find_unique(self, field: str, value: object) -> ModelT | None:
        """The row whose unique ``field`` equals ``value``, or ``None`` (prepared once, like :meth:`get`)."""
        plan = self._plan
        target = plan.fields.get(field)
        if target is None or not (target.unique or target is plan.pk):
            raise InvalidQueryError(
                f"{self.model.__name__} field {field!r} is not a unique field; expected one of "
                f"{', '.join(n for n, f in plan.fields.items() if f.unique or f is plan.pk)}"
            )
        if value is None or field_type_error(target, value) is not None:
            return None
        row = self._read(plan.select_by(field), (plan.writers[field](value),)).fetchone()
        return None if row is None else self._load(row)

    def _load(self, row: Sequence[Any]) -> ModelT:
        """A model from a row of ``plan.select_by_pk``'s columns, as peewee's cursor wrapper would build it."""
        obj = self.model(__no_default__=True)
        obj.__data__ = {name: (convert(value) if value is not None else None)
                        for (name, convert), value in zip(self._plan.readers, row, strict=True)}
        return obj

    # --- querying ----------------------------------------------------------------------------------

    def select(self) -> peewee.ModelSelect[ModelT]:
        """The query every listing starts from (override to join related rows in the same query)."""
        query: peewee.ModelSelect[ModelT] = self.model.select()
        return query

    def find(self, *, order_by: Sequence[str] = (), limit: int | None = None, offset: int | None = None,
             **filters: object) -> list[ModelT]:
        """The rows matching every filter, in ``order_by`` order (``"-field"`` descends)."""
        query = self._filtered(self.select(), filters).order_by(*self._ordering(order_by))
        if limit is not None:
            query = query.limit(self._positive("limit", limit, MAX_PAGE_SIZE * 10))
        if offset is not None:
            if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
                raise InvalidQueryError(f"offset must be a whole number >= 0 (got {offset!r})")
            query = query.offset(offset)
        return list(query.execute(self.db))

    def find_one(self, **filters: object) -> ModelT | None:
        """The first row (in the default order) matching every filter, or ``None``."""
        found = self.find(limit=1, **filters)  # type: ignore[arg-type]  # filters are never the options
        return found[0] if found else None

    def search(self, text: str, *, limit: int = 50) -> list[ModelT]:
        """Rows whose ``search_fields`` contain ``text`` (ASCII letters in either case; ``%`` and ``_`` literal)."""
        if not self.search_fields:
            raise ConfigurationError(
                f"{type(self).__name__} has no search_fields to search; list the text fields to match on the "
                f"class, e.g. search_fields = {tuple(self._text_field_names()[:2])!r}"
            )
        if not isinstance(text, str):
            raise InvalidQueryError(f"search text must be a string (got {text!r})")
        pattern = "%" + escape_like(text) + "%"
        condition = functools.reduce(
            operator.or_, [like(self.model._meta.fields[n], pattern, self.db) for n in self.search_fields]
        )
        query = self.select().where(condition).order_by(*self._ordering(()))
        return list(query.limit(self._positive("limit", limit, MAX_PAGE_SIZE)).execute(self.db))

    def _text_field_names(self) -> list[str]:
        return [name for name, field in self._plan.fields.items() if _is_text(field)]

    def count(self, **filters: object) -> int:
        """How many rows match every filter."""
        return int(self._filtered(self.model.select(), filters).count(self.db))

    def exists(self, **filters: object) -> bool:
        """Whether any row matches every filter."""
        return bool(self._filtered(self.model.select(), filters).exists(self.db))

    def page(self, number: int = 1, *, size: int = 50, order_by: Sequence[str] = (),
             **filters: object) -> Page[ModelT]:
        """Page ``number`` (from 1) of ``size`` rows; two queries (the count and the rows)."""
        query = self._filtered(self.select(), filters).order_by(*self._ordering(order_by))
        return self.paginate(query, number, size)

    def cursor_page(self, *, size: int = 50, order_by: Sequence[str] = (), after: str | None = None,
                    **filters: object) -> CursorPage[ModelT]:
        """Up to ``size`` rows after the cursor ``after`` (keyset pagination: stable under inserts, one query)."""
        keys = self._sort_keys(order_by)
        return self.keyset(self._filtered(self.select(), filters), keys, after, size)

    # --- building blocks for subclasses ------------------------------------------------------------

    def paginate(self, query: peewee.ModelSelect[ModelT], number: int, size: int) -> Page[ModelT]:
        """Page ``number`` of an ordered ``query`` with its total (two queries)."""
        number = self._positive("page number", number, None)
        size = self._positive("page size", size, MAX_PAGE_SIZE)
        total = int(query.order_by().count(self.db))
        items = tuple(query.paginate(number, size).execute(self.db))
        return Page(items=items, number=number, size=size, total=total)

    def keyset(self, query: peewee.ModelSelect[ModelT], keys: Sequence[tuple[peewee.Field, bool]],
               after: str | None, size: int) -> CursorPage[ModelT]:
        """Keyset page of ``query`` ordered by ``keys`` (``(field, descending)``, the primary key last)."""
        size = self._positive("page size", size, MAX_PAGE_SIZE)
        spec = [("-" if desc else "") + f.name for f, desc in keys]
        if after is not None:
            values = _decode_cursor(after, spec, [f for f, _ in keys])
            query = query.where(_after(keys, values))
        ordering = [f.desc() if desc else f.asc() for f, desc in keys]
        rows = list(query.order_by(*ordering).limit(size + 1).execute(self.db))
        more = len(rows) > size
        items = tuple(rows[:size])
        cursor = _encode_cursor(spec, [_value_of(items[-1], f) for f, _ in keys]) if more else None
        return CursorPage(items=items, next_cursor=cursor)

    def _sort_keys(self, order_by: Sequence[str]) -> list[tuple[peewee.Field, bool]]:
        keys: list[tuple[peewee.Field, bool]] = []
        for name, desc in self._sort_names(order_by):
            field = self.model._meta.fields[name]
            if field.null:
                raise InvalidQueryError(
                    f"{self.model.__name__} cannot be cursor-paginated by {name!r}: it can be null; "
                    "sort by a required field, or use page() instead"
                )
            keys.append((field, desc))
        pk = self._plan.pk
        if all(f is not pk for f, _ in keys):
            keys.append((pk, keys[-1][1] if keys else False))
        return keys

    def _sort_names(self, order_by: Sequence[str]) -> list[tuple[str, bool]]:
        if isinstance(order_by, str):
            order_by = [order_by]
        allowed = self._allowed(self.sort_fields)
        result: list[tuple[str, bool]] = []
        for item in order_by or self.default_order:
            if not isinstance(item, str):
                raise InvalidQueryError(f"sort key {item!r} must be a field name string")
            desc = item.startswith("-")
            name = item[1:] if desc else item
            if name not in allowed:
                raise InvalidQueryError(
                    f"{self.model.__name__} cannot be sorted by {name!r}; expected one of "
                    f"{', '.join(sorted(allowed))} (prefix '-' for descending)"
                )
            result.append((name, desc))
        return result

    def _ordering(self, order_by: Sequence[str]) -> list[peewee.Node]:
        """ORDER BY terms for ``order_by``, the primary key last so the order is total (stable pages)."""
        fields = self.model._meta.fields
        terms: list[peewee.Node] = []
        names = self._sort_names(order_by)
        for name, desc in names:
            terms.append(fields[name].desc() if desc else fields[name].asc())
        if all(fields[n] is not self._plan.pk for n, _ in names):
            terms.append(self._plan.pk.asc())
        return terms

    def _allowed(self, narrowed: Collection[str] | None) -> Collection[str]:
        return self.model._meta.fields if narrowed is None else narrowed

    def _filtered(self, query: peewee.ModelSelect[ModelT], filters: Mapping[str, object]) -> peewee.ModelSelect[ModelT]:
        conditions = [self._condition(key, value) for key, value in filters.items()]
        return query.where(*conditions) if conditions else query

    def _condition(self, key: str, value: object) -> peewee.Node:
        name, _, op = key.partition("__")
        op = op or "eq"
        allowed = self._allowed(self.filter_fields)
        if name not in allowed or name not in self.model._meta.fields:
            raise InvalidQueryError(
                f"{self.model.__name__} cannot be filtered by {name!r}; expected one of {', '.join(sorted(allowed))}"
            )
        if op not in OPERATORS:
            raise InvalidQueryError(f"filter {key!r} uses operator {op!r}; expected one of {', '.join(OPERATORS)}")
        field: peewee.Field = self.model._meta.fields[name]
        if op == "isnull":
            if not isinstance(value, bool):
                raise InvalidQueryError(f"filter {key!r} takes True or False (got {value!r})")
            return field.is_null(value)
        if op in _TEXT_OPERATORS:
            if not _is_text(field):
                # PostgreSQL has no LOWER(integer) and would abort the transaction; SQLite would cast
                raise InvalidQueryError(
                    f"filter {key!r}: {op} matches text, and {self.model.__name__}.{name} is not a text field; "
                    f"use {name}=... or {name}__in=[...]"
                )
            if not isinstance(value, str):
                raise InvalidQueryError(f"filter {key!r} takes text (got {value!r})")
            pattern = escape_like(value) + "%"
            return like(field, "%" + pattern if op == "contains" else pattern, self.db)
        if op in ("in", "not_in"):
            if isinstance(value, str | bytes) or not isinstance(value, Iterable):
                raise InvalidQueryError(f"filter {key!r} takes a list of values (got {value!r})")
            values = list(value)
            for item in values:
                self._check_value(key, field, item)
            return field.in_(values) if op == "in" else field.not_in(values)
        if value is None:
            if op in ("eq", "ne"):
                return field.is_null(op == "eq")
            raise InvalidQueryError(f"filter {key!r} cannot compare with None; use {name}__isnull=True")
        self._check_value(key, field, value)
        compare: peewee.Expression = {
            "eq": field.__eq__, "ne": field.__ne__, "lt": field.__lt__,
            "lte": field.__le__, "gt": field.__gt__, "gte": field.__ge__,
        }[op](value)
        return compare

    def _check_value(self, key: str, field: peewee.Field, value: object) -> None:
        problem = field_type_error(field, value)
        if problem is not None:
            raise InvalidQueryError(f"filter {key!r}: value {problem}")

    @staticmethod
    def _positive(what: str, value: object, most: int | None) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1 or (most is not None and value > most):
            bound = f" and at most {most}" if most is not None else ""
            raise InvalidQueryError(f"{what} must be a whole number of at least 1{bound} (got {value!r})")
        return value

    # --- writing -----------------------------------------------------------------------------------

    def create(self, **values: object) -> ModelT:
        """A new row from ``values`` (defaults fill the rest), validated and inserted."""
        unknown = sorted(set(values) - set(self._plan.fields) - set(self.model._meta.combined))
        if unknown:
            raise InvalidQueryError(
                f"{self.model.__name__} has no field {unknown[0]!r}; expected some of {', '.join(self._plan.names)}"
            )
        obj = self.model(**values)
        return self.save(obj)

    def update(self, obj: ModelT, **changes: object) -> ModelT:
        """``obj`` with ``changes`` applied and saved (a stale copy of a versioned model: ConflictError)."""
        fields = self._plan.fields
        for name in changes:
            if name not in fields or fields[name] is self._plan.pk:
                raise InvalidQueryError(
                    f"{self.model.__name__} field {name!r} cannot be updated; expected some of "
                    f"{', '.join(n for n in self._plan.names if fields[n] is not self._plan.pk)}"
                )
        for name, value in changes.items():
            setattr(obj, name, value)
        return self.save(obj)

    def save(self, obj: ModelT) -> ModelT:
        """Insert ``obj`` (new) or update it (read from the database), as ``obj.save()`` would.

        A failed save (invalid, a unique violation, a stale copy, a deleted row) leaves ``obj`` exactly
        as it was, ``updated_at`` and the dirty fields included. Two differences from ``Model.save()``,
        both on purpose: a new instance given its own key is inserted (``Model.save()`` on an
        auto-increment model sends an UPDATE that matches nothing), and updating a row that is gone
        raises :class:`NotFoundError` (``Model.save()`` returns 0; on a versioned model both raise
        :class:`~orm_kit.errors.ConflictError`). A model that overrides ``save()`` is saved by its
        own ``save()``, never by the fast path.
        """
        if not self._plan.fast_save or type(obj) is not self.model or self._has_unsaved_relations(obj):
            obj.save()  # the general path handles what the reused SQL does not
            return obj
        before = snapshot(obj)
        try:
            type(obj).derive(obj.__data__)  # as Model.save(): derived columns (Model.derive) before validating
            obj.validate()
            if "updated_at" in self._plan.fields:  # as Model.save(): every save stamps updated_at
                obj.updated_at = utcnow()
            if obj._persisted:
                self._update_row(obj)
            else:
                self._insert_row(obj)
        except BaseException:
            restore(obj, before)
            raise
        obj._dirty.clear()  # type: ignore[attr-defined]
        return obj

    def delete(self, target: ModelT | object) -> bool:
        """Delete a row given as a model or a key; True if a row went. A stale versioned copy: ConflictError."""
        plan = self._plan
        if isinstance(target, self.model):
            key: object = _key_of(target)
            params: list[Any] = [plan.pk_value(key)]
            if plan.version is not None:
                params.append(target.__data__.get(plan.version))
        else:
            key = target
            if key is None or field_type_error(plan.pk, key) is not None:
                return False
            params = [plan.pk_value(key)]
            sql = f"DELETE FROM {plan.table} WHERE {quote(plan.pk.column_name)} = {plan.param}"
            return bool(self._delete(sql, params, key).rowcount)
        deleted = bool(self._delete(plan.delete_sql(), params, key).rowcount)
        if not deleted and plan.version is not None:
            raise conflict_error(target, plan.version, params[-1])
        return deleted

    def _delete(self, sql: str, params: list[Any], key: object) -> Any:
        try:
            return self._execute(sql, params)
        except peewee.IntegrityError as exc:  # rows still refer to it: say which
            raise _translate(self.model, exc, where=self._plan.pk == key, deleting=True) from exc

    def _has_unsaved_relations(self, obj: ModelT) -> bool:
        # A related object assigned before it had a key: peewee's save() resolves it, so use that path.
        return any(obj.__data__.get(name) is None and related is not None for name, related in obj.__rel__.items())

    def _insert_row(self, obj: ModelT) -> None:
        plan = self._plan
        data = obj.__data__
        auto = bool(self.model._meta.auto_increment)
        skip = plan.pk.name if auto and data.get(plan.pk.name) is None else None  # the database numbers it
        names = tuple(n for n in plan.names if n in data and n != skip)
        params = [plan.writers[n](data[n]) for n in names]
        try:
            cursor = self._execute(plan.insert_sql(names), params)
        except peewee.IntegrityError as exc:
            raise _translate(self.model, exc, {n: data[n] for n in names}) from exc
        if auto and plan.pk.name not in names:
            key = cursor.fetchone()[0] if plan.returning else cursor.lastrowid
            data[plan.pk.name] = key
        obj._persisted = True

    def _update_row(self, obj: ModelT) -> None:
        plan = self._plan
        data = obj.__data__
        expected: object = None
        if plan.version is not None:
            expected = data.get(plan.version)
            if not isinstance(expected, int):
                raise missing_version_error(obj, plan.version, expected)
            data[plan.version] = expected + 1
        names = tuple(n for n in plan.names if n in data and plan.fields[n] is not plan.pk)
        params = [plan.writers[n](data[n]) for n in names]
        params.append(plan.pk_value(_key_of(obj)))
        if plan.version is not None:
            params.append(expected)
        try:
            rows = self._execute(plan.update_sql(names), params).rowcount
        except peewee.IntegrityError as exc:
            raise _translate(self.model, exc, {n: data[n] for n in names}) from exc
        if not rows:
            if plan.version is not None:
                raise conflict_error(obj, plan.version, expected)
            raise NotFoundError(self.model.__name__, _key_of(obj))


# --- keyset cursors ------------------------------------------------------------------------------

def _key_of(obj: peewee.Model) -> Any:
    return obj._pk  # type: ignore[attr-defined]  # missing from the stubs


def _value_of(obj: peewee.Model, field: peewee.Field) -> object:
    return obj.__data__.get(field.name)


def _python_value(field: peewee.Field, raw: object) -> object:
    return field.python_value(raw)  # type: ignore[no-untyped-call]


def _jsonable(value: object) -> object:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _encode_cursor(spec: list[str], values: list[object]) -> str:
    raw = json.dumps({"o": spec, "v": [_jsonable(v) for v in values]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, spec: list[str], fields: list[peewee.Field]) -> list[object]:
    problem = (f"cursor {cursor[:40]!r} is not one this listing issued for order {spec} "
               "(pass the next_cursor of the previous page unchanged, with the same order and filters)")
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(data, dict) or data.get("o") != spec or len(data.get("v", ())) != len(fields):
            raise InvalidQueryError(problem)
        values = [_python_value(field, raw) for field, raw in zip(fields, data["v"], strict=True)]
    except (ValueError, TypeError, binascii.Error, AttributeError, UnicodeDecodeError) as exc:
        raise InvalidQueryError(problem) from exc
    for field, value in zip(fields, values, strict=True):
        if value is None or field_type_error(field, value) is not None:
            raise InvalidQueryError(problem)
    return values


def _after(keys: Sequence[tuple[peewee.Field, bool]], values: Sequence[object]) -> peewee.Expression:
    """Rows strictly after ``values`` in the order ``keys``: (a > x) OR (a = x AND b > y) OR ..."""
    branches: list[peewee.Expression] = []
    for i, (field, desc) in enumerate(keys):
        step = field < values[i] if desc else field > values[i]
        for (earlier, _), value in zip(keys[:i], values[:i], strict=True):
            step = (earlier == value) & step
        branches.append(step)
    return functools.reduce(operator.or_, branches)
