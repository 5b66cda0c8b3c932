"""A one-row counter table for concurrency tests, and the worker the two-process test spawns."""

from __future__ import annotations

import peewee

from orm_kit.db import open_database
from orm_kit.locking import Versioned
from orm_kit.repository import Repository
from orm_kit.transactions import RetryPolicy, run_in_transaction


class Counter(Versioned):
    """A named integer, optimistically locked."""

    id = peewee.AutoField()
    value = peewee.IntegerField(default=0)
    lock_version = peewee.IntegerField(default=1)


class CounterRepository(Repository[Counter]):
    model = Counter


def increment(db: peewee.Database, key: int) -> None:
    """Read-modify-write in one transaction, the row locked for the read (pessimistic)."""
    repo = CounterRepository(db)

    def work() -> None:
        row = repo.get(key, for_update=True)
        repo.update(row, value=row.value + 1)

    run_in_transaction(db, work, retry=RetryPolicy(attempts=50, max_seconds=60))


def worker(url: str, key: int, times: int) -> None:
    """Entry point of a spawned process: ``times`` increments through its own connection."""
    db = open_database(url)
    Counter.bind(db)
    try:
        for _ in range(times):
            increment(db, key)
    finally:
        db.close()
