"""Validators declared once on a model and run on every write path, before any SQL is sent.

Validators are small callables built by factories; each returns ``None`` for a good value or a message
phrased to follow the field name ("is too long (maximum is 63 characters)")::

    @validate(name=[slug(max_length=63)], email=[email()])
    class Team(Model):
        name = CharField(max_length=63, unique=True)
        email = CharField(null=True)

        @validates("parent")
        def _not_own_parent(self) -> str | None:
            return "cannot be the team itself" if self.parent_id == self.id else None

The decorators only record; :class:`orm_kit.model.Model` runs them on ``save()``, ``create()``,
``insert()``, ``insert_many()``/``bulk_create()`` and ``update()``, and raises one
:class:`~orm_kit.errors.ValidationError` carrying ``{field: [messages]}`` for every failing field.

Besides the declared rules, every field gets type checks that make SQLite keep only what PostgreSQL
would keep: no text in integer columns, integers within the column's width, no NaN or infinity, nothing
longer than ``max_length``, no NUL byte in text.
"""

from __future__ import annotations

import datetime
import decimal
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import peewee

from orm_kit.fields import as_utc

__all__ = [
    "Validator",
    "commit_sha",
    "email",
    "field_type_error",
    "length",
    "matches",
    "not_before",
    "not_blank",
    "number_range",
    "one_of",
    "required",
    "semver",
    "slug",
    "url",
    "validate",
    "validates",
]

BLANK = "can't be blank"


class Validator:
    """One rule for one value: ``rule(value)`` is ``None`` when the value passes, else the message."""

    __slots__ = ("_check", "_repr", "skip_none")

    def __init__(self, check: Callable[[Any], str | None], description: str, *, skip_none: bool = True) -> None:
        self._check = check
        self._repr = description
        self.skip_none = skip_none

    def __call__(self, value: Any) -> str | None:
        if value is None and self.skip_none:
            return None
        return self._check(value)

    def __repr__(self) -> str:
        return self._repr


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def required() -> Validator:
    """The value must be present (not ``None``)."""
    return Validator(lambda v: BLANK if v is None else None, "required()", skip_none=False)


def not_blank(*, allow_none: bool = False) -> Validator:
    """The value must be present and, for text, contain more than white space.

    ``allow_none`` lets a nullable field stay empty (``None``) while refusing ``""`` or white space.
    """

    def check(value: Any) -> str | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return BLANK
        return None

    suffix = "allow_none=True" if allow_none else ""
    return Validator(check, f"not_blank({suffix})", skip_none=allow_none)


def length(*, min: int | None = None, max: int | None = None) -> Validator:
    """Text length within ``[min, max]`` characters."""

    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return None  # the type check reports non-text
        if max is not None and len(value) > max:
            return f"is too long (maximum is {max} characters, got {len(value)})"
        if min is not None and len(value) < min:
            return f"is too short (minimum is {min} character{'s' if min != 1 else ''}, got {len(value)})"
        return None

    return Validator(check, f"length(min={min!r}, max={max!r})")


def matches(pattern: str, expected: str, *, flags: int = 0) -> Validator:
    """The whole text matches ``pattern``; ``expected`` says in words what that means."""
    compiled = re.compile(pattern, flags)

    def check(value: Any) -> str | None:
        if isinstance(value, str) and compiled.fullmatch(value):
            return None
        return f"must be {expected} (got {_shown(value)})"

    return Validator(check, f"matches({pattern!r})")


def one_of(*choices: Any) -> Validator:
    """The value is one of ``choices``."""
    allowed = frozenset(choices)
    listed = ", ".join(str(c) for c in choices)

    def check(value: Any) -> str | None:
        try:
            ok = value in allowed
        except TypeError:
            ok = False
        return None if ok else f"must be one of {listed} (got {_shown(value)})"

    return Validator(check, f"one_of({', '.join(repr(c) for c in choices)})")


_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+")


def email() -> Validator:
    """An email address: ``local@domain.tld`` (no display name, no spaces)."""

    def check(value: Any) -> str | None:
        if isinstance(value, str) and len(value) <= 254 and _EMAIL.fullmatch(value):
            return None
        return f"is not a valid email address like team@example.com (got {_shown(value)})"

    return Validator(check, "email()")


def url(*, schemes: Iterable[str] = ("http", "https")) -> Validator:
    """An absolute URL with one of ``schemes`` and a host."""
    allowed = tuple(schemes)

    def check(value: Any) -> str | None:
        if isinstance(value, str) and not any(c.isspace() for c in value):
            try:
                parts = urlsplit(value)
                host = parts.hostname
            except ValueError:
                host = None
            if parts.scheme in allowed and host:
                return None
        return f"is not a valid URL (expected {' or '.join(s + '://' for s in allowed)}host/..., got {_shown(value)})"

    return Validator(check, f"url(schemes={allowed!r})")


def number_range(*, min: float | None = None, max: float | None = None) -> Validator:
    """A number within ``[min, max]``."""

    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
            return None  # the type check reports non-numbers
        if min is not None and value < min:
            return f"must be at least {min} (got {value})"
        if max is not None and value > max:
            return f"must be at most {max} (got {value})"
        return None

    return Validator(check, f"number_range(min={min!r}, max={max!r})")


_SEMVER = (r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
           r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
           r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?")


def semver() -> Validator:
    """A semantic version (semver.org 2.0): ``1.4.2``, ``2.0.0-rc.1``, ``1.0.0+build.5``."""
    rule = matches(_SEMVER, "a semantic version like 1.4.2 or 2.0.0-rc.1")
    return Validator(rule, "semver()")


def commit_sha() -> Validator:
    """A full git commit SHA: 40 lowercase hexadecimal characters."""
    rule = matches(r"[0-9a-f]{40}", "a full commit SHA of 40 lowercase hexadecimal characters")
    return Validator(rule, "commit_sha()")


def slug(*, max_length: int = 63) -> Validator:
    """A DNS label: lowercase letters, digits and '-', starting with a letter, not ending with '-'."""
    rule = matches(r"[a-z](?:[a-z0-9-]*[a-z0-9])?",
                   "a lowercase slug of letters, digits and '-', starting with a letter and not ending with '-'")
    too_long = length(max=max_length)

    def check(value: Any) -> str | None:
        return too_long(value) or rule(value)

    return Validator(check, f"slug(max_length={max_length})")


def not_before(later: Any, earlier: Any, earlier_name: str) -> str | None:
    """For cross-field rules: why ``later`` cannot come before ``earlier``, or ``None`` when it does not.

    Only two times (or two dates) are compared: anything else is the type check's to report, and an
    SQL expression is the database's to evaluate.
    """
    if isinstance(later, datetime.datetime) and isinstance(earlier, datetime.datetime):
        later, earlier = as_utc(later), as_utc(earlier)  # a naive value is UTC, as the fields store it
    elif not (type(later) is datetime.date and type(earlier) is datetime.date):
        return None
    if later < earlier:
        return f"must be at or after {earlier_name} ({earlier.isoformat()}, got {later.isoformat()})"
    return None


# --- type checks: what PostgreSQL would refuse, refused on SQLite too -------------------------------

_INT_BITS: tuple[tuple[type[peewee.Field], int], ...] = (
    (peewee.SmallIntegerField, 16),
    (peewee.BigAutoField, 64),
    (peewee.BigIntegerField, 64),
    (peewee.IntegerField, 32),  # AutoField is an IntegerField: SERIAL is 32-bit too
)


def _int_error(value: Any, bits: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be an integer (got {_shown(value)})"
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if not low <= value <= high:
        return f"must be a {bits}-bit integer between {low} and {high} (got {value})"
    return None


def _text_error(value: Any, max_length: int | None) -> str | None:
    if not isinstance(value, str):
        return f"must be text (got {_shown(value)})"
    if "\x00" in value:
        return "must not contain a NUL byte (\\x00)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"must be valid Unicode text (a lone surrogate at position {exc.start})"
    if max_length is not None and len(value) > max_length:
        return f"is too long (maximum is {max_length} characters, got {len(value)})"
    return None


def field_type_error(field: peewee.Field, value: Any) -> str | None:
    """Why ``value`` cannot be stored in ``field`` on every supported database, or ``None`` when it can."""
    if isinstance(field, peewee.ForeignKeyField):
        if isinstance(value, peewee.Model):
            return None
        return field_type_error(field.rel_field, value)
    if isinstance(field, peewee.IntegerField):
        for kind, bits in _INT_BITS:
            if isinstance(field, kind):
                return _int_error(value, bits)
    if isinstance(field, peewee.FloatField | peewee.DecimalField):
        if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
            return f"must be a number (got {_shown(value)})"
        if isinstance(value, float | decimal.Decimal) and not math.isfinite(value):
            return f"must be a finite number (got {value})"
        return None
    if isinstance(field, peewee.BooleanField):
        return None if isinstance(value, bool) else f"must be true or false (got {_shown(value)})"
    if isinstance(field, peewee.UUIDField):
        if isinstance(value, uuid.UUID):
            return None
        try:
            uuid.UUID(str(value))
        except ValueError:
            return f"must be a UUID (got {_shown(value)})"
        return None
    if isinstance(field, peewee.DateTimeField):
        ok = isinstance(value, datetime.datetime)
        return None if ok else f"must be a date and time (got {_shown(value)})"
    if isinstance(field, peewee.DateField):
        ok = isinstance(value, datetime.date) and not isinstance(value, datetime.datetime)
        return None if ok else f"must be a date (got {_shown(value)})"
    if isinstance(field, peewee.CharField):
        return _text_error(value, field.max_length)
    if isinstance(field, peewee.TextField):
        return _text_error(value, None)
    return None


# --- declaring rules on a model -------------------------------------------------------------------

ModelT = TypeVar("ModelT", bound=type)
MethodT = TypeVar("MethodT", bound=Callable[..., Any])

FIELD_RULES = "__orm_kit_field_rules__"
RECORD_RULES = "__orm_kit_record_rules__"
_MARK = "__orm_kit_validates__"


def validate(**rules: Iterable[Validator]) -> Callable[[ModelT], ModelT]:
    """Class decorator: declare field rules, ``@validate(name=[slug()], email=[email()])``."""

    def record(cls: ModelT) -> ModelT:
        fields = getattr(getattr(cls, "_meta", None), "fields", None)
        unknown = sorted(set(rules) - set(fields or ()))
        if fields is not None and unknown:
            raise TypeError(f"@validate on {cls.__name__} names {unknown}, which are not fields of the model")
        inherited: Mapping[str, tuple[Validator, ...]] = getattr(cls, FIELD_RULES, {})
        merged = dict(inherited)
        for name, validators in rules.items():
            merged[name] = (*merged.get(name, ()), *validators)
        setattr(cls, FIELD_RULES, merged)
        return cls

    return record


def validates(field: str) -> Callable[[MethodT], MethodT]:
    """Method decorator: a custom or cross-field rule returning a message for ``field`` or ``None``."""

    def mark(method: MethodT) -> MethodT:
        setattr(method, _MARK, field)
        return method

    return mark


def collect_record_rules(cls: type) -> tuple[tuple[str, str], ...]:
    """``(field, method name)`` of every ``@validates`` method on ``cls`` and its bases, in definition order."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        for name, attr in vars(klass).items():
            target = getattr(attr, _MARK, None)
            if target is not None:
                found[name] = target
    return tuple((target, name) for name, target in found.items())
