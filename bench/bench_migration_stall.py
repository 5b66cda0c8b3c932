"""How long a migration stalls the application on a busy PostgreSQL: orm-kit's runner vs what it used to do.

    .venv/bin/python bench/bench_migration_stall.py --postgres URL              # 1,000,000 deployments, 3 runs
    .venv/bin/python bench/bench_migration_stall.py --postgres URL --deployments 100000 --runs 5
    .venv/bin/python bench/bench_migration_stall.py --postgres URL --reuse       # keep the rows of an earlier run
    .venv/bin/python bench/bench_migration_stall.py --postgres URL --quick       # every scenario but (c), small (CI)

The database's public schema is dropped and rebuilt (shipped migrations, then ``seed generate``) unless
``--reuse`` finds enough deployments there already. Eight client threads (``--clients``), each on its own
connection, read a deployment by id, update one, read another and insert one, 5 ms apart, for the whole
bench; every operation's latency is recorded. A client's *stall* is its longest operation during a
migration. Scenarios, each run the safe way (``orm_kit.migrate.Runner``: a transaction per migration,
lock_timeout with retries, safe forms) and the way orm-kit ran it before (peewee's plain migrator, the
whole migration in one transaction, no lock_timeout), interleaved with a baseline of no migration:

(a)  the migration ``migrate make`` writes for a NOT NULL column with a default and an index on deployment;
(b)  a foreign key (deployment.release_id) and a CHECK added to deployment;
(c)  migration (a) behind a reader that keeps a transaction on deployment open for 30 s: the safe runner
     gives up after its retries (the reader still there), then runs again once the reader has ended;
(c') the same behind a reader that ends after 6 s, within the safe runner's retries.
(d)  the shipped ``0002_deployment_duration`` (and ``0003``) reverted and applied again by the safe runner: its
     backfill UPDATE runs in the transaction its ADD COLUMN locked the table in, so it stalls for as long as
     the UPDATE takes; measured to put a number on it (``--skip-shipped`` leaves it out).

Goals: stalls under 200 ms for (a) and (b); for (c) no client waits longer than the lock timeout (2 s),
the migration fails cleanly (schema and history unchanged) and succeeds once the reader has ended.
Medians over ``--runs`` runs (the plain forms once each: they are slow, and the numbers do not vary much).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peewee
from playhouse.migrate import PostgresqlMigrator

import orm_kit
from orm_kit.db import open_database, redact_url
from orm_kit.errors import MigrationBlockedError
from orm_kit.migrate import LockPolicy, Runner, discover, make_migration
from orm_kit.models import MODELS, Deployment
from orm_kit.platform import migrations_dir
from orm_kit.synthetic import generate

GOAL_MS = 200.0
POLICY = LockPolicy()  # the defaults: lock_timeout 0.5 s growing to 2 s over 5 attempts

FK_AND_CHECK = '''"""A foreign key and a CHECK on deployment (the bench's scenario b)."""

import peewee


def up(migrator, db):
    migrator.migrate(
        migrator.add_foreign_key_constraint("deployment", "release_id", "release", "id", on_delete="SET NULL",
                                            constraint_name="deployment_release_id_fkey"),
        migrator.add_constraint("deployment", "deployment_lock_version_nonnegative",
                                peewee.Check('"lock_version" >= 0')),
    )


def down(migrator, db):
    migrator.migrate(migrator.drop_constraint("deployment", "deployment_lock_version_nonnegative"),
                     migrator.drop_constraint("deployment", "deployment_release_id_fkey"))
'''


@dataclass
class Sample:
    end: float
    seconds: float
    error: str | None


class Client(threading.Thread):
    """One application connection: read, update, read, insert, 5 ms apart, every latency recorded."""

    def __init__(self, url: str, ids: list[Any], service_env: list[tuple[Any, Any]], pause: float,
                 stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.ids = ids
        self.service_env = service_env
        self.pause = pause
        self.halt = stop
        self.samples: list[Sample] = []

    def run(self) -> None:
        db = open_database(self.url)
        rng = random.Random(id(self))
        ops: list[Callable[[], object]] = [
            lambda: db.execute_sql("SELECT id, status FROM deployment WHERE id = %s",
                                   (rng.choice(self.ids),)).fetchall(),
            lambda: db.execute_sql("UPDATE deployment SET lock_version = lock_version + 1 WHERE id = %s",
                                   (rng.choice(self.ids),)),
            lambda: db.execute_sql("SELECT count(*) FROM deployment WHERE service_id = %s AND environment_id = %s",
                                   rng.choice(self.service_env)).fetchall(),
            # written by code that knows nothing of the columns a migration is adding
            lambda: db.execute_sql("INSERT INTO deployment (id, service_id, environment_id, status, lock_version, "
                                   "created_at) VALUES (gen_random_uuid(), %s, %s, 'created', 0, now())",
                                   rng.choice(self.service_env)),
        ]
        i = 0
        while not self.halt.is_set():
            started = time.monotonic()
            error = None
            try:
                ops[i % len(ops)]()
            except peewee.DatabaseError as exc:
                error = str(exc).splitlines()[0]
                with contextlib.suppress(peewee.DatabaseError):
                    db.close()
                    db.connect()
            ended = time.monotonic()
            self.samples.append(Sample(ended, ended - started, error))
            i += 1
            time.sleep(self.pause)
        db.close()

    def window(self, start: float, end: float) -> tuple[float, int]:
        """Longest operation that ended in [start, end] (or was still running at end), and errors there."""
        inside = [s for s in self.samples if start <= s.end and s.end - s.seconds <= end]
        return max((s.seconds for s in inside), default=0.0), sum(1 for s in inside if s.error)


@dataclass
class Result:
    scenario: str
    forms: str
    worst: float  # the worst client's longest stall
    median: float  # the median client's longest stall
    errors: int
    seconds: float  # the migration's own time
    note: str = ""


def stalls(clients: list[Client], start: float, end: float) -> tuple[float, float, int]:
    found = [c.window(start, end) for c in clients]
    longest = [stall for stall, _ in found]
    return max(longest), statistics.median(longest), sum(errors for _, errors in found)


@contextlib.contextmanager
def measured(clients: list[Client]) -> Iterator[dict[str, float]]:
    times: dict[str, float] = {"start": time.monotonic()}
    yield times
    time.sleep(0.3)  # let every client finish the operation the migration held up
    times["end"] = time.monotonic()


def setup(url: str, count: int, reuse: bool) -> peewee.Database:
    db = orm_kit.connect(url)
    have = 0
    if reuse and "deployment" in db.get_tables():
        have = int(db.execute_sql("SELECT count(*) FROM deployment").fetchone()[0])
    if have < count:
        print(f"building {count:,} deployments (the public schema is dropped first) ...", flush=True)
        db.execute_sql("DROP SCHEMA IF EXISTS public CASCADE")
        db.execute_sql("CREATE SCHEMA public")
        orm_kit.migrate_up(db)
        started = time.perf_counter()
        generate(db, deployments=count, random_seed=7)
        print(f"  generated in {time.perf_counter() - started:.0f} s", flush=True)
    db.execute_sql("VACUUM ANALYZE deployment")
    return db


def folder_with(extra: dict[str, str]) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="orm-kit-bench-"))
    for f in discover(migrations_dir()):
        shutil.copy(f.path, folder / f.path.name)
    for name, text in extra.items():
        (folder / name).write_text(text)
    return folder


def make_region_migration(db: peewee.Database) -> str:
    """What `orm-kit migrate make` writes for deployment.region: NOT NULL, default 'eu', indexed."""

    class RegionDeployment(Deployment):
        region = peewee.CharField(max_length=16, default="eu", index=True)

        class Meta:
            table_name = "deployment"

    folder = folder_with({})
    path = make_migration(db, [RegionDeployment if m is Deployment else m for m in MODELS], "deployment region",
                          folder)
    assert path is not None
    text = path.read_text()
    shutil.rmtree(folder)
    return text


def plain(db: peewee.Database, folder: Path, name: str, direction: str) -> None:
    """What orm-kit's runner did before: peewee's own migrator, the whole migration in one transaction."""
    (f,) = [f for f in discover(folder) if f.name == name]
    with db.atomic():
        getattr(f.load(), direction)(PostgresqlMigrator(db), db)


def columns(db: peewee.Database) -> set[str]:
    return {c.name for c in db.get_columns("deployment")}


@contextlib.contextmanager
def long_reader(url: str, seconds: float) -> Iterator[threading.Event]:
    """A transaction that reads deployment and stays open ``seconds`` (or until the event is set)."""
    done = threading.Event()
    ready = threading.Event()

    def hold() -> None:
        reader = open_database(url)
        reader.execute_sql("BEGIN")
        reader.execute_sql("SELECT count(*) FROM deployment WHERE status = 'failed'")
        ready.set()
        done.wait(seconds)
        reader.execute_sql("ROLLBACK")
        reader.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    ready.wait()
    try:
        yield done
    finally:
        done.set()
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL", required=True,
                        help="the PostgreSQL database to use (its public schema is dropped and rebuilt)")
    parser.add_argument("--deployments", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--reuse", action="store_true", help="keep the deployments an earlier run built")
    parser.add_argument("--skip-shipped", action="store_true", help="leave out scenario (d), the shipped 0002")
    parser.add_argument("--quick", action="store_true",
                        help="2,000 deployments, one run, two clients, no scenario (c): checks that it all runs (CI)")
    args = parser.parse_args()
    if args.quick:
        args.deployments, args.runs, args.clients = min(args.deployments, 2_000), 1, 2
    baseline = 0.5 if args.quick else 5.0
    url = args.postgres
    db = setup(url, args.deployments, args.reuse)
    version = db.execute_sql("SHOW server_version").fetchone()[0]
    region = folder_with({"0004_deployment_region.py": make_region_migration(db)})
    constraints = folder_with({"0004_fk_and_check.py": FK_AND_CHECK})
    db.execute_sql("ALTER TABLE deployment DROP CONSTRAINT IF EXISTS deployment_release_id_fkey")
    ids = [r[0] for r in db.execute_sql("SELECT id FROM deployment TABLESAMPLE SYSTEM (2) LIMIT 20000").fetchall()]
    pairs = [tuple(r) for r in db.execute_sql("SELECT DISTINCT service_id, environment_id FROM deployment")]
    stop = threading.Event()
    clients = [Client(url, ids, pairs, 0.005, stop) for _ in range(args.clients)]
    for client in clients:
        client.start()
    results: list[Result] = []

    def record(scenario: str, forms: str, times: dict[str, float], note: str = "") -> None:
        worst, median, errors = stalls(clients, times["start"], times["end"])
        seconds = times.get("migrated", times["end"]) - times["start"]
        results.append(Result(scenario, forms, worst, median, errors, seconds, note))
        print(f"  {scenario:<4} {forms:<6} worst {worst * 1000:8.0f} ms  median {median * 1000:8.0f} ms  "
              f"errors {errors:4d}  migration {seconds:6.1f} s  {note}", flush=True)

    runner = Runner(db, region, policy=POLICY)
    constrainer = Runner(db, constraints, policy=POLICY)
    time.sleep(2)
    try:
        for run in range(args.runs):
            print(f"run {run + 1} of {args.runs}", flush=True)
            with measured(clients) as times:
                time.sleep(baseline)
            record("-", "none", times)

            with measured(clients) as times:
                assert runner.up("0004") == ["0004_deployment_region"]
                times["migrated"] = time.monotonic()
            record("a", "safe", times)
            runner.down(allow_data_loss=True)

            with measured(clients) as times:
                assert constrainer.up() == ["0004_fk_and_check"]
                times["migrated"] = time.monotonic()
            record("b", "safe", times)
            constrainer.down(allow_data_loss=True)
            if args.quick:
                continue

            with long_reader(url, 30) as reader, measured(clients) as times:
                try:
                    runner.up("0004")
                    note = "applied behind the reader?!"
                except MigrationBlockedError:
                    clean = "region" not in columns(db) and runner.status().pending[:1] == ["0004_deployment_region"]
                    note = "gave up, rolled back cleanly" if clean else "gave up, NOT clean"
                times["migrated"] = time.monotonic()
                reader.set()
            record("c", "safe", times, note)
            with measured(clients) as times:
                applied = runner.up("0004")
                times["migrated"] = time.monotonic()
            record("c", "retry", times, "applied once the reader ended" if applied else "nothing applied?!")
            runner.down(allow_data_loss=True)

            with long_reader(url, 6), measured(clients) as times:
                applied = runner.up("0004")
                times["migrated"] = time.monotonic()
            record("c'", "safe", times, "applied within its retries" if applied else "nothing applied?!")
            runner.down(allow_data_loss=True)

        if not args.skip_shipped:
            # No statement timeout: on a big table the backfill may run past the default minute.
            shipped = Runner(db, migrations_dir(), policy=LockPolicy(statement_timeout=0), lock_timeout=60)
            shipped.down(target="0001", allow_data_loss=True)
            db.execute_sql("VACUUM ANALYZE deployment")
            with measured(clients) as times:
                applied = shipped.up()
                times["migrated"] = time.monotonic()
            record("d", "safe", times, f"applied {', '.join(applied)}")

        print("the plain forms, one transaction, no lock_timeout (what orm-kit did before)", flush=True)
        with measured(clients) as times:
            plain(db, region, "0004_deployment_region", "up")
            times["migrated"] = time.monotonic()
        record("a", "plain", times)
        plain(db, region, "0004_deployment_region", "down")
        db.execute_sql("VACUUM ANALYZE deployment")  # the plain form's UPDATE left a dead copy of every row
        with measured(clients) as times:
            plain(db, constraints, "0004_fk_and_check", "up")
            times["migrated"] = time.monotonic()
        record("b", "plain", times)
        plain(db, constraints, "0004_fk_and_check", "down")
        if not args.quick:
            with long_reader(url, 10), measured(clients) as times:
                plain(db, region, "0004_deployment_region", "up")
                times["migrated"] = time.monotonic()
            record("c", "plain", times, "waited for the 10 s reader")
            plain(db, region, "0004_deployment_region", "down")
    finally:
        stop.set()
        for client in clients:
            client.join()
        db.execute_sql("ALTER TABLE deployment DROP CONSTRAINT IF EXISTS deployment_release_id_fkey, ADD CONSTRAINT "
                       "deployment_release_id_fkey FOREIGN KEY (release_id) REFERENCES release (id) ON DELETE SET NULL")
        shutil.rmtree(region)
        shutil.rmtree(constraints)
    print_table(results, version, args, redact_url(url))


NAMES = {
    "-": "no migration (5 s; --quick: 0.5 s)",
    "a": "(a) make: NOT NULL column with a default + index",
    "b": "(b) a foreign key and a CHECK",
    "c": "(c) behind a 30 s reader (plain: a 10 s one)",
    "c'": "(c') behind a reader that ends after 6 s",
    "d": "(d) the shipped 0002 + 0003, again",
}


def print_table(results: list[Result], version: str, args: argparse.Namespace, where: str) -> None:
    print(f"\nPostgreSQL {version} ({where}), {args.deployments:,} deployments, {args.clients} clients; stall = a "
          f"client's longest operation during the migration; medians of {args.runs} runs (plain: 1 run)\n")
    print("| scenario | forms | worst client's stall | median client's stall | client errors | migration | |")
    print("|---|---|---|---|---|---|---|")
    keys: dict[tuple[str, str], None] = {(r.scenario, r.forms): None for r in results}
    for scenario, forms in keys:
        group = [r for r in results if (r.scenario, r.forms) == (scenario, forms)]
        worst = statistics.median(r.worst for r in group)
        median = statistics.median(r.median for r in group)
        errors = statistics.median(r.errors for r in group)
        seconds = statistics.median(r.seconds for r in group)
        notes = sorted({r.note for r in group if r.note})
        print(f"| {NAMES[scenario]} | {forms} | {worst * 1000:,.0f} ms | {median * 1000:,.0f} ms | {errors:g} | "
              f"{seconds:.1f} s | {'; '.join(notes)} |")


if __name__ == "__main__":
    main()
