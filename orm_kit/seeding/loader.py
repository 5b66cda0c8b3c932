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
WHERE id = ? AND lock_version = <read>``) like ``save()`` does. Every problem of every file is found in
one pass (up to :data:`MAX_PROBLEMS`, the rest counted): each is a :class:`~orm_kit.errors.SeedError`
naming the file, line, table and field, a row's invalid values reported together with its unknown
references, and they come in one :class:`~orm_kit.errors.SeedProblemsError`; the transaction is rolled
back, so the database is left exactly as it was. A row with a problem is not written, and a row that
refers to it is checked but not written either (its reference is no problem of its own). What each set
inserted is recorded by :mod:`orm_kit.seeding.book`. Several apps' seed data load together
(:mod:`orm_kit.seeding.sources`): their tables in the order the sources are given, each app's files filling
its own tables only.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import peewee

from orm_kit._shown import shown
from orm_kit.bounds import check_count
from orm_kit.dialect import is_postgres
from orm_kit.errors import IntegrityViolationError, SeedError, SeedProblemsError, ValidationError, first_line
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
from orm_kit.seeding.sources import SeedSource, as_sources, available, combined, set_names, table_for

__all__ = ["MAX_PROBLEMS", "load"]

#: How many problems one load reports (the rest are counted): enough to fix a whole catalog in one pass.
MAX_PROBLEMS = 100
MAX_PROBLEMS_BOUND = 1_000_000  # the most a caller may ask for: each is kept in memory until the load ends


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
         sets: Sequence[str] | None = None, *, dry_run: bool = False, max_problems: int = MAX_PROBLEMS) -> SeedResult:
    """Load the chosen sets (default: all) in one transaction: of ``registry`` from ``directory``, or of several
    apps' :class:`~orm_kit.seeding.sources.SeedSource` (no directory); see the module docstring.

    Every problem of every file is looked for before anything is kept: they come together in one
    :class:`~orm_kit.errors.SeedProblemsError` (the first ``max_problems`` of them, and how many more).
    """
    sources = as_sources(registry, directory)
    registry = combined(sources)
    check_count(max_problems, "max_problems", low=1, high=MAX_PROBLEMS_BOUND)
    names = set_names(sets)
    check_ready(db, registry)
    chosen = _choose(available(sources), names, sources)
    problems = _Problems(max_problems)
    entries: dict[str, list[tuple[str, SeedRow]]] = defaultdict(list)
    broken: set[int] = set()  # rows (by id) with problems found before the transaction: checked, never written
    unreadable: list[str] = []
    for seed_set, source in chosen:
        for path in seed_set.files:
            problems.files.append(str(path))
            try:
                rows = read_rows(path)
            except SeedError as exc:
                problems.add(exc)
                unreadable.append(str(path))
                continue
            for row in rows:
                try:
                    table = table_for(source, registry, row.table)
                except SeedError as exc:
                    problems.add(SeedError(exc.reason, path=row.path, line=row.line))
                    continue
                if table is None:
                    known = ", ".join(source.registry.by_name)
                    problems.add(SeedError(f"unknown table {shown(row.table)} (expected one of {known})",
                                           path=row.path, line=row.line))
                    continue
                bad = _field_problems(table, row)
                if bad:
                    problems.extend(bad)
                    row = dataclasses.replace(row, values={n: v for n, v in row.values.items()
                                                           if n not in {p.field for p in bad}})
                    broken.add(id(row))
                entries[row.table].append((seed_set.name, row))
    with db.atomic() as transaction:
        book = Book(db)
        book.create()
        loader = _Loader(db, registry, problems, broken)
        loader.keys.unreadable = unreadable
        for table in registry.tables:
            loader.load_table(table, entries.get(table.name, []))
        if problems.found:
            transaction.rollback()  # nothing of a load with problems is kept
            raise problems.error()
        stale = book.stale([s.name for s, _ in chosen], loader.touched)
        book.record(loader.owned, [s for s, _ in chosen], loader.changed_sets)
        if dry_run:
            transaction.rollback()  # report what would change, write nothing
    return SeedResult(tuple(s.name for s, _ in chosen), tuple(loader.changes), loader.unchanged, stale, dry_run)


class _Problems:
    """Every problem of one load, in the order found; past ``cap`` only counted."""

    def __init__(self, cap: int) -> None:
        self.cap = max(1, cap)
        self.found: list[SeedError] = []
        self.more = 0
        self.files: list[str] = []  # in the order they were read: problems are shown in that order, then by line

    def add(self, problem: SeedError) -> None:
        if len(self.found) < self.cap:
            self.found.append(problem)
        else:
            self.more += 1

    def extend(self, problems: Sequence[SeedError]) -> None:
        for problem in problems:
            self.add(problem)

    def error(self) -> SeedProblemsError:
        order = {path: n for n, path in enumerate(self.files)}
        ranked = sorted(self.found, key=lambda p: (order.get(p.path or "", len(order)), p.line or 0))  # stable
        return SeedProblemsError(ranked, self.more)


def _field_problems(table: SeedTable, row: SeedRow) -> list[SeedError]:
    """A problem for each field a file may not give (unknown, computed, a raw id, the generated key)."""
    meta = table.model._meta
    allowed = writable(table)
    derived = computed(table.model)
    found = []
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
        found.append(SeedError(why, path=row.path, line=row.line_of(name), table=table.name, field=name))
    return found


class _Loader:
    """One load: orders each table's rows, matches them by natural key, writes, and records what it did.

    A row with a problem is not written, and neither is one that refers to it; the load goes on, to find
    every other problem, and the caller rolls everything back.
    """

    def __init__(self, db: peewee.Database, registry: SeedRegistry, problems: _Problems, broken: set[int]) -> None:
        self.db = db
        self.registry = registry
        self.problems = problems
        self.broken_rows = broken
        self.keys = Keys(registry)
        self.seen: dict[tuple[str, tuple[Any, ...]], SeedRow] = {}
        self.touched: dict[str, set[str]] = defaultdict(set)     # set -> "table:pk" it matched
        self.owned: list[tuple[str, str, str, str]] = []  # set, table, primary key, natural key (JSON)
        self.changes: list[RowChange] = []
        self.unchanged = 0
        self.changed_sets: set[str] = set()

    # loading one table

    def ordered(self, table: SeedTable, entries: list[tuple[str, SeedRow]]) -> list[tuple[str, SeedRow]]:
        """``entries`` with rows a row refers to (same table) first; duplicates and cycles are problems."""
        keyed: dict[tuple[Any, ...], tuple[str, SeedRow]] = {}
        kept: list[tuple[str, SeedRow]] = []
        for entry in entries:
            row = entry[1]
            try:
                natural = self.keys.natural(table, row)
            except SeedError as exc:
                self.problems.add(exc)
                continue
            other = self.seen.get((table.name, natural))
            if other is not None:
                # Blame a part written differently (10:00Z and 11:00+01:00 are one instant), else the first.
                differs = [p for p in table.natural_key if repr(row.values.get(p)) != repr(other.values.get(p))]
                blamed = (differs or list(table.natural_key))[0]
                self.problems.add(SeedError(f"duplicate natural key {shown_key(natural)}: {table.name} is already "
                                            f"defined at {other.path}, line {other.line} (keep one of the two)",
                                            path=row.path, line=row.line_of(blamed) if differs else row.line,
                                            table=table.name, field=blamed))
                continue
            self.seen[(table.name, natural)] = row
            keyed[natural] = entry
            kept.append(entry)
        self_refs = [f for f in table.model._meta.refs if f.rel_model is table.model and f.name in writable(table)]
        if not self_refs:
            return kept
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
                    try:
                        parent = self.keys.reference_key(table, row, fk.name, raw)
                    except SeedError:
                        continue  # reported when the row itself is loaded
                    if parent in keyed:
                        visit(parent)
            state[natural] = 2
            order.append((set_name, row))

        for natural in keyed:
            if state.get(natural) == 2:
                continue
            try:
                visit(natural)
            except SeedError as cycle:
                self.problems.add(cycle)
                for member, mark in list(state.items()):
                    if mark == 1:  # the rows of the cycle: none can be written
                        state[member] = 2
                        self.keys.broken.add((table.name, member))
        return order

    def load_table(self, table: SeedTable, entries: list[tuple[str, SeedRow]]) -> None:
        for set_name, row in self.ordered(table, entries):
            self.load_row(table, set_name, row)

    def load_row(self, table: SeedTable, set_name: str, row: SeedRow) -> None:
        model = table.model
        meta = model._meta
        natural = self.keys.natural(table, row)
        if (table.name, natural) in self.keys.broken:
            return  # part of a cycle: reported
        data, problems, broken = self.keys.resolve_all(table, row)
        unresolved = {p.field for p in problems} | broken
        try:
            existing = self.keys.find(table, natural)
        except SeedError as exc:
            problems.append(exc)
            existing = None
        shown = shown_key(natural)
        merged = data if existing is None else {**existing.__data__, **data}
        errors = {name: messages for name, messages in model.check_data(merged).items() if name not in unresolved}
        problems += self._invalid(table, row, errors)
        if problems or broken or id(row) in self.broken_rows:
            self.problems.extend(problems)
            self.keys.broken.add((table.name, natural))  # rows that refer to it are not written either
            return
        if existing is None:
            key_field = pk_field(model)
            if key_field.name not in data and not meta.auto_increment and callable(key_field.default):
                data[key_field.name] = key_field.default()  # known before the INSERT, whatever the database
            inserted = self._write(table, row, natural, lambda: model.insert(data).execute())
            if inserted is _FAILED:
                return
            key = data.get(key_field.name, inserted)
            self.changes.append(RowChange(set_name, table.name, shown, "insert", tuple(row.values)))
            self.owned.append((set_name, table.name, str(key), encode(natural)))
            self.changed_sets.add(set_name)
        else:
            key = pk(existing)
            changed = {name: value for name, value in data.items()
                       if meta.fields[name].db_value(value) != meta.fields[name].db_value(existing.__data__.get(name))}
            if changed:
                if table.touch and table.touch not in changed:
                    changed[table.touch] = utcnow()
                if not self._update(table, row, natural, existing, changed):
                    return
                written = tuple(n for n in row.values if n in changed)
                self.changes.append(RowChange(set_name, table.name, shown, "update", written))
                self.changed_sets.add(set_name)
            else:
                self.unchanged += 1
        self.keys.remember(table, natural, key)
        self.touched[set_name].add(f"{table.name}:{key}")

    def _update(self, table: SeedTable, row: SeedRow, natural: tuple[Any, ...], existing: Model,
                changed: dict[str, Any]) -> bool:
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
        count = self._write(table, row, natural, lambda: model.update(changed).where(where).execute())
        if count is _FAILED:
            return False
        if version is not None and count != 1:
            self._fail(table, natural, [SeedError(
                f"was changed or deleted by someone else while the seed loaded ({version} {read!r} is stale); nothing "
                "was written: run the load again", path=row.path, line=row.line, table=table.name)])
            return False
        return True

    @staticmethod
    def _invalid(table: SeedTable, row: SeedRow, errors: Mapping[str, Sequence[str]]) -> list[SeedError]:
        """A problem per failing field, at the line of its value (the row's line for a field the row left out)."""
        return [SeedError("; ".join(messages), path=row.path, line=row.line_of(name), table=table.name, field=name)
                for name, messages in errors.items()]

    def _fail(self, table: SeedTable, natural: tuple[Any, ...], problems: list[SeedError]) -> None:
        self.problems.extend(problems)
        self.keys.broken.add((table.name, natural))

    def _write(self, table: SeedTable, row: SeedRow, natural: tuple[Any, ...], write: Any) -> Any:
        """``write()``; what the database refuses becomes a problem of this row (``_FAILED``) and the load goes on."""
        # On PostgreSQL a refused statement aborts the transaction: a savepoint keeps the rest of the load going.
        # SQLite undoes only the statement, so it needs none.
        guard = self.db.atomic() if is_postgres(self.db) else contextlib.nullcontext()
        try:
            with guard:
                return write()
        except ValidationError as exc:  # a unique column the natural key does not cover
            self._fail(table, natural, self._invalid(table, row, exc.errors))
        except IntegrityViolationError as exc:  # a foreign key, NOT NULL or CHECK the database enforces
            name = exc.fields[0] if exc.fields else None
            self._fail(table, natural, [SeedError(f"the database refused the row: {exc}", path=row.path,
                                                  line=row.line_of(name), table=table.name, field=name)])
        except (peewee.IntegrityError, peewee.DataError) as exc:
            first = first_line(exc, typed=False)
            self._fail(table, natural, [SeedError(f"the database refused the row: {first}", path=row.path,
                                                  line=row.line, table=table.name)])
        return _FAILED


_FAILED: Any = object()  # a write the database refused: the problem is recorded
