"""Field types orm-kit adds to peewee's."""

from __future__ import annotations

import datetime
from typing import Any

import peewee

from orm_kit import dialect

__all__ = ["UTCDateTimeField", "utcnow", "with_database"]

UTC = datetime.UTC


def utcnow() -> datetime.datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.datetime.now(UTC)


def as_utc(value: datetime.datetime) -> datetime.datetime:
    """``value`` as an aware UTC datetime; a naive value is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class UTCDateTimeField(peewee.DateTimeField):
    """A point in time stored in UTC and read back as an aware UTC ``datetime``.

    PostgreSQL stores ``timestamptz``. SQLite has no time type, so the value is stored as fixed-width
    text (``YYYY-MM-DD HH:MM:SS.ffffff``, always UTC) that sorts and compares in time order and that
    SQLite's date functions read. A naive ``datetime`` is taken to be UTC.
    """

    field_type = "TIMESTAMPTZ"

    def db_value(self, value: Any) -> Any:
        """``value`` in UTC, as the database stores it (aware datetime on PostgreSQL, ISO text on SQLite)."""
        if value is None or isinstance(value, peewee.Node):
            return value
        if isinstance(value, str):
            value = datetime.datetime.fromisoformat(value)
        if not isinstance(value, datetime.datetime):
            return value  # validation reports it; the driver refuses it
        value = as_utc(value)
        model = getattr(self, "model", None)  # None for a field of no model (see with_database)
        if dialect.is_postgres(model._meta.database if model is not None else None):
            return value
        # isoformat pads the year to four digits (strftime's %Y does not for years before 1000).
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")

    def python_value(self, value: Any) -> Any:
        """What the database returned, as an aware UTC ``datetime``."""
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.datetime.fromisoformat(value)
        if isinstance(value, datetime.datetime):
            return as_utc(value)
        return value


def with_database(field: peewee.Field, db: peewee.Database) -> peewee.Field:
    """``field`` writing its values for ``db``'s dialect though it belongs to no model (a migration's ``add_column``
    field: peewee computes its default and writes it through ``db_value``, which needs to know the database)."""
    if getattr(field, "model", None) is None:
        class Column(peewee.Model):
            class Meta:
                database = db

        field.model = Column  # only the database matters: the field is not added to the stand-in's fields
    return field
