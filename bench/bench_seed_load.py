"""How `orm-kit seed` (the YAML loader) scales with the number of rows: it must be linear.

    .venv/bin/python bench/bench_seed_load.py                          # 8k, 16k, 24k rows, medians of 3 runs
    .venv/bin/python bench/bench_seed_load.py --rows 8000 16000 24000 100000 --runs 3
    .venv/bin/python bench/bench_seed_load.py --postgres URL           # PostgreSQL too (drops its public schema!)

Each size is a seed set of one file: a team per 100 rows, a service per 10 rows (owned by those teams),
and deployments for the rest (each of a service, in one environment), written to a temporary folder
and loaded into a fresh, migrated database with ``orm_kit.seeding.load``, as ``orm-kit seed`` does:
validated, natural keys resolved, every inserted row recorded in the bookkeeping. Printed per size: the
median seconds, rows per second, and seconds per 1,000 rows relative to the smallest size (1.00x at
every size means linear; the quadratic bookkeeping this bench was written for gave 3.4x at 16k and 6.4x
at 24k). Sizes run interleaved, so machine noise hits all alike.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import peewee

import orm_kit
from orm_kit import platform, seeding


def write_set(folder: Path, rows: int) -> Path:
    """A seed folder holding one set, ``load``, of about ``rows`` rows; returns the folder."""
    teams = max(1, rows // 100)
    services = max(1, rows // 10)
    deployments = max(0, rows - teams - services - 1)
    lines = ["environment:", "  - {slug: bench, name: Bench, tier: testing}", "team:"]
    lines += [f"  - {{name: team-{n}}}" for n in range(teams)]
    lines.append("service:")
    lines += [f"  - {{name: svc-{n}, owner: team-{n % teams}, tier: low}}" for n in range(services)]
    lines.append("deployment:")
    lines += [f"  - {{key: d-{n}, service: svc-{n % services}, environment: bench, status: success}}"
              for n in range(deployments)]
    seeds = folder / f"seeds-{rows}"
    seeds.mkdir()
    (seeds / "load.yaml").write_text("\n".join(lines) + "\n")
    return seeds


def fresh(url: str) -> peewee.Database:
    db = orm_kit.connect(url, replicas=[])
    if isinstance(db, peewee.PostgresqlDatabase):
        db.execute_sql("DROP SCHEMA IF EXISTS public CASCADE")
        db.execute_sql("CREATE SCHEMA public")
    orm_kit.migrate_up(db)
    return db


def one_load(url: str, seeds: Path) -> tuple[float, int]:
    db = fresh(url)
    try:
        started = time.perf_counter()
        result = seeding.load(db, platform.SEED_REGISTRY, seeds)
        return time.perf_counter() - started, result.inserted
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[8000, 16000, 24000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", metavar="URL", help="also load into this PostgreSQL database (schema reset)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sets = {rows: write_set(folder, rows) for rows in args.rows}
        targets = {"sqlite": [f"sqlite:///{folder / f'load-{rows}.db'}" for rows in args.rows]}
        if args.postgres:
            targets["postgres"] = [args.postgres for _ in args.rows]
        for backend, urls in targets.items():
            times: dict[int, list[float]] = {rows: [] for rows in args.rows}
            inserted: dict[int, int] = {}
            for _ in range(args.runs):
                for rows, url in zip(args.rows, urls, strict=True):
                    if backend == "sqlite":
                        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
                    seconds, inserted[rows] = one_load(url, sets[rows])
                    times[rows].append(seconds)
            base = statistics.median(times[args.rows[0]]) / inserted[args.rows[0]]
            print(f"{backend}: medians of {args.runs} runs")
            print(f"{'rows':>8} {'seconds':>9} {'rows/s':>9} {'s per 1k rows vs smallest':>27}")
            for rows in args.rows:
                median = statistics.median(times[rows])
                print(f"{inserted[rows]:>8} {median:>9.2f} {inserted[rows] / median:>9,.0f} "
                      f"{median / inserted[rows] / base:>26.2f}x")


if __name__ == "__main__":
    main()
