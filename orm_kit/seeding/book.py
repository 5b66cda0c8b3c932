"""The seed bookkeeping, and what it answers: which sets are loaded (``status``), and removing one (``remove``).

    [s.state for s in status(db, registry, Path("seed_data"))]  # ["loaded", "changed", "not loaded", ...]
    remove(db, registry, "demo")                                 # deletes exactly the rows "demo" inserted

Two small tables, created on the first load like a migration runner's history: ``orm_kit_seed`` (set
name, checksum of its files, loaded_at) and ``orm_kit_seed_row`` (which rows each set inserted: primary
key and natural key). ``status`` compares checksums and counts the set's rows still there; ``remove``
deletes only a set's own rows: a row whose id now holds another row (SQLite reuses the ids of deleted
rows) is left alone, because its natural key no longer leads to that id, and a row another set also
loaded stays. It refuses, changing nothing, when a row it did not insert still refers to one of them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import peewee

from orm_kit._shown import shown
from orm_kit._sql import execute
from orm_kit.bookkeeping import SEED_TABLES
from orm_kit.bulk import rows_per_chunk
from orm_kit.errors import SeedError
from orm_kit.fields import UTCDateTimeField, utcnow
from orm_kit.seeding.files import SeedSet
from orm_kit.seeding.keys import Keys
from orm_kit.seeding.registry import SeedRegistry, SeedTable, check_ready, pk, pk_field
from orm_kit.seeding.results import RemoveResult, SetStatus
from orm_kit.seeding.sources import SeedSource, as_sources, available, combined, set_names

__all__ = ["BOOKKEEPING_TABLES", "Book", "remove", "status", "still_owned"]

BOOKKEEPING_TABLES = SEED_TABLES


class Book:
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

    def stale(self, set_names: Iterable[str], touched: Mapping[str, set[str]]) -> dict[str, int]:
        """Rows each set loaded before that this load did not match (``touched``: set -> ``table:pk``)."""
        found: dict[str, int] = {}
        for (set_name, table), keys in self.owned().items():
            if set_name in set_names:
                gone = {f"{table}:{k}" for k in keys} - touched.get(set_name, set())
                if gone:
                    found[set_name] = found.get(set_name, 0) + len(gone)
        return found

    def record(self, owned: Iterable[tuple[str, str, str, str]], chosen: Sequence[SeedSet],
               changed_sets: Collection[str]) -> None:
        """Record the rows a load inserted (set, table, key, natural key) and each chosen set's checksum."""
        # Set-based, a fixed number of statements per chunk: a statement per row, each scanning the table for
        # the row's natural key, made a load of n rows take time in n squared (24,000 rows: a minute).
        rows = self.rows
        new = {(set_name, table, key): natural for set_name, table, key, natural in owned}
        if new:
            recorded: dict[tuple[str, str, str], str | None] = {}
            keys_of: dict[tuple[str, str, str | None], list[str]] = defaultdict(list)
            query = rows.select(rows.set_name, rows.table_name, rows.row_key, rows.natural_key).where(
                rows.set_name.in_(sorted({set_name for set_name, _, _ in new})))
            for set_name, table, key, natural in query.tuples().iterator():
                recorded[(set_name, table, key)] = natural
                keys_of[(set_name, table, natural)].append(key)
            # The same row inserted again (someone deleted it): its old id is no longer the set's.
            replaced = [(set_name, table, old) for (set_name, table, key), natural in new.items()
                        for old in keys_of.get((set_name, table, natural), ()) if old != key]
            target = peewee.Tuple(rows.set_name, rows.table_name, rows.row_key)
            for chunk in _chunks(self.db, replaced, columns=3):
                rows.delete().where(target.in_([peewee.Tuple(*row) for row in chunk])).execute()
            fresh = [(*key, natural) for key, natural in new.items()
                     if key not in recorded or recorded[key] != natural]
            for chunk in _chunks(self.db, fresh, columns=4):
                rows.insert_many(chunk, fields=[rows.set_name, rows.table_name, rows.row_key, rows.natural_key]
                                 ).on_conflict(conflict_target=[rows.set_name, rows.table_name, rows.row_key],
                                               update={rows.natural_key: peewee.EXCLUDED.natural_key}).execute()
        now = utcnow()
        for seed_set in chosen:
            current = self.sets.get_or_none(self.sets.name == seed_set.name)
            if current is None:
                self.sets.insert(name=seed_set.name, checksum=seed_set.checksum, loaded_at=now).execute()
            elif current.checksum != seed_set.checksum or seed_set.name in changed_sets:
                self.sets.update(checksum=seed_set.checksum, loaded_at=now).where(
                    self.sets.name == seed_set.name).execute()


def status(db: peewee.Database, registry: SeedRegistry | Sequence[SeedSource], directory: Path | None = None,
           sets: Sequence[str] | None = None) -> list[SetStatus]:
    """Every set in ``directory`` (or the sources' folders) or in the database (or only ``sets``): files changed
    since, rows still there."""
    sources = as_sources(registry, directory)
    registry = combined(sources)
    sets = set_names(sets)
    found = {name: seed_set for name, (seed_set, _) in available(sources, missing_ok=True).items()}
    where = " or ".join(repr(str(s.directory)) for s in sources)
    book = Book(db)
    loaded: dict[str, Any] = {}
    counts: dict[str, int] = defaultdict(int)
    if book.exists():
        loaded = {row.name: row for row in book.sets.select()}
        for (set_name, _table), keys in still_owned(db, registry, book).items():
            counts[set_name] += len(keys)
    names = sorted(set(found) | set(loaded))
    if sets is not None:
        unknown = [name for name in sets if name not in names]
        if unknown:
            raise SeedError(f"no seed set named {shown(unknown[0])} in {where} or in the database "
                            f"(expected one of {', '.join(names) or 'none'})")
        names = [name for name in names if name in sets]
    report = []
    for name in names:
        record = loaded.get(name)
        if record is None:
            state = "not loaded"
        elif name not in found:
            state = "files missing"
        else:
            state = "loaded" if record.checksum == found[name].checksum else "changed"
        report.append(SetStatus(name, state, record.loaded_at if record else None, counts[name]))
    return report


def _chunks(db: peewee.Database, values: Sequence[Any], *, columns: int = 1) -> Iterator[Sequence[Any]]:
    """``values`` (of ``columns`` parameters each) in pieces that fit one statement under the connection's
    parameter limit."""
    size = rows_per_chunk(db, columns)
    for start in range(0, len(values), size):
        yield values[start:start + size]


def remove(db: peewee.Database, registry: SeedRegistry | Sequence[SeedSource], name: str, *,
           dry_run: bool = False) -> RemoveResult:
    """Delete the rows set ``name`` inserted (and no other set owns); refuse if anything else refers to them.

    ``registry``: every table that may refer to the set's rows (with several apps, all their sources)."""
    registry = registry if isinstance(registry, SeedRegistry) else combined(as_sources(registry))
    check_ready(db, registry)
    book = Book(db)
    if not book.exists() or book.sets.get_or_none(book.sets.name == name) is None:
        loaded = [r.name for r in book.sets.select()] if book.exists() else []
        raise SeedError(f"seed set {shown(name)} is not loaded (loaded: {', '.join(loaded) or 'none'})")
    with db.atomic() as transaction:
        recorded = book.owned()
        everyone = still_owned(db, registry, book, recorded)
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
        doomed = {t.name: [pk_field(t.model).python_value(k)  # type: ignore[no-untyped-call]  # peewee untyped
                       for k in sorted(mine.get(t.name, ()))]
                  for t in registry.tables}
        _refuse_outside_references(db, registry, name, doomed)
        deleted: dict[str, int] = {}
        for table in reversed(registry.tables):
            key_field = pk_field(table.model)
            count = 0
            for chunk in _chunks(db, doomed[table.name]):
                count += table.model.delete().where(key_field.in_(list(chunk))).execute()
            if count:
                deleted[table.name] = count
        book.rows.delete().where(book.rows.set_name == name).execute()
        book.sets.delete().where(book.sets.name == name).execute()
        if dry_run:
            transaction.rollback()  # report what would go, delete nothing
    return RemoveResult(name, deleted, dry_run, gone)


def still_owned(db: peewee.Database, registry: SeedRegistry, book: Book,
                 recorded: Mapping[tuple[str, str], Mapping[str, str | None]] | None = None,
                 ) -> dict[tuple[str, str], set[str]]:
    """``{(set, table): {primary keys}}`` of the recorded rows that still exist as the rows the set inserted.

    A row deleted since, or whose id now holds another row (SQLite hands a deleted row's id to the next
    insert), is not the set's any more: ``remove`` must not delete it and ``status`` must not count it.
    """
    checker = Keys(registry)
    existing = set(db.get_tables())
    found: dict[tuple[str, str], set[str]] = {}
    for (set_name, table_name), keys in (book.owned() if recorded is None else recorded).items():
        table = registry.by_name.get(table_name)
        if table is None:  # a table the registry no longer lists: nothing to check it with
            found[(set_name, table_name)] = set(keys)
            continue
        if table_name not in existing:  # reverted by `migrate down`: its rows went with it
            found[(set_name, table_name)] = set()
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
                    if str(pk(row)) not in mine:
                        target = table.model.get_by_id(row.__data__[fk.name])
                        raise SeedError(
                            f"cannot remove set {name!r}: its {table.name} {_describe(table, target)} is referred "
                            f"to by {other.name} {_describe(other, row)} ({other.name}.{fk.name}), which set "
                            f"{name!r} did not load (remove that row, or the set that loaded it, first)")


def _describe(table: SeedTable, row: peewee.Model) -> str:
    if table.uuid_key:
        return repr(str(pk(row)))
    return repr("/".join(str(row.__data__.get(k)) for k in table.key))
