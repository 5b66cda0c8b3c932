"""What a data generator inserted, recorded so that taking it back touches exactly that and nothing else.

    book = GeneratedBook(db)
    book.create()                                                   # the tables, on first use
    book.record("synthetic", "7", {"service": service_ids}, counts={"deployment": 100_000})
    run = book.find("synthetic", "7")                               # Generated(...) or None
    run.rows["service"], run.counts["deployment"]
    book.forget("synthetic", "7")

A generated history (load-test data, demo data made by code rather than seed files) must be removable
by *what made it*, never by a name pattern: an application's own ``synth-s7-billing`` service is not
generated data because of its name. Two tables, created on first use like the seed bookkeeping:
``orm_kit_generated`` (generator, run, when, and how many rows of each kind it wrote) and
``orm_kit_generated_row`` (the rows that identify the run: the roots its other rows hang from, such as
the services a synthetic history deploys, and any shared row it created rather than found). Rows too
many to list (a million deployments) are identified through their roots, and their counts let the
remover see that nobody added rows under those roots since. Generic: the generator decides what to
record; :mod:`orm_kit.synthetic` is the platform's.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import peewee

from orm_kit.bulk import rows_per_chunk
from orm_kit.fields import UTCDateTimeField, utcnow

__all__ = ["GENERATED_TABLES", "Generated", "GeneratedBook"]

GENERATED_TABLES = ("orm_kit_generated", "orm_kit_generated_row")


@dataclass(frozen=True)
class Generated:
    """One recorded run of a generator: the rows that identify it, by table, and how many of each kind it wrote."""

    generator: str
    run: str
    generated_at: datetime
    rows: dict[str, list[str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


class GeneratedBook:
    """The two tables, as models bound to one database (no global binding)."""

    def __init__(self, db: peewee.Database) -> None:
        class GeneratedRun(peewee.Model):
            generator = peewee.CharField(max_length=63)
            run = peewee.CharField(max_length=255)
            generated_at = UTCDateTimeField()
            counts = peewee.TextField(default="{}")  # JSON: {kind: rows written}

            class Meta:
                database = db
                table_name = "orm_kit_generated"
                primary_key = peewee.CompositeKey("generator", "run")

        class GeneratedRow(peewee.Model):
            generator = peewee.CharField(max_length=63)
            run = peewee.CharField(max_length=255)
            table_name = peewee.CharField(max_length=255)
            row_key = peewee.CharField(max_length=255)

            class Meta:
                database = db
                table_name = "orm_kit_generated_row"
                primary_key = peewee.CompositeKey("generator", "run", "table_name", "row_key")

        self.db = db
        self.runs = GeneratedRun
        self.rows = GeneratedRow

    def exists(self) -> bool:
        """Whether the tables are there (nothing was ever generated here when they are not)."""
        return set(GENERATED_TABLES) <= set(self.db.get_tables())

    def create(self) -> None:
        """Create the tables if they are missing."""
        self.db.create_tables([self.runs, self.rows], safe=True)

    def record(self, generator: str, run: str, rows: Mapping[str, Iterable[object]],
               counts: Mapping[str, int] | None = None) -> None:
        """Record run ``run`` of ``generator``: the rows that identify it (table -> primary keys) and its counts."""
        self.runs.insert(generator=generator, run=run, generated_at=utcnow(),
                         counts=json.dumps(dict(counts or {}), sort_keys=True)).execute()
        self.add_rows(generator, run, rows)

    def add_rows(self, generator: str, run: str, rows: Mapping[str, Iterable[object]]) -> None:
        """Record more rows as the run's (rows already recorded are left as they are)."""
        listed = [(generator, run, table, str(key)) for table, keys in rows.items() for key in keys]
        size = rows_per_chunk(self.db, 4)
        for start in range(0, len(listed), size):
            self.rows.insert_many(listed[start:start + size], fields=[
                self.rows.generator, self.rows.run, self.rows.table_name, self.rows.row_key]).on_conflict_ignore(
            ).execute()

    def find(self, generator: str, run: str) -> Generated | None:
        """The recorded run, or None when ``generator`` never recorded ``run`` here."""
        if not self.exists():
            return None
        found = self.runs.get_or_none(self.runs.generator == generator, self.runs.run == run)
        if found is None:
            return None
        rows: dict[str, list[str]] = defaultdict(list)
        query = self.rows.select(self.rows.table_name, self.rows.row_key).where(
            self.rows.generator == generator, self.rows.run == run).order_by(self.rows.table_name, self.rows.row_key)
        for table, key in query.tuples().iterator():
            rows[table].append(key)
        return Generated(generator, run, found.generated_at, dict(rows), json.loads(found.counts))

    def runs_of(self, generator: str) -> Sequence[str]:
        """Every recorded run of ``generator``."""
        if not self.exists():
            return []
        query = self.runs.select(self.runs.run).where(self.runs.generator == generator).order_by(self.runs.run)
        return [str(row[0]) for row in query.tuples().iterator()]

    def forget(self, generator: str, run: str) -> None:
        """Drop the record of ``run`` (after its rows were removed)."""
        self.rows.delete().where(self.rows.generator == generator, self.rows.run == run).execute()
        self.runs.delete().where(self.runs.generator == generator, self.runs.run == run).execute()
