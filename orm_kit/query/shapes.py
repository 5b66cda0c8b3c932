"""A repository's query shapes: its filters parsed once, its listings compiled once per shape and kept.

A *shape* is what a listing's SQL depends on: which filters with which operators (and, on SQLite, how
long an ``in`` list is, rounded up to a power of two), the order, whether there is a limit, an offset
or a cursor. The values are not part of it: they are bound as parameters each run.

    shapes = Shapes(Deployment, db, select=Deployment.select, owner=(DeploymentRepository, Deployment))
    shape, values = shapes.bind({"status": "success", "created_at__gte": since})  # names, values checked
    order = shapes.order(["-created_at"])
    rows = shapes.listing(shape, order, limit=True, offset=False).rows(db, [*values, 20])
    total = shapes.count(shape, bare=True).scalar(db, values)

:class:`~orm_kit.repository.Repository` keeps one per instance; the statements are shared by every
instance of the same repository class and model on the same kind of database
(:func:`~orm_kit.query.prepared.cache_for`), at most :data:`SHAPES_PER_REPOSITORY` of them.
"""

from __future__ import annotations

import functools
import operator
import threading
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import peewee

from orm_kit import dialect
from orm_kit._shown import shown
from orm_kit.errors import InvalidQueryError
from orm_kit.query.filters import Filter, Order, after_condition, like, parse_filter, parse_order
from orm_kit.query.prepared import Param, Prepared, ShapeCache, cache_for

__all__ = ["SHAPES_PER_REPOSITORY", "Children", "Shape", "Shapes"]

#: Distinct query shapes kept per repository class, model and database kind (the oldest built goes first).
SHAPES_PER_REPOSITORY = 512

R = TypeVar("R")

#: ``((filter key, its variant), ...)``: the filters of one call, as far as the SQL depends on them.
Shape = tuple[tuple[str, Hashable], ...]

_parsed: dict[Hashable, dict[str, Filter]] = {}
_parsed_lock = threading.Lock()


@dataclass(frozen=True)
class Children:
    """A validated children query: the foreign key it follows, its order and the relations joined in."""

    model: type[peewee.Model]
    via: peewee.ForeignKeyField
    order: Order
    related: tuple[peewee.ForeignKeyField, ...]


class Shapes:
    """The filters, orders and compiled statements of one repository class and model on one database."""

    def __init__(self, model: type[peewee.Model], db: peewee.Database, *, select: Callable[[], Any],
                 owner: Hashable, filter_fields: Collection[str] | None = None,
                 sort_fields: Collection[str] | None = None, default_order: Sequence[str] = ()) -> None:
        self.model = model
        self.db = db
        self._select = select
        self._filter_fields = filter_fields
        self._sort_fields = sort_fields
        self._default_order = default_order
        self._postgres = dialect.is_postgres(db)
        self.statements: ShapeCache[Any] = cache_for(owner, db, SHAPES_PER_REPOSITORY)
        filters = _parsed.get(owner)
        if filters is None:
            with _parsed_lock:
                filters = _parsed.setdefault(owner, {})
        self._filters = filters

    def get(self, key: Hashable, build: Callable[[], R]) -> R:
        """What ``build()`` made for ``key`` (a statement, an order), built once and kept."""
        kept: R = self.statements.get(key, build)  # the cache holds several kinds: Any, typed again here
        return kept

    # --- filters and orders ------------------------------------------------------------------------

    def filter(self, key: str) -> Filter:
        """The parsed filter ``key`` (``field`` or ``field__op``); InvalidQueryError naming what is allowed."""
        found = self._filters.get(key)
        if found is None:
            # Parsed once per owner; a bad key raises and is not kept, so the dict stays bounded.
            found = self._filters[key] = parse_filter(self.model, key, self._filter_fields)
        return found

    def bind(self, filters: Mapping[str, object]) -> tuple[Shape, list[Any]]:
        """The shape of ``filters`` and their parameters, every name and value checked."""
        values: list[Any] = []
        postgres = self._postgres
        shape = tuple((key, self.filter(key).bind(value, values, postgres=postgres)) for key, value in filters.items())
        return shape, values

    def width(self, shape: Shape) -> int:
        """How many parameters the conditions of ``shape`` take."""
        return sum(self.filter(key).width(variant) for key, variant in shape)

    def conditions(self, shape: Shape, first: int = 0) -> list[peewee.Node]:
        """The conditions of ``shape``, their placeholders numbered from ``first``."""
        conditions = []
        index = first
        for key, variant in shape:
            condition = self.filter(key)
            width = condition.width(variant)
            conditions.append(condition.prepared(variant, [Param(i) for i in range(index, index + width)], self.db))
            index += width
        return conditions

    def reference(self, filters: Mapping[str, object]) -> list[peewee.Node]:
        """The conditions of ``filters`` as peewee builds them with the values in them (built per call)."""
        return [self.filter(key).reference(value, self.db) for key, value in filters.items()]

    def where(self, query: Any, shape: Shape) -> Any:
        """``query`` with the conditions of ``shape`` (placeholders from 0)."""
        conditions = self.conditions(shape)
        return query.where(*conditions) if conditions else query

    def order(self, order_by: str | Sequence[str], *, keyset: bool = False) -> Order:
        """The parsed order (total: the key breaks ties unless it is unique already), kept per spelling."""
        def parse() -> Order:
            return parse_order(self.model, order_by, allowed=self._sort_fields, default=self._default_order,
                               keyset=keyset)

        if not isinstance(order_by, str | list | tuple):
            return parse()  # refused there (None is the default order)
        items = (order_by,) if isinstance(order_by, str) else tuple(order_by)
        if not all(isinstance(item, str) for item in items):
            return parse()  # refused there, with the reason; never a cache key
        return self.get(("order", items, keyset), parse)

    # --- compiled statements -------------------------------------------------------------------------

    def listing(self, shape: Shape, order: Order, *, limit: bool, offset: bool) -> Prepared:
        """``select()`` filtered and ordered; a limit, then an offset, bound after the filters' values."""
        def build() -> Prepared:
            query = self.where(self._select(), shape).order_by(*order.terms())
            index = self.width(shape)
            if limit:
                query = query.limit(Param(index))
                index += 1
            if offset:
                query = query.offset(Param(index))
            return Prepared(query, self.db)

        return self.get(("find", shape, order.spec, limit, offset), build)

    def keyset(self, shape: Shape, order: Order, *, after: bool) -> Prepared:
        """``select()`` filtered, after a cursor's row (its sort values bound after the filters'), limited."""
        def build() -> Prepared:
            query = self.where(self._select(), shape)
            index = self.width(shape)
            if after:
                keys = order.keys
                query = query.where(after_condition(keys, [Param(index + i) for i in range(len(keys))]))
                index += len(keys)
            return Prepared(query.order_by(*order.terms()).limit(Param(index)), self.db)

        return self.get(("cursor", shape, order.spec, after), build)

    def search(self, fields: Sequence[str]) -> Prepared:
        """``select()`` where any of ``fields`` contains the pattern bound first, in the default order, limited."""
        def build() -> Prepared:
            own = self.model._meta.fields
            condition = functools.reduce(operator.or_, [like(own[name], Param(0), self.db) for name in fields])
            return Prepared(self._select().where(condition).order_by(*self.order(()).terms()).limit(Param(1)),
                            self.db)

        return self.get(("search", tuple(fields)), build)

    def exists(self, shape: Shape) -> Prepared:
        """``SELECT EXISTS (...)`` over the model's table."""
        def build() -> Prepared:
            return Prepared(peewee.Select(columns=[peewee.fn.EXISTS(self.where(self.model.select(), shape))]),
                            self.db)

        return self.get(("exists", shape), build)

    def update(self, names: tuple[str, ...], shape: Shape,
               assignments: Callable[[Mapping[str, Any]], Mapping[peewee.Field, Any]]) -> Prepared:
        """``UPDATE ... SET`` each of ``names`` (bound first, in order; ``assignments`` makes the SET list)."""
        def build() -> Prepared:
            query = peewee.ModelUpdate(self.model, dict(assignments({name: Param(i) for i, name in enumerate(names)})))
            conditions = self.conditions(shape, first=len(names))
            return Prepared(query.where(*conditions) if conditions else query, self.db)

        return self.get(("update_where", names, shape), build)

    def delete(self, shape: Shape) -> Prepared:
        """``DELETE`` the rows matching ``shape``."""
        def build() -> Prepared:
            return Prepared(peewee.ModelDelete(self.model).where(*self.conditions(shape)), self.db)

        return self.get(("delete_where", shape), build)

    def count(self, shape: Shape, *, bare: bool) -> Prepared:
        """``SELECT COUNT(1) FROM (...)``, as peewee counts: over the model's table, or over ``select()``.

        Over ``select()``, its LEFT OUTER joins to one row each (a foreign key to the joined table's
        key, which nothing else joins from) are left out: they cannot change how many rows there are,
        and without them the count can be read from an index alone (20 times faster on a history).
        """
        def build() -> Prepared:
            query = self.where(self.model.select() if bare else _count_source(self._select()), shape)
            wrapped = query.order_by().alias("_wrapped")
            if wrapped._count_can_project_one():
                wrapped = wrapped.select(peewee.SQL("1"))
            return Prepared(peewee.Select([wrapped], [peewee.fn.COUNT(peewee.SQL("1"))]), self.db)

        key = ("count", shape) if bare else ("count", shape, "joined")
        return self.get(key, build)

    def children(self, child: type[peewee.Model], via: str | None, order_by: Sequence[str],
                 related: Sequence[str]) -> tuple[Children, Prepared]:
        """The checked children query of ``child`` rows pointing at this model, and its statement."""
        key = ("children", child, via, tuple(order_by), tuple(related))
        spec: Children = self.statements.get(("spec", *key), lambda: self._children(child, via, order_by, related))
        return spec, self.statements.get(key, lambda: self._compile_children(spec))

    def _children(self, child: type[peewee.Model], via: str | None, order_by: Sequence[str],
                  related: Sequence[str]) -> Children:
        """Check a children query's names once (InvalidQueryError naming what the child model has)."""
        if not (isinstance(child, type) and issubclass(child, peewee.Model)):
            raise InvalidQueryError(f"children must be a model class (got {shown(child)})")
        fields = child._meta.fields
        pointing = [f for f in fields.values() if isinstance(f, peewee.ForeignKeyField) and f.rel_model is self.model]
        if via is None:
            if len(pointing) != 1:
                raise InvalidQueryError(
                    f"{child.__name__} has {len(pointing) or 'no'} foreign keys to {self.model.__name__}"
                    + (f" ({', '.join(f.name for f in pointing)}); pass via=... naming one" if pointing else ""))
            fk = pointing[0]
        else:
            named = fields.get(via)
            if not isinstance(named, peewee.ForeignKeyField) or named.rel_model is not self.model:
                raise InvalidQueryError(
                    f"{child.__name__}.{via} is not a foreign key to {self.model.__name__}; expected one of "
                    f"{', '.join(f.name for f in pointing) or '(none)'}")
            fk = named
        joins = []
        loadable = [f for f in fields.values() if isinstance(f, peewee.ForeignKeyField) and f is not fk]
        for name in related:
            field = fields.get(name)
            if not any(field is f for f in loadable):
                raise InvalidQueryError(f"{child.__name__} cannot load {shown(name)} with its rows; expected "
                                        f"foreign keys among {', '.join(f.name for f in loadable) or '(none)'}")
            joins.append(field)
        return Children(child, fk, parse_order(child, order_by, allowed=None, default=()), tuple(joins))

    def _compile_children(self, spec: Children) -> Prepared:
        child = spec.model
        targets: list[Any] = []
        for field in spec.related:
            # The child's own table or one joined twice needs a name of its own in the query.
            taken = field.rel_model is child or any(t is field.rel_model for t in targets)
            targets.append(field.rel_model.alias() if taken else field.rel_model)
        query = child.select(child, *targets)
        for field, target in zip(spec.related, targets, strict=True):
            kind = peewee.JOIN.LEFT_OUTER if field.null else peewee.JOIN.INNER
            on = field == getattr(target, field.rel_field.name)
            query = query.join_from(child, target, kind, on=on, attr=field.name)
        query = query.where(spec.via == Param(0)).order_by(*spec.order.terms())
        return Prepared(query, self.db)


def _count_source(query: Any) -> Any:
    """``query`` without the LEFT OUTER joins that match at most one row each (see :meth:`Shapes.count`)."""
    if query._where is not None or query._group_by or query._having is not None or query._distinct \
            or query._windows or query._cte_list:
        return query  # a condition or grouping of its own may read the joined table

    def strip(source: Any) -> Any:
        if not isinstance(source, peewee.Join):
            return source
        lhs = strip(source.lhs)
        if source.join_type == peewee.JOIN.LEFT_OUTER and _to_one(source) and source.rhs not in query._joins:
            return lhs
        return peewee.Join(lhs, source.rhs, source.join_type, getattr(source, "_on", None))

    clone = query.clone()
    clone._from_list = [strip(source) for source in query._from_list]
    return clone


def _to_one(join: peewee.Join) -> bool:
    """Whether ``join`` is on ``foreign key = the joined model's key`` (one row at most per row joined to)."""
    on, dest = getattr(join, "_on", None), join.rhs
    if not isinstance(on, peewee.Expression) or on.op != peewee.OP.EQ:
        return False
    model = dest.model if isinstance(dest, peewee.ModelAlias) else dest
    if not (isinstance(model, type) and issubclass(model, peewee.Model)):
        return False
    for near, far in ((on.lhs, on.rhs), (on.rhs, on.lhs)):
        field = near.field if isinstance(near, peewee.FieldAlias) else near
        target = far.field if isinstance(far, peewee.FieldAlias) else far
        if (isinstance(field, peewee.ForeignKeyField) and field.rel_model is model and target is field.rel_field
                and (target.primary_key or target.unique)):
            return True
    return False
