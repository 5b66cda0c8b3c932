"""The seed loader: rows referring to each other by natural key, loaded idempotently in one transaction.

    result = load(db, registry, Path("seed_data"))                       # every set, one transaction
    result = load(db, registry, Path("seed_data"), sets=["demo"], dry_run=True)
    result.inserted, result.updated, result.unchanged
    load(db, [SeedSource(platform_registry, platform_folder), SeedSource(flags, Path("seeds"), app="flags")])

How rows are matched: each row's natural key (``Team.name``; ``(service, version)`` for a release)
finds the row in the database (:mod:`orm_kit.seeding.keys`). A missing row is inserted, a row whose
given fields differ is updated (those fields only, plus the table's ``touch``), an equal row is left
alone, so a second load writes nothing. Fields a file does not give are never changed. Rows load table
by table in the registry's order, parents first, and a table that refers to itself loads its parents
before their children.

Every row goes through the model's own validation (:meth:`orm_kit.model.Model.check_data`) before it
is written. A versioned row's update moves its version on (``SET ..., lock_version = lock_version + 1
WHERE id = ? AND lock_version = <read>``) like ``save()`` does. Any problem is one
:class:`~orm_kit.errors.SeedError` naming the file, line, table and field, and the transaction is
rolled back: the database is left exactly as it was. What each set inserted is recorded by
:mod:`orm_kit.seeding.book`. Several apps' seed data load together (:mod:`orm_kit.seeding.sources`):
their tables in the order the sources are given, each app's files filling its own tables only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import peewee

from orm_kit._shown import shown
from orm_kit.errors import SeedError, ValidationError, first_line
from orm_kit.fields import utcnow
from orm_kit.model import Model
from orm_kit.seeding.book import Book
from orm_kit.seeding.files import SeedRow, SeedSet, read_rows
from orm_kit.seeding.keys import Keys, encode, shown_key
from orm_kit.seeding.registry import (
    SeedRegistry,
    SeedTable,
    check_ready,
    computed,
    pk,
    pk_field,
    version_field,
    writable,
)
from orm_kit.seeding.results import RowChange, SeedResult
from orm_kit.seeding.sources import SeedSource, as_sources, available, combined, table_for

__all__ = ["load"]


def _choose(found: Mapping[str, tuple[SeedSet, SeedSource]], names: Sequence[str] | None,
            sources: Sequence[SeedSource]) -> list[tuple[SeedSet, SeedSource]]:
    where = " or ".join(repr(str(s.directory)) for s in sources)
    if not names:
        if not found:
            raise SeedError(f"seed folder {where} holds no sets (no *.yaml files)")
        return list(found.values())
    unknown = [n for n in names if n not in found]
    if unknown:
        raise SeedError(f"no seed set named {shown(unknown[0])} in {where} (available: {', '.join(found) or 'none'})")
    return [found[n] for n in dict.fromkeys(names)]


def load(db: peewee.Database, registry: SeedRegistry | Sequence[SeedSource], directory: Path | None = None,
         sets: Sequence[str] | None = None, *, dry_run: bool = False) -> SeedResult:
    """Load the chosen sets (default: all) in one transaction: of ``registry`` from ``directory``, or of several
    apps' :class:`~orm_kit.seeding.sources.SeedSource` (no directory); see the module docstring."""
    sources = as_sources(registry, directory)
    registry = combined(sources)
    check_ready(db, registry)
    chosen = _choose(available(sources), sets, sources)
    entries: dict[str, list[tuple[str, SeedRow]]] = defaultdict(list)
    for seed_set, source in chosen:
        for path in seed_set.files:
            for row in read_rows(path):
                try:
                    table = table_for(source, registry, row.table)
                except SeedError as exc:
                    raise SeedError(exc.reason, path=row.path, line=row.line) from None
                if table is None:
                    known = ", ".join(source.registry.by_name)
                    raise SeedError(f"unknown table {row.table!r} (expected one of {known})",
                                    path=row.path, line=row.line)
                _check_fields(table, row)
                entries[row.table].append((seed_set.name, row))
    with db.atomic() as transaction:
        book = Book(db)
        book.create()
        loader = _Loader(registry)
        for table in registry.tables:
            loader.load_table(table, entries.get(table.name, []))
        stale = book.stale([s.name for s, _ in chosen], loader.touched)
        book.record(loader.owned, [s for s, _ in chosen], loader.changed_sets)
        if dry_run:
            transaction.rollback()  # report what would change, write nothing
    return SeedResult(tuple(s.name for s, _ in chosen), tuple(loader.changes), loader.unchanged, stale, dry_run)


def _check_fields(table: SeedTable, row: SeedRow) -> None:
    meta = table.model._meta
    allowed = writable(table)
    derived = computed(table.model)
    for name in row.values:
        if name in allowed:
            continue
        if name in derived:
            why = derived[name]
        elif name in meta.fields:
            why = ("is the numeric/generated primary key; seed rows refer to each other by natural key "
                   f"({', '.join(table.natural_key)}), remove it")
        elif name.endswith("_id") and name[:-3] in allowed:
            why = f"is a raw id; write {name[:-3]!r} with the natural key of the row it points at"
        else:
            why = f"is not a field of {table.name} (expected one of {', '.join(sorted(allowed))})"
        raise SeedError(why, path=row.path, line=row.line_of(name), table=table.name, field=name)


class _Loader:
    """One load: orders each table's rows, matches them by natural key, writes, and records what it did."""

    def __init__(self, registry: SeedRegistry) -> None:
        self.registry = registry
        self.keys = Keys(registry)
        self.seen: dict[tuple[str, tuple[Any, ...]], SeedRow] = {}
        self.touched: dict[str, set[str]] = defaultdict(set)     # set -> "table:pk" it matched
        self.owned: list[tuple[str, str, str, str]] = []  # set, table, primary key, natural key (JSON)
        self.changes: list[RowChange] = []
        self.unchanged = 0
        self.changed_sets: set[str] = set()

    # loading one table

    def ordered(self, table: SeedTable, entries: list[tuple[str, SeedRow]]) -> list[tuple[str, SeedRow]]:
        """``entries`` with rows a row refers to (same table) first; duplicates and cycles are errors."""
        keyed: dict[tuple[Any, ...], tuple[str, SeedRow]] = {}
        for entry in entries:
            row = entry[1]
            natural = self.keys.natural(table, row)
            other = self.seen.get((table.name, natural))
            if other is not None:
                # Blame a part written differently (10:00Z and 11:00+01:00 are one instant), else the first.
                differs = [p for p in table.natural_key if repr(row.values.get(p)) != repr(other.values.get(p))]
                blamed = (differs or list(table.natural_key))[0]
                raise SeedError(f"duplicate natural key {shown_key(natural)}: {table.name} is already defined "
                                f"at {other.path}, line {other.line} (keep one of the two)",
                                path=row.path, line=row.line_of(blamed) if differs else row.line,
                                table=table.name, field=blamed)
            self.seen[(table.name, natural)] = row
            keyed[natural] = entry
        self_refs = [f for f in table.model._meta.refs if f.rel_model is table.model and f.name in writable(table)]
        if not self_refs:
            return entries
        order: list[tuple[str, SeedRow]] = []
        state: dict[tuple[Any, ...], int] = {}  # 1 visiting, 2 done

        def visit(natural: tuple[Any, ...]) -> None:
            if state.get(natural) == 2:
                return
            set_name, row = keyed[natural]
            if state.get(natural) == 1:
                raise SeedError(f"{table.name} {shown_key(natural)} is part of a reference cycle; break it",
                                path=row.path, line=row.line, table=table.name, field=self_refs[0].name)
            state[natural] = 1
            for fk in self_refs:
                raw = row.values.get(fk.name)
                if raw is not None:
                    parent = self.keys.reference_key(table, row, fk.name, raw)
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
        natural = self.keys.natural(table, row)
        data = self.keys.resolve(table, row)
        existing = self.keys.find(table, natural)
        shown = shown_key(natural)
        if existing is None:
            self._raise_invalid(table, row, model.check_data(data))
            key_field = pk_field(model)
            if key_field.name not in data and not meta.auto_increment and callable(key_field.default):
                data[key_field.name] = key_field.default()  # known before the INSERT, whatever the database
            inserted = self._write(table, row, lambda: model.insert(data).execute())
            key = data.get(key_field.name, inserted)
            self.changes.append(RowChange(set_name, table.name, shown, "insert", tuple(row.values)))
            self.owned.append((set_name, table.name, str(key), encode(natural)))
            self.changed_sets.add(set_name)
        else:
            key = pk(existing)
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
        self.keys.remember(table, natural, key)
        self.touched[set_name].add(f"{table.name}:{key}")

    def _update(self, table: SeedTable, row: SeedRow, existing: Model, changed: dict[str, Any]) -> None:
        """Write ``changed``; a versioned row gets its version bumped, so an application's stale copy conflicts."""
        model = table.model
        meta = model._meta
        where = meta.primary_key == pk(existing)
        version = version_field(model)
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
