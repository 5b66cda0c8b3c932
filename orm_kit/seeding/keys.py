"""Natural keys: what names a seed row, and how a name becomes a primary key.

    keys = Keys(registry)
    natural = keys.natural(table, row)          # ("checkout-api", "1.4.2") for a release
    keys.pk_of(table, natural)                  # its primary key: loaded in this run, else in the database
    keys.resolve(table, row)                    # the row's values with references replaced by primary keys

One resolver for the loader, ``status`` and ``remove`` alike. A foreign key is given by the natural key
of its target (``owner: payments``; ``release: {service: checkout-api, version: 1.4.2}``, or
``release: 1.4.2`` where the table's ``scopes`` fill ``service`` from the row itself). A table with a
``uuid_key`` derives its UUID primary key from the row's name (uuid5), the same on every database.
Natural keys are kept in the bookkeeping as JSON (:func:`encode` / :func:`decode`).
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Mapping
from typing import Any

import peewee

from orm_kit._shown import shown
from orm_kit.errors import SeedError
from orm_kit.fields import as_utc, out_of_range
from orm_kit.model import Model
from orm_kit.seeding.files import SeedRow
from orm_kit.seeding.registry import SeedRegistry, SeedTable, pk, pk_field
from orm_kit.validation import field_type_error

__all__ = ["SEED_NAMESPACE", "Keys", "decode", "encode", "hashable", "shown_key", "uuid_for"]

# Fixed forever: uuid5(SEED_NAMESPACE, "deployment:<key>") must give the same id on every machine.
SEED_NAMESPACE = uuid.UUID("7d0f4c52-2b8e-4c55-9a43-6f0c1e4c9b10")


def uuid_for(table: str, key: str) -> uuid.UUID:
    """The UUID primary key a ``uuid_key`` row named ``key`` gets in ``table`` (stable across databases)."""
    return uuid.uuid5(SEED_NAMESPACE, f"{table}:{key}")


def shown_key(natural: tuple[Any, ...]) -> str:
    """A natural key as messages show it: ``'checkout-api/1.4.2'``."""
    def part(value: Any) -> str:
        if isinstance(value, tuple):
            return "/".join(part(v) for v in value)
        if isinstance(value, datetime.datetime):
            return value.isoformat()
        if isinstance(value, int) and value.bit_length() > 256:
            return shown(value)  # str() of a number past 4,300 digits raises
        return str(value)

    return shown(part(natural), 200)


def encode(natural: tuple[Any, ...]) -> str:
    """A natural key as JSON text (tuples as lists, dates tagged) for the bookkeeping table."""
    def part(value: Any) -> Any:
        if isinstance(value, tuple):
            return [part(v) for v in value]
        if isinstance(value, datetime.datetime):
            return {"datetime": value.isoformat()}
        if isinstance(value, datetime.date):
            return {"date": value.isoformat()}
        return value

    return json.dumps(part(natural), sort_keys=True)


def decode(text: str) -> tuple[Any, ...]:
    """The natural key :func:`encode` wrote."""
    def part(value: Any) -> Any:
        if isinstance(value, list):
            return tuple(part(v) for v in value)
        if isinstance(value, dict):
            if "datetime" in value:
                return datetime.datetime.fromisoformat(value["datetime"])
            return datetime.date.fromisoformat(value["date"])
        return value

    decoded: tuple[Any, ...] = part(json.loads(text))
    return decoded


def hashable(value: Any) -> Any:
    """``value`` as a part of a natural key (datetimes in UTC); TypeError for a list, a mapping or bytes."""
    if isinstance(value, datetime.datetime):
        if out_of_range(value):
            raise TypeError("an instant outside years 1-9999 in UTC cannot be part of a key")
        return as_utc(value)
    if isinstance(value, bytes | bytearray):
        raise TypeError("bytes cannot be part of a key")  # a YAML !!binary: not text the bookkeeping can keep
    hash(value)  # a list or mapping where a key part belongs raises TypeError
    return value


class Keys:
    """Resolves natural keys against one registry, remembering the primary keys it found or was told."""

    def __init__(self, registry: SeedRegistry) -> None:
        self.registry = registry
        self.pks: dict[tuple[str, tuple[Any, ...]], Any] = {}   # (table, natural key) -> primary key
        # Rows of this load that have problems of their own: a reference to one is not a problem more.
        self.broken: set[tuple[str, tuple[Any, ...]]] = set()
        # Files that could not be read: their rows are unknown, so an unknown reference may be one of them.
        self.unreadable: list[str] = []

    def remember(self, table: SeedTable, natural: tuple[Any, ...], key: Any) -> None:
        """Record that ``natural`` names the row with primary key ``key`` (a row just written)."""
        self.pks[(table.name, natural)] = key


    def natural(self, table: SeedTable, row: SeedRow) -> tuple[Any, ...]:
        """The natural key of a seed row (references as their targets' natural keys)."""
        parts = []
        for name in table.natural_key:
            if row.values.get(name) is None:
                raise SeedError(f"is required: it is part of the natural key ({', '.join(table.natural_key)})",
                                path=row.path, line=row.line_of(name), table=table.name, field=name)
            parts.append(self.reference_key(table, row, name, row.values[name]))
        return tuple(parts)

    def reference_key(self, table: SeedTable, row: SeedRow, name: str, raw: Any) -> Any:
        """A value as it appears in a natural key: a foreign key becomes its target's natural key."""
        fk = table.model._meta.fields.get(name)
        try:
            if not isinstance(fk, peewee.ForeignKeyField):
                problem = field_type_error(fk, raw) if fk is not None and name in table.natural_key else None
                if problem is not None:  # found now, not as a driver's error when the key is looked up
                    raise SeedError(problem, path=row.path, line=row.line_of(name), table=table.name, field=name)
                return hashable(raw)
            target = self.registry.target(fk)
            parts = target.natural_key
            if isinstance(raw, Mapping):
                given = dict(raw)
                self.check_scope(table, row, name, target, given)
            elif len(parts) == 1:
                given = {parts[0]: raw}
            elif name in table.scopes:
                given = {part: row.values.get(mine) for part, mine in table.scopes[name].items()}
                rest = [p for p in parts if p not in given]
                given[rest[0]] = raw
            else:
                raise SeedError(f"must name a {target.name} by its natural key, as a mapping "
                                f"{{{', '.join(f'{p}: ...' for p in parts)}}} (got {shown(raw)})",
                                path=row.path, line=row.line_of(name), table=table.name, field=name)
            if set(given) != set(parts):
                raise SeedError(f"must name a {target.name} by exactly {', '.join(parts)} (got {shown(raw)})",
                                path=row.path, line=row.line_of(name), table=table.name, field=name)
            target_fields = target.model._meta.fields
            return tuple(
                self.reference_key(target, row, p, given[p])
                if isinstance(target_fields.get(p), peewee.ForeignKeyField) else self._part(target, row, name, p,
                                                                                             given[p])
                for p in parts
            )
        except TypeError:
            raise SeedError(f"cannot be part of a key (got {shown(raw)}); give text, a number or a date",
                            path=row.path, line=row.line_of(name), table=table.name, field=name) from None

    def _part(self, table: SeedTable, row: SeedRow, name: str, part: str, value: Any) -> Any:
        """A plain part of a target's natural key, checked as its column would check it (before any query)."""
        problem = field_type_error(table.model._meta.fields[part], value) if part in table.model._meta.fields \
            else None
        if problem is not None:
            raise SeedError(f"names a {table.name} by {part}, which {problem}", path=row.path,
                            line=row.line_of(name), table=row.table, field=name)
        return hashable(value)

    def check_scope(self, table: SeedTable, row: SeedRow, name: str, target: SeedTable,
                    given: Mapping[str, Any]) -> None:
        """A scoped reference spelled out in full must stay in scope (a deployment's release, of its service)."""
        for part, mine in table.scopes.get(name, {}).items():
            own = row.values.get(mine)
            if part not in given or own is None:
                continue
            theirs = self.reference_key(target, row, part, given[part])
            if theirs != self.reference_key(table, row, mine, own):
                rest = [p for p in target.natural_key if p not in table.scopes[name]]
                raise SeedError(f"must be a {target.name} of this row's own {mine} {shown(own)} (got {part} "
                                f"{shown(given[part])}); give just its {', '.join(rest)}, or correct one of the two",
                                path=row.path, line=row.line_of(name), table=table.name, field=name)

    def pk_of(self, table: SeedTable, natural: tuple[Any, ...]) -> Any:
        """The primary key of the row ``natural`` names: loaded in this run, else in the database, else None."""
        cache_key = (table.name, natural)
        if cache_key in self.pks:
            return self.pks[cache_key]
        row = self.find(table, natural)
        found = None if row is None else pk(row)
        if found is not None:
            self.pks[cache_key] = found
        return found

    def still_theirs(self, table: SeedTable, key: str, natural: str | None) -> bool:
        """Whether the row recorded as ``key`` still exists and its natural key still leads to it."""
        key_field = pk_field(table.model)
        if natural is None:  # recorded before natural keys were: the id is all there is to go on
            return table.model.select().where(key_field == key_field.python_value(key)).exists()  # type: ignore[no-untyped-call]
        row = self.find(table, decode(natural))
        return row is not None and str(pk(row)) == key

    def find(self, table: SeedTable, natural: tuple[Any, ...]) -> Model | None:
        """The row of ``table`` whose natural key is ``natural``, from the database (None if there is none)."""
        model = table.model
        meta = model._meta
        if table.uuid_key:
            return model.get_or_none(meta.primary_key == uuid_for(table.name, str(natural[0])))
        conditions = []
        for name, value in zip(table.key, natural, strict=True):
            fk = meta.fields[name]
            if isinstance(fk, peewee.ForeignKeyField):
                value = self.pk_of(self.registry.target(fk), value)
                if value is None:
                    return None
            conditions.append(fk == value)
        return model.select().where(*conditions).first()  # type: ignore[no-any-return]

    def resolve(self, table: SeedTable, row: SeedRow) -> dict[str, Any]:
        """The row's values as the model takes them: references replaced by primary keys (the first problem raised)."""
        data, problems, _ = self.resolve_all(table, row)
        if problems:
            raise problems[0]
        return data

    def resolve_all(self, table: SeedTable, row: SeedRow) -> tuple[dict[str, Any], list[SeedError], set[str]]:
        """The row's values as the model takes them (references replaced by primary keys), the problem of every
        reference that cannot be resolved, and the fields that refer to rows with problems of their own (no problem
        of this row's); those fields are left out of the values."""
        data: dict[str, Any] = {}
        problems: list[SeedError] = []
        broken: set[str] = set()
        fields = table.model._meta.fields
        for name, raw in row.values.items():
            if name == table.uuid_key:
                continue
            fk = fields[name]
            if raw is None or not isinstance(fk, peewee.ForeignKeyField):
                data[name] = raw
                continue
            try:
                found = self._target_pk(table, row, name, raw)
            except SeedError as problem:
                problems.append(problem)
                continue
            if found is _BROKEN:
                broken.add(name)
            else:
                data[name] = found
        if table.uuid_key:
            data[pk_field(table.model).name] = uuid_for(table.name, str(row.values[table.uuid_key]))
        return data, problems, broken

    def _target_pk(self, table: SeedTable, row: SeedRow, name: str, raw: Any) -> Any:
        target = self.registry.target(table.model._meta.fields[name])
        natural = self.reference_key(table, row, name, raw)
        target_pk = self.pk_of(target, natural)
        if target_pk is not None:
            return target_pk
        line = row.line_of(name)
        if (target.name, natural) in self.broken:
            return _BROKEN
        unread = f"; or it is in {', '.join(self.unreadable)}, which could not be read" if self.unreadable else ""
        raise SeedError(f"unknown {target.name} {shown_key(natural)}: no such row in the sets being loaded or in the "
                        f"database (check the spelling, or load the set that defines it{unread})", path=row.path,
                        line=line, table=table.name, field=name)


_BROKEN: Any = object()  # a reference to a row of this load that has problems of its own
