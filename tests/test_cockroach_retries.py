"""CockroachDB's retry contract, tested on PostgreSQL SERIALIZABLE with failures injected deterministically.

CockroachDB cannot be installed here. What orm-kit promises for it is tested where it can be: a
trigger raises SQLSTATE 40001 (retry) or 40003 (outcome unknown) for the first N attempts, at a
statement (BEFORE INSERT) or at COMMIT (a deferred constraint trigger). The attempt counter is a
sequence, which a rollback does not undo. The same runs go through orm-kit's ``CockroachDatabase``
class pointed at PostgreSQL (it speaks the same protocol), to exercise its ``begin()``.
"""

from __future__ import annotations

from collections.abc import Iterator

import peewee
import pytest
from playhouse.cockroachdb import CockroachDatabase as PeeweeCockroachDatabase

from orm_kit.cockroach import CockroachDatabase
from orm_kit.db import open_database
from orm_kit.errors import CommitOutcomeUnknownError, ConfigurationError, RetryExhaustedError
from orm_kit.transactions import RetryPolicy, run_in_transaction, transaction

from conftest import reset_postgres

pytestmark = pytest.mark.postgres


def inject(db: peewee.Database, sqlstate: str, failures: int, *, at_commit: bool) -> None:
    """Make inserts into ``ledger`` fail with ``sqlstate`` for the first ``failures`` attempts."""
    db.execute_sql("CREATE TABLE ledger (id serial PRIMARY KEY, note text NOT NULL)")
    db.execute_sql("CREATE SEQUENCE attempts")
    db.execute_sql(f"""
        CREATE FUNCTION fail_first() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF nextval('attempts') <= {failures:d} THEN
                RAISE EXCEPTION 'injected failure' USING ERRCODE = '{sqlstate}';
            END IF;
            RETURN NULL;
        END $$""")
    if at_commit:
        db.execute_sql("CREATE CONSTRAINT TRIGGER fail_at_commit AFTER INSERT ON ledger DEFERRABLE INITIALLY "
                       "DEFERRED FOR EACH ROW EXECUTE FUNCTION fail_first()")
    else:
        db.execute_sql("CREATE TRIGGER fail_at_statement AFTER INSERT ON ledger FOR EACH ROW "
                       "EXECUTE FUNCTION fail_first()")


def attempts(db: peewee.Database) -> int:
    return int(db.execute_sql("SELECT last_value FROM attempts").fetchone()[0])


def notes(db: peewee.Database) -> list[str]:
    return [row[0] for row in db.execute_sql("SELECT note FROM ledger ORDER BY id").fetchall()]


@pytest.fixture(params=["postgresql", "cockroachdb"])
def serial_db(request: pytest.FixtureRequest, postgres_url: str) -> Iterator[peewee.Database]:
    """The test database, opened as PostgreSQL and through orm-kit's CockroachDB class."""
    reset_postgres(postgres_url)
    db = open_database(postgres_url.replace("postgresql://", f"{request.param}://", 1))
    assert (type(db) is CockroachDatabase) == (request.param == "cockroachdb")
    yield db
    if not db.is_closed():
        db.close()


@pytest.mark.parametrize("at_commit", [False, True], ids=["at-statement", "at-commit"])
def test_40001_runs_the_whole_transaction_again_until_it_commits(serial_db: peewee.Database, at_commit: bool) -> None:
    inject(serial_db, "40001", 3, at_commit=at_commit)
    runs: list[int] = []
    pauses: list[float] = []

    def work() -> str:
        runs.append(len(runs) + 1)
        serial_db.execute_sql("INSERT INTO ledger (note) VALUES (%s)", (f"run {len(runs)}",))
        return "done"

    result = run_in_transaction(serial_db, work, retry=RetryPolicy(attempts=5), isolation="serializable",
                                sleep=pauses.append)
    assert result == "done"
    assert runs == [1, 2, 3, 4] and len(pauses) == 3
    assert attempts(serial_db) == 4
    assert notes(serial_db) == ["run 4"]  # the failed attempts left nothing behind


def test_retries_stop_at_the_attempt_bound(serial_db: peewee.Database) -> None:
    inject(serial_db, "40001", 10, at_commit=True)
    with pytest.raises(RetryExhaustedError) as caught:
        run_in_transaction(serial_db, lambda: serial_db.execute_sql("INSERT INTO ledger (note) VALUES ('x')"),
                           retry=RetryPolicy(attempts=3), isolation="serializable", sleep=lambda _: None)
    assert caught.value.attempts == 3 and attempts(serial_db) == 3
    assert notes(serial_db) == []


@pytest.mark.parametrize("at_commit", [False, True], ids=["at-statement", "at-commit"])
def test_40003_outcome_unknown_is_never_retried(serial_db: peewee.Database, at_commit: bool) -> None:
    inject(serial_db, "40003", 1, at_commit=at_commit)
    runs: list[int] = []

    def work() -> None:
        runs.append(1)
        serial_db.execute_sql("INSERT INTO ledger (note) VALUES ('transfer')")

    with pytest.raises(CommitOutcomeUnknownError) as caught:
        run_in_transaction(serial_db, work, retry=RetryPolicy(attempts=5), isolation="serializable",
                           sleep=lambda _: pytest.fail("an unknown outcome must not be retried"))
    assert runs == [1] and attempts(serial_db) == 1 and caught.value.attempts == 1
    assert "SQLSTATE 40003" in str(caught.value) and "was not run again" in str(caught.value)


def test_a_connection_lost_during_commit_is_an_unknown_outcome(serial_db: peewee.Database) -> None:
    serial_db.execute_sql("CREATE TABLE ledger (id serial PRIMARY KEY, note text NOT NULL)")
    serial_db.execute_sql("""
        CREATE FUNCTION die() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5); RETURN NULL; END $$""")
    serial_db.execute_sql("CREATE CONSTRAINT TRIGGER die_at_commit AFTER INSERT ON ledger DEFERRABLE INITIALLY "
                          "DEFERRED FOR EACH ROW EXECUTE FUNCTION die()")
    runs: list[int] = []

    def work() -> None:
        runs.append(1)
        serial_db.execute_sql("INSERT INTO ledger (note) VALUES ('transfer')")

    with pytest.raises(CommitOutcomeUnknownError, match="connection was lost while committing"):
        run_in_transaction(serial_db, work, retry=RetryPolicy(attempts=5), sleep=lambda _: None)
    assert runs == [1]
    serial_db.close()
    serial_db.connect()
    assert notes(serial_db) == []  # (it did not commit, this time; the caller could not know)


def test_peewees_run_transaction_lets_a_commit_time_40001_escape(postgres_url: str) -> None:
    # Why orm-kit's CockroachDatabase refuses it: its retry loop ends before COMMIT.
    reset_postgres(postgres_url)
    plain = open_database(postgres_url, connect=False)
    db = PeeweeCockroachDatabase(plain.database, prefer_psycopg3=True, **plain.connect_params)
    inject(db, "40001", 1, at_commit=True)
    with pytest.raises(peewee.DatabaseError, match="injected failure"):
        db.run_transaction(lambda d: d.execute_sql("INSERT INTO ledger (note) VALUES ('x')"), max_attempts=5)
    assert attempts(db) == 1 and notes(db) == []
    # orm-kit's, on the same injected failure, runs it again and commits.
    run_in_transaction(db, lambda: db.execute_sql("INSERT INTO ledger (note) VALUES ('y')"), sleep=lambda _: None)
    assert notes(db) == ["y"]
    db.close()


def test_cockroach_refuses_peewees_retry_helpers_and_weaker_isolation(postgres_url: str) -> None:
    db = open_database(postgres_url.replace("postgresql://", "cockroachdb://", 1))
    with pytest.raises(ConfigurationError, match=r"use orm_kit\.run_in_transaction"):
        db.run_transaction(lambda d: None)
    with pytest.raises(ConfigurationError, match="run_in_transaction"):
        db.retry_transaction()
    for level in ("read committed", "repeatable read"):
        with pytest.raises(ConfigurationError, match="CockroachDB: it runs transactions SERIALIZABLE"), \
                transaction(db, isolation=level):
            pytest.fail("the block must not run")
        with pytest.raises(ConfigurationError, match="CockroachDB"), db.atomic(isolation_level=level):
            pytest.fail("the block must not run")
    assert not db.in_transaction()
    with transaction(db, isolation="serializable"):
        level = db.execute_sql("SHOW transaction_isolation").fetchone()[0]
    assert level == "serializable"
    db.close()
