"""Loads killed with SIGKILL and a PostgreSQL server stopped in the middle of them: nothing half-written, and the
next run does the whole job. (Migration runners killed mid-statement: tests/test_runner_processes.py.)"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import peewee
import pytest

from orm_kit.db import open_database
from orm_kit.models import MODELS, Deployment, Team
from orm_kit.platform import SEED_REGISTRY, migrate_up
from orm_kit.seeding import load
from orm_kit.synthetic import generate
from orm_kit.testing import pgserver

ROOT = Path(__file__).resolve().parent.parent
TEAMS = 6000  # a load of several seconds, so that it is killed in the middle


def orm_kit(url: str, *args: str) -> subprocess.Popen[str]:
    """`orm-kit --database URL ARGS...` as a process of its own."""
    return subprocess.Popen([sys.executable, "-c", "import cli; cli.main()", "--database", url, *args], cwd=ROOT,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def big_set(tmp_path: Path) -> Path:
    folder = tmp_path / "seeds"
    folder.mkdir()
    (folder / "many.yaml").write_text("team:\n" + "".join(f"  - {{name: team-{n}}}\n" for n in range(TEAMS)))
    return folder


def wait_until_writing(db: peewee.Database, process: subprocess.Popen[str]) -> None:
    """Until ``process`` holds an open write transaction on ``db``'s database, then a little longer."""
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "the process never started writing"
        if isinstance(db, peewee.PostgresqlDatabase):
            writing = db.execute_sql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                     "AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()").fetchone()[0]
        else:
            try:  # the load's BEGIN IMMEDIATE holds SQLite's write lock until it ends
                db.execute_sql("PRAGMA busy_timeout = 0")
                db.execute_sql("BEGIN IMMEDIATE")
                db.execute_sql("ROLLBACK")
                writing = False
            except peewee.OperationalError:
                writing = True
        if writing:
            time.sleep(0.7)  # well inside the load, rows written
            return
        time.sleep(0.05)


def kill(process: subprocess.Popen[str]) -> None:
    assert process.poll() is None, "the load ended before it could be killed: make it bigger"
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL


def test_a_seed_load_killed_mid_load_leaves_nothing_and_the_rerun_loads_everything(
        migrated: peewee.Database, db_url: str, tmp_path: Path) -> None:
    folder = big_set(tmp_path)
    victim = orm_kit(db_url, "seed", "--seeds", str(folder))
    wait_until_writing(migrated, victim)
    kill(victim)
    migrated.close()  # a fresh look, as the next process gets
    migrated.connect()
    assert Team.select().count() == 0
    assert not {"orm_kit_seed", "orm_kit_seed_row"} & set(migrated.get_tables()) or \
        migrated.execute_sql('SELECT count(*) FROM "orm_kit_seed_row"').fetchone()[0] == 0
    assert load(migrated, SEED_REGISTRY, folder).inserted == TEAMS


def test_seed_generate_killed_mid_load_leaves_nothing_and_the_same_seed_generates_again(
        migrated: peewee.Database, db_url: str) -> None:
    victim = orm_kit(db_url, "seed", "generate", "--deployments", "300000", "--random-seed", "4")
    wait_until_writing(migrated, victim)
    kill(victim)
    migrated.close()
    migrated.connect()
    assert Deployment.select().count() == 0 and Team.select().count() == 0
    assert generate(migrated, deployments=500, random_seed=4, services=2).deployments == 500


@pytest.mark.postgres
def test_postgres_stopped_mid_load_loses_nothing_and_the_rerun_loads_everything(tmp_path: Path) -> None:
    # A server of its own, stopped (fast shutdown: sessions ended, transactions rolled back) and started again.
    datadir = Path(tempfile.mkdtemp(prefix="orm-kit-pg-stop-"))
    try:
        url = pgserver.start(datadir)
        db = open_database(url)
        db.bind(MODELS)
        migrate_up(db)
        folder = big_set(tmp_path)
        victim = orm_kit(url, "seed", "--seeds", str(folder))
        wait_until_writing(db, victim)
        db.close()
        pgserver.stop(datadir)
        code = victim.wait(timeout=60)
        err = victim.stderr.read() if victim.stderr else ""
        assert code == 1 and err.startswith("Error: ") and len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err
        pgserver.restart(datadir)
        db = open_database(url)
        db.bind(MODELS)
        try:
            assert Team.select().count() == 0
            assert load(db, SEED_REGISTRY, folder).inserted == TEAMS
        finally:
            db.close()
    finally:
        pgserver.stop(datadir)
        shutil.rmtree(datadir, ignore_errors=True)

