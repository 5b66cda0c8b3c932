"""Field types orm-kit adds to peewee's, and the fast value conversions its prepared statements use.

    Status = Literal["created", "running", "success"]
    STATUSES: tuple[Status, ...] = get_args(Status)       # the one list validators and CHECKs use

    class Deployment(Model):
        created_at = UTCDateTimeField(default=utcnow)     # aware UTC datetimes on both databases
        status = choice_field(STATUSES, max_length=16, default="created")   # reads and writes Status

    convert = reader(Deployment.created_at, postgres=False)   # what the driver returns -> the Python value
    convert.apply("2026-01-05 10:11:12.000000")              # datetime(2026, 1, 5, 10, 11, 12, tzinfo=UTC)

:func:`reader` and :func:`writer` give, per field and database, the same conversion as the field's
``python_value`` / ``db_value`` in a form the prepared statements inline: values already of the right
type pass without a call, and the common conversions (UTC text, UUID hex) take a fast path. A field
class that overrides ``python_value`` or ``db_value`` is converted by its own method.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

import peewee

from orm_kit import dialect
from orm_kit.errors import ConfigurationError, InvalidQueryError, ValidationError

__all__ = ["Conversion", "UTCDateTimeField", "UUIDField", "as_utc", "choice_field", "out_of_range", "reader", "utcnow",
           "with_database", "writer"]

_V = TypeVar("_V")
_ChoiceT = TypeVar("_ChoiceT", bound=str)

UTC = datetime.UTC
_fromisoformat = datetime.datetime.fromisoformat
_STORED_TEXT = len("2026-01-05 10:11:12.123456")  # the longest text this field writes on SQLite


def utcnow() -> datetime.datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.datetime.now(UTC)


def as_utc(value: datetime.datetime) -> datetime.datetime:
    """``value`` as an aware UTC datetime; a naive value is taken to be UTC already.

    An instant that falls outside years 1-9999 once in UTC (``0001-01-01 00:00+14:00``) has no UTC
    ``datetime`` and no column can hold it: :class:`~orm_kit.errors.InvalidQueryError`, never ``OverflowError``.
    Writes never get here with one (validation refuses it first); a query's value can.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):  # ValueError: a tzinfo whose offset is not within a day
        raise InvalidQueryError(f"the time {value.isoformat()} {out_of_range(value)}") from None


def out_of_range(value: datetime.datetime) -> str | None:
    """Why the aware ``value`` cannot be stored as a UTC instant (outside years 1-9999 once in UTC), or None."""
    if value.tzinfo is None or value.tzinfo is UTC:
        return None
    try:
        value.astimezone(UTC)
    except (OverflowError, ValueError):
        return ("is outside years 1 to 9999 once converted to UTC, which no database column holds; give an "
                "instant from 0001-01-01 to 9999-12-31 UTC")
    return None


def _utc_from_db(value: Any) -> Any:
    """What the database returned for a :class:`UTCDateTimeField`, as an aware UTC ``datetime``."""
    if type(value) is str:
        if len(value) <= _STORED_TEXT:
            # Parsing with the offset appended is several times faster than replace(tzinfo=UTC) after;
            # anything that does not come back in UTC (a date alone, text with its own offset) goes the long way.
            try:
                parsed = _fromisoformat(value + "+00:00")
            except ValueError:
                parsed = None
            if parsed is not None and parsed.tzinfo is UTC:
                return parsed
        value = _fromisoformat(value)
    if isinstance(value, datetime.datetime):
        return as_utc(value)
    return value


def _utc_from_postgres(value: Any) -> Any:
    """What psycopg returned for a ``timestamptz``: already UTC when the session's time zone is UTC."""
    if type(value) is datetime.datetime and value.tzinfo is UTC:
        return value
    return _utc_from_db(value)


def _utc_to_text(value: Any) -> Any:
    """A time as SQLite stores it: UTC, fixed-width ISO text (``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    if type(value) is datetime.datetime:
        zone = value.tzinfo
        if zone is None:
            return value.isoformat(" ", "microseconds")
        if zone is UTC:
            return value.isoformat(" ", "microseconds")[:_STORED_TEXT]  # without the "+00:00"
    if value is None or isinstance(value, peewee.Node):
        return value
    if isinstance(value, str):
        value = _fromisoformat(value)
    if not isinstance(value, datetime.datetime):
        return value  # validation reports it; the driver refuses it
    # isoformat pads the year to four digits (strftime's %Y does not for years before 1000).
    return as_utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")


def _utc_to_postgres(value: Any) -> Any:
    """A time as PostgreSQL's ``timestamptz`` takes it: an aware UTC datetime."""
    if type(value) is datetime.datetime and value.tzinfo is UTC:
        return value
    if value is None or isinstance(value, peewee.Node):
        return value
    if isinstance(value, str):
        value = _fromisoformat(value)
    if not isinstance(value, datetime.datetime):
        return value
    return as_utc(value)


if TYPE_CHECKING:
    _DateTimeField = peewee.DateTimeField
else:
    class _DateTimeField(peewee.DateTimeField, Generic[_V]):
        """peewee's DateTimeField, generic at run time as its stubs make it for mypy (``Field[_V]``)."""


class UTCDateTimeField(_DateTimeField[_V]):
    """A point in time stored in UTC and read back as an aware UTC ``datetime``.

    PostgreSQL stores ``timestamptz``. SQLite has no time type, so the value is stored as fixed-width
    text (``YYYY-MM-DD HH:MM:SS.ffffff``, always UTC) that sorts and compares in time order and that
    SQLite's date functions read. A naive ``datetime`` is taken to be UTC. Read, it is a
    ``datetime.datetime`` to mypy (``datetime.datetime | None`` with ``null=True``), as peewee's own
    fields are typed by their stubs.
    """

    field_type = "TIMESTAMPTZ"

    if TYPE_CHECKING:
        @overload
        def __new__(cls, *args: Any, null: Literal[True], **kwargs: Any) -> UTCDateTimeField[datetime.datetime | None]:
            ...

        @overload
        def __new__(cls, *args: Any, null: Literal[False] = ..., **kwargs: Any) -> UTCDateTimeField[datetime.datetime]:
            ...

        def __new__(cls, *args: Any, null: bool = False, **kwargs: Any) -> UTCDateTimeField[Any]: ...

    def db_value(self, value: Any) -> Any:
        """``value`` in UTC, as the database stores it (aware datetime on PostgreSQL, ISO text on SQLite)."""
        model = getattr(self, "model", None)  # None for a field of no model (see with_database)
        if dialect.is_postgres(model._meta.database if model is not None else None):
            return _utc_to_postgres(value)
        return _utc_to_text(value)

    def python_value(self, value: Any) -> Any:
        """What the database returned, as an aware UTC ``datetime``."""
        if value is None:
            return None
        return _utc_from_db(value)


class UUIDField(peewee.UUIDField):
    """peewee's ``UUIDField``, every spelling of a UUID written in one form: 32 lowercase hex digits on SQLite.

    peewee writes a 32-character text as it is given, so on SQLite ``"8F2A...E1"`` (upper case) was stored
    verbatim: the row was then not found by its UUID, a second row with the same UUID was accepted, and
    references to it failed. PostgreSQL's ``uuid`` type is canonical by itself. Every
    :class:`~orm_kit.model.Model` stores its ``peewee.UUIDField`` columns (and the foreign keys to them)
    through this class.
    """

    def db_value(self, value: Any) -> Any:
        """``value`` as SQLite stores a UUID (text that is not a UUID is left for validation to report)."""
        if isinstance(value, str):
            try:
                return uuid.UUID(value).hex
            except ValueError:
                return value
        return super().db_value(value)  # type: ignore[no-untyped-call]  # peewee's stubs leave it untyped


@overload
def choice_field(values: Sequence[_ChoiceT], *, null: Literal[True], default: str | None = None,
                 max_length: int = 255, **kwargs: Any) -> peewee.CharField[_ChoiceT | None]: ...


@overload
def choice_field(values: Sequence[_ChoiceT], *, null: Literal[False] = False, default: str | None = None,
                 max_length: int = 255, **kwargs: Any) -> peewee.CharField[_ChoiceT]: ...


def choice_field(values: Sequence[_ChoiceT], *, null: bool = False, default: str | None = None,
                 max_length: int = 255, **kwargs: Any) -> peewee.CharField[Any]:
    """A ``CharField`` holding one of ``values``, typed by them: give it a ``Literal``'s values and mypy checks reads
    and writes (``CharField[Status]``); at run time it is peewee's ``CharField``, its ``choices`` the values.

    The values and the default are checked when the model is defined: a default that is not one of them, or
    a value longer than ``max_length``, is a :class:`~orm_kit.errors.ConfigurationError`. The CHECK
    constraint and the ``one_of`` validator are declared as for any field, from the same values.
    """
    listed = tuple(values)
    if not listed or not all(isinstance(v, str) for v in listed):
        raise ConfigurationError(f"choice_field takes a non-empty sequence of strings (got {values!r})")
    too_long = [v for v in listed if len(v) > max_length]
    if too_long:
        raise ConfigurationError(f"choice_field value {too_long[0]!r} is longer than max_length={max_length}; "
                                 "raise max_length")
    if default is not None and default not in listed:
        raise ConfigurationError(f"choice_field default {default!r} is not one of {', '.join(listed)}")
    if default is not None:
        kwargs["default"] = default
    kwargs.setdefault("choices", [(v, v) for v in listed])  # peewee's own record of a closed set; it enforces nothing
    field: peewee.CharField[Any] = peewee.CharField(max_length, null=True, **kwargs) if null else \
        peewee.CharField(max_length, **kwargs)
    return field


# --- conversions for prepared statements --------------------------------------------------------------

@dataclass(frozen=True)
class Conversion:
    """One field's conversion between the driver and Python, in a form prepared statements inline.

    ``convert`` is None when values are used as they are; values of exactly type ``keep`` are already
    right and skip the call; None stays None unless ``none_too`` (a field that maps NULL to something).
    """

    convert: Callable[[Any], Any] | None
    keep: type | None = None
    none_too: bool = False

    def apply(self, value: Any) -> Any:
        """``value`` converted (the slow, general form of what prepared statements inline)."""
        if self.convert is None or (value is None and not self.none_too) or type(value) is self.keep:
            return value
        return self.convert(value)


_UUID = uuid.UUID
_new = object.__new__
_set = object.__setattr__
_UNKNOWN = uuid.SafeUUID.unknown


def _uuid_from_hex(value: Any) -> Any:
    """A UUID from the 32 hex digits SQLite stores (what psycopg's loader does: no parsing in Python)."""
    if type(value) is str and len(value) == 32 and value.isascii() and value.isalnum():
        try:
            number = int(value, 16)
        except ValueError:
            return _UUID(value)
        made = _new(_UUID)
        _set(made, "int", number)
        _set(made, "is_safe", _UNKNOWN)
        return made
    return value if isinstance(value, _UUID) else _UUID(value)


def _works(fast: Callable[[Any], Any]) -> bool:
    sample = "0123456789abcdef0123456789abcdef"
    try:
        made = fast(sample)
        return bool(made == _UUID(sample) and str(made) == str(_UUID(sample)) and hash(made) == hash(_UUID(sample)))
    except Exception:  # noqa: BLE001 - a Python whose UUID is built differently: use the constructor
        return False


_uuid_reader: Callable[[Any], Any] = _uuid_from_hex if _works(_uuid_from_hex) else _UUID


def _uuid_to_postgres(field: peewee.Field) -> Callable[[Any], Any]:
    # psycopg sends a UUID as a uuid; peewee's hex text would be text, which `= ANY(%s)` cannot compare.
    general: Callable[[Any], Any] = field.db_value

    def convert(value: Any) -> Any:
        if type(value) is _UUID:
            return value
        made = general(value)
        if isinstance(made, str):
            try:
                return _UUID(made)
            except ValueError:
                return made  # not a UUID: the database refuses it, as it would peewee's
        return made

    return convert


def _uuid_to_text(field: peewee.Field) -> Callable[[Any], Any]:
    general: Callable[[Any], Any] = field.db_value

    def convert(value: Any) -> Any:
        return value.hex if type(value) is _UUID else general(value)

    return convert


def _maps_none(convert: Callable[[Any], Any]) -> bool:
    try:
        return convert(None) is not None
    except Exception:  # noqa: BLE001 - it cannot take None: let it fail as peewee would
        return True


def _adapted(field: peewee.Field, convert: Callable[[Any], Any]) -> Conversion:
    """A field converted by peewee's ``adapt``: which values already are what it returns."""
    adapt = type(field).adapt
    if adapt is peewee.Field.adapt:
        return Conversion(None)
    if adapt is peewee._StringField.adapt:
        return Conversion(convert, keep=str)
    if adapt is peewee.IntegerField.adapt:
        return Conversion(convert, keep=int)
    if adapt is peewee.FloatField.adapt:
        return Conversion(convert, keep=float)
    return Conversion(convert)


def reader(field: peewee.Field, *, postgres: bool) -> Conversion:
    """How a value the driver returns for ``field`` becomes what ``field.python_value`` would make of it."""
    method = type(field).python_value
    if isinstance(field, peewee.ForeignKeyField) and method is peewee.ForeignKeyField.python_value:
        return reader(field.rel_field, postgres=postgres)  # a row never holds a model instance
    if method is UTCDateTimeField.python_value:
        return Conversion(_utc_from_postgres if postgres else _utc_from_db)
    if method is peewee.UUIDField.python_value:
        return Conversion(_uuid_reader, keep=_UUID)
    if method is peewee.Field.python_value:
        return _adapted(field, field.python_value)
    return Conversion(field.python_value, none_too=_maps_none(field.python_value))


def writer(field: peewee.Field, *, postgres: bool) -> Conversion:
    """How a Python value for ``field`` becomes the parameter the driver is given (``field.db_value``)."""
    method = type(field).db_value
    if isinstance(field, peewee.ForeignKeyField) and method is peewee.ForeignKeyField.db_value:
        target = writer(field.rel_field, postgres=postgres)
        related = field.rel_model
        key = field.rel_field.name

        def foreign_key(value: Any) -> Any:
            if isinstance(value, peewee.Model):
                if not isinstance(value, related):  # its key would link to a row of the wrong table
                    raise ValidationError(field.model.__name__, {field.name: [
                        f"must be a {related.__name__} or its {key} (got a row of {type(value).__name__})"]})
                value = getattr(value, key)
            return target.apply(value)

        return Conversion(foreign_key, keep=target.keep, none_too=target.none_too)
    if method is UTCDateTimeField.db_value:
        return Conversion(_utc_to_postgres if postgres else _utc_to_text)
    if method is peewee.UUIDField.db_value or method is UUIDField.db_value:
        return Conversion(_uuid_to_postgres(field) if postgres else _uuid_to_text(field))
    if method is peewee.Field.db_value:
        return _adapted(field, field.db_value)
    return Conversion(field.db_value, none_too=_maps_none(field.db_value))


def with_database(field: peewee.Field, db: peewee.Database) -> peewee.Field:
    """``field`` writing its values for ``db``'s dialect though it belongs to no model (a migration's ``add_column``
    field: peewee computes its default and writes it through ``db_value``, which needs to know the database)."""
    if getattr(field, "model", None) is None:
        class Column(peewee.Model):
            class Meta:
                database = db

        field.model = Column  # only the database matters: the field is not added to the stand-in's fields
    return field
