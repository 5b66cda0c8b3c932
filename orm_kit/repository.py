"""The repository base: typed, thin data access for one model, its SQL built once per query shape.

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
    teams.update_where({"display_name": None}, parent=team)      # one UPDATE, validated; rows changed
    teams.delete_where(name__startswith="tmp-")                  # one DELETE; rows deleted
    family = services.get_with_children(key, Deployment, order_by=["-created_at"], related=["environment"])

Filters are keyword arguments ``field=value`` or ``field__op=value`` with ``op`` one of
:data:`OPERATORS`. Filter and sort names are checked against the fields the model exposes (narrowed by
``filter_fields`` / ``sort_fields``) and anything else is an :class:`InvalidQueryError` before any SQL
is built; values are always bound parameters and are type-checked first (so a malformed value is a
typed error, not a PostgreSQL error that aborts the transaction). ``contains`` and ``startswith`` (text
fields only) match ASCII letters in either case and every other character exactly (``"äbc"`` does not
find ``"ÄBC"``), the same on both databases whatever their locale, and match ``%``, ``_`` and ``\\``
literally (``LIKE ... ESCAPE``).
``order_by``, ``limit``, ``offset``, ``size`` and ``after`` are keyword arguments of their own, so
they cannot be filters. An order ends with the primary key unless it is already total (it names every
column of a unique, not-null key), so pages never overlap or skip.

Every path runs SQL built once and reused with new parameters. The by-key paths (``get``,
``get_or_none``, ``find_unique``, ``create``, ``save``/``update``, ``delete``) use the model's plan
(:mod:`orm_kit.query.statements`). The listings (``find``, ``find_one``, ``search``, ``count``, ``exists``,
``page``, ``cursor_page``, ``get_with_children``, ``update_where``, ``delete_where``) are compiled
once per *shape* -- which filters with which operators, the order, whether there is a limit, an
offset or a cursor, how long an ``in`` list is on SQLite (rounded up to a power of two; on PostgreSQL
it is one array parameter) -- by peewee from :meth:`select`, then kept in a bounded cache per
repository class, model and database kind (:mod:`orm_kit.query.shapes`) and run with the new values; rows
become the same models peewee would build, joins included, without its per-row cost. Keyset cursors
are :mod:`orm_kit.query.cursors`.
:meth:`query` builds the same query the peewee way, per call, for composing further.

Validation, ``updated_at``, unique violations reported as :class:`~orm_kit.errors.ValidationError`,
derived fields (``Model.derive``) and optimistic locking (:class:`~orm_kit.locking.Versioned`)
behave as on ``Model.save()``; a model that overrides ``save()`` goes through it.
:meth:`Repository.save` lists the two deliberate differences.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar, overload

import peewee

from orm_kit import dialect
from orm_kit._shown import shown
from orm_kit.errors import ArgumentTypeError, ConfigurationError, InvalidQueryError, NotFoundError, ValidationError
from orm_kit.fields import utcnow
from orm_kit.integrity import translate as _translate
from orm_kit.locking import Versioned, conflict_error, missing_version_error, restore, snapshot
from orm_kit.model import Model
from orm_kit.query import cursors
from orm_kit.query.filters import (
    OPERATORS,
    Order,
    after_condition,
    escape_like,
    is_text,
    like,
    like_pattern,
    search_text,
)
from orm_kit.query.prepared import Prepared
from orm_kit.query.shapes import Shape, Shapes
from orm_kit.query.statements import ModelPlan, plan_for
from orm_kit.validation import field_type_error, model_rules, type_check

__all__ = [
    "MAX_OFFSET",
    "MAX_PAGE_SIZE",
    "OPERATORS",
    "CursorPage",
    "Page",
    "Repository",
    "WithChildren",
    "escape_like",
    "like",
]

ModelT = TypeVar("ModelT", bound=Model)
ChildT = TypeVar("ChildT", bound=peewee.Model)
T = TypeVar("T")

MAX_PAGE_SIZE = 1000
MAX_LIMIT = MAX_PAGE_SIZE * 10
#: The most rows an offset (or a page number) may skip: OFFSET is a signed 64-bit integer on both databases.
MAX_OFFSET = 2**63 - 1


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


@dataclass(frozen=True)
class WithChildren(Generic[T, ChildT]):
    """A row and its children (the rows whose foreign key points at it), each child's parent already loaded."""

    parent: T
    children: tuple[ChildT, ...]


# Keyed by (repository class, model): Repository(SomeModel, db) serves any model with the one class.
_checked_classes: set[tuple[type[Repository[Any]], type[Model]]] = set()  # pairs whose field names were checked


class Repository(Generic[ModelT]):
    """Data access for one model on one database (see the module docstring)."""

    model: type[ModelT]
    #: Field names callers may filter / sort on; ``None`` means every field of the model.
    filter_fields: ClassVar[Collection[str] | None] = None
    sort_fields: ClassVar[Collection[str] | None] = None
    #: Fields :meth:`search` matches (case-insensitive substring, wildcards literal).
    search_fields: ClassVar[Sequence[str]] = ()
    #: Order of :meth:`find` and the listings when the caller gives none (the key breaks ties).
    default_order: ClassVar[Sequence[str]] = ()

    @overload
    def __init__(self, db: peewee.Database) -> None: ...

    @overload
    def __init__(self, model: type[ModelT], db: peewee.Database) -> None: ...

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """``Repository(Model, db)`` for any model, or ``SubclassWithModel(db)``."""
        given = [*args, *(kwargs.pop(name) for name in ("model", "db") if name in kwargs)]
        if kwargs or not 1 <= len(given) <= 2:
            raise ArgumentTypeError(f"{type(self).__name__}() takes the database, or a model and the database "
                                    "(Repository(YourModel, db), or YourRepository(db))")
        model, database = (None, given[0]) if len(given) == 1 else (given[0], given[1])
        if not isinstance(database, peewee.Database):
            raise ArgumentTypeError(f"{type(self).__name__}() takes the database last (got {type(database).__name__}; "
                                    "pass a peewee Database, e.g. orm_kit.connect(url))")
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
        owner = (type(self), model)
        if owner not in _checked_classes:
            self._check_configuration(model)
            _checked_classes.add(owner)
        self.db = db
        # peewee's stubs leave execute_sql untyped; the by-key paths call it directly (no wrapper on the hot path).
        self._execute: Callable[..., Any] = db.execute_sql
        # Reads by key may go to a read replica (orm_kit.replicas); raw execute_sql always goes to the primary.
        self._read: Callable[..., Any] = getattr(db, "execute_read_sql", db.execute_sql)
        self._plan: ModelPlan = plan_for(model, db)
        self._shapes = Shapes(model, db, select=self.select, owner=owner, filter_fields=self.filter_fields,
                              sort_fields=self.sort_fields, default_order=self.default_order)

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
                if setting == "search_fields" and not is_text(fields[name]):
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
        self._still_bound()
        found = self.get_or_none(key, for_update=for_update)
        if found is None:
            problem = None if key is None else field_type_error(self._plan.pk, key)
            hint = (f"that is no {self.model.__name__} key: its primary key {problem}; to look a row up by "
                    "another column use find_unique() or the repository's find_by_... method") if problem else None
            raise NotFoundError(self.model.__name__, key, hint)
        return found

    def get_or_none(self, key: object, *, for_update: bool = False) -> ModelT | None:
        """The row with primary key ``key``, or ``None`` (a key of the wrong type is simply not found)."""
        self._still_bound()
        plan = self._plan
        if isinstance(key, peewee.Model):  # a row: its own key if it is one of ours, else no key of ours at all
            key = _key_of(key) if isinstance(key, self.model) else None
        if key is None or type_check(plan.pk)(key) is not None:
            return None
        if for_update and plan.for_update:
            row = self._execute(plan.select_by_pk + " FOR UPDATE", (plan.key_param(key),)).fetchone()
        else:
            row = self._read(plan.select_by_pk, (plan.key_param(key),)).fetchone()
        return None if row is None else plan.load(row)

    def find_unique(self, field: str, value: object) -> ModelT | None:
        """The row whose unique ``field`` equals ``value``, or ``None`` (prepared once, like :meth:`get`)."""
        self._still_bound()
        plan = self._plan
        target = plan.fields.get(field)
        if target is None or not (target.unique or target is plan.pk):
            raise InvalidQueryError(
                f"{self.model.__name__} field {shown(field)} is not a unique field; expected one of "
                f"{', '.join(n for n, f in plan.fields.items() if f.unique or f is plan.pk)}"
            )
        if value is None or type_check(target)(value) is not None:
            return None
        row = self._read(plan.select_by(field), (plan.writers[field].apply(value),)).fetchone()
        return None if row is None else plan.load(row)

    # --- querying ----------------------------------------------------------------------------------

    def select(self) -> peewee.ModelSelect[ModelT]:
        """The query every listing starts from (override to join related rows in the same query).

        It is compiled once per repository class and database kind, so it must build the same query
        on every call: anything that varies per call belongs in filters.
        """
        self._still_bound()
        query: peewee.ModelSelect[ModelT] = self.model.select()
        return query

    def find(self, *, order_by: Sequence[str] = (), limit: int | None = None, offset: int | None = None,
             **filters: object) -> list[ModelT]:
        """The rows matching every filter, in ``order_by`` order (``"-field"`` descends)."""
        self._still_bound()
        shape, values = self._bind(filters)
        order = self._order(order_by)
        if limit is not None:
            values.append(self._positive("limit", limit, MAX_LIMIT))
        if offset is not None:
            values.append(self._offset(offset))
        statement = self._shapes.listing(shape, order, limit=limit is not None, offset=offset is not None)
        return statement.rows(self.db, values)

    def find_one(self, **filters: object) -> ModelT | None:
        """The first row (in the default order) matching every filter, or ``None``."""
        self._still_bound()
        found = self.find(limit=1, **filters)  # type: ignore[arg-type]  # filters are never the options
        return found[0] if found else None

    def query(self, *, order_by: Sequence[str] = (), limit: int | None = None, offset: int | None = None,
              **filters: object) -> peewee.ModelSelect[ModelT]:
        """The query :meth:`find` runs, built the peewee way with the values in it, to compose further.

        Checked like :meth:`find`; built per call (it is what the prepared paths are tested against).
        """
        self._still_bound()
        conditions = self._shapes.reference(filters)
        query = self.select()
        if conditions:
            query = query.where(*conditions)
        query = query.order_by(*self._order(order_by).terms())
        if limit is not None:
            query = query.limit(self._positive("limit", limit, MAX_LIMIT))
        if offset is not None:
            query = query.offset(self._offset(offset))
        return query

    def search(self, text: str, *, limit: int = 50) -> list[ModelT]:
        """Rows whose ``search_fields`` contain ``text`` (ASCII letters in either case; ``%`` and ``_`` literal)."""
        self._still_bound()
        if not self.search_fields:
            raise ConfigurationError(
                f"{type(self).__name__} has no search_fields to search; list the text fields to match on the "
                f"class, e.g. search_fields = {tuple(self._text_field_names()[:2])!r}"
            )
        pattern = like_pattern(search_text(text, "search text"), "contains")
        values = [pattern, self._positive("limit", limit, MAX_PAGE_SIZE)]
        return self._shapes.search(self.search_fields).rows(self.db, values)

    def _text_field_names(self) -> list[str]:
        return [name for name, field in self._plan.fields.items() if is_text(field)]

    def count(self, **filters: object) -> int:
        """How many rows match every filter."""
        self._still_bound()
        shape, values = self._bind(filters)
        return int(self._shapes.count(shape, bare=True).scalar(self.db, values))

    def exists(self, **filters: object) -> bool:
        """Whether any row matches every filter."""
        self._still_bound()
        shape, values = self._bind(filters)
        return bool(self._shapes.exists(shape).scalar(self.db, values))

    def page(self, number: int = 1, *, size: int = 50, order_by: Sequence[str] = (),
             **filters: object) -> Page[ModelT]:
        """Page ``number`` (from 1) of ``size`` rows, with the total: the rows, then a count if the page is full."""
        self._still_bound()
        number, size = self._page_bounds(number, size)
        shape, values = self._bind(filters)
        order = self._order(order_by)
        offset = (number - 1) * size
        rows = self._shapes.listing(shape, order, limit=True, offset=True)
        items = tuple(rows.rows(self.db, [*values, size, offset]))
        if 0 < len(items) < size:
            total = offset + len(items)  # a page that is not full is the last one: no count needed
        else:
            total = int(self._shapes.count(shape, bare=False).scalar(self.db, values))
        return Page(items=items, number=number, size=size, total=total)

    def cursor_page(self, *, size: int = 50, order_by: Sequence[str] = (), after: str | None = None,
                    **filters: object) -> CursorPage[ModelT]:
        """Up to ``size`` rows after the cursor ``after`` (keyset pagination: stable under inserts, one query)."""
        self._still_bound()
        size = self._positive("page size", size, MAX_PAGE_SIZE)
        shape, values = self._bind(filters)
        order = self._order(order_by, keyset=True)
        keys = order.keys
        if after is not None:
            decoded = cursors.decode(after, order.spec, [f for f, _ in keys])
            writers = self._plan.writers
            values += [writers[field.name].apply(value) for (field, _), value in zip(keys, decoded, strict=True)]
        values.append(size + 1)
        rows = self._shapes.keyset(shape, order, after=after is not None).rows(self.db, values)
        more = len(rows) > size
        items = tuple(rows[:size])
        cursor = cursors.encode(order.spec, [_value_of(items[-1], f) for f, _ in keys]) if more else None
        return CursorPage(items=items, next_cursor=cursor)

    def get_with_children(self, key: object, child: type[ChildT], *, via: str | None = None,
                          order_by: Sequence[str] = (), related: Sequence[str] = ()) -> WithChildren[ModelT, ChildT]:
        """The row with primary key ``key`` and its ``child`` rows, in two queries however many children there are.

        The children are the ``child`` rows whose foreign key ``via`` points at the row (``via`` may be
        left out when ``child`` has exactly one foreign key to this model), in ``order_by`` order
        (child field names; the child's key breaks ties), each with the foreign keys named in
        ``related`` loaded in the same query and its ``via`` already set to the row: reading
        ``child.<via>`` or a related row costs no query. :class:`NotFoundError` when there is no row.
        """
        self._still_bound()
        parent = self.get(key)
        return WithChildren(parent=parent, children=self.children_of(parent, child, via=via, order_by=order_by,
                                                                     related=related))

    def children_of(self, parent: ModelT, child: type[ChildT], *, via: str | None = None,
                    order_by: Sequence[str] = (), related: Sequence[str] = ()) -> tuple[ChildT, ...]:
        """The ``child`` rows of ``parent`` (see :meth:`get_with_children`); one query."""
        self._still_bound()
        if isinstance(order_by, str):
            order_by = (order_by,)
        if isinstance(related, str):
            related = (related,)
        spec, statement = self._shapes.children(child, via, order_by, related)
        fk = spec.via
        key = self._plan.writers[fk.rel_field.name].apply(parent.__data__.get(fk.rel_field.name))
        rows = statement.rows(self.db, [key])
        name = fk.name
        for row in rows:
            row.__rel__[name] = parent  # already loaded: reading child.<via> costs no query
        return tuple(rows)

    # --- writing -----------------------------------------------------------------------------------

    def create(self, **values: object) -> ModelT:
        """A new row from ``values`` (defaults fill the rest), validated and inserted."""
        self._still_bound()
        plan = self._plan
        unknown = [] if plan.settable.issuperset(values) else sorted(set(values) - plan.settable)
        if unknown:
            raise InvalidQueryError(
                f"{self.model.__name__} has no field {shown(unknown[0])}; expected some of "
                f"{', '.join(self._plan.names)}"
            )
        obj: ModelT = plan.new(values)
        return self.save(obj)

    def update(self, obj: ModelT, **changes: object) -> ModelT:
        """``obj`` with ``changes`` applied and saved (a stale copy of a versioned model: ConflictError)."""
        self._check_changes(changes)
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
        self._still_bound()
        model = self.model
        if (type(obj) is not model or model.save not in (Model.save, Versioned.save)
                or self._has_unsaved_relations(obj) or self._derived_in_sql(obj)):
            obj.save()  # the general path handles what the reused SQL does not
            return obj
        before = snapshot(obj)
        try:
            if model._derives():  # as Model.save(): derived columns (Model.derive) before validating
                model.derive(obj.__data__, partial=obj._persisted)
            if _own_validation(model):
                obj.validate()
            else:  # what Model.validate() runs, without the calls in between
                errors = model_rules(model).check(obj.__data__, partial=obj._persisted, instance=obj,
                                                  subject=model._from_data)
                if errors:
                    raise ValidationError(model.__name__, errors)
            if "updated_at" in self._plan.fields:  # as Model.save(): every save stamps updated_at
                obj.__data__["updated_at"] = utcnow()
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
        self._still_bound()
        plan = self._plan
        if isinstance(target, self.model):
            params: list[Any] = [plan.key_param(_key_of(target))]
            if plan.version is not None:
                params.append(target.__data__.get(plan.version))
            deleted = bool(self._delete(plan.delete_sql(versioned=True), params, _key_of(target)).rowcount)
            if not deleted and plan.version is not None:
                raise conflict_error(target, plan.version, params[-1])
            return deleted
        if target is None or type_check(plan.pk)(target) is not None:
            return False
        return bool(self._delete(plan.delete_sql(), [plan.key_param(target)], target).rowcount)

    def update_where(self, changes: Mapping[str, object], **filters: object) -> int:
        """Set ``changes`` on every row matching the filters, in one UPDATE; how many rows changed.

        The values are validated as :meth:`update` validates them (a :class:`ValidationError` before
        any SQL), derived fields follow (``Model.derive``), ``updated_at`` is stamped unless given,
        and a versioned model's version moves on in every row changed, so a copy read before is stale.
        At least one filter is required.
        """
        self._still_bound()
        if not filters:
            raise InvalidQueryError(
                f"update_where() on {self.model.__name__} needs at least one filter; it would change every row "
                "(to mean every row, filter on the key, e.g. id__isnull=False)")
        self._check_changes(changes)
        model = self.model
        data = dict(changes)
        if model._derives():
            model.derive(data, partial=True)
        errors = model.check_data(data, partial=True)
        if errors:
            raise ValidationError(model.__name__, errors)
        if "updated_at" in self._plan.fields and "updated_at" not in data:
            data["updated_at"] = utcnow()
        shape, values = self._bind(filters)
        names = tuple(data)
        if any(isinstance(v, peewee.Node) for v in data.values()):
            # An SQL expression (a derived value over the row's own columns, say): built for this call.
            update = self._assignments(data)
            query = peewee.ModelUpdate(model, update).where(*self._shapes.reference(filters))
            return self._write_query(lambda: query.execute(self.db), data)

        statement = self._shapes.update(names, shape, self._assignments)
        writers = self._plan.writers
        params = [writers[name].apply(data[name]) for name in names] + values
        return self._write_query(lambda: statement.execute(self.db, params).rowcount, data)

    def delete_where(self, **filters: object) -> int:
        """Delete every row matching the filters, in one DELETE; how many rows went (at least one filter)."""
        self._still_bound()
        if not filters:
            raise InvalidQueryError(
                f"delete_where() on {self.model.__name__} needs at least one filter; it would delete every row "
                "(to mean every row, filter on the key, e.g. id__isnull=False)")
        shape, values = self._bind(filters)
        statement = self._shapes.delete(shape)
        try:
            return int(statement.execute(self.db, values).rowcount)
        except peewee.IntegrityError as exc:  # rows still refer to some of them: say which
            where = functools.reduce(operator.and_, self._shapes.reference(filters))
            raise _translate(self.model, exc, where=where, deleting=True) from exc

    # --- building blocks for subclasses ------------------------------------------------------------

    def prepared(self, key: Hashable, build: Callable[[], peewee.Query]) -> Prepared:
        """The query ``build()`` returns, with :class:`~orm_kit.query.prepared.Param` placeholders, compiled once.

        Once per repository class, database kind and ``key``: ``key`` must name everything that
        changes the query's shape (which optional filters are there, say). Run it with
        ``.rows(self.db, values)``, ``.first(...)`` or ``.scalar(...)``, the values converted for
        the driver (:meth:`param`).
        """
        self._still_bound()
        return self._shapes.get(("prepared", key), lambda: Prepared(build(), self.db))

    def param(self, field: peewee.Field, value: object) -> Any:
        """``value`` as the driver takes it for a placeholder compared with ``field``; InvalidQueryError for a value
        the column cannot hold (checked before any SQL, so a PostgreSQL transaction is not aborted by it)."""
        self._still_bound()
        problem = None if value is None else type_check(field)(value)
        if problem is not None:
            raise InvalidQueryError(f"{field.model.__name__}.{field.name} {problem}")
        plan = plan_for(field.model, self.db) if field.model is not self.model else self._plan
        return plan.writers[field.name].apply(value)

    def paginate(self, query: peewee.ModelSelect[ModelT], number: int, size: int) -> Page[ModelT]:
        """Page ``number`` of an ordered peewee ``query`` with its total (two queries, built per call)."""
        self._still_bound()
        number, size = self._page_bounds(number, size)
        total = int(query.order_by().count(self.db))
        items = tuple(query.paginate(number, size).execute(self.db))
        return Page(items=items, number=number, size=size, total=total)

    def keyset(self, query: peewee.ModelSelect[ModelT], keys: Sequence[tuple[peewee.Field, bool]],
               after: str | None, size: int) -> CursorPage[ModelT]:
        """Keyset page of a peewee ``query`` ordered by ``keys`` (``(field, descending)``, total), built per call."""
        self._still_bound()
        size = self._positive("page size", size, MAX_PAGE_SIZE)
        spec = [("-" if desc else "") + f.name for f, desc in keys]
        if after is not None:
            values = cursors.decode(after, spec, [f for f, _ in keys])
            query = query.where(after_condition(keys, values))
        ordering = [f.desc() if desc else f.asc() for f, desc in keys]
        rows = list(query.order_by(*ordering).limit(size + 1).execute(self.db))
        more = len(rows) > size
        items = tuple(rows[:size])
        cursor = cursors.encode(spec, [_value_of(items[-1], f) for f, _ in keys]) if more else None
        return CursorPage(items=items, next_cursor=cursor)

    def _sort_keys(self, order_by: Sequence[str]) -> list[tuple[peewee.Field, bool]]:
        """The keyset order for ``order_by``: ``(field, descending)``, total."""
        return list(self._order(order_by, keyset=True).keys)

    def _ordering(self, order_by: Sequence[str]) -> list[peewee.Node]:
        """ORDER BY terms for ``order_by``, total (the primary key last unless the order is unique already)."""
        return self._order(order_by).terms()

    # --- the parts ---------------------------------------------------------------------------------

    def _bind(self, filters: Mapping[str, object]) -> tuple[Shape, list[Any]]:
        """The shape of ``filters`` and their parameters, every name and value checked."""
        return self._shapes.bind(filters)

    def _conditions(self, shape: Shape, first: int = 0) -> list[peewee.Node]:
        """The conditions of ``shape``, their placeholders numbered from ``first``."""
        return self._shapes.conditions(shape, first)

    def _where(self, query: peewee.ModelSelect[ModelT], shape: Shape) -> Any:
        return self._shapes.where(query, shape)

    def _order(self, order_by: str | Sequence[str], *, keyset: bool = False) -> Order:
        return self._shapes.order(order_by, keyset=keyset)

    def _check_changes(self, changes: Mapping[str, object]) -> None:
        fields = self._plan.fields
        for name in changes:
            if name not in fields or fields[name] is self._plan.pk:
                raise InvalidQueryError(
                    f"{self.model.__name__} field {shown(name)} cannot be updated; expected some of "
                    f"{', '.join(n for n in self._plan.names if fields[n] is not self._plan.pk)}"
                )

    def _assignments(self, values: Mapping[str, Any]) -> dict[peewee.Field, Any]:
        """SET ``field = value`` for each, and a versioned model's version moved on (unless given)."""
        fields = self._plan.fields
        assignments: dict[peewee.Field, Any] = {fields[name]: value for name, value in values.items()}
        version = self._plan.version
        if version is not None and version not in values:
            assignments[fields[version]] = fields[version] + 1
        return assignments

    def _write_query(self, run: Callable[[], Any], known: Mapping[str, Any]) -> int:
        try:
            return int(run())
        except peewee.IntegrityError as exc:
            raise _translate(self.model, exc, known) from exc

    @staticmethod
    def _positive(what: str, value: object, most: int | None) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1 or (most is not None and value > most):
            bound = f" and at most {most:,}" if most is not None else ""
            raise InvalidQueryError(f"{what} must be a whole number of at least 1{bound} (got {shown(value)})")
        return value

    @staticmethod
    def _offset(value: object) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_OFFSET:
            raise InvalidQueryError(f"offset must be a whole number from 0 to {MAX_OFFSET:,}, the most either "
                                    f"database can skip (got {shown(value)})")
        return value

    @classmethod
    def _page_bounds(cls, number: object, size: object) -> tuple[int, int]:
        """``number`` and ``size`` of a page, checked: the page must start within :data:`MAX_OFFSET` rows."""
        size = cls._positive("page size", size, MAX_PAGE_SIZE)
        number = cls._positive("page number", number, MAX_OFFSET // size + 1)
        return number, size

    def _delete(self, sql: str, params: list[Any], key: object) -> Any:
        try:
            return self._execute(sql, params)
        except peewee.IntegrityError as exc:  # rows still refer to it: say which
            raise _translate(self.model, exc, where=self._plan.pk == key, deleting=True) from exc

    def _still_bound(self) -> None:
        """Refuse to run once the model has been bound to another database than the one this repository was made for.

        ``orm_kit.connect()`` and ``db.bind()`` bind a model for the whole process. A repository made for
        PostgreSQL went on writing through SQL built for PostgreSQL while the model's own paths (lazy
        relations, derived columns computed in SQL, ``save()``) followed the new binding: SQLite's date
        arithmetic sent to PostgreSQL, rows read from the other database.
        """
        database = self.model._meta.database
        if database is not self.db and dialect.unwrap(database) is not self.db:
            now = dialect.unwrap(database)
            raise ConfigurationError(
                f"{type(self).__name__} was made for {type(self.db).__name__}, but {self.model.__name__} has since "
                f"been bound to {type(now).__name__ if now is not None else 'no database'} (orm_kit.connect() and "
                "db.bind() bind models for the whole process): bind them back (db.bind(MODELS)) before using it, "
                "and work on the other database inside `with other.bind_ctx(MODELS):`, which binds them back after")

    def _derived_in_sql(self, obj: ModelT) -> bool:
        """Whether a derived field of ``obj`` (a row read without one of its inputs) is computed in SQL on save."""
        model = self.model
        if not model._derives() or not obj._persisted:
            return False
        probe = dict(obj.__data__)
        model.derive(probe, partial=True)
        return any(isinstance(value, peewee.Node) for value in probe.values())

    def _has_unsaved_relations(self, obj: ModelT) -> bool:
        # A related object assigned before it had a key: peewee's save() resolves it, so use that path.
        return any(obj.__data__.get(name) is None and related is not None for name, related in obj.__rel__.items())

    def _insert_row(self, obj: ModelT) -> None:
        plan = self._plan
        data = obj.__data__
        auto = plan.auto_increment
        skip = plan.pk.name if auto and data.get(plan.pk.name) is None else None  # the database numbers it
        names = tuple(n for n in plan.names if n in data and n != skip)
        try:
            cursor = self._execute(plan.insert_sql(names), plan.params(names, data))
        except peewee.IntegrityError as exc:
            raise _translate(self.model, exc, {n: data[n] for n in names}) from exc
        if auto and plan.pk.name not in names:
            data[plan.pk.name] = cursor.fetchone()[0] if plan.returning else cursor.lastrowid
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
        pk = plan.pk
        names = tuple(n for n in plan.names if n in data and n != pk.name)
        params = plan.params(names, data)
        params.append(plan.key_param(_key_of(obj)))
        if plan.version is not None:
            params.append(expected)
        try:
            rows = self._execute(plan.update_sql(names, versioned=True), params).rowcount
        except peewee.IntegrityError as exc:
            raise _translate(self.model, exc, {n: data[n] for n in names}) from exc
        if not rows:
            if plan.version is not None:
                raise conflict_error(obj, plan.version, expected)
            raise NotFoundError(self.model.__name__, _key_of(obj))


_validated_by_model: dict[type[Model], bool] = {}


def _own_validation(model: type[Model]) -> bool:
    """Whether ``model`` overrides how an instance is validated (then its methods run)."""
    own = _validated_by_model.get(model)
    if own is None:
        own = _validated_by_model[model] = (
            model.validate is not Model.validate or model.validation_errors is not Model.validation_errors
            or model.check_data.__func__ is not Model.check_data.__func__)  # type: ignore[attr-defined]
    return own


def _key_of(obj: peewee.Model) -> Any:
    return obj._pk  # type: ignore[attr-defined]  # missing from the stubs


def _value_of(obj: peewee.Model, field: peewee.Field) -> object:
    return obj.__data__.get(field.name)
