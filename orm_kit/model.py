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
* ``updated_at``, where a model has it, is set on every save.

Models carry no database: bind them explicitly (``db.bind(models)``).
"""

from __future__ import annotations

import contextvars
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import peewee

from orm_kit.errors import ValidationError
from orm_kit.fields import utcnow
from orm_kit.integrity import translate as _translate
from orm_kit.validation import (
    BLANK,
    Validator,
    collect_record_rules,
    field_type_error,
)

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

    class Meta:
        legacy_table_names = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__orm_kit_record_rules__ = collect_record_rules(cls)

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
        """
        errors: dict[str, list[str]] = {}
        rules = cls.__orm_kit_field_rules__
        meta = cls._meta
        for field in meta.sorted_fields:
            name = field.name
            if name in data:
                value = data[name]
            elif partial or field.null or field in meta.defaults or field is meta.primary_key:
                continue
            else:
                value = None
            if isinstance(value, peewee.Node):
                continue  # an SQL expression: the database evaluates it
            if value is None:
                if instance is not None and instance.__rel__.get(name) is not None:
                    continue  # a related object that save() will resolve to its key
                presence = [m for rule in rules.get(name, ()) if not rule.skip_none and (m := rule(None))]
                if not field.null and not (field is meta.primary_key and meta.auto_increment):
                    presence = presence or [BLANK]
                errors.update({name: presence} if presence else {})
                continue
            problem = field_type_error(field, value)
            if problem is not None:
                errors.setdefault(name, []).append(problem)
                continue
            for rule in rules.get(name, ()):
                message = rule(value)
                if message is not None:
                    errors.setdefault(name, []).append(message)
        if not partial or instance is not None:
            subject = instance if instance is not None else cls._from_data(data)
            for target, method in cls.__orm_kit_record_rules__:
                if target in errors or (partial and target not in data):
                    continue  # already wrong on its own, or not being written
                message = getattr(subject, method)()
                if message is not None:
                    errors.setdefault(target, []).append(message)
        return errors

    @classmethod
    def _from_data(cls, data: Mapping[str, Any]) -> Model:
        instance = cls(__no_default__=True)
        instance.__data__.update(data)
        return instance

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

    # --- write paths -------------------------------------------------------------------------------

    def save(self, force_insert: bool = False, only: Any = None) -> Any:
        """Validate, then insert (a new instance) or update (one read from the database)."""
        meta = self._meta
        names = None if only is None else [f if isinstance(f, str) else f.name for f in only]
        if self._derives():
            before = dict(self.__data__)
            type(self).derive(self.__data__)
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
        token = _prevalidated.set(True)
        try:
            rows = super().save(force_insert=force_insert, only=only)
        finally:
            _prevalidated.reset(token)
        self._persisted = True
        return rows

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
