"""PgBouncer in transaction mode, for real: prepared statements, the migration lock, on_commit, retries, pools.

In transaction mode each transaction may run on another server session, so nothing session-level
survives from one to the next: psycopg's prepared statements (turned off by ``?pgbouncer=transaction``),
``SET``, session advisory locks. orm-kit's migration lock is transaction-scoped; its hooks are client-side.
"""

from __future__ import annotations

import threading
from pathlib import Path

import peewee
import pytest

from orm_kit.db import open_database
from orm_kit.errors import MigrationError, MigrationLockTimeoutError
from orm_kit.migrate import Runner
from orm_kit.migrate.lock import migration_lock
from orm_kit.models import MODELS, Team
from orm_kit.platform import migrate_up, migrations_dir
from orm_kit.pool import PooledPostgresDatabase
from orm_kit.transactions import RetryPolicy, on_commit, run_in_transaction, transaction

from conftest import reset_postgres

pytestmark = pytest.mark.postgres


def alternate(first: peewee.Database, second: peewee.Database, runs: int = 8) -> None:
    """The same parameterized query on two client connections in turn (psycopg prepares it from the 5th run)."""
    for i in range(runs):
        for db in (first, second):
            assert db.execute_sql("SELECT %s::int + 1", (i,)).fetchone()[0] == i + 1


def test_prepared_statements_break_behind_a_transaction_pooler_unless_turned_off(pgbouncer_url: str) -> None:
    a, b = open_database(pgbouncer_url), open_database(pgbouncer_url)
    try:
        with pytest.raises(peewee.DatabaseError, match='prepared statement "_pg3_0" already exists'):
            alternate(a, b)  # both prepare _pg3_0 on the one server session PgBouncer hands them in turn
    finally:
        a.close()
        b.close()
    a, b = (open_database(pgbouncer_url + "?pgbouncer=transaction") for _ in range(2))
    alternate(a, b)
    a.close()
    b.close()


def test_the_migration_lock_holds_behind_pgbouncer(pgbouncer_url: str, postgres_url: str) -> None:
    reset_postgres(postgres_url)
    url = pgbouncer_url + "?pgbouncer=transaction"
    holder, waiter = open_database(url), open_database(url)
    assert migrate_up(holder) != []  # the shipped migrations, DDL and all, through PgBouncer
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with migration_lock(holder, timeout=5):
            locked.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert locked.wait(10)
        with pytest.raises(MigrationLockTimeoutError), migration_lock(waiter, timeout=0.3):
            pytest.fail("two runners held the migration lock at once")
    finally:
        release.set()
        thread.join(10)
    with migration_lock(waiter, timeout=5):
        pass  # let go with the holder's transaction
    assert Runner(waiter, migrations_dir()).up() == []
    holder.close()
    waiter.close()


def test_atomic_false_migrations_are_refused_behind_a_transaction_pooler(
        pgbouncer_url: str, postgres_url: str, tmp_path: Path) -> None:
    reset_postgres(postgres_url)
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_index.py").write_text(
        "atomic = False\n\n\ndef up(migrator, db):\n"
        "    db.execute_sql('CREATE TABLE t (id int)')\n\n\ndef down(migrator, db):\n    pass\n")
    db = open_database(pgbouncer_url + "?pgbouncer=transaction")
    with pytest.raises(MigrationError, match="a transaction pooler cannot give"):
        Runner(db, folder).up()
    assert "t" not in db.get_tables()
    db.close()


def test_on_commit_and_retries_work_behind_pgbouncer(pgbouncer_url: str, postgres_url: str) -> None:
    reset_postgres(postgres_url)
    db = open_database(pgbouncer_url + "?pgbouncer=transaction")
    db.bind(MODELS)
    migrate_up(db)
    announced: list[str] = []
    with transaction(db):
        Team.create(name="payments")
        on_commit(db, lambda: announced.append("payments"))
        assert announced == []
    assert announced == ["payments"]

    def rolled_back() -> None:
        with transaction(db):
            Team.create(name="search")
            on_commit(db, lambda: announced.append("search"))
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        rolled_back()
    assert announced == ["payments"] and not Team.select().where(Team.name == "search").exists()
    db.execute_sql("CREATE SEQUENCE attempts")
    db.execute_sql("""CREATE FUNCTION fail_twice() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF nextval('attempts') <= 2 THEN RAISE EXCEPTION 'injected' USING ERRCODE = '40001'; END IF;
        RETURN NULL; END $$""")
    db.execute_sql("CREATE CONSTRAINT TRIGGER fail_twice AFTER INSERT ON team DEFERRABLE INITIALLY DEFERRED "
                   "FOR EACH ROW EXECUTE FUNCTION fail_twice()")
    run_in_transaction(db, lambda: Team.create(name="billing"), retry=RetryPolicy(attempts=3),
                       isolation="serializable", sleep=lambda _: None)
    assert db.execute_sql("SELECT last_value FROM attempts").fetchone()[0] == 3
    assert Team.select().where(Team.name == "billing").count() == 1
    db.close()


def test_a_pool_in_front_of_pgbouncer_resets_its_connections(pgbouncer_url: str) -> None:
    url = pgbouncer_url.replace("postgresql://", "postgresql+pool://", 1) + "?pgbouncer=transaction&max_connections=2"
    db = open_database(url)
    assert isinstance(db, PooledPostgresDatabase)
    for _ in range(20):
        db.connect(reuse_if_open=True)
        db.execute_sql("SET application_name = 'leftover'")
        alternate(db, db, runs=1)
        db.close()
    assert db.pool_status().idle == 1
    db.close_all()
