"""The seed loader: YAML rows referring to each other by natural key, loaded idempotently in one transaction.

Generic: it works with any orm-kit models, described by a :class:`SeedRegistry` (which tables, in
dependency order, and the natural key of each). The platform supplies its own registry::

    registry = SeedRegistry([
        SeedTable(Team, key=("name",)),
        SeedTable(Service, key=("name",), touch="updated_at"),
        SeedTable(Release, key=("service", "version")),
        SeedTable(Deployment, uuid_key="key", scopes={"release": {"service": "service"}}),
    ])
    result = load(db, registry, Path("seed_data"))             # every set, one transaction
    result = load(db, registry, Path("seed_data"), sets=["demo"], dry_run=True)
    [s.state for s in status(db, registry, Path("seed_data"))] # ["loaded", "changed", ...]
    remove(db, registry, "demo")                               # deletes exactly what "demo" inserted

How rows are matched: each row's natural key (``Team.name``; ``(service, version)`` for a release)
finds the row in the database. A missing row is inserted, a row whose given fields differ is updated
(those fields only, plus ``touch``), an equal row is left alone, so a second load writes nothing.
Fields a file does not give are never changed. A foreign key is given by the natural key of its
target (``owner: payments``; ``release: {service: checkout-api, version: 1.4.2}``, or ``release: 1.4.2``
where ``scopes`` fills ``service`` from the row itself), looked up among the rows being loaded first,
then in the database. A table without a natural key of its own can name its rows with a stable text
``uuid_key``; the row's UUID primary key is derived from it (uuid5), so it is the same on every database.

Every row goes through the model's own validation (:meth:`orm_kit.model.Model.check_data`) before it
is written. Files may not give what the library computes: fields ``Model.derive`` fills, and the
version column of a :class:`~orm_kit.locking.Versioned` model, which an update moves on (``SET ...,
lock_version = lock_version + 1 WHERE id = ? AND lock_version = <read>``) like ``save()`` does.
Any problem is one :class:`~orm_kit.errors.SeedError` naming the file, line, table and field, and the
transaction is rolled back: the database is left exactly as it was.

Bookkeeping lives in two small tables created on first load (like a migration runner's history):
``orm_kit_seed`` (set name, checksum of its files, loaded_at) and ``orm_kit_seed_row`` (which rows
each set inserted: primary key and natural key), so ``status`` can tell changed files and ``remove``
deletes only a set's own rows: a row whose id now holds another row (SQLite reuses the ids of deleted
rows) is left alone, because its natural key no longer leads to that id.
"""

from __future__ import annotations

import datetime
import functools
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import peewee

from orm_kit._sql import execute
from orm_kit.bulk import rows_per_chunk
from orm_kit.errors import ConfigurationError, SeedError, ValidationError, first_line
from orm_kit.fields import UTCDateTimeField, as_utc, utcnow
from orm_kit.locking import Versioned
from orm_kit.model import Model
from orm_kit.seed_files import SeedRow, SeedSet, discover_sets, read_rows

__all__ = [
    "SEED_NAMESPACE",
    "RemoveResult",
    "RowChange",
    "SeedRegistry",
    "SeedResult",
    "SeedTable",
    "SetStatus",
    "load",
    "remove",
    "status",
    "uuid_for",
]

# Fixed forever: uuid5(SEED_NAMESPACE, "deployment:<key>") must give the same id on every machine.
SEED_NAMESPACE = uuid.UUID("7d0f4c52-2b8e-4c55-9a43-6f0c1e4c9b10")


def _pk_field(model: type[peewee.Model]) -> peewee.Field:
    field = model._meta.primary_key
    assert isinstance(field, peewee.Field), "seeded models have a primary key"
    return field


def _pk(row: peewee.Model) -> Any:
    # Read from __data__: getattr() on a foreign-key primary key would fetch the related row.
    return row.__data__.get(_pk_field(type(row)).name)


def uuid_for(table: str, key: str) -> uuid.UUID:
    """The UUID primary key a ``uuid_key`` row named ``key`` gets in ``table`` (stable across databases)."""
    return uuid.uuid5(SEED_NAMESPACE, f"{table}:{key}")


# --- describing the models --------------------------------------------------------------------------


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
        self.by_name = {t.name: t for t in self.tables}
        self.by_model = {t.model: t for t in self.tables}
        for table in self.tables:
            fields = table.model._meta.fields
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


# --- what the library returns -----------------------------------------------------------------------


@dataclass(frozen=True)
class RowChange:
    """One row a load inserted or updated (``fields``: the fields it wrote)."""

    set_name: str
    table: str
    key: str
    action: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class SeedResult:
    """What a load did (or, with ``dry_run``, would do)."""

    sets: tuple[str, ...]
    changes: tuple[RowChange, ...]
    unchanged: int
    stale: Mapping[str, int]
    dry_run: bool

    @property
    def inserted(self) -> int:
        """How many rows were (or would be) inserted."""
        return sum(1 for c in self.changes if c.action == "insert")

    @property
    def updated(self) -> int:
        """How many rows were (or would be) updated."""
        return sum(1 for c in self.changes if c.action == "update")


@dataclass(frozen=True)
class SetStatus:
    """A set as files and database see it; ``state`` is loaded, changed, not loaded or files missing."""

    name: str
    state: str
    loaded_at: datetime.datetime | None
    rows: int


@dataclass(frozen=True)
class RemoveResult:
    """What removing a set deleted (rows per table) or, with ``dry_run``, would delete.

    ``gone``: rows the set inserted that were already deleted, or whose id now holds another row (left alone).
    """

    name: str
    deleted: Mapping[str, int]
    dry_run: bool
    gone: Mapping[str, int] = field(default_factory=dict)


# --- bookkeeping ------------------------------------------------------------------------------------


class _Book:
    """The two bookkeeping tables, as models bound to one database (no global binding)."""

    def __init__(self, db: peewee.Database) -> None:
        class SeedSetRow(peewee.Model):
            name = peewee.CharField(max_length=255, primary_key=True)
            checksum = peewee.CharField(max_length=64)
            loaded_at = UTCDateTimeField()

            class Meta:
                database = db
                table_name = "orm_kit_seed"

        class SeedOwnedRow(peewee.Model):
            set_name = peewee.CharField(max_length=255)
            table_name = peewee.CharField(max_length=255)
            row_key = peewee.CharField(max_length=255)
            natural_key = peewee.TextField(null=True)  # JSON; NULL in rows recorded before it existed

            class Meta:
                database = db
                table_name = "orm_kit_seed_row"
                primary_key = peewee.CompositeKey("set_name", "table_name", "row_key")

        self.db = db
        self.sets = SeedSetRow
        self.rows = SeedOwnedRow

    def exists(self) -> bool:
        tables = set(self.db.get_tables())
        return {"orm_kit_seed", "orm_kit_seed_row"} <= tables

    def create(self) -> None:
        self.db.create_tables([self.sets, self.rows], safe=True)
        if not self._has_natural_key():  # a table from before natural keys were recorded
            execute(self.db, 'ALTER TABLE "orm_kit_seed_row" ADD COLUMN "natural_key" TEXT')

    def _has_natural_key(self) -> bool:
        return "natural_key" in {c.name for c in self.db.get_columns("orm_kit_seed_row")}

    def owned(self) -> dict[tuple[str, str], dict[str, str | None]]:
        """``{(set, table): {primary key as text: natural key as JSON, or None}}``."""
        rows = self.rows
        natural = rows.natural_key if self._has_natural_key() else peewee.Value(None)
        found: dict[tuple[str, str], dict[str, str | None]] = defaultdict(dict)
        query = rows.select(rows.set_name, rows.table_name, rows.row_key, natural)
        for set_name, table, key, natural_key in query.tuples().iterator():
            found[(set_name, table)][key] = natural_key
        return found


# --- loading ----------------------------------------------------------------------------------------


class _DryRun(Exception):  # control flow only: carries a rolled-back result out of atomic()
    def __init__(self, result: Any) -> None:
        self.result = result


def _choose(available: Mapping[str, SeedSet], names: Sequence[str] | None, directory: Path) -> list[SeedSet]:
    if not names:
        if not available:
            raise SeedError(f"seed folder {str(directory)!r} holds no sets (no *.yaml files)")
        return list(available.values())
    unknown = [n for n in names if n not in available]
    if unknown:
        raise SeedError(f"no seed set named {unknown[0]!r} in {str(directory)!r} "
                        f"(available: {', '.join(available) or 'none'})")
    return [available[n] for n in dict.fromkeys(names)]


def check_ready(db: peewee.Database, registry: SeedRegistry) -> None:
    """Raise unless every table of ``registry`` exists in ``db`` and its model is bound to ``db``."""
    existing = set(db.get_tables())
    missing = [t.name for t in registry.tables if t.name not in existing]
    if missing:
        raise SeedError(f"table {missing[0]!r} does not exist in the database: seeds load into a migrated "
                        "database (run `orm-kit migrate` first)")
    for table in registry.tables:
        bound = table.model._meta.database
        if getattr(bound, "obj", bound) is not db:
            raise ConfigurationError(f"model {table.model.__name__} is not bound to this database "
                                     "(bind the models first: db.bind(models))")


def load(db: peewee.Database, registry: SeedRegistry, directory: Path, sets: Sequence[str] | None = None,
         *, dry_run: bool = False) -> SeedResult:
    """Load the chosen sets (default: all) from ``directory`` in one transaction; see the module docstring."""
    check_ready(db, registry)
    chosen = _choose(discover_sets(directory), sets, directory)
    entries: dict[str, list[tuple[str, SeedRow]]] = defaultdict(list)
    for seed_set in chosen:
        for path in seed_set.files:
            for row in read_rows(path):
                table = registry.by_name.get(row.table)
                if table is None:
                    raise SeedError(f"unknown table {row.table!r} (expected one of {', '.join(registry.by_name)})",
                                    path=row.path, line=row.line)
                _check_fields(table, row)
                entries[row.table].append((seed_set.name, row))
    try:
        with db.atomic():
            book = _Book(db)
            book.create()
            loader = _Loader(db, registry, book)
            for table in registry.tables:
                loader.load_table(table, entries.get(table.name, []))
            stale = loader.stale([s.name for s in chosen])
            loader.record_sets(chosen)
            result = SeedResult(tuple(s.name for s in chosen), tuple(loader.changes), loader.unchanged,
                                stale, dry_run)
            if dry_run:
                raise _DryRun(result)
    except _DryRun as rolled_back:
        return rolled_back.result  # type: ignore[no-any-return]
    return result


def _check_fields(table: SeedTable, row: SeedRow) -> None:
    meta = table.model._meta
    allowed = _writable(table)
    computed = _computed(table.model)
    for name in row.values:
        if name in allowed:
            continue
        if name in computed:
            why = computed[name]
        elif name in meta.fields:
            why = ("is the numeric/generated primary key; seed rows refer to each other by natural key "
                   f"({', '.join(table.natural_key)}), remove it")
        elif name.endswith("_id") and name[:-3] in allowed:
            why = f"is a raw id; write {name[:-3]!r} with the natural key of the row it points at"
        else:
            why = f"is not a field of {table.name} (expected one of {', '.join(sorted(allowed))})"
        raise SeedError(why, path=row.path, line=row.line_of(name), table=table.name, field=name)


def _writable(table: SeedTable) -> set[str]:
    meta = table.model._meta
    names = {f.name for f in meta.sorted_fields}
    pk = _pk_field(table.model)
    if not isinstance(pk, peewee.ForeignKeyField):
        names.discard(pk.name)
    names -= _computed(table.model).keys()
    if table.uuid_key:
        names.add(table.uuid_key)
    return names


@functools.cache
def _computed(model: type[Model]) -> dict[str, str]:
    """Fields a file must not give, each with why: the version column, and what ``Model.derive`` fills.

    A derived field is found the way :class:`~orm_kit.bulk.BulkWriter` finds it, by asking ``derive``:
    left out of a row of every other field, does it come back? Its inputs are the fields whose absence
    stops that. (A derived value in a file would contradict its inputs, and an update that changed only
    it would not be derived again.)
    """
    names = [f.name for f in model._meta.sorted_fields]

    def derives(name: str, without: str | None = None) -> bool:
        probe: dict[str, Any] = dict.fromkeys(n for n in names if n not in (name, without))
        model.derive(probe)
        return name in probe

    found: dict[str, str] = {}
    version = _version_field(model)
    if version is not None:
        found[version] = ("is the optimistic-locking version: the loader moves it on every update, so a copy "
                          "read before the load conflicts; remove it")
    for name in names:
        if name != version and derives(name):
            inputs = [n for n in names if n != name and not derives(name, without=n)]
            source = " and ".join(inputs) if inputs else "the other fields"
            found[name] = f"is computed from {source} whenever the row is written; remove it"
    return found


def _version_field(model: type[Model]) -> str | None:
    """The optimistic-locking column of a :class:`~orm_kit.locking.Versioned` model, else None."""
    return model.version_field if issubclass(model, Versioned) else None


def _shown_key(natural: tuple[Any, ...]) -> str:
    def part(value: Any) -> str:
        if isinstance(value, tuple):
            return "/".join(part(v) for v in value)
        if isinstance(value, datetime.datetime):
            return value.isoformat()
        return str(value)

    return repr(part(natural))


def _encode(natural: tuple[Any, ...]) -> str:
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


def _decode(text: str) -> tuple[Any, ...]:
    """The natural key :func:`_encode` wrote."""
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


def _hashable(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return as_utc(value)
    hash(value)  # a list or mapping where a key part belongs raises TypeError
    return value


class _Loader:
    """One load: resolves references, matches rows by natural key, writes, and records what it did."""

    def __init__(self, db: peewee.Database, registry: SeedRegistry, book: _Book) -> None:
        self.db = db
        self.registry = registry
        self.book = book
        self.pks: dict[tuple[str, tuple[Any, ...]], Any] = {}   # (table, natural key) -> primary key
        self.seen: dict[tuple[str, tuple[Any, ...]], SeedRow] = {}
        self.touched: dict[str, set[str]] = defaultdict(set)     # set -> "table:pk" it matched
        self.owned: list[tuple[str, str, str, str]] = []  # set, table, primary key, natural key (JSON)
        self.changes: list[RowChange] = []
        self.unchanged = 0
        self.changed_sets: set[str] = set()

    # natural keys and references

    def natural(self, table: SeedTable, row: SeedRow) -> tuple[Any, ...]:
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
                return _hashable(raw)
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
                                f"{{{', '.join(f'{p}: ...' for p in parts)}}} (got {raw!r})",
                                path=row.path, line=row.line_of(name), table=table.name, field=name)
            if set(given) != set(parts):
                raise SeedError(f"must name a {target.name} by exactly {', '.join(parts)} (got {raw!r})",
                                path=row.path, line=row.line_of(name), table=table.name, field=name)
            target_fields = target.model._meta.fields
            return tuple(
                self.reference_key(target, row, p, given[p])
                if isinstance(target_fields.get(p), peewee.ForeignKeyField) else _hashable(given[p])
                for p in parts
            )
        except TypeError:
            raise SeedError(f"cannot be part of a key (got {raw!r}); give text, a number or a date",
                            path=row.path, line=row.line_of(name), table=table.name, field=name) from None

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
                raise SeedError(f"must be a {target.name} of this row's own {mine} {own!r} (got {part} "
                                f"{given[part]!r}); give just its {', '.join(rest)}, or correct one of the two",
                                path=row.path, line=row.line_of(name), table=table.name, field=name)

    def pk_of(self, table: SeedTable, natural: tuple[Any, ...]) -> Any:
        """The primary key of the row ``natural`` names: loaded in this run, else in the database, else None."""
        cache_key = (table.name, natural)
        if cache_key in self.pks:
            return self.pks[cache_key]
        row = self.find(table, natural)
        pk = None if row is None else _pk(row)
        if pk is not None:
            self.pks[cache_key] = pk
        return pk

    def still_theirs(self, table: SeedTable, key: str, natural: str | None) -> bool:
        """Whether the row recorded as ``key`` still exists and its natural key still leads to it."""
        pk_field = _pk_field(table.model)
        pk = pk_field.python_value(key)  # type: ignore[no-untyped-call]
        if natural is None:  # recorded before natural keys were: the id is all there is to go on
            return table.model.select().where(pk_field == pk).exists()
        row = self.find(table, _decode(natural))
        return row is not None and str(_pk(row)) == key

    def find(self, table: SeedTable, natural: tuple[Any, ...]) -> Model | None:
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
        """The row's values as the model takes them: references replaced by primary keys."""
        data: dict[str, Any] = {}
        fields = table.model._meta.fields
        for name, raw in row.values.items():
            if name == table.uuid_key:
                continue
            fk = fields[name]
            if raw is None or not isinstance(fk, peewee.ForeignKeyField):
                data[name] = raw
                continue
            target = self.registry.target(fk)
            natural = self.reference_key(table, row, name, raw)
            pk = self.pk_of(target, natural)
            if pk is None:
                raise SeedError(f"unknown {target.name} {_shown_key(natural)}: no such row in the sets being "
                                "loaded or in the database (check the spelling, or load the set that defines it)",
                                path=row.path, line=row.line_of(name), table=table.name, field=name)
            data[name] = pk
        if table.uuid_key:
            data[_pk_field(table.model).name] = uuid_for(table.name, str(row.values[table.uuid_key]))
        return data

    # loading one table

    def ordered(self, table: SeedTable, entries: list[tuple[str, SeedRow]]) -> list[tuple[str, SeedRow]]:
        """``entries`` with rows a row refers to (same table) first; duplicates and cycles are errors."""
        keyed: dict[tuple[Any, ...], tuple[str, SeedRow]] = {}
        for entry in entries:
            row = entry[1]
            natural = self.natural(table, row)
            other = self.seen.get((table.name, natural))
            if other is not None:
                # Blame a part written differently (10:00Z and 11:00+01:00 are one instant), else the first.
                differs = [p for p in table.natural_key if repr(row.values.get(p)) != repr(other.values.get(p))]
                blamed = (differs or list(table.natural_key))[0]
                raise SeedError(f"duplicate natural key {_shown_key(natural)}: {table.name} is already defined "
                                f"at {other.path}, line {other.line} (keep one of the two)",
                                path=row.path, line=row.line_of(blamed) if differs else row.line,
                                table=table.name, field=blamed)
            self.seen[(table.name, natural)] = row
            keyed[natural] = entry
        self_refs = [f for f in table.model._meta.refs if f.rel_model is table.model and f.name in _writable(table)]
        if not self_refs:
            return entries
        order: list[tuple[str, SeedRow]] = []
        state: dict[tuple[Any, ...], int] = {}  # 1 visiting, 2 done

        def visit(natural: tuple[Any, ...]) -> None:
            if state.get(natural) == 2:
                return
            set_name, row = keyed[natural]
            if state.get(natural) == 1:
                raise SeedError(f"{table.name} {_shown_key(natural)} is part of a reference cycle; break it",
                                path=row.path, line=row.line, table=table.name, field=self_refs[0].name)
            state[natural] = 1
            for fk in self_refs:
                raw = row.values.get(fk.name)
                if raw is not None:
                    parent = self.reference_key(table, row, fk.name, raw)
                    if parent in keyed:
                        visit(parent)
            state[natural] = 2
            order.append((set_name, row))

        for natural in keyed:
            visit(natural)
        return order

    def load_table(self, table: SeedTable, entries: list[tuple[str, SeedRow]]) -> None:
        for set_name, row in self.ordered(table, entries):
            self.load_row(table, set_name, row)

    def load_row(self, table: SeedTable, set_name: str, row: SeedRow) -> None:
        model = table.model
        meta = model._meta
        natural = self.natural(table, row)
        data = self.resolve(table, row)
        existing = self.find(table, natural)
        shown = _shown_key(natural)
        if existing is None:
            self._raise_invalid(table, row, model.check_data(data))
            pk_field = _pk_field(model)
            if pk_field.name not in data and not meta.auto_increment and callable(pk_field.default):
                data[pk_field.name] = pk_field.default()  # known before the INSERT, whatever the database
            pk = self._write(table, row, lambda: model.insert(data).execute())
            pk = data.get(pk_field.name, pk)
            self.changes.append(RowChange(set_name, table.name, shown, "insert", tuple(row.values)))
            self.owned.append((set_name, table.name, str(pk), _encode(natural)))
            self.changed_sets.add(set_name)
        else:
            pk = _pk(existing)
            merged = {**existing.__data__, **data}
            self._raise_invalid(table, row, model.check_data(merged))
            changed = {name: value for name, value in data.items()
                       if meta.fields[name].db_value(value) != meta.fields[name].db_value(existing.__data__.get(name))}
            if changed:
                if table.touch and table.touch not in changed:
                    changed[table.touch] = utcnow()
                self._update(table, row, existing, changed)
                written = tuple(n for n in row.values if n in changed)
                self.changes.append(RowChange(set_name, table.name, shown, "update", written))
                self.changed_sets.add(set_name)
            else:
                self.unchanged += 1
        self.pks[(table.name, natural)] = pk
        self.touched[set_name].add(f"{table.name}:{pk}")

    def _update(self, table: SeedTable, row: SeedRow, existing: Model, changed: dict[str, Any]) -> None:
        """Write ``changed``; a versioned row gets its version bumped, so an application's stale copy conflicts."""
        model = table.model
        meta = model._meta
        where = meta.primary_key == _pk(existing)
        version = _version_field(model)
        if version is not None:
            # Like Versioned.save(): only the version this load read may be replaced, and it moves on, so a
            # copy an application read before the load fails its save instead of silently undoing the seed.
            read = existing.__data__.get(version)
            column = meta.fields[version]
            changed[version] = column + 1
            where &= column == read
        count = self._write(table, row, lambda: model.update(changed).where(where).execute())
        if version is not None and count != 1:
            raise SeedError(f"was changed or deleted by someone else while the seed loaded ({version} {read!r} "
                            "is stale); nothing was written: run the load again",
                            path=row.path, line=row.line, table=table.name)

    def _raise_invalid(self, table: SeedTable, row: SeedRow, errors: Mapping[str, Sequence[str]]) -> None:
        if not errors:
            return
        given = [name for name in errors if name in row.values]
        name = (given or list(errors))[0]
        reason = "; ".join(errors[name])
        others = [f"{n} {m}" for n, messages in errors.items() if n != name for m in messages]
        if others:
            reason += f" (also: {'; '.join(others)})"
        raise SeedError(reason, path=row.path, line=row.line_of(name), table=table.name, field=name)

    def _write(self, table: SeedTable, row: SeedRow, write: Any) -> Any:
        # No savepoint: any failure ends the whole load, and the outer transaction rolls everything back.
        try:
            return write()
        except ValidationError as exc:  # a unique column the natural key does not cover
            self._raise_invalid(table, row, exc.errors)
        except peewee.IntegrityError as exc:
            first = first_line(exc, typed=False)
            raise SeedError(f"the database refused the row: {first}", path=row.path, line=row.line,
                            table=table.name) from None

    # bookkeeping

    def stale(self, set_names: Iterable[str]) -> dict[str, int]:
        """Rows each set loaded before that its files no longer name (left in place; see ``remove``)."""
        found: dict[str, int] = {}
        for (set_name, table), keys in self.book.owned().items():
            if set_name in set_names:
                gone = {f"{table}:{k}" for k in keys} - self.touched[set_name]
                if gone:
                    found[set_name] = found.get(set_name, 0) + len(gone)
        return found

    def record_sets(self, chosen: Sequence[SeedSet]) -> None:
        rows = self.book.rows
        for set_name, table, key, natural in self.owned:
            # The same row inserted again (someone deleted it): its old id is no longer the set's.
            rows.delete().where(rows.set_name == set_name, rows.table_name == table, rows.natural_key == natural,
                                rows.row_key != key).execute()
            rows.insert(set_name=set_name, table_name=table, row_key=key, natural_key=natural).on_conflict(
                conflict_target=[rows.set_name, rows.table_name, rows.row_key],
                update={rows.natural_key: natural}).execute()
        now = utcnow()
        for seed_set in chosen:
            current = self.book.sets.get_or_none(self.book.sets.name == seed_set.name)
            if current is None:
                self.book.sets.insert(name=seed_set.name, checksum=seed_set.checksum, loaded_at=now).execute()
            elif current.checksum != seed_set.checksum or seed_set.name in self.changed_sets:
                self.book.sets.update(checksum=seed_set.checksum, loaded_at=now).where(
                    self.book.sets.name == seed_set.name).execute()


# --- status and remove ------------------------------------------------------------------------------


def status(db: peewee.Database, registry: SeedRegistry, directory: Path,
           sets: Sequence[str] | None = None) -> list[SetStatus]:
    """Every set in ``directory`` or in the database (or only ``sets``): files changed since, rows still there."""
    available = discover_sets(directory) if directory.is_dir() else {}
    book = _Book(db)
    loaded: dict[str, Any] = {}
    counts: dict[str, int] = defaultdict(int)
    if book.exists():
        loaded = {row.name: row for row in book.sets.select()}
        for (set_name, _table), keys in _still_owned(db, registry, book).items():
            counts[set_name] += len(keys)
    names = sorted(set(available) | set(loaded))
    if sets is not None:
        unknown = [name for name in sets if name not in names]
        if unknown:
            raise SeedError(f"no seed set named {unknown[0]!r} in {str(directory)!r} or in the database "
                            f"(expected one of {', '.join(names) or 'none'})")
        names = [name for name in names if name in sets]
    found = []
    for name in names:
        record = loaded.get(name)
        if record is None:
            state = "not loaded"
        elif name not in available:
            state = "files missing"
        else:
            state = "loaded" if record.checksum == available[name].checksum else "changed"
        found.append(SetStatus(name, state, record.loaded_at if record else None, counts[name]))
    return found


def _chunks(db: peewee.Database, values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """``values`` in pieces that fit one ``IN (...)`` list under the connection's parameter limit."""
    size = rows_per_chunk(db, 1)
    for start in range(0, len(values), size):
        yield values[start:start + size]


def remove(db: peewee.Database, registry: SeedRegistry, name: str, *, dry_run: bool = False) -> RemoveResult:
    """Delete the rows set ``name`` inserted (and no other set owns); refuse if anything else refers to them."""
    check_ready(db, registry)
    book = _Book(db)
    if not book.exists() or book.sets.get_or_none(book.sets.name == name) is None:
        loaded = [r.name for r in book.sets.select()] if book.exists() else []
        raise SeedError(f"seed set {name!r} is not loaded (loaded: {', '.join(loaded) or 'none'})")
    try:
        with db.atomic():
            recorded = book.owned()
            everyone = _still_owned(db, registry, book, recorded)
            mine: dict[str, set[str]] = defaultdict(set)
            gone: dict[str, int] = {}
            for (owner, table_name), keys in everyone.items():
                if owner == name:
                    mine[table_name] |= keys
                    missing = len(recorded[(owner, table_name)]) - len(keys)
                    if missing:
                        gone[table_name] = missing
            for (owner, table_name), keys in everyone.items():
                if owner != name:
                    mine[table_name] -= keys  # shared with another set: stays
            doomed = {t.name: [_pk_field(t.model).python_value(k)  # type: ignore[no-untyped-call]
                           for k in sorted(mine.get(t.name, ()))]
                      for t in registry.tables}
            _refuse_outside_references(db, registry, name, doomed)
            deleted: dict[str, int] = {}
            for table in reversed(registry.tables):
                pk_field = _pk_field(table.model)
                count = 0
                for chunk in _chunks(db, doomed[table.name]):
                    count += table.model.delete().where(pk_field.in_(list(chunk))).execute()
                if count:
                    deleted[table.name] = count
            book.rows.delete().where(book.rows.set_name == name).execute()
            book.sets.delete().where(book.sets.name == name).execute()
            result = RemoveResult(name, deleted, dry_run, gone)
            if dry_run:
                raise _DryRun(result)
    except _DryRun as rolled_back:
        return rolled_back.result  # type: ignore[no-any-return]
    return result


def _still_owned(db: peewee.Database, registry: SeedRegistry, book: _Book,
                 recorded: Mapping[tuple[str, str], Mapping[str, str | None]] | None = None,
                 ) -> dict[tuple[str, str], set[str]]:
    """``{(set, table): {primary keys}}`` of the recorded rows that still exist as the rows the set inserted.

    A row deleted since, or whose id now holds another row (SQLite hands a deleted row's id to the next
    insert), is not the set's any more: ``remove`` must not delete it and ``status`` must not count it.
    """
    checker = _Loader(db, registry, book)
    found: dict[tuple[str, str], set[str]] = {}
    for (set_name, table_name), keys in (book.owned() if recorded is None else recorded).items():
        table = registry.by_name.get(table_name)
        if table is None:  # a table the registry no longer lists: nothing to check it with
            found[(set_name, table_name)] = set(keys)
            continue
        found[(set_name, table_name)] = {key for key, natural in keys.items()
                                         if checker.still_theirs(table, key, natural)}
    return found


def _refuse_outside_references(db: peewee.Database, registry: SeedRegistry, name: str,
                                doomed: Mapping[str, list[Any]]) -> None:
    """Deleting must not cascade into, null out, or be restricted by a row the set did not insert."""
    for table in registry.tables:
        targets = doomed[table.name]
        if not targets:
            continue
        for fk, referrer in table.model._meta.backrefs.items():
            other = registry.by_model.get(referrer)
            if other is None:
                continue
            mine = {str(pk) for pk in doomed[other.name]}
            for chunk in _chunks(db, targets):
                for row in referrer.select().where(fk.in_(list(chunk))):
                    if str(_pk(row)) not in mine:
                        target = table.model.get_by_id(row.__data__[fk.name])
                        raise SeedError(
                            f"cannot remove set {name!r}: its {table.name} {_describe(table, target)} is referred "
                            f"to by {other.name} {_describe(other, row)} ({other.name}.{fk.name}), which set "
                            f"{name!r} did not load (remove that row, or the set that loaded it, first)")


def _describe(table: SeedTable, row: peewee.Model) -> str:
    if table.uuid_key:
        return repr(str(_pk(row)))
    return repr("/".join(str(row.__data__.get(k)) for k in table.key))
