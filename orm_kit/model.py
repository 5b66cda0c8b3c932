"""The base model every orm-kit table derives from: validation on every write path, UTC timestamps.

What it adds to :class:`peewee.Model`:

* rules declared with :func:`~orm_kit.validation.validate` and
  :func:`~orm_kit.validation.validates`, plus type checks for every field, run before any SQL on
  ``save()``, ``create()``, ``insert()``, ``insert_many()``/``bulk_create()`` and ``update()``;
* a unique violation reported by the database comes back as the same
  :class:`~orm_kit.errors.ValidationError`, naming the field;
* a new instance whose primary key is not auto-incremented (a UUID, say) is inserted by ``save()``
  (plain peewee would issue an UPDATE that matches nothing and silently store nothing);
* ``updated_at``, where a model has it, is set on every save.

Models carry no database: bind them explicitly (``db.bind(models)``).
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import peewee

from orm_kit.errors import ValidationError
from orm_kit.fields import utcnow
from orm_kit.validation import (
    BLANK,
    Validator,
    collect_record_rules,
    field_type_error,
)

__all__ = ["Model"]

# Set while save() runs: it validated the whole instance, so the insert()/update() it issues need not.
_saving: contextvars.ContextVar[bool] = contextvars.ContextVar("orm_kit_saving", default=False)

_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)")
_PG_UNIQUE_DETAIL = re.compile(r"Key \((.+?)\)=\((.*)\) already exists")


class _TranslatesUniqueViolations:
    """Mixed into write queries: a unique violation comes back as a ValidationError naming the field."""

    model: type[peewee.Model]

    def _execute(self, database: peewee.Database) -> Any:
        try:
            return super()._execute(database)  # type: ignore[misc]  # missing from the stubs
        except peewee.IntegrityError as exc:
            raise _translate(self.model, exc) from exc


class _Insert(_TranslatesUniqueViolations, peewee.ModelInsert):
    pass


class _Update(_TranslatesUniqueViolations, peewee.ModelUpdate):
    pass


def _translate(model: type[peewee.Model], exc: peewee.IntegrityError) -> Exception:
    """A unique violation as a ValidationError naming the field; any other integrity error unchanged."""
    columns: list[str] = []
    value: str | None = None
    text = str(exc)
    pg_detail = _PG_UNIQUE_DETAIL.search(text) if "duplicate key value" in text else None
    if pg_detail:
        columns = [c.strip().strip('"') for c in pg_detail.group(1).split(",")]
        value = pg_detail.group(2)
    else:
        sqlite = _SQLITE_UNIQUE.search(text)
        if sqlite:
            columns = [c.strip().rsplit(".", 1)[-1] for c in sqlite.group(1).split(",")]
    if not columns:
        return exc
    by_column = {f.column_name: f.name for f in model._meta.sorted_fields}
    names = [by_column.get(c, c) for c in columns]
    shown = f" ({value!r})" if value is not None else ""
    if len(names) == 1:
        message = f"has already been taken{shown}; choose another value"
    else:
        message = f"has already been taken{shown}: {' and '.join(names)} must be unique together"
    return ValidationError(model.__name__, {names[-1]: [message]})


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

        ``partial`` checks only the fields present (an UPDATE); otherwise a missing required field
        without a default is reported, and the cross-field ``@validates`` rules run too.
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
                if not field.null and not (field is meta.primary_key and meta.auto_increment):
                    errors.setdefault(name, []).append(BLANK)
                continue
            problem = field_type_error(field, value)
            if problem is not None:
                errors.setdefault(name, []).append(problem)
                continue
            for rule in rules.get(name, ()):
                message = rule(value)
                if message is not None:
                    errors.setdefault(name, []).append(message)
        if not partial and cls.__orm_kit_record_rules__:
            subject = instance if instance is not None else cls._from_data(data)
            for target, method in cls.__orm_kit_record_rules__:
                if target in errors:
                    continue  # the field is already wrong on its own
                message = getattr(subject, method)()
                if message is not None:
                    errors.setdefault(target, []).append(message)
        return errors

    @classmethod
    def _from_data(cls, data: Mapping[str, Any]) -> Model:
        instance = cls(__no_default__=True)
        instance.__data__.update(data)
        return instance

    def validation_errors(self) -> dict[str, list[str]]:
        """Every rule this instance breaks, as ``{field: [messages]}`` (empty when valid)."""
        return type(self).check_data(self.__data__, instance=self)

    def validate(self) -> None:
        """Raise :class:`ValidationError` listing every failing field, or return when the instance is valid."""
        errors = self.validation_errors()
        if errors:
            raise ValidationError(type(self).__name__, errors)

    # --- write paths -------------------------------------------------------------------------------

    def save(self, force_insert: bool = False, only: Any = None) -> Any:
        """Validate, then insert (a new instance) or update (one read from the database)."""
        meta = self._meta
        if only is None:
            self.validate()
        else:
            names = {f if isinstance(f, str) else f.name for f in only}
            errors = type(self).check_data({n: self.__data__.get(n) for n in names}, partial=True)
            if errors:
                raise ValidationError(type(self).__name__, errors)
        if not self._persisted and not meta.auto_increment:
            force_insert = True
        if "updated_at" in meta.fields:
            self.updated_at = utcnow()
            if only is not None:
                only = [*only, meta.fields["updated_at"]]
        token = _saving.set(True)
        try:
            rows = super().save(force_insert=force_insert, only=only)
        finally:
            _saving.reset(token)
        self._persisted = True
        return rows

    @classmethod
    def insert(cls, __data: Any = None, **insert: Any) -> peewee.ModelInsert:
        data = cls._normalize_data(__data, insert)  # type: ignore[attr-defined]
        if not _saving.get():
            cls._raise_if_invalid({f.name: v for f, v in data.items() if isinstance(f, peewee.Field)})
        return _Insert(cls, data)

    @classmethod
    def insert_many(cls, rows: Iterable[Any], fields: Sequence[Any] | None = None) -> peewee.ModelInsert:
        if isinstance(rows, peewee.Node):
            return _Insert(cls, insert=rows, columns=fields)
        rows = list(rows)
        columns = cls._columns_for(fields)
        for index, row in enumerate(rows):
            cls._raise_if_invalid(cls._row_data(row, columns), row=index)
        return _Insert(cls, insert=rows, columns=fields)

    @classmethod
    def update(cls, __data: Any = None, **update: Any) -> peewee.ModelUpdate:
        data = cls._normalize_data(__data, update)  # type: ignore[attr-defined]
        if not _saving.get():
            named = {f.name: v for f, v in data.items() if isinstance(f, peewee.Field) and f.model is cls}
            cls._raise_if_invalid(named, partial=True)
        return _Update(cls, data)

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
