"""Lock timeouts with retries, against a real blocking reader on a second PostgreSQL connection.

SQLite has one writer at a time and no lock queue per table, so none of this exists there: these tests run on
PostgreSQL only (the runner's SQLite locking is in test_runner_processes.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest
from click.testing import CliRunner

from orm_kit.cli import main
from orm_kit.db import open_database
from orm_kit.errors import MigrationBlockedError, MigrationFailedError
from orm_kit.migrate import LockPolicy, Runner
from orm_kit.migrate.lockwait import LockPolicy as Policy

pytestmark = pytest.mark.postgres

ITEM = '''
def up(migrator, db):
    db.execute_sql("CREATE TABLE item (id INTEGER PRIMARY KEY, label VARCHAR(20))")
    db.execute_sql("INSERT INTO item (id, label) SELECT i, 'x' FROM generate_series(1, 50) AS i")
'''

ADD_COLUMN = '''
import peewee


def up(migrator, db):
    migrator.migrate(migrator.add_column("item", "region", peewee.CharField(max_length=16, default="eu")))
'''


@pytest.fixture
def reader(postgres_url: str) -> Iterator[peewee.Database]:
    """A second connection, as an application's long-running reader."""
    db = open_database(postgres_url)
    try:
        yield db
    finally:
        if db.in_transaction() or not db.is_closed():
            db.execute_sql("ROLLBACK")
            db.close()


@pytest.fixture
def folder(tmp_path: Path, pg: peewee.Database) -> Path:
    path = tmp_path / "migrations"
    path.mkdir()
    (path / "0001_item.py").write_text(ITEM)
    assert Runner(pg, path).up() == ["0001_item"]
    (path / "0002_region.py").write_text(ADD_COLUMN)
    return path


def open_reader_transaction(reader: peewee.Database) -> int:
    """BEGIN; read item; stay idle in the transaction (holding ACCESS SHARE on item). Its backend pid."""
    pid = int(reader.execute_sql("SELECT pg_backend_pid()").fetchone()[0])
    reader.execute_sql("BEGIN")
    reader.execute_sql("SELECT count(*) FROM item")
    return pid


def columns(db: peewee.Database) -> set[str]:
    return {c.name for c in db.get_columns("item")}


def test_attempts_wait_longer_each_time_up_to_the_lock_timeout() -> None:
    assert [(a.lock_timeout, a.pause_after) for a in Policy(2.0, 4).attempts()] == [
        (0.5, 0.5), (1.0, 1.0), (2.0, 2.0), (2.0, 4.0), (2.0, 0.0)]
    assert [a.lock_timeout for a in Policy(2.0, 0).attempts()] == [2.0]
    assert [a.lock_timeout for a in Policy(3.0, 1).attempts()] == [1.5, 3.0]
    assert Policy().describe() == "lock_timeout 0.5 s growing to 2 s over 5 attempts, statement_timeout 60 s"


def test_a_migration_behind_a_long_reader_gives_up_naming_the_blocker_and_changes_nothing(pg, reader, folder):
    pid = open_reader_transaction(reader)
    said: list[str] = []
    runner = Runner(pg, folder, policy=LockPolicy(lock_timeout=0.4, retries=2), progress=said.append)
    with pytest.raises(MigrationBlockedError) as blocked:
        runner.up()
    message = str(blocked.value)
    assert message.startswith("0002_region up() gave up after 3 attempts (lock_timeout 0.1 s, 0.2 s, 0.4 s) waiting "
                              f"for an ACCESS EXCLUSIVE lock on table item, held by pid {pid} (idle in transaction, "
                              "its transaction open for ")
    assert (f"last query: SELECT count(*) FROM item) (to end it: SELECT pg_terminate_backend({pid})); it was rolled "
            "back, so the schema and the history are as they were before it") in message
    assert [line.split(": waited")[0] for line in said] == ["0002_region up()"] * 2
    assert all("trying again in" in line for line in said)
    assert "region" not in columns(pg)
    assert [r.name for r in runner.history()] == ["0001_item"]
    reader.execute_sql("ROLLBACK")  # the reader ends: the same migration now goes through
    assert runner.up() == ["0002_region"]
    assert "region" in columns(pg)


def test_a_reader_that_ends_during_the_retries_lets_the_migration_through(pg, reader, folder):
    open_reader_transaction(reader)
    connection = reader.connection()  # peewee's connections are per thread: end the reader's own one
    ends = threading.Timer(0.5, lambda: connection.execute("ROLLBACK"))
    ends.start()
    said: list[str] = []
    try:
        assert Runner(pg, folder, policy=LockPolicy(lock_timeout=0.4, retries=6), progress=said.append).up() == [
            "0002_region"]
    finally:
        ends.join()
    assert said and all(" trying again in " in line for line in said)


def test_the_cli_gives_up_in_one_line_with_the_blocker(pg, reader, folder, postgres_url):
    pid = open_reader_transaction(reader)
    result = CliRunner().invoke(main, ["--database", postgres_url, "migrate", "--migrations", str(folder), "up",
                                       "--statement-lock-timeout", "0.2", "--lock-retries", "0"])
    assert result.exit_code == 1
    error = result.stderr.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("Error: 0002_region up() gave up after 1 attempt")
    assert f"pid {pid}" in error[0] and "orm_kit_test" not in error[0].split("held by")[0]


def test_a_statement_past_the_statement_timeout_is_rolled_back_and_says_so(pg, folder):
    (folder / "0002_region.py").write_text(
        "def up(migrator, db):\n    db.execute_sql('ALTER TABLE item ADD COLUMN slow INTEGER')\n"
        "    db.execute_sql('SELECT pg_sleep(5)')\n")
    with pytest.raises(MigrationFailedError, match=r"0002_region up\(\) failed: .*canceling statement due to "
                                                   r"statement timeout \(statement_timeout 0\.3 s: a long statement "
                                                   r"holds its locks all along"):
        Runner(pg, folder, policy=LockPolicy(statement_timeout=0.3)).up()
    assert "slow" not in columns(pg)


def test_a_concurrent_build_behind_an_old_transaction_gives_up_cleanly_and_repair_finishes_it(pg, reader, folder):
    (folder / "0002_region.py").write_text(
        "def up(migrator, db):\n    migrator.migrate(migrator.add_index('item', ('label',), False))\n")
    pid = open_reader_transaction(reader)
    reader.execute_sql("UPDATE item SET label = 'y' WHERE id = 1")  # a writer: the concurrent build waits for it
    runner = Runner(pg, folder, policy=LockPolicy(lock_timeout=0.4, retries=1))
    with pytest.raises(MigrationFailedError) as failure:
        runner.up()
    message = str(failure.value)
    assert message.startswith('0002_region up(): its transaction committed, but a step after it failed: CREATE INDEX '
                              'CONCURRENTLY IF NOT EXISTS "item_label" ON "item" ("label"): gave up after 2 attempts '
                              "(lock_timeout 0.2 s, 0.4 s) waiting for older transactions to end")
    assert f"held by pid {pid} " in message
    # the build's INVALID leftover waits for the same transaction: it goes on the next run
    assert "the INVALID index item_label it left could not be dropped yet" in message
    assert [(r.name, r.outcome) for r in runner.history()][-1] == ("0002_region", "failed")
    reader.execute_sql("ROLLBACK")
    said: list[str] = []
    assert Runner(pg, folder, progress=said.append).repair().finished == ["0002_region"]
    assert "0002_region up(): dropped the invalid index item_label an interrupted build left" in said
    assert runner.status().ok and "item_label" in {i.name for i in pg.get_indexes("item")}
    assert pg.execute_sql("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone()[0] == 0
