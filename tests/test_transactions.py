"""transaction(), @transactional, on_commit and run_in_transaction on real SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import peewee
import psycopg
import pytest

from orm_kit.db import open_database
from orm_kit.errors import ConfigurationError, RetryExhaustedError, TransactionUsageError, ValidationError
from orm_kit.models import Team
from orm_kit.transactions import (
    RetryPolicy,
    on_commit,
    retryable_reason,
    run_in_transaction,
    transaction,
    transactional,
)

import factories
from conftest import raw_connect
from counter import Counter, CounterRepository, increment, worker


def team_names() -> list[str]:
    return sorted(t.name for t in Team.select())


def test_nested_failure_rolls_back_only_the_inner_block(migrated: peewee.Database) -> None:
    def inner() -> None:
        with transaction(migrated):
            factories.team(name="inner")
            factories.team(name="Not A Slug")

    with transaction(migrated):
        factories.team(name="outer-before")
        with pytest.raises(ValidationError):
            inner()
        with transaction(migrated):
            factories.team(name="inner-kept")
        factories.team(name="outer-after")
    assert team_names() == ["inner-kept", "outer-after", "outer-before"]


def test_outer_failure_rolls_back_released_savepoints_too(migrated: peewee.Database) -> None:
    def outer() -> None:
        with transaction(migrated):
            factories.team(name="a")
            with transaction(migrated):
                factories.team(name="b")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        outer()
    assert team_names() == []


def test_transactional_decorator(migrated: peewee.Database) -> None:
    @transactional(migrated)
    def make(name: str, fail: bool = False) -> str:
        factories.team(name=name)
        if fail:
            raise LookupError(name)
        return name

    assert make("kept") == "kept"
    with pytest.raises(LookupError):
        make("dropped", fail=True)
    assert team_names() == ["kept"]
    assert make.__name__ == "make"


def rolled_back(db: peewee.Database, hook: Callable[[], object], *, plain: bool = False) -> None:
    """A block that registers ``hook`` and then fails."""
    with db.atomic() if plain else transaction(db):
        if plain:
            db.after_commit(hook)
        else:
            on_commit(db, hook)
        raise KeyError("rolled back")


def test_on_commit_runs_only_after_the_commit(migrated: peewee.Database, db_url: str) -> None:
    ran: list[str] = []
    seen_by_others: list[list[str]] = []

    def check() -> None:  # another connection sees the data when the hook runs: it is committed
        other = open_database(db_url)
        try:
            seen_by_others.append(sorted(r[0] for r in other.execute_sql("SELECT name FROM team").fetchall()))
        finally:
            other.close()

    with transaction(migrated):
        factories.team(name="x")
        on_commit(migrated, check)
        on_commit(migrated, lambda: ran.append("outer"))
        with pytest.raises(KeyError):
            rolled_back(migrated, lambda: ran.append("rolled-back savepoint"))
        with transaction(migrated):
            on_commit(migrated, lambda: ran.append("released savepoint"))
        assert ran == []
    assert ran == ["outer", "released savepoint"]
    assert seen_by_others == [["x"]]
    with pytest.raises(KeyError):
        rolled_back(migrated, lambda: ran.append("never"))
    on_commit(migrated, lambda: ran.append("no transaction: at once"))
    assert ran == ["outer", "released savepoint", "no transaction: at once"]


def test_peewee_after_commit_keeps_hooks_of_a_rolled_back_savepoint(migrated: peewee.Database) -> None:
    """Why on_commit keeps its own per-block lists instead of calling db.after_commit directly."""
    ran: list[str] = []
    with migrated.atomic():
        with pytest.raises(KeyError):
            rolled_back(migrated, lambda: ran.append("rolled back, but run by peewee"), plain=True)
        with pytest.raises(KeyError):
            rolled_back(migrated, lambda: ran.append("dropped by on_commit"))
        on_commit(migrated, lambda: ran.append("plain atomic: handed to peewee"))
    assert ran == ["rolled back, but run by peewee", "plain atomic: handed to peewee"]


def test_a_failing_hook_does_not_stop_the_others(migrated: peewee.Database) -> None:
    ran: list[str] = []

    def fail() -> None:
        raise ValueError("first")

    def work() -> None:
        with transaction(migrated):
            factories.team(name="kept")
            on_commit(migrated, fail)
            on_commit(migrated, lambda: ran.append("second"))

    with pytest.raises(ValueError, match="first"):
        work()
    assert ran == ["second"] and team_names() == ["kept"]


def test_isolation_is_checked(migrated: peewee.Database) -> None:
    with pytest.raises(ConfigurationError, match="not a transaction isolation level"), \
            transaction(migrated, isolation="chaos"):
        pass
    with transaction(migrated), pytest.raises(ConfigurationError, match="outermost"), \
            transaction(migrated, isolation="serializable"):
        pass
    calls: list[int] = []
    with transaction(migrated), pytest.raises(ConfigurationError, match="outermost"):
        run_in_transaction(migrated, lambda: calls.append(1), isolation="serializable")
    assert calls == []  # nested, the isolation could not be applied: refused, not ignored
    with transaction(migrated, isolation="serializable"):
        factories.team(name="ok")
    assert team_names() == ["ok"]


def test_sqlite_outermost_transaction_takes_the_write_lock_at_begin(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'lock.db'}")
    db.execute_sql("CREATE TABLE t (x INTEGER)")
    assert db._lock_type == "IMMEDIATE"  # type: ignore[attr-defined]
    other = sqlite3.connect(tmp_path / "lock.db", timeout=0, isolation_level=None)
    try:
        with transaction(db):  # no statement yet: the lock is taken by BEGIN itself
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            with transaction(db):  # a savepoint takes nothing new
                db.execute_sql("INSERT INTO t VALUES (1)")
        other.execute("BEGIN IMMEDIATE")  # released at COMMIT
        other.execute("ROLLBACK")
    finally:
        other.close()
        db.close()


# --- retries on real failures ------------------------------------------------------------------

@pytest.fixture
def counter(migrated: peewee.Database) -> Iterator[int]:
    Counter.bind(migrated)
    migrated.create_tables([Counter])
    yield CounterRepository(migrated).create(value=0).id
    Counter.bind(None)  # type: ignore[arg-type]


class Interferer:
    """Makes the next ``times`` attempts fail for real: a second connection changes the row under them."""

    def __init__(self, backend: str, db_url: str, times: int) -> None:
        self.backend, self.url, self.left = backend, db_url, times
        self.attempts = 0

    def __call__(self, db: peewee.Database, key: int) -> None:
        self.attempts += 1
        repo = CounterRepository(db)
        row = repo.get(key)  # the snapshot starts here
        if self.left:
            self.left -= 1
            with raw_connect(self.url, autocommit=True) as conn:
                conn.execute("UPDATE counter SET value = value + 100 WHERE id = %s", (key,))
        repo.update(row, value=row.value + 1)  # 40001: could not serialize access due to concurrent update


def test_retry_succeeds_after_real_serialization_failures_on_postgres(postgres_url: str) -> None:
    from conftest import reset_postgres

    reset_postgres(postgres_url)
    db = open_database(postgres_url)
    Counter.bind(db)
    try:
        db.create_tables([Counter])
        key = CounterRepository(db).create(value=0).id
        interfere = Interferer("postgres", postgres_url, times=2)
        run_in_transaction(db, lambda: interfere(db, key), isolation="serializable",
                           retry=RetryPolicy(attempts=5, max_seconds=5))
        assert interfere.attempts == 3
        assert CounterRepository(db).get(key).value == 201  # two interfering +100, then ours

        always = Interferer("postgres", postgres_url, times=10**6)
        with pytest.raises(RetryExhaustedError, match=r"failed 3 time\(s\).*SQLSTATE 40001") as caught:
            run_in_transaction(db, lambda: always(db, key), isolation="repeatable read",
                               retry=RetryPolicy(attempts=3, max_seconds=5))
        assert always.attempts == 3 and caught.value.attempts == 3
        assert retryable_reason(caught.value.__cause__) == "serialization failure (SQLSTATE 40001)"  # type: ignore[arg-type]
        assert isinstance(caught.value.__cause__.__context__, psycopg.errors.SerializationFailure)  # type: ignore[union-attr]

        started = time.monotonic()
        with pytest.raises(RetryExhaustedError):
            run_in_transaction(db, lambda: always(db, key), isolation="serializable",
                               retry=RetryPolicy(attempts=1000, max_seconds=0.3, base_delay=0.02, max_delay=0.05))
        assert time.monotonic() - started < 2 and always.attempts < 1000  # bounded by time, not attempts
    finally:
        db.close()
        Counter.bind(None)  # type: ignore[arg-type]


def hold_write_lock(path: Path, seconds: float) -> threading.Event:
    """Another connection takes SQLite's write lock now and keeps it ``seconds``; returns when it has it."""
    taken = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        taken.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")
        conn.close()

    threading.Thread(target=hold, daemon=True).start()
    taken.wait(5)
    return taken


def test_retry_succeeds_after_real_sqlite_busy_errors(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    db = open_database(f"sqlite:///{path}?timeout=0.05")  # a short busy wait, so BEGIN fails quickly
    Counter.bind(db)
    try:
        db.create_tables([Counter])
        key = CounterRepository(db).create(value=0).id
        attempts: list[int] = []

        def work() -> None:
            attempts.append(1)
            row = CounterRepository(db).get(key)
            CounterRepository(db).update(row, value=row.value + 1)

        hold_write_lock(path, 0.5)
        run_in_transaction(db, work, retry=RetryPolicy(attempts=100, max_seconds=10, base_delay=0.02, max_delay=0.1))
        assert CounterRepository(db).get(key).value == 1
        assert len(attempts) == 1  # the failed attempts failed at BEGIN, before work() ran

        hold_write_lock(path, 3)
        started = time.monotonic()
        with pytest.raises(RetryExhaustedError, match="SQLite database is locked") as caught:
            run_in_transaction(db, work, retry=RetryPolicy(attempts=1000, max_seconds=0.5, max_delay=0.05))
        assert caught.value.attempts > 1 and time.monotonic() - started < 2
    finally:
        db.close()
        Counter.bind(None)  # type: ignore[arg-type]


def test_errors_that_are_not_retryable_propagate_at_once(migrated: peewee.Database) -> None:
    calls: list[int] = []

    def work() -> None:
        calls.append(1)
        migrated.execute_sql("SELECT * FROM no_such_table")

    with pytest.raises(peewee.DatabaseError):
        run_in_transaction(migrated, work, retry=RetryPolicy(attempts=5))
    assert calls == [1]


# --- no lost update ---------------------------------------------------------------------------

def test_eight_threads_read_modify_write_without_losing_an_update(migrated: peewee.Database, counter: int) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for _ in range(15):
                increment(migrated, counter)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            migrated.close()  # this thread's connection

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    row = CounterRepository(migrated).get(counter)
    assert (row.value, row.lock_version) == (120, 121)


def test_two_processes_read_modify_write_without_losing_an_update(
        migrated: peewee.Database, counter: int, db_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=worker, args=(db_url, counter, 25)) for _ in range(2)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(120)
    assert [p.exitcode for p in processes] == [0, 0]
    assert CounterRepository(migrated).get(counter).value == 50


def real_busy_error(path: Path) -> peewee.OperationalError:
    """A genuine SQLITE_BUSY, as peewee raises it: another connection holds the write lock, no wait allowed."""
    other = open_database(f"sqlite:///{path}?timeout=0")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(peewee.OperationalError) as caught:
            other.execute_sql("BEGIN IMMEDIATE")
        return caught.value
    finally:
        other.close()
        holder.close()


def test_a_hook_failing_with_a_retryable_error_does_not_run_the_work_again(
        migrated: peewee.Database, tmp_path: Path) -> None:
    busy = real_busy_error(tmp_path / "busy.db")
    assert retryable_reason(busy) is not None
    runs: list[int] = []

    def hook() -> None:
        raise busy

    def work() -> None:
        runs.append(1)
        factories.team(name=f"t{len(runs)}")
        on_commit(migrated, hook)

    with pytest.raises(peewee.OperationalError) as caught:
        run_in_transaction(migrated, work, retry=RetryPolicy(attempts=5, max_seconds=5))
    assert caught.value is busy  # the hook's own error, after the commit, not a retry
    assert runs == [1] and team_names() == ["t1"]


def test_hooks_registered_in_a_plain_atomic_savepoint_follow_it(migrated: peewee.Database) -> None:
    ran: list[str] = []

    def plain_savepoint(name: str, fail: bool) -> None:
        with migrated.atomic():  # nested: a peewee savepoint, not a transaction() block
            on_commit(migrated, lambda: ran.append(name))
            if fail:
                raise KeyError(name)

    with transaction(migrated):
        with pytest.raises(KeyError):
            plain_savepoint("rolled back", fail=True)
        plain_savepoint("released", fail=False)
        with transaction(migrated), pytest.raises(KeyError):
            plain_savepoint("rolled back, deeper", fail=True)
    assert ran == ["released"]
    with migrated.atomic():  # no transaction() block anywhere: peewee's own transaction outside
        with pytest.raises(KeyError):
            plain_savepoint("rolled back under a plain transaction", fail=True)
        plain_savepoint("released under a plain transaction", fail=False)
    assert ran == ["released", "released under a plain transaction"]


def test_blocks_left_out_of_order_are_a_typed_error(migrated: peewee.Database) -> None:
    ran: list[str] = []
    outer = transaction(migrated)
    outer.__enter__()
    migrated.atomic().__enter__()  # a savepoint never left
    with pytest.raises(TransactionUsageError, match="out of order"):
        outer.__exit__(None, None, None)
    with transaction(migrated):  # the thread's block stack is usable again
        on_commit(migrated, lambda: ran.append("after"))
    assert ran == ["after"]


def test_max_seconds_bounds_a_wait_for_the_sqlite_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "held.db"
    db = open_database(f"sqlite:///{path}")  # the default busy timeout: 30 s
    release = threading.Event()
    taken = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        taken.set()
        release.wait(60)
        conn.execute("ROLLBACK")
        conn.close()

    holder = threading.Thread(target=hold)
    try:
        db.execute_sql("CREATE TABLE t (x INTEGER)")
        holder.start()
        assert taken.wait(10)
        started = time.monotonic()
        with pytest.raises(RetryExhaustedError, match="SQLite database is locked"):
            run_in_transaction(db, lambda: db.execute_sql("INSERT INTO t VALUES (1)"),
                               retry=RetryPolicy(attempts=100, max_seconds=0.5))
        assert time.monotonic() - started < 5  # not the 30 s busy timeout
        assert db.execute_sql("PRAGMA busy_timeout").fetchone()[0] == 30_000  # the connection's own, back
    finally:
        release.set()
        holder.join(10)
        db.close()


def test_max_seconds_bounds_a_wait_for_a_postgres_row_lock(postgres_url: str) -> None:
    from conftest import reset_postgres

    reset_postgres(postgres_url)
    db = open_database(postgres_url)
    db.execute_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER)")
    db.execute_sql("INSERT INTO t VALUES (1, 0)")
    with raw_connect(postgres_url) as holder:
        # The server ends the holder after 20 s, so a regression fails the test instead of hanging it.
        holder.execute("SET idle_in_transaction_session_timeout = '20s'")
        holder.execute("SELECT x FROM t WHERE id = 1 FOR UPDATE")
        try:
            started = time.monotonic()
            with pytest.raises(RetryExhaustedError, match="SQLSTATE 55P03"):
                run_in_transaction(db, lambda: db.execute_sql("UPDATE t SET x = x + 1 WHERE id = 1"),
                                   retry=RetryPolicy(attempts=100, max_seconds=0.5))
            assert time.monotonic() - started < 5
            assert db.execute_sql("SHOW lock_timeout").fetchone()[0] == "0"  # SET LOCAL ended with the attempt
        finally:
            holder.rollback()
            db.close()


def test_retry_succeeds_after_a_real_deadlock_on_postgres(postgres_url: str) -> None:
    """Two transactions lock x and y in opposite orders; PostgreSQL kills one (40P01) and it runs again."""
    from conftest import reset_postgres

    reset_postgres(postgres_url)
    db = open_database(postgres_url)
    db.execute_sql("CREATE TABLE t (name TEXT PRIMARY KEY, x INTEGER)")
    db.execute_sql("INSERT INTO t VALUES ('x', 0), ('y', 0)")
    both_hold_one = threading.Barrier(2, timeout=30)
    attempts = {"x": 0, "y": 0}
    errors: list[BaseException] = []

    def work(first: str, second: str) -> None:
        attempts[first] += 1
        db.execute_sql("UPDATE t SET x = x + 1 WHERE name = %s", (first,))
        if attempts[first] == 1:
            both_hold_one.wait()  # each holds its first row: the second UPDATEs form a cycle
        db.execute_sql("UPDATE t SET x = x + 1 WHERE name = %s", (second,))

    def run(first: str, second: str) -> None:
        try:
            run_in_transaction(db, lambda: work(first, second), retry=RetryPolicy(attempts=3, max_seconds=30))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=run, args=pair) for pair in (("x", "y"), ("y", "x"))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert sorted(attempts.values()) == [1, 2]  # exactly one was chosen as the deadlock victim
        assert db.execute_sql("SELECT name, x FROM t ORDER BY name").fetchall() == [("x", 2), ("y", 2)]
    finally:
        db.close()
