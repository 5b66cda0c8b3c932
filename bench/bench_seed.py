"""How fast `orm-kit seed generate` writes, and what validation and a reused INSERT cost, side by side.

    .venv/bin/python bench/bench_seed.py                    # medians of 3 runs at 100k deployments
    .venv/bin/python bench/bench_seed.py --runs 5 --deployments 200000
    .venv/bin/python bench/bench_seed.py --million          # plus one run of 1,000,000 deployments
    .venv/bin/python bench/bench_seed.py --postgres URL     # plus the shipped path on PostgreSQL (schema reset!)

Each run generates the same synthetic history (same random seed) into a fresh SQLite file, three ways:

* shipped:    ``generate()`` as the CLI runs it: every row checked by ``Model.check_data``, chunks
              sized from SQLite's variable limit, the full-chunk INSERT built once and reused;
* unchecked:  the same with ``validate=False`` (what validation costs);
* insert_many: the same rows through ``Model.insert_many(chunk).execute()``, which validates too but
              has peewee build and compile the SQL again for every chunk.

Rows are deployments + releases + incidents. Variants run interleaved, so machine noise hits all alike.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import peewee

import orm_kit
from orm_kit.bulk import DEFAULT_MAX_ROWS, larger_cache, rows_per_chunk, sync_id_sequence
from orm_kit.models import Deployment, Incident, Release
from orm_kit.synthetic import DEPLOYMENT_FIELDS, INCIDENT_FIELDS, RELEASE_FIELDS, generate, synthetic_rows

FIELDS = {Release: RELEASE_FIELDS, Deployment: DEPLOYMENT_FIELDS, Incident: INCIDENT_FIELDS}


def fresh(folder: Path, name: str) -> peewee.Database:
    db = orm_kit.connect(f"sqlite:///{folder / name}")
    orm_kit.migrate_up(db)
    return db


def shipped(db: peewee.Database, n: int) -> int:
    return generate(db, deployments=n, random_seed=1).rows


def unchecked(db: peewee.Database, n: int) -> int:
    return generate(db, deployments=n, random_seed=1, validate=False).rows


def insert_many(db: peewee.Database, n: int) -> int:
    """The same stream through peewee's insert_many, chunk by chunk (parents flushed first)."""
    buffers: dict[Any, list[tuple[Any, ...]]] = {model: [] for model in FIELDS}
    sizes = {model: rows_per_chunk(db, len(fields), DEFAULT_MAX_ROWS) for model, fields in FIELDS.items()}
    written = 0

    def flush() -> None:
        nonlocal written
        for model, rows in buffers.items():
            if rows:
                model.insert_many(rows, FIELDS[model]).execute()
                written += len(rows)
                rows.clear()

    with larger_cache(db), db.atomic():
        for model, row in synthetic_rows(db, deployments=n, random_seed=1):
            buffers[model].append(row)
            if len(buffers[model]) >= sizes[model]:
                flush()
        flush()
        sync_id_sequence(db, Release)
    return written


def timed(run: Callable[[peewee.Database, int], int], folder: Path, name: str, n: int) -> tuple[float, int]:
    db = fresh(folder, name)
    started = time.perf_counter()
    rows = run(db, n)
    seconds = time.perf_counter() - started
    db.close()
    return seconds, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--million", action="store_true", help="also time one run of 1,000,000 deployments")
    parser.add_argument("--postgres", metavar="URL",
                        help="also time the shipped path on this PostgreSQL database (drops its public schema)")
    args = parser.parse_args()
    variants = {"shipped": shipped, "unchecked": unchecked, "insert_many": insert_many}
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    rows = 0
    with tempfile.TemporaryDirectory(prefix="orm-kit-bench-") as tmp:
        folder = Path(tmp)
        db = fresh(folder, "probe.db")
        print(f"SQLite {peewee.sqlite3.sqlite_version}; {rows_per_chunk(db, len(DEPLOYMENT_FIELDS))} "
              f"deployment rows per INSERT ({len(DEPLOYMENT_FIELDS)} columns)")
        db.close()
        for run in range(args.runs):
            for name, variant in variants.items():
                took, rows = timed(variant, folder, f"{name}-{run}.db", args.deployments)
                seconds[name].append(took)
                (folder / f"{name}-{run}.db").unlink()
        print(f"{args.deployments:,} deployments ({rows:,} rows with releases and incidents), "
              f"median of {args.runs} runs:")
        base = statistics.median(seconds["shipped"])
        for name, times in seconds.items():
            median = statistics.median(times)
            print(f"  {name:<12} {median:6.2f} s  {rows / median:>9,.0f} rows/s  "
                  f"{args.deployments / median:>9,.0f} deployments/s  {median / base:4.2f}x the shipped time")
        if args.postgres:
            times = []
            for _ in range(args.runs):
                db = orm_kit.connect(args.postgres)
                db.execute_sql("DROP SCHEMA IF EXISTS public CASCADE")
                db.execute_sql("CREATE SCHEMA public")
                orm_kit.migrate_up(db)
                started = time.perf_counter()
                rows = shipped(db, args.deployments)
                times.append(time.perf_counter() - started)
                db.close()
            median = statistics.median(times)
            print(f"  {'postgres':<12} {median:6.2f} s  {rows / median:>9,.0f} rows/s  "
                  f"{args.deployments / median:>9,.0f} deployments/s  {median / base:4.2f}x the shipped time")
        if args.million:
            took, rows = timed(shipped, folder, "million.db", 1_000_000)
            print(f"1,000,000 deployments ({rows:,} rows), shipped path, one run: {took:.1f} s, "
                  f"{rows / took:,.0f} rows/s")


if __name__ == "__main__":
    main()
