"""Keyset pagination cursors: the last row's sort values, opaque to callers, checked when they come back.

    cursor = encode(["-created_at", "id"], [row.created_at, row.id])     # URL-safe text, no padding
    values = decode(cursor, ["-created_at", "id"], [Deployment.created_at, Deployment.id])

A cursor names the order it was issued for: given back with another order, or altered, or with a value
its field would not accept, it is an :class:`~orm_kit.errors.InvalidQueryError` saying to pass the
previous page's ``next_cursor`` unchanged, never a database error.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import uuid
from collections.abc import Sequence

import peewee

from orm_kit.errors import InvalidQueryError
from orm_kit.validation import field_type_error

__all__ = ["decode", "encode"]


def encode(spec: Sequence[str], values: Sequence[object]) -> str:
    """The cursor after a row whose sort values (in the order ``spec``) are ``values``."""
    raw = json.dumps({"o": list(spec), "v": [_jsonable(v) for v in values]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(cursor: str, spec: Sequence[str], fields: Sequence[peewee.Field]) -> list[object]:
    """The sort values in ``cursor``, one per field; InvalidQueryError unless it was issued for ``spec``."""
    problem = (f"cursor {cursor[:40]!r} is not one this listing issued for order {list(spec)} "
               "(pass the next_cursor of the previous page unchanged, with the same order and filters)")
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(data, dict) or data.get("o") != list(spec) or len(data.get("v", ())) != len(fields):
            raise InvalidQueryError(problem)
        values = [_python_value(field, raw) for field, raw in zip(fields, data["v"], strict=True)]
    except (ValueError, TypeError, binascii.Error, AttributeError, UnicodeDecodeError) as exc:
        raise InvalidQueryError(problem) from exc
    for field, value in zip(fields, values, strict=True):
        if value is None or field_type_error(field, value) is not None:
            raise InvalidQueryError(problem)
    return values


def _python_value(field: peewee.Field, raw: object) -> object:
    return field.python_value(raw)  # type: ignore[no-untyped-call]  # peewee untyped


def _jsonable(value: object) -> object:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value
