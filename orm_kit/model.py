"""The base model every orm-kit table derives from: validation on every write path, UTC timestamps.

What it adds to :class:`peewee.Model`:

* rules declared with :func:`~orm_kit.validation.validate` and
  :func:`~orm_kit.validation.validates`, plus type checks for every field, run before any SQL on
  ``save()``, ``create()``, ``insert()``, ``insert_many()``/``bulk_create()`` and ``update()``;
* a unique violation reported by the database comes back as the same
  :class:`~orm_kit.errors.ValidationError`, naming the field and the value; a foreign-key, NOT NULL or
  CHECK violation as a typed :class:`~orm_kit.errors.IntegrityViolationError` (:mod:`orm_kit.integrity`);
* a new instance whose primary key is not auto-incremented (a UUID, say) is inserted by ``save()``
  (plain peewee would issue an UPDATE that matches nothing and silently store nothing);
* ``updated_at``, where a model has it, is set on every save;
* ``get_by_id()``, ``get(Model.field == value)``, ``save()``, ``create()`` and
  ``insert_many(...).execute()`` run SQL built once per model and column set (:mod:`orm_kit.query.statements`)
  instead of a query peewee builds and compiles per call, with peewee's behaviour: the same rows,
  return values and errors. A model whose ``select()``, ``insert()``, ``update()`` or ``_pk_expr()`` is
  its own, a composite key, or an SQL expression as a value goes through peewee's general path.

Models carry no database: bind them explicitly (``db.bind(models)``)::

    db.bind([Team])
    team = Team.create(name="payments")            # validated, then one INSERT built once
    Team.get_by_id(team.id) == Team.get(name="payments")
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Self

import peewee

from orm_kit import dialect
from orm_kit._sql import execute
from orm_kit.errors import ValidationError
from orm_kit.fields import UUIDField, utcnow
from orm_kit.integrity import translate as _translate
from orm_kit.query.statements import plain_construction, plan_for, register_plain_init
from orm_kit.validation import Validator, collect_record_rules, model_rules

__all__ = ["Model"]

# Set while save(), bulk_create() and bulk_update() run: they validated their rows as instances (with
# the cross-field rules), so the insert()/update() queries they issue need not validate again.
_prevalidated: contextvars.ContextVar[bool] = contextvars.ContextVar("orm_kit_prevalidated", default=False)


class _TranslatesUniqueViolations:
    """Mixed into write queries: an integrity error comes back typed (:mod:`orm_kit.integrity`), naming the field."""

    model: type[peewee.Model]

    def _known_values(self) -> Mapping[Any, Any] | Sequence[Any]:
        return {}

    def _execute(self, database: peewee.Database) -> Any:
        try:
            return super()._execute(database)  # type: ignore[misc]  # missing from the stubs
        except peewee.IntegrityError as exc:
            raise _translate(self.model, exc, self._known_values(), columns=getattr(self, "_columns", None),
                             where=getattr(self, "_where", None),
                             deleting=isinstance(self, peewee.ModelDelete)) from exc


class _Insert(_TranslatesUniqueViolations, peewee.ModelInsert):
    def _known_values(self) -> Mapping[Any, Any] | Sequence[Any]:
        rows = getattr(self, "_insert", None)  # one row as {field: value}, or several
        return rows if isinstance(rows, dict | list | tuple) else {}

    def _execute(self, database: peewee.Database) -> Any:
        try:
            result = _insert_rows(self, database)
        except peewee.IntegrityError as exc:
            raise _translate(self.model, exc, self._known_values(), columns=getattr(self, "_columns", None)) from exc
        return super()._execute(database) if result is _GENERAL else result

    def on_conflict(self, *args: Any, **kwargs: Any) -> Any:
        # ON CONFLICT ... DO UPDATE writes values too: hold them to the same rules as update().
        update = kwargs.get("update", args[1] if len(args) > 1 else None)
        if isinstance(update, Mapping):
            named = {(k if isinstance(k, str) else k.name): v for k, v in update.items()
                     if isinstance(k, str | peewee.Field)}
            self.model._raise_if_invalid(named, partial=True)  # type: ignore[attr-defined]
        return super().on_conflict(*args, **kwargs)


class _Update(_TranslatesUniqueViolations, peewee.ModelUpdate):
    def _known_values(self) -> Mapping[Any, Any] | Sequence[Any]:
        values = getattr(self, "_update", None)
        return values if isinstance(values, dict) else {}


class _Delete(_TranslatesUniqueViolations, peewee.ModelDelete):
    """peewee's DELETE; a row other rows still refer to comes back as a ForeignKeyViolationError naming them."""


class Model(peewee.Model):
    """Base class of orm-kit models (see the module docstring)."""

    __orm_kit_field_rules__: ClassVar[Mapping[str, tuple[Validator, ...]]] = {}
    __orm_kit_record_rules__: ClassVar[tuple[tuple[str, str], ...]] = ()
    _persisted: bool = False  # set per instance: True once read from or written to the database

    class Meta:
        legacy_table_names = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__orm_kit_record_rules__ = collect_record_rules(cls)

    @classmethod
    def validate_model(cls) -> None:
        """peewee's hook once a model class has its fields: a plain ``peewee.UUIDField`` writes through
        :class:`orm_kit.fields.UUIDField`, so every spelling of a UUID is stored (and found) in one form."""
        super().validate_model()
        for field in cls._meta.fields.values():
            if type(field) is peewee.UUIDField:
                field.__class__ = UUIDField  # the same field, its db_value canonical: nothing else differs

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Rows read from the database are built with __no_default__; anything else is new.
        persisted = bool(kwargs.get("__no_default__"))
        super().__init__(*args, **kwargs)
        self._persisted = persisted

    # --- validation --------------------------------------------------------------------------------

    @classmethod
    def check_data(cls, data: Mapping[str, Any], *, partial: bool = False,
                   instance: Model | None = None) -> dict[str, list[str]]:
        """Every rule broken by ``data`` (field name -> value), as ``{field: [messages]}``.

        Without ``partial`` a missing required field without a default is reported and every
        cross-field ``@validates`` rule runs. With ``partial`` only the fields present are checked (an
        UPDATE); the cross-field rules aimed at those fields run when ``instance`` gives them a record.
        The rules are compiled once per model (:class:`~orm_kit.validation.ModelRules`).
        """
        return model_rules(cls).check(data, partial=partial, instance=instance, subject=cls._from_data)

    @classmethod
    def row_checker(cls, names: Sequence[str]) -> Callable[[Sequence[Any]], dict[str, list[str]] | None]:
        """A check of rows giving ``names`` in order: ``None`` for a good row, else :meth:`check_data`'s errors.

        What bulk paths use: a good row costs one compiled check per value, and builds a record only
        when the model has cross-field rules.
        """
        return model_rules(cls).row_checker(names, cls._from_data)

    @classmethod
    def _from_data(cls, data: Mapping[str, Any]) -> Model:
        """A record holding ``data``, for the cross-field rules (built as a row read from the database)."""
        build = vars(cls).get("_orm_kit_record")
        if build is None:
            build = _record_builder(cls)
            setattr(cls, "_orm_kit_record", build)  # noqa: B010 - per class, out of sight of the type checker
        record: Model = build(data)
        return record

    def validation_errors(self, only: Collection[str] | None = None) -> dict[str, list[str]]:
        """Every rule this instance breaks, as ``{field: [messages]}`` (empty when valid).

        A new instance is checked whole. One read from the database is checked on the fields it holds
        (a partial SELECT leaves the others out), or on ``only``.
        """
        data = self.__data__
        if only is not None:
            return type(self).check_data({n: data.get(n) for n in only}, partial=True, instance=self)
        return type(self).check_data(data, partial=self._persisted, instance=self)

    def validate(self) -> None:
        """Raise :class:`ValidationError` listing every failing field, or return when the instance is valid."""
        errors = self.validation_errors()
        if errors:
            raise ValidationError(type(self).__name__, errors)

    # --- derived fields ----------------------------------------------------------------------------

    @classmethod
    def derive(cls, data: dict[str, Any], *, partial: bool = False) -> None:
        """Fill ``data`` (field name -> value) with fields computed from others, before it is written.

        Every write path calls it: ``save()``, ``insert()``, ``insert_many()``/``bulk_create()``,
        ``update()`` (with ``partial``: only the fields being written are there, so a derived value may
        have to be an SQL expression over the row's other columns), and the repositories' fast paths.
        The default derives nothing.
        """

    @classmethod
    def _derives(cls) -> bool:
        return cls.derive.__func__ is not Model.derive.__func__  # type: ignore[attr-defined]

    @classmethod
    def derived_fields(cls) -> frozenset[str]:
        """The fields :meth:`derive` fills for a new row (a value given for one of them is never written as given)."""
        found: frozenset[str] | None = vars(cls).get("_orm_kit_derived")
        if found is None:
            names = [f.name for f in cls._meta.sorted_fields]
            found = frozenset()
            if cls._derives():
                # Left out of a row of every other field, does derive() put it back? (as a new row's insert)
                for name in names:
                    probe: dict[str, Any] = dict.fromkeys(n for n in names if n != name)
                    cls.derive(probe)
                    if name in probe:
                        found |= {name}
            setattr(cls, "_orm_kit_derived", found)  # noqa: B010 - per class, out of sight of the type checker
        return found

    # --- write paths -------------------------------------------------------------------------------

    def save(self, force_insert: bool = False, only: Any = None) -> Any:
        """Validate, then insert (a new instance) or update (one read from the database)."""
        meta = self._meta
        names = None if only is None else [f if isinstance(f, str) else f.name for f in only]
        if self._derives():
            before = dict(self.__data__)
            # A row read from the database may hold only some columns: what it lacks is the row's own, not None.
            type(self).derive(self.__data__, partial=self._persisted)
            changed = [n for n, v in self.__data__.items() if before.get(n, v) != v or n not in before]
            if names is not None:
                extra = [n for n in changed if n not in names]
                names += extra
                only = [*only, *(meta.fields[n] for n in extra)]
        errors = self.validation_errors(names)
        if errors:
            raise ValidationError(type(self).__name__, errors)
        if not self._persisted and not meta.auto_increment:
            force_insert = True
        if "updated_at" in meta.fields:
            self.updated_at = utcnow()
            if only is not None:
                only = [*only, meta.fields["updated_at"]]
        computed_in_sql = [n for n, v in self.__data__.items() if isinstance(v, peewee.Node)]
        rows = _GENERAL if computed_in_sql else _write(self, force_insert, only)
        if rows is _GENERAL:
            token = _prevalidated.set(True)
            try:
                rows = super().save(force_insert=force_insert, only=only)
            finally:
                _prevalidated.reset(token)
        for name in computed_in_sql:  # a value the database computed: unknown here until the row is read again
            self.__data__.pop(name, None)
        self._persisted = True
        return rows

    @classmethod
    def get_by_id(cls, pk: Any) -> Self:
        """The row with primary key ``pk`` (``DoesNotExist`` when there is none), by SQL built once per model."""
        found = _get_by(cls, None, pk)
        if found is _GENERAL:
            return super().get_by_id(pk)
        row: Self = found  # _get_by builds a cls (untyped: it is shared by every model)
        return row

    @classmethod
    def get(cls, *query: Any, **filters: Any) -> Self:
        """peewee's ``get``; a lookup by one column's value runs SQL built once per model and column."""
        lookup = _simple_lookup(cls, query, filters)
        if lookup is not None:
            found = _get_by(cls, *lookup)
            if found is not _GENERAL:
                row: Self = found  # as in get_by_id
                return row
        return super().get(*query, **filters)

    @classmethod
    def insert(cls, __data: Any = None, /, **insert: Any) -> peewee.ModelInsert:
        """peewee's INSERT of one row, derived fields filled and the row validated before any SQL."""
        data = cls._normalize_data(__data, insert)  # type: ignore[attr-defined]
        if cls._derives() and isinstance(data, dict):
            data = cls._derived(data, partial=False)
        if not _prevalidated.get():
            cls._raise_if_invalid({f.name: v for f, v in data.items() if isinstance(f, peewee.Field)})
        return _Insert(cls, data)

    @classmethod
    def insert_many(cls, rows: Iterable[Any], fields: Sequence[Any] | None = None) -> peewee.ModelInsert:
        """peewee's multi-row INSERT, every row validated first (the error names the row's index)."""
        if isinstance(rows, peewee.Node):
            return _Insert(cls, insert=rows, columns=fields)
        rows = list(rows)
        if cls._derives():
            # Rows become dicts so a derived column can be added to rows that did not name it.
            columns = cls._columns_for(fields)
            rows = [cls._derived_row(cls._row_data(row, columns)) for row in rows]
            fields = None
        if not _prevalidated.get():
            columns = cls._columns_for(fields)
            for index, row in enumerate(rows):
                cls._raise_if_invalid(cls._row_data(row, columns), row=index)
        return _Insert(cls, insert=rows, columns=fields)

    @classmethod
    def update(cls, __data: Any = None, /, **update: Any) -> peewee.ModelUpdate:
        """peewee's UPDATE query, the values it sets validated (SQL expressions pass through) before any SQL."""
        data = cls._normalize_data(__data, update)  # type: ignore[attr-defined]
        if cls._derives() and isinstance(data, dict):
            data = cls._derived(data, partial=True)
        if not _prevalidated.get():
            named = {f.name: v for f, v in data.items() if isinstance(f, peewee.Field) and f.model is cls}
            cls._raise_if_invalid(named, partial=True)
        return _Update(cls, data)

    @classmethod
    def delete(cls) -> peewee.ModelDelete:
        """peewee's DELETE query; rows still referred to come back as a typed ForeignKeyViolationError."""
        return _Delete(cls)

    @classmethod
    def bulk_create(cls, model_list: Iterable[Any], batch_size: int | None = None) -> None:
        """Validate every instance (rows numbered over the whole list), then insert them all or none."""
        models = list(model_list)
        for index, model in enumerate(models):
            if cls._derives():
                cls.derive(model.__data__)
            errors = model.validation_errors()
            if errors:
                raise ValidationError(cls.__name__, errors, row=index)
        token = _prevalidated.set(True)
        try:
            with cls._meta.database.atomic():
                super().bulk_create(models, batch_size)
        finally:
            _prevalidated.reset(token)
        for model in models:
            model._persisted = True

    @classmethod
    def bulk_update(cls, model_list: Iterable[Any], fields: Sequence[Any], batch_size: int | None = None) -> Any:
        """Validate the ``fields`` of every instance, then update them all or none."""
        models = list(model_list)
        names = [f if isinstance(f, str) else f.name for f in fields]
        if cls._derives():
            # As save(): derived fields follow the fields written (never written as given), computed in SQL
            # from the row's own columns where an instance lacks an input.
            for model in models:
                cls.derive(model.__data__, partial=model._persisted)
            extra = [n for n in sorted(cls.derived_fields()) if n not in names and any(n in m.__data__ for m in models)]
            names += extra
            fields = [*fields, *extra]
        for index, model in enumerate(models):
            errors = model.validation_errors(names)
            if errors:
                raise ValidationError(cls.__name__, errors, row=index)
        token = _prevalidated.set(True)
        try:
            with cls._meta.database.atomic():
                return super().bulk_update(models, fields, batch_size)  # type: ignore[no-untyped-call]
        finally:
            _prevalidated.reset(token)

    @classmethod
    def _derived(cls, data: Mapping[Any, Any], *, partial: bool) -> dict[Any, Any]:
        """``data`` keyed by Field (as peewee normalises it) with the derived fields filled in."""
        combined = cls._meta.combined
        named = {k.name: v for k, v in data.items() if isinstance(k, peewee.Field) and k.model is cls}
        cls.derive(named, partial=partial)
        out = dict(data)
        for name, value in named.items():
            out[combined[name]] = value
        return out

    @classmethod
    def _derived_row(cls, row: dict[str, Any]) -> dict[str, Any]:
        cls.derive(row)
        return row

    @classmethod
    def _raise_if_invalid(cls, data: Mapping[str, Any], *, partial: bool = False, row: int | None = None) -> None:
        errors = cls.check_data(data, partial=partial)
        if errors:
            raise ValidationError(cls.__name__, errors, row=row)

    @classmethod
    def _columns_for(cls, fields: Sequence[Any] | None) -> list[peewee.Field]:
        meta = cls._meta
        if fields is None:
            return list(meta.sorted_fields[1:] if meta.auto_increment else meta.sorted_fields)
        return [f if isinstance(f, peewee.Field) else meta.combined[f] for f in fields]

    @classmethod
    def _row_data(cls, row: Any, columns: list[peewee.Field]) -> dict[str, Any]:
        if isinstance(row, Mapping):
            combined = cls._meta.combined
            data: dict[str, Any] = {}
            for key, value in row.items():
                field = key if isinstance(key, peewee.Field) else combined.get(key)
                if field is not None:
                    data[field.name] = value
            return data
        if isinstance(row, peewee.Model):
            return dict(row.__data__)
        return {field.name: value for field, value in zip(columns, row, strict=False)}


# --- the fast paths: SQL built once per model (orm_kit.query.statements), peewee's semantics ---------------------

_GENERAL: Any = object()  # "the fast path does not apply here": run peewee's general one
_SELECT = peewee.Model.select.__func__  # type: ignore[attr-defined]
# _pk_expr methods whose condition the fast UPDATE writes itself (Versioned registers its own).
_PK_EXPRS: set[Callable[..., Any]] = {peewee.Model._pk_expr}  # type: ignore[attr-defined]  # missing from the stubs


def register_pk_expr(method: Callable[..., Any]) -> None:
    """Declare that the fast save path writes ``method``'s condition (primary key, and version if expected)."""
    _PK_EXPRS.add(method)


register_plain_init(Model.__init__)


def _write(obj: Model, force_insert: bool, only: Any) -> Any:
    """peewee's ``Model.save()`` body with SQL built once, or ``_GENERAL`` where that would differ from peewee's.

    Validation and derived fields have run already (``Model.save``); this only writes.
    """
    cls = type(obj)
    meta = cls._meta
    database = meta.database
    db = dialect.unwrap(database)
    pk_expr = getattr(cls, "_pk_expr")  # noqa: B009 - missing from the stubs
    if (db is None or meta.primary_key is False or meta.composite_key or pk_expr not in _PK_EXPRS
            or cls.insert.__func__ is not Model.insert.__func__  # type: ignore[attr-defined]
            or cls.update.__func__ is not Model.update.__func__  # type: ignore[attr-defined]
            or ((only is not None or meta.only_save_dirty) and cls._derives())):
        return _GENERAL  # a write of only some fields of a derived model: peewee's UPDATE derives them in SQL
    plan = plan_for(cls, db)
    pk = plan.pk
    data = obj.__data__
    pk_value = obj._pk if isinstance(pk, peewee.ForeignKeyField) else data.get(pk.name)  # type: ignore[attr-defined]
    field_dict = dict(data)
    if only is not None:
        field_dict = obj._prune_fields(field_dict, only)  # type: ignore[attr-defined]
    elif meta.only_save_dirty and not force_insert:
        field_dict = obj._prune_fields(field_dict, obj.dirty_fields)  # type: ignore[attr-defined]
        if not field_dict:
            obj._dirty.clear()  # type: ignore[attr-defined]
            return False
    fields = plan.fields
    if any(name not in fields for name in field_dict):
        return _GENERAL
    obj._populate_unsaved_relations(field_dict)  # type: ignore[attr-defined]
    if plan.auto_increment and pk_value is None:
        field_dict.pop(pk.name, None)
    if pk_value is not None and not force_insert:
        field_dict.pop(pk.name, None)
        if not field_dict:
            raise ValueError("no data to save!")
        names = tuple(field_dict)
        expected = getattr(obj, "_expected_version", None) if plan.version is not None else None
        params = plan.params(names, field_dict)
        params.append(plan.key_param(pk_value))
        if expected is not None:
            params.append(expected)
        try:
            rows = database.execute_sql(plan.update_sql(names, versioned=expected is not None), params).rowcount
        except peewee.IntegrityError as exc:
            raise _translate(cls, exc, field_dict) from exc
    else:
        if pk_value is None and not plan.auto_increment:
            return _GENERAL  # peewee would read back a rowid for a key it did not send
        names = tuple(field_dict)
        try:
            cursor = database.execute_sql(plan.insert_sql(names), plan.params(names, field_dict))
        except peewee.IntegrityError as exc:
            raise _translate(cls, exc, field_dict) from exc
        rows = 1
        if plan.auto_increment and pk.name not in field_dict:
            data[pk.name] = cursor.fetchone()[0] if plan.returning else cursor.lastrowid
            obj._dirty.discard(pk.name)  # type: ignore[attr-defined]
    obj._dirty -= set(field_dict)  # type: ignore[attr-defined]
    return rows


def _get_by(cls: type[Model], name: str | None, value: Any) -> Any:
    """The first row whose ``name`` (None: the primary key) equals ``value``, or ``_GENERAL``."""
    meta = cls._meta
    database = meta.database
    db = dialect.unwrap(database)
    if db is None or meta.primary_key is False or meta.composite_key or cls.select.__func__ is not _SELECT:  # type: ignore[attr-defined]
        return _GENERAL  # a model whose select() is its own (soft deletes, say) gets it, as peewee's get() would
    plan = plan_for(cls, db)
    if name is None:
        sql, params = plan.select_by_pk, [plan.key_param(value)]
    else:
        sql, params = plan.select_by(name, first=True), [plan.writers[name].apply(value)]
    row = database.execute_sql(sql, params).fetchone()
    if row is None:
        raise cls.DoesNotExist(  # type: ignore[attr-defined]  # made by peewee's metaclass
            f"{cls} instance matching query does not exist:\nSQL: {sql}\nParams: {params}")
    return plan.load(row)


def _simple_lookup(cls: type[Model], query: tuple[Any, ...], filters: dict[str, Any]) -> tuple[str | None, Any] | None:
    """``(field name, value)`` when ``get(*query, **filters)`` is one column equal to one plain value."""
    fields = cls._meta.fields
    if len(query) == 1 and not filters:
        condition = query[0]
        if isinstance(condition, int) and cls._meta.auto_increment:
            return None, condition  # peewee's shortcut: get(5) on an auto-incremented key
        if (isinstance(condition, peewee.Expression) and condition.op == peewee.OP.EQ
                and isinstance(condition.lhs, peewee.Field) and fields.get(condition.lhs.name) is condition.lhs
                and condition.rhs is not None and not isinstance(condition.rhs, peewee.Node)):
            return condition.lhs.name, condition.rhs
    elif len(filters) == 1 and not query:
        ((name, value),) = filters.items()
        if name in fields and value is not None and not isinstance(value, peewee.Node):
            return name, value
    return None


def _record_builder(model: type[Model]) -> Callable[[Mapping[str, Any]], Model]:
    """How ``Model._from_data`` builds a record: as a row read from the database, without the constructor if it can."""
    if plain_construction(model):
        new = object.__new__

        def plain(data: Mapping[str, Any]) -> Model:
            record: Any = new(model)
            record.__data__ = dict(data)
            record._dirty = set()
            record.__rel__ = {}
            record._persisted = True
            return record  # type: ignore[no-any-return]

        return plain

    def constructed(data: Mapping[str, Any]) -> Model:
        record = model(__no_default__=True)
        record.__data__.update(data)
        return record

    return constructed


def _insert_rows(query: Any, database: peewee.Database) -> Any:
    """A multi-row INSERT (``insert_many``) written without peewee's per-value query nodes, or ``_GENERAL``.

    The columns, defaults and result are peewee's: the columns named (or the first row's keys, or
    every field), defaults filled for the rest, a missing value ``None`` where the field allows it;
    SQLite returns the last row id and PostgreSQL a cursor over the new keys. Anything else (a query
    as the source, ON CONFLICT, RETURNING, an SQL expression as a value) goes through peewee.
    """
    rows = query._insert
    model = query.model
    db = dialect.unwrap(database)
    if (not isinstance(rows, list | tuple) or not rows or query._on_conflict is not None or query._return_cursor
            or query._as_rowcount or query._cte_list or db is None):
        return _GENERAL
    meta = model._meta
    defaults = meta.defaults
    columns = _insert_columns(query, rows[0])
    if columns is None:
        return _GENERAL
    plan = plan_for(model, db)
    writers = [plan.writers[c.name] for c in columns]
    lookups = [(c, c.name, c.column_name) for c in columns]
    values: list[Any] = []
    add = values.append
    node = peewee.Node
    for row in rows:
        mapping = isinstance(row, Mapping)
        for i, column in enumerate(columns):
            try:
                if mapping:
                    for key in lookups[i]:
                        if key in row:
                            value = row[key]
                            break
                    else:
                        raise KeyError(column.name)
                else:
                    value = row[i]
            except (KeyError, IndexError):
                default = _default_of(defaults, column)
                if default is not _GENERAL:
                    value = default() if callable(default) else default
                elif column.null:
                    value = None
                else:
                    raise ValueError(f"Missing value for {column.name}.") from None
            if isinstance(value, node) and not isinstance(value, peewee.Model):
                return _GENERAL  # an SQL expression: peewee inlines it
            add(writers[i].apply(value))
    returning = query._returning
    if returning is None and database.returning_clause:  # as peewee's Insert: the new keys come back
        returning = query._returning = meta.get_primary_keys()
        query._row_type = peewee.ROW.TUPLE
    names = ", ".join(plan.column(c.name) for c in columns)
    one = "(" + ", ".join([plan.param] * len(columns)) + ")"
    sql = f"INSERT INTO {plan.table} ({names}) VALUES {', '.join([one] * len(rows))}"
    if returning:
        sql += " RETURNING " + ", ".join(plan.column(f.name) for f in returning)
    cursor = execute(database, sql, values)
    if returning:
        query._cursor_wrapper = query._get_cursor_wrapper(cursor)
        return query.handle_result(database, query._cursor_wrapper)
    return query.handle_result(database, cursor)


def _default_of(defaults: Mapping[peewee.Field, Any], column: peewee.Field) -> Any:
    for field, default in defaults.items():
        if field is column:
            return default
    return _GENERAL


def _insert_columns(query: Any, first: Any) -> list[peewee.Field] | None:
    """The columns peewee's multi-row INSERT writes, or None where they are not plain fields of the model."""
    model = query.model
    meta = model._meta
    given = query._columns
    if given:
        columns = [getattr(model, c) if isinstance(c, str) else c for c in given]
        columns += sorted((f for f in meta.defaults if not any(f is c for c in columns)), key=_field_order)
    elif isinstance(first, Mapping):
        keys = [getattr(model, k) if isinstance(k, str) else k for k in first]
        keys += [f for f in meta.defaults if not any(f is k for k in keys)]
        columns = sorted(keys, key=_field_order)
    else:
        columns = list(meta.sorted_fields[1:] if meta.auto_increment else meta.sorted_fields)
    if not all(isinstance(c, peewee.Field) and meta.fields.get(c.name) is c for c in columns):
        return None
    return columns


def _field_order(field: Any) -> Any:
    """Where peewee sorts a column among the INSERT's (the primary key, then fields as declared)."""
    return getattr(field, "_sort_key", (9, 0))
