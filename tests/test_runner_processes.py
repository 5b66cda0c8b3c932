"""Runners as real processes: three racing `orm-kit migrate`, a lock timeout, and a runner killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orm_kit.db import open_database
from orm_kit.migrate import Runner

ROOT = Path(__file__).resolve().parent.parent


def orm_kit(url: str, folder: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`orm-kit --database URL migrate --migrations FOLDER ARGS...` as a separate process."""
    command = [sys.executable, "-c", "import cli; cli.main()", "--database", url, "migrate", "--migrations",
               str(folder), *args]
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **(env or {})}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


SLOW = '''
import os
import time


def up(migrator, db):
    db.execute_sql('CREATE TABLE "slow" ("id" INTEGER PRIMARY KEY)')
    marker = os.environ.get("ORM_KIT_TEST_MARKER")
    if marker:
        open(marker, "w").close()
    time.sleep(float(os.environ.get("ORM_KIT_TEST_SLEEP", "0")))
    release = os.environ.get("ORM_KIT_TEST_RELEASE")
    deadline = time.monotonic() + 60
    while release and not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.05)


def down(migrator, db):
    db.execute_sql('DROP TABLE "slow"')
'''


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "migrations"
    path.mkdir()
    (path / "0001_slow.py").write_text(SLOW)
    (path / "0002_after.py").write_text(
        "def up(migrator, db):\n    db.execute_sql('CREATE TABLE \"after\" (\"id\" INTEGER PRIMARY KEY)')\n")
    return path


def test_three_racing_runners_apply_everything_exactly_once(db_url: str, folder: Path, tmp_path: Path) -> None:
    marker, release = tmp_path / "inside-0001", tmp_path / "release"
    first = orm_kit(db_url, folder, env={"ORM_KIT_TEST_RELEASE": str(release), "ORM_KIT_TEST_MARKER": str(marker)})
    wait_for(marker, first)  # one runner holds the lock, inside 0001, until released
    others = [orm_kit(db_url, folder) for _ in range(2)]
    wait_until_waiting(db_url, others)  # both are at the lock: the three really overlap
    release.touch()
    results = [(p.wait(timeout=60), p.stdout.read(), p.stderr.read()) for p in [first, *others]
               if p.stdout and p.stderr]
    assert [code for code, _, _ in results] == [0, 0, 0], results
    # Each migration commits (and lets go of the lock) on its own: the first runner applies 0001; 0002 goes to
    # whichever runner takes the lock next. Every migration is applied exactly once, whoever applies it.
    outs = [out for _, out, _ in results]
    assert outs[0].startswith("applied 0001_slow\n"), outs
    applied = [line for out in outs for line in out.splitlines() if line.startswith("applied ")]
    assert applied == ["applied 0001_slow", "applied 0002_after"], outs
    assert all(out in ("applied 0002_after\n", "nothing to apply: the database is up to date\n") for out in outs[1:])
    db = open_database(db_url)
    try:
        assert [row.name for row in Runner(db, folder).history()] == ["0001_slow", "0002_after"]
    finally:
        db.close()


def wait_until_waiting(db_url: str, waiters: list[subprocess.Popen[str]]) -> None:
    """Until every waiter is at the migration lock (PostgreSQL: polling it; SQLite: holding the file open)."""
    deadline = time.monotonic() + 30
    db = open_database(db_url) if db_url.startswith("postgres") else None
    try:
        while True:
            if db is not None:
                polling = db.execute_sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s",
                                         ("SELECT pg_try_advisory_xact_lock(%",)).fetchone()[0]
                ready = polling >= len(waiters)
            else:
                path = db_url.removeprefix("sqlite:///")
                ready = all(path in open_files(p.pid) for p in waiters)
            if ready:
                return
            assert time.monotonic() < deadline and all(p.poll() is None for p in waiters), "waiters never waited"
            time.sleep(0.05)
    finally:
        if db is not None:
            db.close()


def open_files(pid: int) -> set[str]:
    """The files process ``pid`` has open now (an fd closed while we look is simply not one of them)."""
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            found.add(os.path.realpath(os.readlink(f"/proc/{pid}/fd/{fd}")))
        except FileNotFoundError:
            continue  # closed between the listing and the look (the CLI reads pyproject.toml, modules, ...)
    return found


def wait_for(marker: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline, "the runner never reached the middle of 0001"
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        time.sleep(0.05)


def test_a_runner_that_waits_too_long_fails_clearly_and_changes_nothing(db_url: str, folder: Path,
                                                                         tmp_path: Path) -> None:
    marker = tmp_path / "inside-0001"
    release = tmp_path / "release"
    holder = orm_kit(db_url, folder, env={"ORM_KIT_TEST_RELEASE": str(release), "ORM_KIT_TEST_MARKER": str(marker)})
    wait_for(marker, holder)  # the holder has the lock and waits inside 0001 until released
    waiter = orm_kit(db_url, folder, "--lock-timeout", "0.5")
    code = waiter.wait(timeout=30)
    err = waiter.stderr.read() if waiter.stderr else ""
    release.touch()
    assert holder.wait(timeout=60) == 0
    assert holder.stdout is not None and holder.stdout.read() == "applied 0001_slow\napplied 0002_after\n"
    assert code == 1
    assert err.startswith("Error: another ") and "has held" in err and "for more than 0.5s" in err
    assert "--lock-timeout" in err
    assert len(err.strip().splitlines()) == 1


def test_a_runner_killed_mid_migration_leaves_no_lock_and_no_trace(db_url: str, folder: Path, tmp_path: Path) -> None:
    marker = tmp_path / "inside-0001"
    victim = orm_kit(db_url, folder, env={"ORM_KIT_TEST_SLEEP": "60", "ORM_KIT_TEST_MARKER": str(marker)})
    wait_for(marker, victim)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(timeout=30) == -signal.SIGKILL
    db = open_database(db_url)
    try:
        runner = Runner(db, folder, lock_timeout=10)
        assert "slow" not in db.get_tables()  # the killed transaction took its half-made table with it
        assert runner.history() == []
        assert runner.up() == ["0001_slow", "0002_after"]
        assert runner.status().ok
    finally:
        db.close()


def test_the_postgres_lock_lives_only_as_long_as_the_transaction(postgres_url: str, tmp_path: Path) -> None:
    # Nothing session-level: what makes the lock safe behind a transaction pooler and gone after a crash.
    from conftest import reset_postgres

    reset_postgres(postgres_url)
    folder = tmp_path / "pg"
    folder.mkdir()
    mine = "FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()"
    (folder / "0001_look.py").write_text(
        f'def up(migrator, db):\n    db.execute_sql("CREATE TABLE seen AS SELECT count(*) AS n {mine}")\n')
    db = open_database(postgres_url)
    try:
        assert Runner(db, folder).up() == ["0001_look"]
        assert db.execute_sql("SELECT n FROM seen").fetchone()[0] == 1
        assert db.execute_sql(f"SELECT count(*) {mine}").fetchone()[0] == 0
    finally:
        db.close()


def wait_for_exit(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    code = process.wait(timeout=60)
    return code, process.stdout.read() if process.stdout else "", process.stderr.read() if process.stderr else ""


@pytest.fixture
def non_atomic(folder: Path) -> Path:
    """The same folder, with 0001 running outside a transaction (atomic = False)."""
    (folder / "0001_slow.py").write_text("atomic = False\n" + SLOW)
    return folder


def test_while_a_non_atomic_migration_runs_others_wait_and_repair_refuses(db_url: str, non_atomic: Path,
                                                                          tmp_path: Path) -> None:
    marker, release = tmp_path / "inside-0001", tmp_path / "release"
    holder = orm_kit(db_url, non_atomic, env={"ORM_KIT_TEST_RELEASE": str(release), "ORM_KIT_TEST_MARKER": str(marker)})
    wait_for(marker, holder)  # 0001 runs outside the lock now, its history row says `running`
    code, _, err = wait_for_exit(orm_kit(db_url, non_atomic, "--lock-timeout", "0.5"))
    assert code == 1 and err.startswith("Error: another runner (pid "), err
    assert "has been applying 0001_slow (atomic = False" in err and "--lock-timeout" in err
    code, out, err = wait_for_exit(orm_kit(db_url, non_atomic, "repair"))
    assert (code, out) == (1, "") and "0001_slow is being run right now by another runner (pid " in err
    code, out, _ = wait_for_exit(orm_kit(db_url, non_atomic, "status"))
    assert code == 1 and ("0001_slow (atomic = False, or the steps after its commit) is being applied right now by "
                          "another runner (pid ") in out
    waiter = orm_kit(db_url, non_atomic, "--lock-timeout", "60")
    release.touch()
    results = [wait_for_exit(holder), wait_for_exit(waiter)]
    assert [code for code, _, _ in results] == [0, 0], results
    applied = sorted(line for _, out, _ in results for line in out.splitlines() if line.startswith("applied"))
    assert applied == ["applied 0001_slow", "applied 0002_after"]  # each once, whoever got there first
    db = open_database(db_url)
    try:
        assert [(r.name, r.outcome) for r in Runner(db, non_atomic).history()] == [
            ("0001_slow", "applied"), ("0002_after", "applied")]
    finally:
        db.close()


def test_a_runner_killed_inside_a_non_atomic_migration_blocks_until_repaired(db_url: str, non_atomic: Path,
                                                                              tmp_path: Path) -> None:
    marker = tmp_path / "inside-0001"
    victim = orm_kit(db_url, non_atomic, env={"ORM_KIT_TEST_SLEEP": "60", "ORM_KIT_TEST_MARKER": str(marker)})
    wait_for(marker, victim)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(timeout=30) == -signal.SIGKILL
    code, out, err = wait_for_exit(orm_kit(db_url, non_atomic, "--lock-timeout", "30"))
    assert (code, out) == (1, "")
    assert ("0001_slow (atomic = False, or the steps after its commit) was started and never finished (its runner "
            "died)") in err
    db = open_database(db_url)
    try:
        runner = Runner(db, non_atomic, lock_timeout=30)
        assert [(r.name, r.outcome) for r in runner.history()] == [("0001_slow", "running")]
        db.execute_sql('DROP TABLE "slow"')  # what a human does: put the half-done schema back
        assert runner.repair().cleared == ["0001_slow"]
        assert runner.up() == ["0001_slow", "0002_after"]
    finally:
        db.close()


def test_a_postgres_runner_killed_mid_statement_lets_go_of_the_lock_within_seconds(postgres_url: str,
                                                                                    tmp_path: Path) -> None:
    from conftest import reset_postgres

    reset_postgres(postgres_url)
    folder = tmp_path / "pg"
    folder.mkdir()
    (folder / "0001_long.py").write_text(
        "import os\n\n\ndef up(migrator, db):\n    db.execute_sql('CREATE TABLE long (id INTEGER)')\n"
        "    db.execute_sql('SELECT pg_sleep(%s)', (float(os.environ.get('ORM_KIT_TEST_SLEEP', '0')),))\n")
    victim = orm_kit(postgres_url, folder, env={"ORM_KIT_TEST_SLEEP": "20"})
    db = open_database(postgres_url)
    try:
        deadline = time.monotonic() + 30
        while True:  # until the server is inside the long statement
            row = db.execute_sql("SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s "
                                 "AND pid <> pg_backend_pid()", ("SELECT pg_sleep(%",)).fetchone()
            if row:
                break
            assert time.monotonic() < deadline and victim.poll() is None, "the runner never reached pg_sleep"
            time.sleep(0.05)
        (backend,) = row
        code, _, err = wait_for_exit(orm_kit(postgres_url, folder, "--lock-timeout", "0.5"))
        assert code == 1 and f"(pid {backend} (" in err and f"pg_terminate_backend({backend})" in err, err
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(timeout=30) == -signal.SIGKILL
        killed = time.monotonic()
        # The statement has ~19 s to go; the server must notice the dead client long before that.
        code, out, err = wait_for_exit(orm_kit(postgres_url, folder, "--lock-timeout", "8"))
        assert (code, out) == (0, "applied 0001_long\n"), err
        assert time.monotonic() - killed < 10
    finally:
        db.close()


ORPHAN = '''
import os

atomic = False


def up(migrator, db):
    db.execute_sql("CREATE TABLE orphan (id INTEGER)")
    if os.environ.get("ORM_KIT_TEST_DEAF"):  # as a server that cannot notice a dead client (before 14, or its OS)
        db.execute_sql("SET client_connection_check_interval = 0")
    db.execute_sql("SELECT pg_sleep(%s)", (float(os.environ.get("ORM_KIT_TEST_SLEEP", "0")),))
    db.execute_sql("CREATE INDEX orphan_id ON orphan (id)")


def down(migrator, db):
    db.execute_sql("DROP TABLE orphan")
'''


def _kill_inside_pg_sleep(postgres_url: str, folder: Path, env: dict[str, str]) -> int:
    """Start a runner, SIGKILL it once the server is inside its pg_sleep; the backend pid running it."""
    victim = orm_kit(postgres_url, folder, env=env)
    db = open_database(postgres_url)
    try:
        deadline = time.monotonic() + 30
        while True:
            row = db.execute_sql("SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s "
                                 "AND pid <> pg_backend_pid()", ("SELECT pg_sleep(%",)).fetchone()
            if row:
                break
            assert time.monotonic() < deadline and victim.poll() is None, "the runner never reached pg_sleep"
            time.sleep(0.05)
    finally:
        db.close()
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(timeout=30) == -signal.SIGKILL
    return int(row[0])


def _backend_alive(postgres_url: str, pid: int) -> bool:
    db = open_database(postgres_url)
    try:
        return bool(db.execute_sql("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0])
    finally:
        db.close()


def test_a_non_atomic_run_is_dead_only_once_its_statement_has_left_the_server(postgres_url: str,
                                                                               tmp_path: Path) -> None:
    from conftest import reset_postgres

    reset_postgres(postgres_url)
    folder = tmp_path / "pg"
    folder.mkdir()
    (folder / "0001_orphan.py").write_text(ORPHAN)
    backend = _kill_inside_pg_sleep(postgres_url, folder, {"ORM_KIT_TEST_SLEEP": "8", "ORM_KIT_TEST_DEAF": "1"})
    assert _backend_alive(postgres_url, backend)  # its runner is dead; its statement runs on
    code, out, _ = wait_for_exit(orm_kit(postgres_url, folder, "status"))
    assert code == 1 and f"is being applied right now by another runner (pid {backend} (" in out, out
    assert "a statement its runner left running on the server when it died" in out
    code, _, err = wait_for_exit(orm_kit(postgres_url, folder, "repair"))
    assert code == 1 and f"is being run right now by another runner (pid {backend} (" in err, err
    code, _, err = wait_for_exit(orm_kit(postgres_url, folder, "--lock-timeout", "0.5"))
    assert code == 1 and f"another runner (pid {backend} (" in err, err
    deadline = time.monotonic() + 30
    while _backend_alive(postgres_url, backend):
        assert time.monotonic() < deadline, "the orphaned statement never ended"
        time.sleep(0.1)
    code, out, _ = wait_for_exit(orm_kit(postgres_url, folder, "status"))
    assert code == 1 and "was started and never finished (its runner died)" in out, out
    db = open_database(postgres_url)
    try:
        db.execute_sql("DROP TABLE orphan")  # what a human does: put the half-done schema back
        runner = Runner(db, folder, lock_timeout=10)
        assert runner.repair().cleared == ["0001_orphan"]
        assert runner.up() == ["0001_orphan"]
        assert "orphan_id" in {index.name for index in db.get_indexes("orphan")}
    finally:
        db.close()


def test_a_non_atomic_statement_left_by_a_killed_runner_ends_within_seconds(postgres_url: str,
                                                                             tmp_path: Path) -> None:
    from conftest import reset_postgres

    reset_postgres(postgres_url)
    folder = tmp_path / "pg"
    folder.mkdir()
    (folder / "0001_orphan.py").write_text(ORPHAN)
    backend = _kill_inside_pg_sleep(postgres_url, folder, {"ORM_KIT_TEST_SLEEP": "60"})
    killed = time.monotonic()
    while _backend_alive(postgres_url, backend):  # the claimed session checks for its client every second
        assert time.monotonic() - killed < 10, "the orphaned pg_sleep(60) was not ended"
        time.sleep(0.1)
    code, out, _ = wait_for_exit(orm_kit(postgres_url, folder, "status"))
    assert code == 1 and "its runner died" in out, out
