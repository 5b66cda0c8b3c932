"""orm-kit's speed, measured side by side with the stdlib driver and plain peewee: one command.

    .venv/bin/python bench/run.py                          # SQLite, the issue's sizes (a million deployments)
    .venv/bin/python bench/run.py --postgres URL           # and PostgreSQL (creates and drops scratch databases)
    .venv/bin/python bench/run.py --quick                  # small sizes, one run: every answer checked (CI)
    .venv/bin/python bench/run.py --only "page of 20" --runs 9

Every workload runs three ways on the same schema (orm-kit's migrations), the same data and the same
connection settings (orm-kit's: WAL, synchronous=NORMAL, foreign keys on): **raw** is the stdlib
``sqlite3`` or ``psycopg`` with hand-written SQL, converting values to the same Python objects the
ORMs return (UUIDs, aware UTC datetimes) so that every way gives the same answer; **peewee** is plain
peewee models on the same tables (``bench/plain.py``), written as a peewee user would, without
validation; **orm-kit** is the repositories (or, for the ``Model.`` rows, the model API), with
validation on. Every answer is checked against the others; a difference fails the run (exit 1).
Contenders run interleaved, ``--runs`` times, and the median is shown, in microseconds per
operation (or per row), with orm-kit's ratio to raw and to peewee and our speed goal for it.

On PostgreSQL, URL names a server where the user may create databases: the bench creates
``orm_kit_bench*`` databases next to the one named, and drops them at the end.

The workloads and their three ways are in ``bench/workloads.py``, the connections in
``bench/backends.py``, the plain peewee models in ``bench/plain.py``; this file measures and prints.
``tests/test_bench.py`` runs ``--quick`` on both databases in the test suite, so it cannot rot.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import peewee
from backends import WHO, Backend, postgres_backend, sqlite_backend
from plain import bind as bind_plain
from workloads import Workload, build_data, dora_workload, generate, generate_workload, repository_workloads

from orm_kit import migrate_up
from orm_kit.db import open_database
from orm_kit.models import MODELS


def peak_rss_of_generate(url: str, deployments: int) -> int:
    """Peak resident memory (KiB) of a process that only runs ``generate`` of ``deployments`` into ``url``."""
    result = subprocess.run([sys.executable, __file__, "--rss-child", url, str(deployments)],
                            capture_output=True, text=True, check=True)
    return int(result.stdout.split()[-1])


def _rss_child(url: str, deployments: int) -> None:
    db = open_database(url)
    db.bind(MODELS)
    migrate_up(db)
    generate(db, deployments=deployments, random_seed=3)
    db.close()
    print(_peak_kib())


def _peak_kib() -> int:
    """This process's peak resident memory in KiB.

    Linux's VmHWM starts afresh at exec; ru_maxrss would also count the parent's memory at fork.
    """
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# --- measuring ------------------------------------------------------------------------------------------

@dataclass
class Result:
    name: str
    unit: str
    medians: dict[str, float]  # microseconds per unit
    goal: float | None
    peewee_goal: bool
    agree: bool
    difference: str = ""


@contextlib.contextmanager
def transaction(b: Backend, who: str) -> Iterator[None]:
    """One transaction around a contender's timed run, the way each of them writes one."""
    if who == "raw":
        b.raw.begin()
        yield
        b.raw.commit()
    else:
        with (b.plain if who == "peewee" else b.orm).atomic():
            yield


def measure(b: Backend, w: Workload, runs: int) -> Result:
    """Median microseconds per unit of each contender over the runs; whether every answer agreed.

    Each run is split into ``w.rounds`` rounds; in every round the three run one after another, in
    an order that rotates from round to round and run to run, so a change of load on the shared
    machine, or the dead rows an earlier contender left behind, hit all three alike.
    """
    times: dict[str, list[float]] = {who: [] for who in WHO}
    agree, difference = True, ""
    per = max(1, w.size // w.rounds)
    for run in range(w.runs or runs):
        elapsed = dict.fromkeys(WHO, 0.0)
        for step in range(w.rounds):
            tag = run * w.rounds + step  # names what this round writes apart from every other round's
            order = WHO[tag % 3:] + WHO[:tag % 3]  # nobody always goes first (or last, after the others' churn)
            answers = {}
            for who in order:
                if w.before:
                    w.before(who, tag)
                context = transaction(b, who) if w.transaction else contextlib.nullcontext()
                with context:
                    started = time.perf_counter()
                    produced = w.run[who](per, tag)
                    elapsed[who] += time.perf_counter() - started
                if step == 0:
                    answers[who] = w.answer[who](produced, tag)
                if w.after:
                    w.after(who, tag)
            for who in answers if step == 0 else ():
                if who != "raw" and answers[who] != answers["raw"] and agree:
                    agree = False
                    difference = (f"{who} differs from raw in run {run}: {str(answers[who])[:300]} vs "
                                  f"{str(answers['raw'])[:300]}")
        for who in WHO:
            times[who].append(elapsed[who] / (per * w.rounds) * 1e6)
    return Result(w.name, w.unit, {who: statistics.median(t) for who, t in times.items()},
                  next(iter(w.goal.values()), None), w.peewee_goal, agree, difference)


def table(results: list[Result], title: str) -> str:
    lines = [f"{title}", "",
             "| workload | raw | peewee | orm-kit | orm-kit / raw | orm-kit / peewee | goal (orm-kit / raw) |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        raw, plain, orm = (r.medians[w] for w in WHO)
        goal = f"<= {r.goal:g}x {'met' if orm / raw <= r.goal else '**not met**'}" if r.goal else ""
        faster = "" if orm <= plain or not r.peewee_goal else " (**slower than peewee**)"
        unit = "us/row" if r.unit == "row" else "us"
        lines.append(f"| {r.name} | {raw:,.1f} {unit} | {plain:,.1f} | {orm:,.1f} | {orm / raw:.2f}x | "
                     f"{orm / plain:.2f}x{faster} | {goal} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL", help="also run on this PostgreSQL server (see above)")
    parser.add_argument("--quick", action="store_true", help="small sizes and one run: checks every answer (CI)")
    parser.add_argument("--runs", type=int, default=5, help="runs per workload; the median is shown (default 5)")
    parser.add_argument("--deployments", type=int, default=None,
                        help="deployments in the listing data set (default 100,000; --quick: 2,000)")
    parser.add_argument("--million", type=int, default=None, metavar="N",
                        help="deployments for seed generate, DORA and peak memory (default 1,000,000; --quick: 3,000)")
    parser.add_argument("--only", action="append", default=[], help="run the workloads whose name contains this")
    parser.add_argument("--sqlite", action=argparse.BooleanOptionalAction, default=True,
                        help="run on SQLite (default yes)")
    parser.add_argument("--rss-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        _rss_child(args.rss_child[0], int(args.rss_child[1]))
        return 0
    runs = 1 if args.quick else args.runs
    scale = 0.02 if args.quick else 1.0
    listing = args.deployments or (2_000 if args.quick else 100_000)
    million = args.million or (3_000 if args.quick else 1_000_000)
    print(f"orm-kit bench: peewee {peewee.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} cores; "
          f"median of {runs} run(s); listing data {listing:,} deployments; generate/DORA {million:,}")
    failed = False
    with tempfile.TemporaryDirectory(prefix="orm-kit-bench-") as folder:
        makers: list[Callable[[], Backend]] = []
        if args.sqlite:
            makers.append(lambda: sqlite_backend(Path(folder)))
        if args.postgres:
            makers.append(lambda: postgres_backend(args.postgres))
        for make in makers:
            b = make()
            try:
                failed |= not run_backend(b, args, runs, scale, listing, million)
            finally:
                b.close()
    print("\nall answers agree" if not failed else "\nFAILED: some answers differ (see above)")
    return 1 if failed else 0


def run_backend(b: Backend, args: argparse.Namespace, runs: int, scale: float, listing: int, million: int) -> bool:
    print(f"\n{b.name}: building the data set ...", flush=True)
    data = build_data(b, listing, services=50)
    results: list[Result] = []

    def wanted(w: Workload) -> bool:
        return not args.only or any(o.lower() in w.name.lower() for o in args.only)

    for w in repository_workloads(b, data, scale):
        if wanted(w):
            results.append(measure(b, w, runs))
            print(f"  {w.name}: " + ", ".join(f"{who} {results[-1].medians[who]:,.1f}" for who in WHO), flush=True)
    kept: dict[str, str] = {}
    generate_w = generate_workload(b, million, kept)
    if wanted(generate_w) or any("dora" in o.lower() for o in args.only) or not args.only:
        results.append(measure(b, generate_w, 1))
        r = results[-1]
        print(f"  {r.name}: " + ", ".join(f"{who} {1e6 / r.medians[who]:,.0f} rows/s" for who in WHO), flush=True)
        dora, connections = dora_workload(b, kept["orm-kit"], million)
        results.append(measure(b, dora, runs))
        for connection in connections:
            connection.close()
        b.orm.bind(MODELS)
        bind_plain(b.plain)
        rss = peak_rss_of_generate(b.scratch("rss"), million)
        print(f"  peak resident memory of generating {million:,} deployments: {rss / 1024:,.0f} MiB", flush=True)
    else:
        rss = None
    print()
    print(table(results, f"{b.name} (median of {runs}; per operation unless marked per row)"))
    if rss is not None:
        print(f"\nPeak resident memory of `seed generate` of {million:,} deployments: {rss / 1024:,.0f} MiB "
              f"(goal < 300 MiB: {'met' if rss < 300 * 1024 else 'NOT MET'})")
    bad = [r for r in results if not r.agree]
    for r in bad:
        print(f"ANSWERS DIFFER in {r.name}: {r.difference}")
    return not bad


if __name__ == "__main__":
    sys.exit(main())
