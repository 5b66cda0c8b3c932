"""PgBouncer in transaction mode, for real: prepared statements, the migration lock, on_commit, retries, pools.

In transaction mode each transaction may run on another server session, so nothing session-level
survives from one to the next: psycopg's prepared statements (turned off by ``?pgbouncer=transaction``),
``SET``, session advisory locks. orm-kit's migration lock is transaction-scoped; its hooks are client-side.
"""

from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import urlsplit

import peewee
import pytest
from click.testing import CliRunner

from orm_kit.cli import main
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
    direct = open_database(postgres_url)
    # Migrations are deployed against the server: their concurrent index builds need a session of their own.
    assert migrate_up(direct) != []
    direct.close()
    holder, waiter = open_database(url), open_database(url)
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


def test_an_index_built_concurrently_after_the_commit_is_refused_behind_a_transaction_pooler(
        pgbouncer_url: str, postgres_url: str, tmp_path: Path) -> None:
    reset_postgres(postgres_url)
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_table.py").write_text(
        "def up(migrator, db):\n    db.execute_sql('CREATE TABLE t (id int, n int)')\n\n\n"
        "def down(migrator, db):\n    db.execute_sql('DROP TABLE t')\n")
    (folder / "0002_index.py").write_text(
        "def up(migrator, db):\n    migrator.migrate(migrator.add_index('t', ('n',), False))\n\n\n"
        "def down(migrator, db):\n    migrator.migrate(migrator.drop_index('t', 't_n'))\n")
    db = open_database(pgbouncer_url + "?pgbouncer=transaction")
    assert Runner(db, folder).up(target="0001") == ["0001_table"]
    with pytest.raises(MigrationError, match="run `orm-kit migrate` against the server directly"):
        Runner(db, folder).up()
    assert [name for name, in db.execute_sql("SELECT name FROM schema_migration").fetchall()] == ["0001_table"]
    assert db.get_indexes("t") == []
    db.close()


def test_on_commit_and_retries_work_behind_pgbouncer(pgbouncer_url: str, postgres_url: str) -> None:
    reset_postgres(postgres_url)
    direct = open_database(postgres_url)
    migrate_up(direct)  # migrations go to the server itself (their concurrent index builds need a session)
    direct.close()
    db = open_database(pgbouncer_url + "?pgbouncer=transaction")
    db.bind(MODELS)
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


def cli(*args: str, env: dict[str, str | None]) -> tuple[int, str, str]:
    """`orm-kit ARGS` with exactly the database settings of ``env`` in the environment."""
    settings: dict[str, str | None] = {"ORM_KIT_DATABASE_URL": None, "DATABASE_URL": None,
                                       "ORM_KIT_DIRECT_DATABASE_URL": None, **env}
    result = CliRunner().invoke(main, list(args), prog_name="orm-kit", env=settings)
    return result.exit_code, result.stdout, result.stderr


def test_orm_kit_migrate_goes_past_the_pooler_over_the_direct_url_and_the_refusal_names_it(
        pgbouncer_url: str, postgres_url: str, tmp_path: Path) -> None:
    reset_postgres(postgres_url)
    pooled = pgbouncer_url + "?pgbouncer=transaction"
    password = urlsplit(postgres_url).password or ""
    assert password
    # The application's pooled URL alone: 0002 backfills and builds an index after its commit, which needs a
    # session.
    code, out, err = cli("migrate", env={"ORM_KIT_DATABASE_URL": pooled})
    assert (code, out) == (1, "") and "(0001_initial applied before it stay so)" in err
    assert "a transaction pooler cannot give" in err and "set ORM_KIT_DIRECT_DATABASE_URL (or pass " \
                                                         "--direct-database) to that URL" in err
    assert password not in out + err
    # The deployment's two settings: the application keeps the pooler, `orm-kit migrate` goes direct.
    both = {"ORM_KIT_DATABASE_URL": pooled, "ORM_KIT_DIRECT_DATABASE_URL": postgres_url}
    code, out, err = cli("migrate", env=both)
    assert (code, out) == (0, "applied 0002_deployment_duration\napplied 0003_deployment_history_indexes\n"), err
    assert err and all(" up(): after its commit: " in line or " up(): backfill deployment: done" in line
                       for line in err.splitlines()), err
    assert password not in out + err
    assert cli("migrate", "status", env=both)[0] == 0
    # --database names the database for this command: the environment's direct URL (another one) is not used.
    local = f"sqlite:///{tmp_path / 'local.db'}"
    assert cli("--database", local, "migrate", "up", "0001", env=both) == (0, "applied 0001_initial\n", "")
    # The flag, beside an explicit pooled --database, from scratch.
    reset_postgres(postgres_url)
    code, out, err = cli("--database", pooled, "migrate", "--direct-database", postgres_url, env={})
    assert (code, out.splitlines()[-1]) == (0, "applied 0003_deployment_history_indexes"), err
    assert password not in out + err
    code, out, _ = cli("migrate", "up", "--help", env={})
    assert "--direct-database URL" in out and "ORM_KIT_DIRECT_DATABASE_URL" in out


def test_the_plugin_migrates_over_the_direct_url_and_runs_the_tests_through_the_pooler(
        pytester: pytest.Pytester, pgbouncer_url: str, postgres_url: str) -> None:
    pooled = pgbouncer_url + "?pgbouncer=transaction"
    pytester.makepyfile(test_pooled='''
        from orm_kit import Team
        from orm_kit.dialect import transaction_pooled

        def test_through_the_pooler_on_a_migrated_database(orm_kit_db):
            assert transaction_pooled(orm_kit_db)
            assert "deployment_created_at_id" in {i.name for i in orm_kit_db.get_indexes("deployment")}
            Team.create(name="payments")
    ''')
    options = ("-p", "no:cacheprovider", "--orm-kit-backends", "postgres", "--orm-kit-postgres-url", pooled)
    result = pytester.runpytest(*options, "--orm-kit-postgres-direct-url", postgres_url)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["orm-kit: database tests on postgres; PostgreSQL: postgresql://orm_kit:***@*"
                                 "?pgbouncer=transaction (migrated over postgresql://orm_kit:***@*)"])
    result = pytester.runpytest(*options)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cannot migrate the test database through a transaction pooler*give the tests a "
                                 "direct URL to the same server, ORM_KIT_TEST_POSTGRES_DIRECT_URL or "
                                 "--orm-kit-postgres-direct-url*"])
    assert (urlsplit(postgres_url).password or "?") not in result.stdout.str() + result.stderr.str()
