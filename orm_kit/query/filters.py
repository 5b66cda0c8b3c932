"""Repository filters (``field__op=value``) and sort orders: parsed once, bound per call, built into SQL two ways.

    name_filter = parse_filter(Team, "name__in", allowed=None)   # InvalidQueryError for a bad name or operator
    values: list[object] = []
    variant = name_filter.bind(["a", "b", "c"], values, postgres=False)  # checks and converts the values
    name_filter.prepared(variant, [Param(0), Param(1), Param(2), Param(3)], db)   # "name" IN (?, ?, ?, ?)
    name_filter.reference(["a", "b", "c"], db)                                   # peewee's own IN (?, ?, ?)
    order = parse_order(Team, ["-created_at"], allowed=None, default=())      # the key breaks ties

A filter's *variant* is the part of its value that changes the SQL: ``None`` (``IS NULL``), the
``isnull`` flag, an empty list, and on SQLite the length of an ``in`` list, rounded up to a power of
two and padded with the last value (the same answer; a bounded number of statements; a list longer
than 1024 keeps its own length, so padding never passes the connection's parameter limit). On PostgreSQL
an ``in`` list is one array parameter (``= ANY(%s)``, ``<> ALL(%s)``), so its length changes
nothing. :meth:`Filter.reference` builds the condition the way peewee always did, with the values in
it; the tests hold the prepared form to it.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from typing import Any

import peewee

from orm_kit import dialect
from orm_kit._shown import shown
from orm_kit.errors import InvalidQueryError
from orm_kit.fields import Conversion, writer
from orm_kit.validation import TypeCheck, type_check

__all__ = ["OPERATORS", "Filter", "Order", "after_condition", "escape_like", "like", "parse_filter", "parse_order",
           "search_text", "unique_keys"]

OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "isnull", "contains", "startswith")
_TEXT_OPERATORS = frozenset({"contains", "startswith"})
_LIST_OPERATORS = frozenset({"in", "not_in"})
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "lte": operator.le, "gt": operator.gt, "gte": operator.ge}
_LIKE_ESCAPE = "\\"
_TO_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ANY = "any"  # the variant of a non-empty `in` list on PostgreSQL: one array parameter


def escape_like(text: str) -> str:
    """``text`` with the LIKE wildcards ``%`` and ``_`` (and the escape character) escaped."""
    escaped = text.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2)
    return escaped.replace("%", _LIKE_ESCAPE + "%").replace("_", _LIKE_ESCAPE + "_")


def search_text(text: object, what: str) -> str:
    """``text`` when it can be matched as given on both databases; else InvalidQueryError naming ``what``.

    SQLite's LIKE ends a pattern at a NUL byte (``"a\\x00zzz"`` matched as ``"a"``; ``"\\x00"`` matched every
    row) and PostgreSQL refuses one in any text; a lone surrogate cannot be sent to either. No stored
    text holds either (validation refuses them), so they are refused here too rather than matching wrongly.
    """
    if not isinstance(text, str):
        raise InvalidQueryError(f"{what} takes text (got {shown(text)})")
    if "\x00" in text:
        raise InvalidQueryError(f"{what} cannot contain a NUL byte (\\x00): no stored text holds one")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidQueryError(f"{what} must be valid Unicode text (a lone surrogate at position {exc.start})"
                                    ) from None
    return text


def like_pattern(text: str, op: str) -> str:
    """The LIKE pattern of filter ``op`` (``contains``/``startswith``) for ``text``, ASCII letters lowered."""
    pattern = escape_like(text) + "%"
    return ("%" + pattern if op == "contains" else pattern).translate(_TO_ASCII_LOWER)


def like(column: peewee.Node, pattern: str | peewee.Node, db: peewee.Database) -> peewee.Node:
    """``column LIKE pattern ESCAPE '\\'``, ASCII letters in either case, every other character exactly.

    The same answer on both databases, whatever their locale: SQLite's LIKE folds ASCII letters only
    (its LOWER() too), while PostgreSQL's LOWER()/ILIKE fold by the database's ctype, so ``"äbc"``
    would find ``"ÄBC"`` there and not on SQLite. So the pattern is lower-cased here (ASCII only; a
    placeholder's value must come lowered, see :func:`like_pattern`), and on PostgreSQL the column
    goes through ``translate(column, 'A..Z', 'a..z')``. Spelled out as SQL words: peewee maps its LIKE
    operator to GLOB on SQLite, which has no ESCAPE.
    """
    value = peewee.Value(pattern.translate(_TO_ASCII_LOWER)) if isinstance(pattern, str) else pattern
    return peewee.NodeList((dialect.fold_for_like(db, column), peewee.SQL("LIKE"), value,
                            peewee.SQL(f"ESCAPE '{_LIKE_ESCAPE}'")))


def is_text(field: peewee.Field) -> bool:
    """Whether ``field`` holds text (the text operators and search apply to it)."""
    return isinstance(field, peewee.CharField | peewee.TextField)


_BUCKETED = 1024  # longer `in` lists get exactly their own length: padding must not pass the parameter limit


def _bucket(count: int) -> int:
    """How many placeholders an ``in`` list of ``count`` values gets: a power of two, up to 1024."""
    return 1 << (count - 1).bit_length() if count <= _BUCKETED else count


class Filter:
    """One parsed filter key (``name__op``) of one model: what binding a value and building SQL take."""

    __slots__ = ("check", "field", "key", "name", "op", "postgres_write", "sqlite_write")

    def __init__(self, key: str, name: str, op: str, field: peewee.Field) -> None:
        self.key = key
        self.name = name
        self.op = op
        self.field = field
        self.check: TypeCheck = type_check(field)
        self.sqlite_write: Conversion = writer(field, postgres=False)
        self.postgres_write: Conversion = writer(field, postgres=True)

    def _checked(self, value: object) -> None:
        problem = self.check(value)
        if problem is not None:
            raise InvalidQueryError(f"filter {self.key!r}: value {problem}")

    def bind(self, value: object, out: list[Any], *, postgres: bool) -> Hashable:
        """Check ``value``, append its parameters (converted for the driver) to ``out``; return the variant."""
        op = self.op
        if op == "isnull":
            if not isinstance(value, bool):
                raise InvalidQueryError(f"filter {self.key!r} takes True or False (got {shown(value)})")
            return value
        if op in _TEXT_OPERATORS:
            out.append(like_pattern(search_text(value, f"filter {self.key!r}"), op))
            return ""
        convert = (self.postgres_write if postgres else self.sqlite_write).apply
        if op in _LIST_OPERATORS:
            if isinstance(value, str | bytes) or not isinstance(value, Iterable):
                raise InvalidQueryError(f"filter {self.key!r} takes a list of values (got {shown(value)})")
            items = list(value)
            for item in items:
                self._checked(item)
            if not items:
                return 0
            converted = [convert(item) for item in items]
            if postgres:
                out.append(converted)
                return _ANY
            size = _bucket(len(converted))
            out.extend(converted)
            out.extend([converted[-1]] * (size - len(converted)))  # a repeated value changes no answer
            return size
        if value is None:
            if op in ("eq", "ne"):
                return None
            raise InvalidQueryError(f"filter {self.key!r} cannot compare with None; use {self.name}__isnull=True")
        self._checked(value)
        out.append(convert(value))
        return ""

    def width(self, variant: Hashable) -> int:
        """How many parameters :meth:`bind` appended for ``variant``."""
        if self.op == "isnull" or variant is None or variant == 0:
            return 0
        if self.op in _LIST_OPERATORS and isinstance(variant, int):
            return variant
        return 1

    def prepared(self, variant: Hashable, params: Sequence[peewee.Node], db: peewee.Database) -> peewee.Node:
        """The condition for ``variant`` with ``params`` (placeholders) where the values go."""
        field, op = self.field, self.op
        if op == "isnull":
            return field.is_null(bool(variant))
        if op in _TEXT_OPERATORS:
            return like(field, params[0], db)
        if op in _LIST_OPERATORS:
            if variant == 0:
                return field.in_([]) if op == "in" else field.not_in([])
            if variant == _ANY:
                words = "= ANY" if op == "in" else "<> ALL"
                return peewee.NodeList((field, peewee.SQL(words), peewee.EnclosedNodeList([params[0]])), parens=True)
            return field.in_(list(params)) if op == "in" else field.not_in(list(params))
        if variant is None:
            return field.is_null(op == "eq")
        condition: peewee.Node = _COMPARE[op](field, params[0])
        return condition

    def reference(self, value: Any, db: peewee.Database) -> peewee.Node:
        """The condition as peewee builds it with ``value`` in it (checked first; what :meth:`prepared` must equal)."""
        field, op = self.field, self.op
        variant = self.bind(value, [], postgres=False)  # the checks only
        if op == "isnull":
            return field.is_null(value)
        if op in _TEXT_OPERATORS:
            return like(field, like_pattern(value, op), db)
        if op in _LIST_OPERATORS:
            values = list(value)
            return field.in_(values) if op == "in" else field.not_in(values)
        if variant is None:
            return field.is_null(op == "eq")
        condition: peewee.Node = _COMPARE[op](field, value)
        return condition


def parse_filter(model: type[peewee.Model], key: str, allowed: Collection[str] | None) -> Filter:
    """The filter ``key`` (``field`` or ``field__op``) of ``model``; InvalidQueryError for a bad name or operator."""
    name, _, op = key.partition("__")
    op = op or "eq"
    fields = model._meta.fields
    names = fields if allowed is None else allowed
    if name not in names or name not in fields:
        raise InvalidQueryError(
            f"{model.__name__} cannot be filtered by {shown(name)}; expected one of {', '.join(sorted(names))}"
        )
    if op not in OPERATORS:
        raise InvalidQueryError(
            f"filter {shown(key)} uses operator {shown(op)}; expected one of {', '.join(OPERATORS)}")
    field: peewee.Field = fields[name]
    if op in _TEXT_OPERATORS and not is_text(field):
        # PostgreSQL has no LOWER(integer) and would abort the transaction; SQLite would cast
        raise InvalidQueryError(
            f"filter {key!r}: {op} matches text, and {model.__name__}.{name} is not a text field; "
            f"use {name}=... or {name}__in=[...]"
        )
    return Filter(key, name, op, field)


# --- sort orders ------------------------------------------------------------------------------------

def unique_keys(model: type[peewee.Model]) -> list[frozenset[str]]:
    """Sets of field names no two rows share (primary key, unique fields and indexes), all columns not null.

    A unique column that can be null is left out: NULLs do not collide, so many rows may hold one.
    """
    meta = model._meta
    keys: list[frozenset[str]] = []
    if meta.primary_key is not False:
        keys.append(frozenset(f.name for f in meta.get_primary_keys()))  # type: ignore[no-untyped-call]
    keys += [frozenset({f.name}) for f in meta.sorted_fields if f.unique and not f.null]
    for index in meta.fields_to_index():
        expressions = index._expressions
        if index._unique and all(isinstance(e, peewee.Field) and not e.null for e in expressions):
            keys.append(frozenset(e.name for e in expressions))
    return keys


class Order:
    """A validated sort order: ``keys`` are ``(field, descending)``, a tie-break on the key added if needed."""

    __slots__ = ("keys", "spec")

    def __init__(self, keys: list[tuple[peewee.Field, bool]]) -> None:
        self.keys = tuple(keys)
        self.spec = tuple(("-" if desc else "") + field.name for field, desc in keys)

    def terms(self) -> list[peewee.Node]:
        """The ORDER BY terms."""
        return [field.desc() if desc else field.asc() for field, desc in self.keys]


def parse_order(model: type[peewee.Model], order_by: str | Sequence[str], *, allowed: Collection[str] | None,
                default: Sequence[str], keyset: bool = False) -> Order:
    """``order_by`` (``"field"``, ``"-field"`` descending; empty: ``default``) as an :class:`Order`.

    The primary key is added last unless the order is already total (it names every column of a
    unique, not-null key), so pages never overlap or skip. ``keyset`` orders (cursor pages) refuse
    fields that can be null, and their tie-break follows the last key's direction.
    """
    if order_by is None:
        order_by = ()
    elif isinstance(order_by, str):
        order_by = [order_by]
    elif not isinstance(order_by, list | tuple):
        raise InvalidQueryError(
            f"order_by is a field name or a list of them, '-name' descending (got {shown(order_by)})")
    fields = model._meta.fields
    names = fields if allowed is None else allowed
    keys: list[tuple[peewee.Field, bool]] = []
    for item in order_by or default:
        if not isinstance(item, str):
            raise InvalidQueryError(f"sort key {shown(item)} must be a field name string")
        desc = item.startswith("-")
        name = item[1:] if desc else item
        if name not in names or name not in fields:
            raise InvalidQueryError(
                f"{model.__name__} cannot be sorted by {shown(name)}; expected one of "
                f"{', '.join(sorted(names))} (prefix '-' for descending)"
            )
        field = fields[name]
        if keyset and field.null:
            raise InvalidQueryError(
                f"{model.__name__} cannot be cursor-paginated by {name!r}: it can be null; "
                "sort by a required field, or use page() instead"
            )
        keys.append((field, desc))
    named = {field.name for field, _ in keys}
    if not any(key <= named for key in unique_keys(model)):
        pk: peewee.Field = model._meta.primary_key  # type: ignore[assignment]
        keys.append((pk, keys[-1][1] if keyset and keys else False))
    return Order(keys)


def after_condition(keys: Sequence[tuple[peewee.Field, bool]], values: Sequence[Any]) -> peewee.Node:
    """Rows strictly after ``values`` in the order ``keys``: (a > x) OR (a = x AND b > y) OR ...

    ``values`` may be placeholders; the same one may appear in several branches.
    """
    branches: list[peewee.Node] = []
    for i, (field, desc) in enumerate(keys):
        step: peewee.Node = field < values[i] if desc else field > values[i]
        for (earlier, _), value in zip(keys[:i], values[:i], strict=True):
            step = (earlier == value) & step
        branches.append(step)
    return functools.reduce(operator.or_, branches)
