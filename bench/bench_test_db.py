"""What a database test pays before its first line runs: a fresh migrated database vs a rolled-back transaction.

    .venv/bin/python bench/bench_test_db.py [--tests 20] [--runs 5] [--postgres URL]

Per test, on SQLite (a file, as orm-kit opens it) and, with ``--postgres``, on PostgreSQL:

* ``fresh``: what orm-kit's own ``migrated`` fixture does: a new SQLite file (on PostgreSQL: drop and
  recreate the public schema), then the shipped migrations;
* ``sandbox``: what the pytest plugin's ``orm_kit_db`` does: the session's database, migrated once,
  and ``orm_kit.transactions.sandbox()`` (BEGIN ... ROLLBACK) around the test; the test body here writes
  one team so the rollback has something to undo.

Prints the median milliseconds per test over ``--runs`` runs of ``--tests`` tests, and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import peewee

from orm_kit.db import open_database
from orm_kit.models import MODELS, Team
from orm_kit.platform import migrate_up
from orm_kit.transactions import sandbox


def body(n: int) -> None:
    Team.create(name=f"team-{n}")


def fresh_sqlite(folder: Path) -> Callable[[int], None]:
    def one(n: int) -> None:
        db = open_database(f"sqlite:///{folder / f'fresh-{n}.db'}")
        db.bind(MODELS)
        migrate_up(db)
        body(n)
        db.close()

    return one


def fresh_postgres(url: str) -> Callable[[int], None]:
    def one(n: int) -> None:
        db = open_database(url)
        db.execute_sql("DROP SCHEMA IF EXISTS public CASCADE")
        db.execute_sql("CREATE SCHEMA public")
        db.bind(MODELS)
        migrate_up(db)
        body(n)
        db.close()

    return one


def sandboxed(db: peewee.Database) -> Callable[[int], None]:
    def one(n: int) -> None:
        db.bind(MODELS)
        with sandbox(db):
            body(n)

    return one


def median_ms(run: Callable[[int], None], tests: int, runs: int) -> float:
    times = []
    for r in range(runs):
        started = time.perf_counter()
        for n in range(tests):
            run(r * tests + n)
        times.append((time.perf_counter() - started) * 1000 / tests)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--postgres", metavar="URL", help="a test server's database (its public schema is dropped)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        session = open_database(f"sqlite:///{folder / 'session.db'}")
        session.bind(MODELS)
        migrate_up(session)
        rows = [("sqlite", median_ms(fresh_sqlite(folder), args.tests, args.runs),
                 median_ms(sandboxed(session), args.tests, args.runs))]
        session.close()
        if args.postgres:
            fresh = median_ms(fresh_postgres(args.postgres), args.tests, args.runs)
            db = open_database(args.postgres)
            db.execute_sql("DROP SCHEMA IF EXISTS public CASCADE")
            db.execute_sql("CREATE SCHEMA public")
            db.bind(MODELS)
            migrate_up(db)
            rows.append(("postgres", fresh, median_ms(sandboxed(db), args.tests, args.runs)))
            db.close()
    print(f"per test, median of {args.runs} runs of {args.tests} tests (ms)")
    print(f"{'backend':<10} {'fresh':>10} {'sandbox':>10} {'ratio':>8}")
    for name, fresh, boxed in rows:
        print(f"{name:<10} {fresh:>10.2f} {boxed:>10.2f} {fresh / boxed:>7.0f}x")


if __name__ == "__main__":
    main()
