"""What the app dimension costs a migration plan: one folder vs the same files split over apps, side by side.

    .venv/bin/python bench/bench_apps.py                  # 300 applied files, medians of 7 runs
    .venv/bin/python bench/bench_apps.py --files 900 --runs 9

Every command that touches migrations (``up``, ``status``, ``check``, ...) starts by reading the plan:
the files on disk, the history, and, with apps, each file's ``depends_on`` read from its syntax tree
(never executed) and one order over all of them. Two layouts of the same number of applied files on one
SQLite database, measured interleaved:

* one folder:  every file in the default app, no declarations (how orm-kit worked before apps);
* three apps:  the files split over ``platform``, ``flags`` and ``billing``, every file of the latter two
               declaring ``depends_on`` a platform migration, so the order across apps has work to do.

It prints the median time to read the plan (``Runner.status()``) per layout and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import peewee

from orm_kit.db import open_database
from orm_kit.migrate import AppMigrations, Runner

BODY = '''"""Migration {name}."""

import peewee  # noqa: F401
{declare}

def up(migrator, db):
    db.execute_sql('CREATE TABLE "t_{table}" ("id" INTEGER PRIMARY KEY)')


def down(migrator, db):
    db.execute_sql('DROP TABLE "t_{table}"')
'''


def write_app(folder: Path, app: str, count: int, depends: bool) -> None:
    folder.mkdir(parents=True)
    for n in range(1, count + 1):
        declare = f'\ndepends_on = [("platform", "{n:04d}")]\n' if depends else ""
        (folder / f"{n:04d}_{app}_{n}.py").write_text(BODY.format(name=n, table=f"{app}_{n}", declare=declare))


def applied(url: str, source: Path | list[AppMigrations]) -> Runner:
    db = open_database(url)
    runner = Runner(db, source)
    runner.up()
    return runner


def median_ms(runner: Runner, runs: int) -> list[float]:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        status = runner.status()
        timings.append((time.perf_counter() - started) * 1000)
        assert status.ok, status.problems
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=300, help="applied migration files in all (default 300)")
    parser.add_argument("--runs", type=int, default=7, help="plan reads per layout (default 7)")
    args = parser.parse_args()
    third = args.files // 3
    with tempfile.TemporaryDirectory(prefix="bench-apps-") as tmp:
        root = Path(tmp)
        write_app(root / "one", "one", third * 3, depends=False)
        write_app(root / "platform", "platform", third, depends=False)
        write_app(root / "flags", "flags", third, depends=True)
        write_app(root / "billing", "billing", third, depends=True)
        apps = [AppMigrations("platform", root / "platform"), AppMigrations("flags", root / "flags"),
                AppMigrations("billing", root / "billing")]
        one = applied(f"sqlite:///{root / 'one.db'}", root / "one")
        three = applied(f"sqlite:///{root / 'apps.db'}", apps)
        results: dict[str, list[float]] = {"one folder": [], "three apps": []}
        for _ in range(args.runs):  # interleaved: noise hits both alike
            results["one folder"] += median_ms(one, 1)
            results["three apps"] += median_ms(three, 1)
        for runner in (one, three):
            if isinstance(runner.db, peewee.Database):
                runner.db.close()
    base = statistics.median(results["one folder"])
    print(f"{third * 3} applied migration files, median of {args.runs} plan reads (Runner.status()):")
    for layout, timings in results.items():
        value = statistics.median(timings)
        print(f"  {layout:<11} {value:8.1f} ms   {value / base:4.2f}x")


if __name__ == "__main__":
    main()
