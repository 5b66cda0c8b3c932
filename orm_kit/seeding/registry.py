"""How seed files describe models: which tables, in what order, each one's natural key, and what a file may set.

    registry = SeedRegistry([
        SeedTable(Team, key=("name",)),
        SeedTable(Service, key=("name",), touch="updated_at"),
        SeedTable(Release, key=("service", "version")),
        SeedTable(Deployment, uuid_key="key", scopes={"release": {"service": "service"}}),
    ])
    registry.by_name["team"].natural_key        # ("name",)

Generic: it works with any orm-kit models. A table's rows are matched on its natural key; a table without
one of its own names its rows with a stable text ``uuid_key`` from which its UUID primary key is derived.
Files may not give what the library computes: the fields ``Model.derive`` fills, and the version column
of a :class:`~orm_kit.locking.Versioned` model (:func:`computed`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import peewee

from orm_kit._shown import shown
from orm_kit.dialect import unwrap
from orm_kit.errors import ConfigurationError, SeedError
from orm_kit.locking import Versioned
from orm_kit.model import Model

__all__ = ["SeedRegistry", "SeedTable", "check_ready", "computed", "pk", "pk_field", "version_field", "writable"]


def pk_field(model: type[peewee.Model]) -> peewee.Field:
    """The primary-key field of a seeded model."""
    found = model._meta.primary_key
    assert isinstance(found, peewee.Field), "seeded models have a primary key"
    return found


def pk(row: peewee.Model) -> Any:
    """A row's primary key, read from ``__data__`` (getattr on a foreign-key primary key would fetch the row)."""
    return row.__data__.get(pk_field(type(row)).name)


@dataclass(frozen=True)
class SeedTable:
    """How seed files write one model: its natural key, and how its references and updates work.

    ``key``: the fields that identify a row (a foreign key part is given by its target's natural key).
    ``uuid_key``: a text attribute, only in files, that names the row; the UUID primary key is derived
    from it and it is the natural key. ``scopes``: for a reference whose target key has several parts,
    ``{field: {target part: this row's field}}`` lets a file give just the remaining part.
    A scoped reference may also be spelled out in full, but its scoped parts must then match the row's
    own (a deployment's ``release: {service: web, ...}`` on service ``api`` is refused).
    ``touch``: a timestamp field set to now whenever the loader updates the row.
    """

    model: type[Model]
    key: tuple[str, ...] = ()
    uuid_key: str | None = None
    scopes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    touch: str | None = None

    @property
    def name(self) -> str:
        """The table name files use."""
        return str(self.model._meta.table_name)

    @property
    def natural_key(self) -> tuple[str, ...]:
        """The natural key's parts (``(uuid_key,)`` when the table uses one)."""
        return (self.uuid_key,) if self.uuid_key else self.key


class SeedRegistry:
    """The tables seed files may fill, parents before children (the order rows are loaded in)."""

    def __init__(self, tables: Sequence[SeedTable]) -> None:
        self.tables = tuple(tables)
        wrong = next((t for t in self.tables if not isinstance(t, SeedTable)), None)
        if wrong is not None:
            raise ConfigurationError(f"a seed registry lists SeedTable(model, key=(...)) entries, not {shown(wrong)}")
        self.by_name = {t.name: t for t in self.tables}
        self.by_model = {t.model: t for t in self.tables}
        for table in self.tables:
            fields = table.model._meta.fields
            if not isinstance(table.key, tuple | list) or not all(isinstance(k, str) for k in table.key):
                raise ConfigurationError(f"seed table {table.name!r}: key is {shown(table.key)}; expected a tuple of "
                                         "field names, e.g. key=(\"name\",)")
            if not table.natural_key:
                raise ConfigurationError(f"seed table {table.name!r} needs a natural key (key=... or uuid_key=...)")
            if table.uuid_key and not isinstance(table.model._meta.primary_key, peewee.UUIDField):
                raise ConfigurationError(f"seed table {table.name!r}: uuid_key needs a UUID primary key")
            missing = [k for k in table.key if k not in fields]
            if missing:
                raise ConfigurationError(f"seed table {table.name!r}: key {missing} are not fields of the model")

    def target(self, fk: peewee.ForeignKeyField) -> SeedTable:
        """The registered table a foreign key points at."""
        target = self.by_model.get(fk.rel_model)
        if target is None:
            raise ConfigurationError(f"{fk.model.__name__}.{fk.name} points at {fk.rel_model.__name__}, "
                                     "which the seed registry does not list; add it")
        return target


def check_ready(db: peewee.Database, registry: SeedRegistry) -> None:
    """Raise unless every table of ``registry`` exists in ``db`` and its model is bound to ``db``."""
    existing = set(db.get_tables())
    missing = [t.name for t in registry.tables if t.name not in existing]
    if missing:
        raise SeedError(f"table {missing[0]!r} does not exist in the database: seeds load into a migrated "
                        "database (run `orm-kit migrate` first)")
    for table in registry.tables:
        if unwrap(table.model._meta.database) is not unwrap(db):
            raise ConfigurationError(f"model {table.model.__name__} is not bound to this database "
                                     "(bind the models first: db.bind(models))")


def writable(table: SeedTable) -> set[str]:
    """The fields a seed file may give for ``table``: its uuid_key, never a computed field or a generated key."""
    meta = table.model._meta
    names = {f.name for f in meta.sorted_fields}
    key_field = pk_field(table.model)
    if not isinstance(key_field, peewee.ForeignKeyField):
        names.discard(key_field.name)
    names -= computed(table.model).keys()
    if table.uuid_key:
        names.add(table.uuid_key)
    return names


@functools.cache
def computed(model: type[Model]) -> dict[str, str]:
    """Fields a file must not give, each with why: the version column, and what ``Model.derive`` fills.

    A derived field is one :meth:`~orm_kit.model.Model.derived_fields` names (``derive`` fills it for a new
    row); its inputs are the fields whose change alone makes an update derive it again. (A derived value
    in a file would contradict its inputs, and is never written as given anyway.)
    """
    names = [f.name for f in model._meta.sorted_fields]

    def input_of(name: str, other: str) -> bool:
        probe: dict[str, Any] = {other: None}
        model.derive(probe, partial=True)
        return name in probe

    found: dict[str, str] = {}
    version = version_field(model)
    if version is not None:
        found[version] = ("is the optimistic-locking version: the loader moves it on every update, so a copy "
                          "read before the load conflicts; remove it")
    for name in names:
        if name != version and name in model.derived_fields():
            inputs = [n for n in names if n != name and input_of(name, n)]
            source = " and ".join(inputs) if inputs else "the other fields"
            found[name] = f"is computed from {source} whenever the row is written; remove it"
    return found


def version_field(model: type[Model]) -> str | None:
    """The optimistic-locking column of a :class:`~orm_kit.locking.Versioned` model, else None."""
    return model.version_field if issubclass(model, Versioned) else None
