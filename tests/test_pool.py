"""Connection pools and server URLs: pool options, exhaustion, clean check-in, multi-host, PgBouncer's option."""

from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit

import peewee
import pytest
from playhouse.pool import MaxConnectionsExceeded

import orm_kit
from orm_kit.cockroach import CockroachDatabase
from orm_kit.db import open_database, parse_url
from orm_kit.dialect import is_cockroach, is_postgres, transaction_pooled
from orm_kit.errors import ConfigurationError, DatabaseUnavailableError, PoolExhaustedError
from orm_kit.pool import PING_AFTER_IDLE, PooledCockroachDatabase, PooledPostgresDatabase, PoolSettings


def pooled(url: str, query: str = "") -> str:
    """``url`` (postgresql://...) as a +pool URL with ``query`` appended."""
    base = url.replace("postgresql://", "postgresql+pool://", 1)
    return f"{base}{'&' if '?' in base else '?'}{query}" if query else base


def backend_pid(db: peewee.Database) -> int:
    return int(db.execute_sql("SELECT pg_backend_pid()").fetchone()[0])


# --- URLs ------------------------------------------------------------------------------------------

def test_pool_url_options_are_taken_out_before_the_driver_sees_them() -> None:
    db = open_database("postgresql+pool://app:topsecret@db:5432/platform?max_connections=7&timeout=2.5"
                       "&stale_timeout=60&sslmode=require", connect=False)
    assert isinstance(db, PooledPostgresDatabase) and is_postgres(db)
    assert (db._max_connections, db._wait_timeout, db._stale_timeout) == (7, 2.5, 60.0)
    assert db.connect_params == {"user": "app", "password": "topsecret", "host": "db", "port": 5432,
                                 "sslmode": "require", "connect_timeout": 10}
    assert db.pool_status() == orm_kit.pool.PoolStatus("app@db:5432/platform", 7, 0, 0)


def test_pool_defaults_and_connect_pool_settings(tmp_path) -> None:
    db = open_database("postgres+pool://app:pw@db/platform", connect=False)
    assert (db._max_connections, db._wait_timeout, db._stale_timeout) == (20, 10.0, 300.0)
    plain = open_database("postgresql://app:pw@db/platform", connect=False, pool=PoolSettings(max_connections=3))
    assert isinstance(plain, PooledPostgresDatabase) and plain._max_connections == 3
    # The URL's own settings win over connect()'s.
    own = open_database("postgresql+pool://app:pw@db/platform?max_connections=5", connect=False,
                        pool=PoolSettings(max_connections=3))
    assert own._max_connections == 5
    with pytest.raises(ConfigurationError, match="connection pool is for PostgreSQL and CockroachDB"):
        orm_kit.connect(f"sqlite:///{tmp_path / 'x.db'}", pool=True, environ={})


@pytest.mark.parametrize(("url", "message"), [
    ("postgresql://app:topsecret@db/platform?max_connections=5", "connection-pool options; ask for a pool with a "
                                                                 "+pool scheme"),
    ("postgresql+pool://app:topsecret@db/platform?timeout=0", "timeout=0, which means 'wait for ever'"),
    ("postgresql+pool://app:topsecret@db/platform?max_connections=lots", "max_connections='lots'; expected a whole"),
    ("postgresql+pool://app:topsecret@db/platform?max_connections=0", "max_connections=0; expected a whole"),
    ("postgresql+pool://app:topsecret@db/platform?stale_timeout=-1", "stale_timeout='-1'; expected a number"),
    ("postgresql://app:topsecret@db/platform?pgbouncer=statement", "pgbouncer='statement'; expected"),
    ("postgresql://app:topsecret@db/platform?pgbouncer=transaction&prepare_threshold=0",
     "0 means *always* prepare"),
    ("postgresql://app:topsecret@db-a:5432,db-b:x/platform", "has host 'db-b:x' in its host list"),
    ("mysql+pool://app:topsecret@db/platform", "has scheme 'mysql+pool'"),
])
def test_bad_server_urls_are_refused_without_the_password(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_database(url, connect=False)
    assert message in str(caught.value)
    assert "topsecret" not in str(caught.value)


def test_pool_settings_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="max_connections is 0"):
        PoolSettings(max_connections=0)
    with pytest.raises(ConfigurationError, match="timeout is 0"):
        PoolSettings(timeout=0)
    with pytest.raises(ConfigurationError, match="stale_timeout is 0"):
        PoolSettings(stale_timeout=0)


def test_multi_host_urls_become_libpq_host_and_port_lists() -> None:
    parsed = parse_url("postgresql://app:topsecret@db-a:5433,db-b,[::1]:5434/platform?target_session_attrs=read-write")
    assert parsed.driver["host"] == "db-a,db-b,::1"
    assert parsed.driver["port"] == "5433,,5434"  # an empty item: libpq's default port
    assert parsed.driver["target_session_attrs"] == "read-write"
    assert "topsecret" not in repr(parsed)
    assert "host" in parse_url("postgresql://app@db-a,db-b/platform").driver
    assert "port" not in parse_url("postgresql://app@db-a,db-b/platform").driver


@pytest.mark.postgres
def test_a_multi_host_url_connects_to_the_first_host_that_answers(postgres_url: str) -> None:
    parts = urlsplit(postgres_url)
    url = postgres_url.replace(f"@{parts.hostname}:{parts.port}", f"@127.0.0.1:1,{parts.hostname}:{parts.port}")
    db = open_database(url)
    assert db.execute_sql("SELECT inet_server_port()").fetchone()[0] == parts.port
    db.close()


def test_pgbouncer_transaction_turns_prepared_statements_off() -> None:
    db = open_database("postgresql://app:pw@bouncer:6432/platform?pgbouncer=transaction", connect=False)
    assert db.connect_params["prepare_threshold"] is None  # None: never; 0 would be "always"
    assert "pgbouncer" not in db.connect_params
    assert transaction_pooled(db)
    assert not transaction_pooled(open_database("postgresql://app:pw@db/platform", connect=False))
    session = open_database("postgresql://app:pw@bouncer:6432/platform?pgbouncer=session", connect=False)
    assert "prepare_threshold" not in session.connect_params and not transaction_pooled(session)
    explicit = open_database("postgresql://app:pw@b/platform?pgbouncer=transaction&prepare_threshold=none",
                             connect=False)
    assert explicit.connect_params["prepare_threshold"] is None


@pytest.mark.postgres
def test_prepare_threshold_none_reaches_psycopg(postgres_url: str) -> None:
    db = open_database(postgres_url + "?pgbouncer=transaction")
    assert db.connection().prepare_threshold is None
    for _ in range(10):  # psycopg would prepare this from the 5th run on
        db.execute_sql("SELECT 1 + %s", (1,))
    assert db.execute_sql("SELECT count(*) FROM pg_prepared_statements").fetchone()[0] == 0
    db.close()


def test_cockroachdb_urls_open_orm_kits_cockroach_database() -> None:
    db = open_database("cockroachdb://app:pw@crdb/platform?sslmode=verify-full", connect=False)
    assert type(db) is CockroachDatabase and is_cockroach(db) and is_postgres(db)
    assert db.connect_params["port"] == 26257  # peewee's CockroachDB default
    assert type(open_database("crdb+pool://app:pw@crdb/platform", connect=False)) is PooledCockroachDatabase
    assert not is_cockroach(open_database("postgresql://app:pw@db/platform", connect=False))


# --- the pool on a real server ----------------------------------------------------------------------

@pytest.mark.postgres
def test_an_exhausted_pool_is_a_typed_error_naming_pool_and_size(postgres_url: str) -> None:
    db = open_database(pooled(postgres_url, "max_connections=2&timeout=0.3"), connect=False)
    holding = threading.Barrier(3)
    release = threading.Event()

    def hold() -> None:
        db.connect()
        holding.wait(10)
        release.wait(10)
        db.close()

    others = [threading.Thread(target=hold) for _ in range(2)]
    for t in others:
        t.start()
    holding.wait(10)  # both connections are out
    started = time.monotonic()
    try:
        with pytest.raises(PoolExhaustedError) as caught:
            db.connect()
        waited = time.monotonic() - started
    finally:
        release.set()
        for t in others:
            t.join(10)
    error = caught.value
    assert isinstance(error, MaxConnectionsExceeded) and isinstance(error, DatabaseUnavailableError)
    assert (error.max_connections, error.timeout) == (2, 0.3)
    assert error.pool.startswith("orm_kit@127.0.0.1:") and error.pool.endswith("/orm_kit_test")
    assert f"connection pool {error.pool!r} is exhausted: all 2 connections stayed in use for 0.3s" in str(error)
    assert "orm-kit-test-secret" not in str(error)
    assert 0.25 < waited < 5
    assert db.pool_status().in_use == 0
    db.connect()  # they came back: a checkout works again
    db.close()
    db.close_all()


@pytest.mark.postgres
def test_a_connection_goes_back_clean_after_a_failed_transaction(postgres_url: str) -> None:
    db = open_database(pooled(postgres_url, "max_connections=1"))
    pid = backend_pid(db)
    db.execute_sql("SET statement_timeout = '7s'")
    db.execute_sql("SET ROLE NONE")
    db.execute_sql("SELECT pg_advisory_lock(4242)")
    db.execute_sql("LISTEN orm_kit_pool_test")
    db.execute_sql("CREATE TEMPORARY TABLE leftover (n int)")

    def failing_transaction() -> None:
        with db.atomic():
            db.execute_sql("SET LOCAL lock_timeout = '3s'")
            db.execute_sql("SELECT 1 / 0")

    with pytest.raises(peewee.DataError):
        failing_transaction()
    db.execute_sql("BEGIN")  # a raw transaction peewee does not know about, left open
    db.execute_sql("SELECT 1")
    db.close()
    assert db.pool_status().idle == 1

    db.connect()
    assert backend_pid(db) == pid  # the same server session, reused...
    row = db.execute_sql("""
        SELECT current_setting('statement_timeout'), current_setting('lock_timeout'),
               (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()),
               (SELECT count(*) FROM pg_listening_channels()),
               to_regclass('pg_temp.leftover') IS NULL,
               (SELECT state FROM pg_stat_activity WHERE pid = pg_backend_pid())""").fetchone()
    assert row == ("0", "0", 0, 0, True, "active")  # ...with nothing left over from its last borrower
    assert db.execute_sql("SELECT txid_current_if_assigned()").fetchone()[0] is None
    db.close()


@pytest.mark.postgres
def test_a_connection_the_server_ended_is_not_handed_out(postgres_url: str) -> None:
    db = open_database(pooled(postgres_url, "max_connections=2"))
    pid = backend_pid(db)
    db.close()
    killer = open_database(postgres_url)
    assert killer.execute_sql("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone()[0]
    killer.close()
    db.connect()  # returned an instant ago, but the server's goodbye is waiting on the socket
    assert backend_pid(db) != pid
    db.close()
    assert db.pool_status() == orm_kit.pool.PoolStatus(db.pool_name, 2, 0, 1)


@pytest.mark.postgres
def test_an_idle_connection_is_pinged_and_a_stale_one_replaced(postgres_url: str) -> None:
    db = open_database(pooled(postgres_url, "stale_timeout=1.5"))
    first = backend_pid(db)
    db.close()
    time.sleep(PING_AFTER_IDLE + 0.1)
    db.connect()  # idle for a while: pinged, alive, reused
    assert backend_pid(db) == first
    db.close()
    time.sleep(0.5)
    db.connect()  # older than stale_timeout: replaced
    assert backend_pid(db) != first
    db.close()


@pytest.mark.postgres
def test_eight_threads_share_a_pool_of_four(postgres_url: str) -> None:
    db = open_database(pooled(postgres_url, "max_connections=4&timeout=10&application_name=orm_kit_pool_test"),
                       connect=False)
    errors: list[BaseException] = []
    seen: set[int] = set()
    peak = [0]

    def work() -> None:
        try:
            for _ in range(40):
                with db.connection_context():
                    seen.add(backend_pid(db))
                    count = db.execute_sql("SELECT count(*) FROM pg_stat_activity "
                                           "WHERE application_name = 'orm_kit_pool_test'").fetchone()[0]
                    peak[0] = max(peak[0], count)
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(seen) <= 4 and peak[0] <= 4
    assert db.pool_status().in_use == 0
    db.close_all()


@pytest.mark.postgres
def test_connect_pools_through_its_argument(postgres_url: str) -> None:
    db = orm_kit.connect(postgres_url, pool=PoolSettings(max_connections=3), environ={})
    try:
        assert isinstance(db, PooledPostgresDatabase) and db._max_connections == 3
        assert orm_kit.Team._meta.database is db
        db.close()
        assert db.pool_status().idle == 1
    finally:
        db.close_all()
