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
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import peewee

from orm_kit._shown import shown
from orm_kit.errors import ArgumentTypeError
from orm_kit.fields import as_utc, out_of_range

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
UTC = datetime.UTC


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
    return shown(value, 77)


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
                # .port raises for a port that is not a number from 0 to 65535: that URL is no URL either.
                ok = parts.scheme in allowed and bool(parts.hostname) and (parts.port or 0) >= 0
            except ValueError:  # an unclosed or invalid IPv6 host ("http://[::1"), a bad port
                ok = False
            if ok:
                return None
        return f"is not a valid URL (expected {' or '.join(s + '://' for s in allowed)}host/..., got {_shown(value)})"

    return Validator(check, f"url(schemes={allowed!r})")


def _finite(value: int | float | decimal.Decimal) -> bool:
    # math.isfinite() raises for a signaling Decimal NaN; Decimal answers for itself.
    if isinstance(value, int):
        return True  # math.isfinite() of an integer past a float's range raises OverflowError
    return value.is_finite() if isinstance(value, decimal.Decimal) else math.isfinite(value)


def number_range(*, min: float | None = None, max: float | None = None) -> Validator:
    """A number within ``[min, max]``."""

    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
            return None  # the type check reports non-numbers
        if not _finite(value):
            return f"must be a finite number (got {_shown(value)})"  # NaN compares false with both bounds
        if min is not None and value < min:
            return f"must be at least {min} (got {_shown(value)})"
        if max is not None and value > max:
            return f"must be at most {max} (got {_shown(value)})"
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
        if out_of_range(later) or out_of_range(earlier):
            return None  # the type check reports it
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
        return f"must be a {bits}-bit integer between {low} and {high} (got {_shown(value)})"
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
    return type_check(field)(value)


TypeCheck = Callable[[Any], str | None]
_TYPE_CHECK = "_orm_kit_type_check"
_MEMO_SIZE = 4096  # distinct foreign-key values remembered per field (then the memo starts over)


def type_check(field: peewee.Field) -> TypeCheck:
    """:func:`field_type_error` compiled for ``field``: the common good value passes with one ``type()`` test.

    Built once per field and kept on it (a Field cannot be a dict key: its ``==`` builds SQL).
    """
    check: TypeCheck | None = vars(field).get(_TYPE_CHECK)
    if check is None:
        check = _build_type_check(field)
        setattr(field, _TYPE_CHECK, check)
    return check


def _no_check(value: Any) -> str | None:
    return None


def _build_type_check(field: peewee.Field) -> TypeCheck:
    if isinstance(field, peewee.ForeignKeyField):
        return _foreign_key_check(field, type_check(field.rel_field))
    if isinstance(field, peewee.IntegerField):
        bits = next(b for kind, b in _INT_BITS if isinstance(field, kind))
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

        def integer(value: Any) -> str | None:
            if type(value) is int and low <= value <= high:
                return None
            return _int_error(value, bits)
        return integer
    if isinstance(field, peewee.FloatField | peewee.DecimalField):
        def number(value: Any) -> str | None:
            if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
                return f"must be a number (got {_shown(value)})"
            if not _finite(value):
                return f"must be a finite number (got {value})"
            return None
        return number
    if isinstance(field, peewee.BooleanField):
        def boolean(value: Any) -> str | None:
            return None if value is True or value is False else f"must be true or false (got {_shown(value)})"
        return boolean
    if isinstance(field, peewee.UUIDField):
        def a_uuid(value: Any) -> str | None:
            if isinstance(value, uuid.UUID):
                return None
            try:
                # Text only: str() of a 32-digit integer, or of a row (its key), would parse as a UUID too.
                if isinstance(value, str):
                    uuid.UUID(value)
                    return None
            except ValueError:
                pass
            return f"must be a UUID (got {_shown(value)})"
        return a_uuid
    if isinstance(field, peewee.DateTimeField):
        def date_time(value: Any) -> str | None:
            if isinstance(value, datetime.datetime):
                zone = value.tzinfo
                if zone is None or zone is UTC:
                    return None
                return out_of_range(value)
            return f"must be a date and time (got {_shown(value)})"
        return date_time
    if isinstance(field, peewee.DateField):
        def date(value: Any) -> str | None:
            ok = isinstance(value, datetime.date) and not isinstance(value, datetime.datetime)
            return None if ok else f"must be a date (got {_shown(value)})"
        return date
    if isinstance(field, peewee.CharField | peewee.TextField):
        most = field.max_length if isinstance(field, peewee.CharField) else None
        limit = most if most is not None else sys.maxsize

        def text(value: Any) -> str | None:
            # ASCII text cannot hold a lone surrogate, so encoding it to UTF-8 would prove nothing.
            if type(value) is str and len(value) <= limit and value.isascii() and "\x00" not in value:
                return None
            return _text_error(value, most)
        return text
    return _no_check


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _foreign_key_check(field: peewee.ForeignKeyField, target: TypeCheck) -> TypeCheck:
    """The check of the key a foreign key points at; an instance of the model it points at passes, an instance of
    any other model is refused (its key would silently link to a row of the wrong table), and each distinct
    text value is parsed once.

    Only text values are remembered: a key given as text (a UUID, say) takes a parse to check, and a
    bulk load repeats the same few parents on every row. A value of the key's own type passes with
    one ``type()`` test, cheaper than a lookup.
    """
    known: set[str] = set()

    def foreign_key(value: Any) -> str | None:
        if type(value) is str and value in known:
            return None
        if isinstance(value, peewee.Model):
            related = field.rel_model  # read per call: a deferred or "self" reference is resolved after the check
            if isinstance(value, related):
                return None
            given = type(value).__name__
            return (f"must be a {related.__name__} or its {field.rel_field.name} (got {_article(given)} {given}, "
                    "a row of another table)")
        problem = target(value)
        if problem is None and type(value) is str:
            if len(known) >= _MEMO_SIZE:
                known.clear()
            known.add(value)
        return problem

    return foreign_key


# --- every rule of a model, compiled -----------------------------------------------------------------

Errors = dict[str, list[str]]
ValueCheck = Callable[[Any], "list[str] | None"]


def _direct(rule: Validator) -> Callable[[Any], str | None]:
    """What ``rule(value)`` runs for a value that is not None (skipping ``Validator.__call__``'s None test)."""
    if type(rule) is Validator:
        return rule._check
    return rule


class _FieldRules:
    """What checking one field takes, worked out once."""

    __slots__ = ("check", "name", "none_matters", "none_rules", "required", "skip_missing")

    def __init__(self, model: type[peewee.Model], field: peewee.Field, rules: tuple[Validator, ...]) -> None:
        meta = model._meta
        self.name: str = field.name
        is_pk = field is meta.primary_key
        self.skip_missing = bool(field.null or is_pk or any(f is field for f in meta.defaults))
        self.none_rules = tuple(rule for rule in rules if not getattr(rule, "skip_none", True))
        self.required = not field.null and not (is_pk and meta.auto_increment)
        self.none_matters = bool(self.none_rules) or self.required
        self.check = _value_check(field, rules)

    def none_errors(self) -> list[str]:
        """The messages for a None value (empty when None is fine here)."""
        presence = [m for rule in self.none_rules if (m := rule(None))]
        return (presence or [BLANK]) if self.required else presence


def _value_check(field: peewee.Field, rules: tuple[Validator, ...]) -> ValueCheck:
    """Type check, then every rule, for a value that is not None; an SQL expression is left to the database."""
    kind_check = type_check(field)
    # Only these can pass their type check while being an SQL expression (a model instance is a Node).
    node_may_pass = isinstance(field, peewee.ForeignKeyField) or kind_check is _no_check
    checks = tuple(_direct(rule) for rule in rules)
    node, model = peewee.Node, peewee.Model

    def check(value: Any) -> list[str] | None:
        problem = kind_check(value)
        if problem is not None:
            # An SQL expression is the database's to evaluate; a model instance is a Node too, but a row, not SQL.
            return None if isinstance(value, node) and not isinstance(value, model) else [problem]
        if not checks or (node_may_pass and isinstance(value, node)):
            return None
        found: list[str] | None = None
        for rule in checks:
            message = rule(value)
            if message is not None:
                if found is None:
                    found = [message]
                else:
                    found.append(message)
        return found

    return check


class ModelRules:
    """Every rule of one model, compiled: field kinds, declared validators and cross-field ``@validates`` methods."""

    def __init__(self, model: type[peewee.Model]) -> None:
        rules: Mapping[str, tuple[Validator, ...]] = getattr(model, FIELD_RULES, None) or {}
        self.model = model
        self.source = (getattr(model, FIELD_RULES, None), model._meta.sorted_fields, getattr(model, RECORD_RULES, None))
        self.fields = tuple(_FieldRules(model, f, tuple(rules.get(f.name, ()))) for f in model._meta.sorted_fields)
        self.by_name = {f.name: f for f in self.fields}
        self.record_rules: tuple[tuple[str, str], ...] = getattr(model, RECORD_RULES, ())

    def check(self, data: Mapping[str, Any], *, partial: bool, instance: Any,
              subject: Callable[[Mapping[str, Any]], Any]) -> Errors:
        """``Model.check_data``: every rule ``data`` breaks; ``subject`` builds a record for the cross-field rules."""
        errors: Errors = {}
        for rules in self.fields:
            name = rules.name
            if name in data:
                value = data[name]
            elif partial or rules.skip_missing:
                continue
            else:
                value = None
            if value is None:
                if not rules.none_matters:
                    continue
                if instance is not None and instance.__rel__.get(name) is not None:
                    continue  # a related object that save() will resolve to its key
                presence = rules.none_errors()
                if presence:
                    errors[name] = presence
                continue
            messages = rules.check(value)
            if messages is not None:
                errors[name] = messages
        if self.record_rules and (not partial or instance is not None):
            record = instance if instance is not None else subject(data)
            for target, method in self.record_rules:
                if target in errors or (partial and target not in data):
                    continue  # already wrong on its own, or not being written
                message = getattr(record, method)()
                if message is not None:
                    errors.setdefault(target, []).append(message)
        return errors

    def row_checker(self, names: Sequence[str],
                    subject: Callable[[Mapping[str, Any]], Any]) -> Callable[[Sequence[Any]], Errors | None]:
        """A check of whole rows giving ``names`` in order: None for a good row, else exactly :meth:`check`'s errors.

        A good row costs one compiled check per value (and one record, only for a model with
        cross-field rules); a bad one is checked again the general way, so its errors are the same.
        """
        names = tuple(names)
        index = {name: i for i, name in enumerate(names)}
        present = tuple((index[f.name], f) for f in self.fields if f.name in index)
        missing_fails = any(f.none_matters and not f.skip_missing and f.none_errors()
                            for f in self.fields if f.name not in index)
        record_rules = self.record_rules

        def general(row: Sequence[Any]) -> Errors | None:
            return self.check(dict(zip(names, row, strict=True)), partial=False, instance=None, subject=subject) or None

        def check_row(row: Sequence[Any]) -> Errors | None:
            for i, rules in present:
                value = row[i]
                if value is None:
                    if rules.none_matters:
                        return general(row)
                elif rules.check(value) is not None:
                    return general(row)
            if missing_fails:
                return general(row)
            if record_rules:
                record = subject(dict(zip(names, row, strict=True)))
                for _, method in record_rules:
                    if getattr(record, method)() is not None:
                        return general(row)
            return None

        return check_row


_RULES = "_orm_kit_rules"


def model_rules(model: type[peewee.Model]) -> ModelRules:
    """The compiled rules of ``model`` (rebuilt when its rules or fields change)."""
    compiled: ModelRules | None = vars(model).get(_RULES)
    # Compared by identity: @validate and add_field replace these objects (and a Field's == builds SQL).
    if compiled is not None:
        rules, fields, record = compiled.source
        if (rules is getattr(model, FIELD_RULES, None) and fields is model._meta.sorted_fields
                and record is getattr(model, RECORD_RULES, None)):
            return compiled
    compiled = ModelRules(model)
    setattr(model, _RULES, compiled)
    return compiled


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
            raise ArgumentTypeError(f"@validate on {cls.__name__} names {unknown}, which are not fields of the model; "
                                    f"use some of {sorted(fields)}")
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
