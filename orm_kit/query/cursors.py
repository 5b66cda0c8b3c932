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

from orm_kit._shown import shown
from orm_kit.errors import InvalidQueryError
from orm_kit.validation import field_type_error

__all__ = ["MAX_CURSOR_LENGTH", "decode", "encode"]

#: The longest cursor read: far past any this module issues (a few sort values), short enough to refuse unread.
MAX_CURSOR_LENGTH = 8192


def encode(spec: Sequence[str], values: Sequence[object]) -> str:
    """The cursor after a row whose sort values (in the order ``spec``) are ``values``."""
    raw = json.dumps({"o": list(spec), "v": [_jsonable(v) for v in values]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(cursor: str, spec: Sequence[str], fields: Sequence[peewee.Field]) -> list[object]:
    """The sort values in ``cursor``, one per field; InvalidQueryError unless it was issued for ``spec``."""
    if not isinstance(cursor, str):
        raise InvalidQueryError(f"a cursor is the text a page gave as next_cursor (got {shown(cursor)})")
    problem = (f"cursor {shown(cursor, 40)} is not one this listing issued for order {list(spec)} "
               "(pass the next_cursor of the previous page unchanged, with the same order and filters)")
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidQueryError(problem)
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(data, dict) or data.get("o") != list(spec) or len(data.get("v", ())) != len(fields):
            raise InvalidQueryError(problem)
        values = [_python_value(field, raw) for field, raw in zip(fields, data["v"], strict=True)]
    except (ValueError, TypeError, binascii.Error, AttributeError, UnicodeDecodeError, OverflowError,
            RecursionError):  # OverflowError: int() of a float such as 1e400; RecursionError: deep JSON
        raise InvalidQueryError(problem) from None
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
