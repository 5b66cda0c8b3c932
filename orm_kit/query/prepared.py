"""Queries compiled once and run many times with new values, their rows turned into models cheaply.

    query = (Deployment.select(Deployment, Environment).join(Environment)
             .where(Deployment.service == Param(0), Deployment.status == Param(1))
             .order_by(Deployment.created_at.desc()).limit(Param(2)))
    statement = Prepared(query, db)                # peewee builds and compiles the SQL, once
    statement.rows(db, [service_id.hex, "success", 20])   # Deployments with .environment loaded
    # (values as the driver takes them: orm_kit.fields.writer, or Repository.param, converts them)

peewee compiles a query into SQL on every call and turns rows into models through a general cursor
wrapper. A :class:`Prepared` statement is compiled by peewee once, with :class:`Param` placeholders
where the values go, and keeps the SQL and the position of every placeholder; each run only puts
the new values in place (already converted for the driver: see :func:`orm_kit.fields.writer`). The
first run asks peewee's own cursor wrapper how the selected columns map onto models and joins, and
compiles that into a straight-line row loader (:mod:`orm_kit.query.statements`): the same instances, the same
``__data__``, joined rows attached where peewee attaches them (``None`` for an outer join that found
nothing), without a ``setattr`` per column. Shapes the loader does not cover (dict rows, columns that
are not fields) use peewee's wrapper, still without compiling again.

A :class:`ShapeCache` keeps statements by the *shape* of the query that made them, bounded, for
callers that build a query from caller input (see :class:`orm_kit.repository.Repository`). Both are
safe to share between threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

import peewee

from orm_kit import dialect
from orm_kit.fields import Conversion, reader
from orm_kit.query.statements import (
    compile_function,
    compile_loader,
    data_source,
    instance_source,
    plain_construction,
    value_source,
)

__all__ = ["Param", "Prepared", "ShapeCache", "cache_for", "compile_row_loader"]

T = TypeVar("T")


class _Slot:
    """Where a placeholder landed in the compiled parameters (never sent to the driver)."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


class Param(peewee.ColumnBase):
    """A placeholder for the ``index``-th value a :class:`Prepared` statement is run with."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def __sql__(self, ctx: peewee.Context) -> peewee.Context:
        # converter=False: the value arrives already converted for the driver, so no field's db_value runs.
        context: peewee.Context = ctx.value(_Slot(self.index), False)
        return context


class Prepared:
    """One query compiled once (see the module docstring); run it with :meth:`rows`, :meth:`first`, :meth:`scalar`."""

    def __init__(self, query: peewee.Query, db: peewee.Database) -> None:
        context = db.get_sql_context()
        sql, params = context.sql(query).query()  # type: ignore[no-untyped-call]  # untyped in the stubs
        self.query = query
        self.sql: str = sql
        template: list[Any] = []
        binds: list[tuple[int, int]] = []
        for position, value in enumerate(params):
            if isinstance(value, _Slot):
                binds.append((position, value.index))
                template.append(None)
            else:
                template.append(value)  # a constant of the query itself
        self._template = template
        self._binds = tuple(binds)
        # The common case, every parameter a placeholder in order: the values are the parameters.
        self._direct = len(binds) == len(params) and all(p == i for p, i in binds)
        self._load: Callable[[Sequence[Any]], Any] | None = None
        # A plain read may go to a read replica (orm_kit.replicas), as peewee's own execute() would send it.
        self._read = isinstance(query, peewee.SelectBase) and not getattr(query, "_for_update", None)

    def params(self, values: Sequence[Any]) -> list[Any]:
        """The driver's parameters for a run with ``values``."""
        if self._direct:
            return list(values)
        params = self._template.copy()
        for position, index in self._binds:
            params[position] = values[index]
        return params

    def execute(self, db: peewee.Database, values: Sequence[Any] = ()) -> Any:
        """Run the statement with ``values``; the driver's cursor."""
        if self._read:
            read = getattr(db, "execute_read_sql", None)
            if read is not None:
                return read(self.sql, self.params(values))
        return db.execute_sql(self.sql, self.params(values))  # type: ignore[no-untyped-call]  # peewee untyped

    def rows(self, db: peewee.Database, values: Sequence[Any] = ()) -> list[Any]:
        """Every row, as the query's peewee would return them (models with their joins, tuples, ...)."""
        cursor = self.execute(db, values)
        rows = cursor.fetchall()
        load = self._load or self._loader(cursor, db)
        return [load(row) for row in rows]

    def first(self, db: peewee.Database, values: Sequence[Any] = ()) -> Any:
        """The first row (as :meth:`rows` builds it), or None."""
        cursor = self.execute(db, values)
        row = cursor.fetchone()
        if row is None:
            return None
        load = self._load or self._loader(cursor, db)
        return load(row)

    def scalar(self, db: peewee.Database, values: Sequence[Any] = ()) -> Any:
        """The first column of the first row, as the driver returned it (None when there is no row)."""
        row = self.execute(db, values).fetchone()
        return None if row is None else row[0]

    def _loader(self, cursor: Any, db: peewee.Database) -> Callable[[Sequence[Any]], Any]:
        wrapper = self.query._get_cursor_wrapper(cursor)  # type: ignore[attr-defined]  # missing from the stubs
        wrapper.initialize()
        load = compile_row_loader(wrapper, postgres=dialect.is_postgres(db)) or wrapper.process_row
        self._load = load
        return load


def _conversion(field: peewee.Field, converter: Any, postgres: bool) -> Conversion | None:
    """The conversion peewee applies to a column (None: one this module cannot inline)."""
    if converter is None:
        return Conversion(None)
    if converter == field.python_value:
        return reader(field, postgres=postgres)
    return None


def compile_row_loader(wrapper: Any, *, postgres: bool) -> Callable[[Sequence[Any]], Any] | None:
    """A row loader equivalent to peewee's initialised cursor ``wrapper``, or None where it has no fast form."""
    if type(wrapper) is peewee.ModelObjectCursorWrapper:
        return _single_model_loader(wrapper, postgres)
    if type(wrapper) is peewee.ModelCursorWrapper:
        return _joined_loader(wrapper, postgres)
    if type(wrapper) is peewee.ModelTupleCursorWrapper:
        return _tuple_loader(wrapper, postgres)
    return None


def _tuple_loader(wrapper: Any, postgres: bool) -> Callable[[Sequence[Any]], Any]:
    """peewee's ``ModelTupleCursorWrapper.process_row``: each column through its converter (None included)."""
    namespace: dict[str, Any] = {}
    values = []
    for i, converter in enumerate(wrapper.converters):
        field = wrapper.fields[i]
        conversion = _conversion(field, converter, postgres) if field is not None else None
        # Any other converter (a function's, an alias's) gets every value, None too, as peewee gives it.
        values.append(value_source(i, conversion or Conversion(converter, none_too=True), namespace))
    return compile_function("load_tuple", f"return ({''.join(v + ', ' for v in values)})", namespace)


def _single_model_loader(wrapper: Any, postgres: bool) -> Callable[[Sequence[Any]], Any] | None:
    model = wrapper.model
    if not (wrapper.is_model and wrapper.constructor is model):
        return None
    columns: list[tuple[str, int, Conversion]] = []
    for i, field in enumerate(wrapper.fields):
        if field is None or field.model is not model or wrapper.unique_columns[i] != field.name:
            return None  # a computed or aliased column: peewee sets it as an attribute
        conversion = _conversion(field, wrapper.converters[i], postgres)
        if conversion is None:
            return None
        columns.append((field.name, i, conversion))
    return compile_loader(model, columns)


def _joined_loader(wrapper: Any, postgres: bool) -> Callable[[Sequence[Any]], Any] | None:
    """peewee's ``ModelCursorWrapper.process_row`` for one query's joins, compiled."""
    keys = [key for key, _, _ in wrapper._constructor_list]
    constructors = {key: (constructor, is_model) for key, constructor, is_model in wrapper._constructor_list}
    if not all(is_model for _, is_model in constructors.values()):
        return None
    index = {key: n for n, key in enumerate(keys)}
    root = index[wrapper.model]
    groups: dict[int, list[tuple[str, int, Conversion]]] = {}
    for i, key, column, converter in wrapper._row_spec:
        field = wrapper.fields[i]
        target = index.get(key)
        if target is None or field is None or column != field.name:
            return None  # a column peewee puts on the root model, or one that is not a field
        conversion = _conversion(field, converter, postgres)
        if conversion is None:
            return None
        groups.setdefault(target, []).append((field.name, i, conversion))
    links = []
    for src, attr, dest, is_dict, is_outer, is_fk in wrapper.src_to_dest:
        if is_dict or src not in index or dest not in index:
            return None
        reachable = [index[k] for k in wrapper._dest_reachable.get(dest, ()) if k in index]
        links.append((index[src], attr, index[dest], is_outer, is_fk, reachable))
    used = sorted({root, *groups, *(s for s, *_ in links), *(d for _, _, d, *_ in links)})
    namespace: dict[str, Any] = {}
    lines: list[str] = []
    for n in used:
        model = constructors[keys[n]][0]
        namespace[f"_M{n}"] = model
        data = data_source(groups.get(n, []), namespace)
        lines.append(instance_source(f"_M{n}", model, data, f"o{n}"))
    # p<n>: a value of that model's columns was set (peewee's "set_keys", raw values before conversion)
    for n in used:
        indexes = [i for _, i, _ in groups.get(n, [])]
        lines.append(f"p{n} = " + (" or ".join(f"row[{i}] is not None" for i in indexes) or "False"))
    all_direct = True
    for src, attr, dest, is_outer, is_fk, reachable in links:
        source_model = constructors[keys[src]][0]
        key_name = _related_key_name(source_model, attr) if is_fk and plain_construction(source_model) else None
        all_direct = all_direct and key_name is not None
        lines.extend(_link_source(src, attr, dest, is_outer, is_fk, reachable, key_name, namespace))
    if not all_direct or any(not plain_construction(constructors[keys[n]][0]) for n in used):
        lines.extend(f"o{n}._dirty.clear()" for n in used)  # setattr marked fields dirty; peewee clears them
    lines.append(f"return o{root}")
    return compile_function("load_joined", "\n    ".join(lines), namespace)


def _related_key_name(model: type[peewee.Model], attr: str) -> str | None:
    """The field of the joined model ``attr`` stores (None where peewee's accessor must do it)."""
    field = model._meta.fields.get(attr)
    if not isinstance(field, peewee.ForeignKeyField) or isinstance(field.rel_field, peewee.ForeignKeyField):
        return None
    return str(field.rel_field.name)


def _link_source(src: int, attr: str, dest: int, is_outer: bool, is_fk: bool, reachable: list[int],
                 key_name: str | None, namespace: dict[str, Any]) -> list[str]:
    """One join of peewee's ``process_row``: attach ``o<dest>`` to ``o<src>`` as ``attr`` (or mark it absent)."""
    further = " or ".join(f"p{k}" for k in reachable) or "False"
    absent = "None" if is_outer else "_SKIP"
    namespace["_SKIP"] = _SKIP
    lines = [
        f"j = o{dest} if p{dest} or ({further}) else {absent}",
    ]
    if is_outer:
        lines.append(f"if p{src} or p{dest}:")
    else:
        lines.append("if j is not _SKIP:")
    if is_fk:
        if key_name is not None:
            lines.append(f"    if j is None: o{src}.__rel__[{attr!r}] = None")
            lines.append(f"    else: o{src}.__data__[{attr!r}] = j.__data__.get({key_name!r}); "
                         f"o{src}.__rel__[{attr!r}] = j")
        else:
            lines.append(f"    if j is None: o{src}.__rel__[{attr!r}] = None")
            lines.append(f"    else: setattr(o{src}, {attr!r}, j)")
    else:
        lines.append(f"    setattr(o{src}, {attr!r}, j)")
    return lines


_SKIP = object()


class ShapeCache(Generic[T]):
    """Values built once per key, at most ``size`` of them (the oldest built goes first); shared between threads."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._items: dict[Hashable, T] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        """The value for ``key``, built by ``build()`` the first time (a race may build it twice; one is kept)."""
        found = self._items.get(key)
        if found is None:
            found = build()
            with self._lock:
                items = self._items
                while len(items) >= self.size:
                    del items[next(iter(items))]
                items[key] = found
        return found

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        """Forget every value."""
        with self._lock:
            self._items.clear()


_caches: dict[tuple[object, type, bool], ShapeCache[Any]] = {}
_caches_lock = threading.Lock()


def cache_for(owner: object, db: peewee.Database, size: int = 256) -> ShapeCache[Any]:
    """The statement cache of ``owner`` (a repository class, say) on ``db``'s kind of database."""
    real = dialect.unwrap(db)
    key = (owner, type(real), dialect.is_postgres(real))
    cache = _caches.get(key)
    if cache is None:
        with _caches_lock:
            cache = _caches.setdefault(key, ShapeCache(size))
    return cache
