"""Per-row cost of the repository's hot paths, side by side with the stdlib sqlite3 and plain peewee.

    .venv/bin/python bench/bench_repository.py [--rows 2000] [--runs 5]

Four ways of doing the same three things on one SQLite file (WAL, synchronous=NORMAL, as orm-kit
opens it), each batch inside one transaction so the numbers are the library's cost, not the disk's:

* get by primary key: read one ``team`` row and build a row object;
* create one row: insert one ``team`` row and learn its key;
* save one row: change one column of a loaded row and write it back.

``sqlite3`` is the floor (tuples in, tuples out); ``peewee`` is a plain ``peewee.Model`` on the same
table (builds and compiles the SQL per call); ``orm-kit model`` is ``Team.get_by_id`` / ``create`` /
``save`` (peewee plus validation); ``repository`` is ``TeamRepository`` (validation included, SQL
built once). Prints the median microseconds per row over ``--runs`` runs and the ratio to sqlite3.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import peewee

from orm_kit.db import open_database
from orm_kit.models import MODELS, Team
from orm_kit.platform import migrate_up
from orm_kit.repositories import TeamRepository

_names = itertools.count()


class PlainTeam(peewee.Model):
    """The team table as a plain peewee model: no validation, no orm-kit base."""

    id = peewee.AutoField()
    name = peewee.CharField()
    display_name = peewee.CharField(null=True)
    email = peewee.CharField(null=True)
    parent_id = peewee.IntegerField(null=True)
    created_at = peewee.CharField()

    class Meta:
        table_name = "team"


def name() -> str:
    return f"team-{next(_names)}"


def stamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def contenders(
    db: peewee.Database, raw: sqlite3.Connection, ids: list[int]
) -> dict[str, dict[str, Callable[[], object]]]:
    repo = TeamRepository(db)
    select = "SELECT id, name, display_name, email, parent_id, created_at FROM team WHERE id = ?"
    loaded = {"sqlite3": list(raw.execute(select, (ids[0],)).fetchone()),
              "peewee": PlainTeam.get_by_id(ids[0]), "orm-kit model": Team.get_by_id(ids[0]),
              "repository": repo.get(ids[0])}
    cycle = itertools.cycle(ids)

    def raw_create() -> object:
        return raw.execute("INSERT INTO team (name, display_name, email, parent_id, created_at) VALUES (?, ?, ?, ?, ?)",
                           (name(), None, None, None, stamp())).lastrowid

    def raw_save() -> object:
        row = loaded["sqlite3"]
        row[2] = name()
        return raw.execute("UPDATE team SET name = ?, display_name = ?, email = ?, parent_id = ?, created_at = ? "
                           "WHERE id = ?", (row[1], row[2], row[3], row[4], row[5], row[0])).rowcount

    def set_and_save(key: str) -> Callable[[], object]:
        def save() -> object:
            obj = loaded[key]
            obj.display_name = name()
            return repo.save(obj) if key == "repository" else obj.save()
        return save

    return {
        "get by primary key": {
            "sqlite3": lambda: raw.execute(select, (next(cycle),)).fetchone(),
            "peewee": lambda: PlainTeam.get_by_id(next(cycle)),
            "orm-kit model": lambda: Team.get_by_id(next(cycle)),
            "repository": lambda: repo.get(next(cycle)),
        },
        "create one row": {
            "sqlite3": raw_create,
            "peewee": lambda: PlainTeam.create(name=name(), created_at=stamp()),
            "orm-kit model": lambda: Team.create(name=name()),
            "repository": lambda: repo.create(name=name()),
        },
        "save one row": {
            "sqlite3": raw_save,
            "peewee": set_and_save("peewee"),
            "orm-kit model": set_and_save("orm-kit model"),
            "repository": set_and_save("repository"),
        },
    }


def timed(rows: int, op: Callable[[], object], begin: Callable[[], None], commit: Callable[[], None]) -> float:
    begin()
    started = time.perf_counter()
    for _ in range(rows):
        op()
    elapsed = time.perf_counter() - started
    commit()
    return elapsed / rows * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000, help="rows per run (default 2000)")
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement; the median is shown (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        db = open_database(f"sqlite:///{path}")
        db.bind(MODELS)
        PlainTeam.bind(db)
        migrate_up(db)
        raw = sqlite3.connect(path, isolation_level=None)
        raw.execute("PRAGMA journal_mode=wal")
        raw.execute("PRAGMA synchronous=normal")
        raw.execute("PRAGMA foreign_keys=on")
        ids = [Team.create(name=name()).id for _ in range(500)]
        plans = contenders(db, raw, ids)
        transactions: dict[str, tuple[Callable[[], None], Callable[[], None]]] = {
            "sqlite3": (lambda: raw.execute("BEGIN IMMEDIATE") and None, lambda: raw.execute("COMMIT") and None),
        }
        for who in ("peewee", "orm-kit model", "repository"):
            transactions[who] = (lambda: db.begin(), lambda: db.commit())
        print(f"SQLite {sqlite3.sqlite_version}, peewee {peewee.__version__}; {args.rows} rows per run, "
              f"median of {args.runs} runs, microseconds per row (ratio to sqlite3)")
        header = f"{'operation':<20}" + "".join(f"{who:>22}" for who in plans["get by primary key"])
        print(header)
        for operation, ways in plans.items():
            results: dict[str, list[float]] = {who: [] for who in ways}
            for _ in range(args.runs):  # interleaved, so drift on a shared machine hits every contender alike
                for who, op in ways.items():
                    results[who].append(timed(args.rows, op, *transactions[who]))
            medians = {who: statistics.median(times) for who, times in results.items()}
            floor = medians["sqlite3"]
            print(f"{operation:<20}" + "".join(f"{m:>13.1f} ({m / floor:>5.1f}x)" for m in medians.values()))
        raw.close()
        db.close()


if __name__ == "__main__":
    main()
