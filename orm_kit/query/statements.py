"""SQL built once per model and database kind, and rows turned into models without peewee's general machinery.

    plan = plan_for(Team, db)
    row = db.execute_sql(plan.select_by_pk, [plan.key_param(7)]).fetchone()
    team = plan.load(row)                       # a Team, as peewee's cursor wrapper would build it
    db.execute_sql(plan.update_sql(("name", "email")), [...])

peewee builds and compiles a query on every call, and turns each row into a model through a general
cursor wrapper (a ``setattr`` per column, then clearing the dirty set). A plan holds, per model and
database kind, the statements the write and by-key paths need, built once, and a row loader compiled
to straight-line Python for this model's columns: each value is converted the way the field's
``python_value`` would (:func:`orm_kit.fields.reader`), values already of the right type without a
call, and the instance gets its ``__data__`` in one step. A model whose ``__init__`` or field
accessors are its own is built through its constructor instead, as peewee does.

Plans and loaders are shared between threads; building one twice in a race is harmless.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Sequence
from typing import Any

import peewee

from orm_kit import dialect
from orm_kit._sql import quote
from orm_kit.fields import Conversion, reader, writer

__all__ = ["ModelPlan", "compile_function", "compile_loader", "data_source", "instance_source", "plain_construction",
           "plan_for", "register_plain_init", "value_source"]

_STANDARD_ACCESSORS = (peewee.FieldAccessor, peewee.ForeignKeyAccessor)
_new = object.__new__
# __init__ methods that, given __no_default__, only set empty state (peewee's; orm-kit Model's registers itself).
_PLAIN_INITS: set[Callable[..., None]] = {peewee.Model.__init__}


def register_plain_init(init: Callable[..., None]) -> None:
    """Declare that ``init`` (a model's ``__init__``) builds a row's instance with nothing but empty state."""
    _PLAIN_INITS.add(init)


def plain_construction(model: type[peewee.Model]) -> bool:
    """Whether an instance of ``model`` read from a row is fully described by its ``__data__``.

    True when neither ``__init__`` nor any field accessor is the model's own (peewee's constructor
    with ``__no_default__`` then only sets empty state, and ``setattr`` of a field only stores it).
    """
    if model.__init__ not in _PLAIN_INITS:
        return False
    return all(type(inspect.getattr_static(model, name, None)) in _STANDARD_ACCESSORS for name in model._meta.fields)


def value_source(i: int, conversion: Conversion, namespace: dict[str, Any]) -> str:
    """Python source of ``row[i]`` converted by ``conversion``; the converter goes into ``namespace``."""
    value = f"row[{i}]"
    if conversion.convert is None:
        return value
    convert = f"_c{len(namespace)}"
    namespace[convert] = conversion.convert
    keep = f"_k{len(namespace)}"
    namespace[keep] = conversion.keep
    if conversion.keep is not None and conversion.none_too:
        return f"(v if type(v := {value}) is {keep} else {convert}(v))"
    if conversion.keep is not None:
        return f"(v if (v := {value}) is None or type(v) is {keep} else {convert}(v))"
    if conversion.none_too:
        return f"{convert}({value})"
    return f"(None if (v := {value}) is None else {convert}(v))"


def data_source(columns: Sequence[tuple[str, int, Conversion]], namespace: dict[str, Any]) -> str:
    """Python source of a dict display ``{name: converted row[i], ...}``; converters go into ``namespace``."""
    return "{" + ", ".join(f"{name!r}: {value_source(i, conversion, namespace)}"
                           for name, i, conversion in columns) + "}"


def instance_source(model_name: str, model: type[peewee.Model], data: str, target: str) -> str:
    """Lines that build ``target``, an instance of the model bound to ``model_name``, from the dict source ``data``."""
    if plain_construction(model):
        lines = [f"{target} = _new({model_name})", f"{target}.__data__ = {data}",
                 f"{target}._dirty = set()", f"{target}.__rel__ = {{}}"]
        if hasattr(model, "_persisted"):  # an orm-kit model: it knows it was read from the database
            lines.append(f"{target}._persisted = True")
        return "\n    ".join(lines)
    # peewee's way: the constructor, a setattr per field, then a clean dirty set
    return f"{target} = {model_name}(__no_default__=True, **{data})\n    {target}._dirty.clear()"


def compile_function(name: str, body: str, namespace: dict[str, Any], argument: str = "row") -> Callable[..., Any]:
    """Define ``def compiled(argument): body`` in ``namespace`` and return it (``name`` labels it in tracebacks).

    The body is built by this package from literals it writes and ``repr()`` of field names; every
    object it uses (models, converters) is passed in ``namespace``, never spelled into the source.
    """
    source = f"def compiled({argument}):\n    {body}\n"
    namespace.setdefault("_new", object.__new__)
    exec(compile(source, f"<orm-kit {name!r}>", "exec"), namespace)  # noqa: S102 - see the docstring
    function: Callable[..., Any] = namespace["compiled"]
    return function


def compile_loader(model: type[peewee.Model], columns: Sequence[tuple[str, int, Conversion]]) -> Callable[[Any], Any]:
    """A function from a row to an instance of ``model``, reading ``columns`` (name, row index, conversion)."""
    namespace: dict[str, Any] = {"_M": model}
    data = data_source(columns, namespace)
    body = instance_source("_M", model, data, "obj") + "\n    return obj"
    return compile_function(f"load_{model.__name__}", body, namespace)


class ModelPlan:
    """The reusable SQL and converters of one model on one kind of database."""

    def __init__(self, model: type[peewee.Model], db: peewee.Database) -> None:
        meta = model._meta
        postgres = dialect.is_postgres(db)
        self.model = model
        self.sorted_fields = meta.sorted_fields
        self.param: str = db.param
        self.returning = bool(db.returning_clause)
        self.for_update = bool(db.for_update)
        self.table = quote(meta.table_name) if not meta.schema else f"{quote(meta.schema)}.{quote(meta.table_name)}"
        self.pk: peewee.Field = meta.primary_key  # type: ignore[assignment]  # never False on orm-kit models
        self.fields: dict[str, peewee.Field] = {f.name: f for f in meta.sorted_fields}
        self.names = tuple(self.fields)
        #: What a new instance may be given: field names and column names (``owner`` and ``owner_id``).
        self.settable = frozenset(self.fields) | frozenset(meta.combined)
        self.auto_increment = bool(meta.auto_increment)
        # A new instance built without the constructor: only for orm-kit models peewee would build the same way.
        self.plain = plain_construction(model) and hasattr(model, "_persisted")
        self._simple = frozenset(f.name for f in meta.sorted_fields if not isinstance(f, peewee.ForeignKeyField))
        self.readers: dict[str, Conversion] = {f.name: reader(f, postgres=postgres) for f in meta.sorted_fields}
        self.writers: dict[str, Conversion] = {f.name: writer(f, postgres=postgres) for f in meta.sorted_fields}
        self.load: Callable[[Sequence[Any]], Any] = compile_loader(
            model, [(name, i, self.readers[name]) for i, name in enumerate(self.names)])
        columns = ", ".join(quote(f.column_name) for f in meta.sorted_fields)
        self.select_head = f"SELECT {columns} FROM {self.table}"
        self.select_by_pk = f"{self.select_head} WHERE {quote(self.pk.column_name)} = {self.param}"
        version = getattr(model, "version_field", None)
        self.version: str | None = version if isinstance(version, str) and version in self.fields else None
        self._sql: dict[tuple[Any, ...], str] = {}
        self._binders: dict[tuple[str, ...], Callable[[dict[str, Any]], list[Any]]] = {}

    def new(self, values: dict[str, Any]) -> Any:
        """A new instance holding ``values``, defaults filling the rest: what ``model(**values)`` builds."""
        model = self.model
        if not self.plain:
            return model(**values)
        data = model._meta.get_default_dict()  # type: ignore[no-untyped-call]  # peewee untyped
        obj: Any = _new(model)
        obj.__data__ = data
        obj._dirty = dirty = set(data)
        obj.__rel__ = {}
        obj._persisted = False
        simple = self._simple
        for name, value in values.items():
            if name in simple:  # what the field's accessor would do, without the call
                data[name] = value
                dirty.add(name)
            else:
                setattr(obj, name, value)  # a foreign key (a row or a key), or a column name like owner_id
        return obj

    def key_param(self, key: object) -> Any:
        """``key`` as the driver takes it for the primary key column."""
        return self.writers[self.pk.name].apply(key)

    def params(self, names: tuple[str, ...], data: dict[str, Any]) -> list[Any]:
        """The values of ``names`` in ``data``, each as the driver takes it (by code compiled per column set)."""
        bind = self._binders.get(names)
        if bind is None:
            namespace: dict[str, Any] = {}
            values = ", ".join(value_source(i, self.writers[name], namespace) for i, name in enumerate(names))
            lookup = "row = " + (f"({', '.join(f'data[{n!r}]' for n in names)},)" if names else "()")
            bind = self._binders[names] = compile_function(f"bind {self.model.__name__}", f"{lookup}\n    "
                                                           f"return [{values}]", namespace, argument="data")
        return bind(data)

    def column(self, name: str) -> str:
        """The quoted column of field ``name``."""
        return quote(self.fields[name].column_name)

    def select_by(self, name: str, *, first: bool = False) -> str:
        """``SELECT every column WHERE name = ?`` (``first``: only the first row the database finds)."""
        key = ("select", name, first)
        sql = self._sql.get(key)
        if sql is None:
            sql = self._sql[key] = (f"{self.select_head} WHERE {self.column(name)} = {self.param}"
                                    + (" LIMIT 1" if first else ""))
        return sql

    def insert_sql(self, names: tuple[str, ...]) -> str:
        """``INSERT`` of ``names``; on a database with RETURNING an auto-incremented key comes back."""
        key = ("insert", names)
        sql = self._sql.get(key)
        if sql is None:
            columns = ", ".join(self.column(n) for n in names)
            values = ", ".join([self.param] * len(names))
            sql = f"INSERT INTO {self.table} ({columns}) VALUES ({values})"
            if self.returning and self.auto_increment and self.pk.name not in names:
                sql += f" RETURNING {quote(self.pk.column_name)}"
            self._sql[key] = sql
        return sql

    def update_sql(self, names: tuple[str, ...], *, versioned: bool = False) -> str:
        """``UPDATE`` of ``names`` by primary key (and, ``versioned``, the version the copy was read at)."""
        key = ("update", names, versioned)
        sql = self._sql.get(key)
        if sql is None:
            assignments = ", ".join(f"{self.column(n)} = {self.param}" for n in names)
            sql = f"UPDATE {self.table} SET {assignments} WHERE {self.where_key(versioned=versioned)}"
            self._sql[key] = sql
        return sql

    def delete_sql(self, *, versioned: bool = False) -> str:
        """``DELETE`` by primary key (and, ``versioned``, version)."""
        return f"DELETE FROM {self.table} WHERE {self.where_key(versioned=versioned)}"

    def where_key(self, *, versioned: bool = False) -> str:
        """The condition that finds one row by key (and version)."""
        where = f"{quote(self.pk.column_name)} = {self.param}"
        if versioned and self.version is not None:
            where += f" AND {self.column(self.version)} = {self.param}"
        return where


_plans: dict[tuple[type[peewee.Model], bool, str, bool, bool], ModelPlan] = {}
_lock = threading.Lock()


def plan_for(model: type[peewee.Model], db: peewee.Database) -> ModelPlan:
    """The plan of ``model`` on ``db``'s kind of database (rebuilt when the model's fields change)."""
    key = (model, dialect.is_postgres(db), db.param, bool(db.returning_clause), bool(db.for_update))
    plan = _plans.get(key)
    if plan is None or plan.sorted_fields is not model._meta.sorted_fields:
        made = ModelPlan(model, db)
        with _lock:
            _plans[key] = plan = made
    return plan
