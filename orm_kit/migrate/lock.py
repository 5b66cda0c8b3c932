"""The migration lock: one runner at a time per database, held for a transaction, gone when the process dies.

    with migration_lock(db, timeout=30.0):     # BEGIN ... lock taken ... COMMIT on exit
        ...read the history, run migrations in savepoints, record them...

PostgreSQL: a transaction-scoped advisory lock (``pg_try_advisory_xact_lock``), polled until ``timeout``.
It needs nothing session-level, so it works behind a transaction pooler (PgBouncer in transaction mode),
and the server drops it with the transaction. A runner killed with SIGKILL while its connection is idle
loses the lock at once; one killed in the middle of a long statement would keep it until the statement
ends, so the locked transaction sets ``client_connection_check_interval`` (PostgreSQL 14+, ``SET LOCAL``,
so still pooler-safe): the server notices the dead client within a second and ends the statement.

SQLite: the database's write lock, taken up front with ``BEGIN IMMEDIATE`` and a busy timeout of
``timeout``. Foreign keys are switched off *before* ``BEGIN`` (``PRAGMA foreign_keys`` is a no-op inside a
transaction) so that the table rebuilds SQLite needs for many ALTERs cannot cascade-delete child rows; the
runner checks ``PRAGMA foreign_key_check`` before every commit instead. The OS drops the lock with the process.

An ``atomic = False`` migration runs outside that transaction, so the lock is let go while it runs; a
*run claim* (:func:`run_claim`) marks the run as alive instead, and is gone when the runner dies:

    with run_claim(db):                        # taken under the migration lock, held for the whole run
        ...                                    # run_claim_holder(db) names this process meanwhile

PostgreSQL: a second, session-level advisory lock on a dedicated connection, which the server drops
with the session (also when the runner is killed), and a third on the runner's own connection, the one
the migration's statements run on. A runner killed in the middle of a statement leaves that statement
running on the server (a backend notices its client is gone only when it next talks to it): the run is
dead only once that backend has ended too, so a rerun never collides with an orphaned ``CREATE INDEX
CONCURRENTLY`` that then finishes behind its back. The claimed session also sets
``client_connection_check_interval`` (PostgreSQL 14+) so that the server ends such a statement within
about a second. Session-level, so not safe behind a transaction
pooler (PgBouncer in transaction mode would hand the session, lock and all, to someone else): run
``atomic = False`` migrations against the server directly, or through a session-mode pool. They need
that anyway: ``CREATE INDEX CONCURRENTLY`` and friends cannot share a pooled session.
SQLite: ``flock`` on ``<database>-migration.lock`` next to the database file, which holds the runner's pid.
Without ``fcntl`` (Windows) a run cannot be seen to be alive, and an unfinished ``atomic = False`` run
always counts as dead.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import peewee

from orm_kit._sql import execute
from orm_kit.bounds import check_seconds
from orm_kit.db import DIRECT_ENV_VAR
from orm_kit.dialect import is_postgres, is_sqlite, transaction_pooled
from orm_kit.errors import MigrationError, MigrationLockTimeoutError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]  # a module or nothing

__all__ = ["DEFAULT_LOCK_TIMEOUT", "foreign_keys_off", "lock_key", "migration_lock", "run_claim", "run_claim_holder"]

DEFAULT_LOCK_TIMEOUT = 60.0
_POLL_SECONDS = (0.05, 0.1, 0.2, 0.5)


def lock_key(history_table: str, purpose: str = "migrations") -> int:
    """The advisory-lock key of a history table: a stable signed 64-bit number (per database on PostgreSQL)."""
    digest = hashlib.sha256(f"orm-kit {purpose} {history_table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def foreign_keys_off(db: peewee.Database) -> Iterator[None]:
    """On SQLite, foreign keys off for the block (must start outside a transaction); elsewhere nothing."""
    if not is_sqlite(db):
        yield
        return
    if db.in_transaction():
        raise MigrationError(
            "cannot migrate inside an open transaction on SQLite: PRAGMA foreign_keys cannot be switched off "
            "there, and table rebuilds would cascade-delete child rows (call the runner outside db.atomic())"
        )
    was_on = bool(execute(db, "PRAGMA foreign_keys").fetchone()[0])
    execute(db, "PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        if was_on and not db.is_closed():
            execute(db, "PRAGMA foreign_keys = ON")


@contextmanager
def migration_lock(db: peewee.Database, timeout: float = DEFAULT_LOCK_TIMEOUT,
                   history_table: str = "schema_migration") -> Iterator[None]:
    """Open a transaction holding the migration lock; commit on a normal exit, roll back on an exception."""
    timeout = check_seconds(timeout, "the migration lock timeout", zero="do not wait")
    if db.in_transaction():
        raise MigrationError("the migration runner must start its own transaction (call it outside db.atomic())")
    if is_postgres(db):
        with db.atomic():
            _check_client_connection(db)
            _poll_advisory_lock(db, timeout, lock_key(history_table))
            yield
        return
    if is_sqlite(db):
        with foreign_keys_off(db), ExitStack() as stack:
            previous = int(execute(db, "PRAGMA busy_timeout").fetchone()[0])
            execute(db, f"PRAGMA busy_timeout = {max(0, int(timeout * 1000))}")
            try:
                stack.enter_context(db.transaction(lock_type="IMMEDIATE"))
            except peewee.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                raise MigrationLockTimeoutError(
                    f"another connection (a migration runner, or the application writing) has held the write "
                    f"lock on this SQLite database for more than {timeout:.3g}s: wait for it to finish, or pass a "
                    "longer --lock-timeout"
                ) from None
            finally:
                execute(db, f"PRAGMA busy_timeout = {previous}")
            yield
        return
    raise MigrationError(f"no migration lock for {type(db).__name__}; orm-kit migrates SQLite and PostgreSQL")


def _poll_advisory_lock(db: peewee.Database, timeout: float, key: int) -> None:
    # Polling try-lock rather than a blocking lock: nothing waits in the server's lock queue, no
    # session-level lock_timeout is needed (a pooler may hand the session to someone else), and
    # the runner decides how long to wait.
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        if execute(db, "SELECT pg_try_advisory_xact_lock(%s)", (key,)).fetchone()[0]:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            holder = advisory_lock_holder(db, key)
            end = f"; to end it now: SELECT pg_terminate_backend({holder.split()[1]})" if holder else ""
            raise MigrationLockTimeoutError(
                f"another migration runner ({holder or 'a session that has since let go'}) has held the migration "
                f"lock (advisory lock {key}) for more than {timeout:.3g}s: wait for it to finish, or pass a longer "
                f"--lock-timeout (a killed runner's lock goes with its transaction; on PostgreSQL 14+ the server "
                f"notices a dead runner within about a second, even mid-statement{end})"
            )
        time.sleep(min(_POLL_SECONDS[min(attempt, len(_POLL_SECONDS) - 1)], remaining))
        attempt += 1


def _check_client_connection(db: peewee.Database) -> None:
    # Without this a SIGKILLed runner's backend finishes its current statement (a long backfill, a
    # pg_sleep) before it notices the client is gone, and holds the lock until then. SET LOCAL ends with
    # the transaction; a savepoint keeps the transaction usable where the setting is unknown (before 14)
    # or unsupported by the server's OS.
    with suppress(peewee.DatabaseError), db.atomic():
        execute(db, "SET LOCAL client_connection_check_interval = '1s'")


def advisory_lock_holder(db: peewee.Database, key: int) -> str | None:
    """``pid N (...)`` of the PostgreSQL backend holding advisory lock ``key`` in this database, or None."""
    row = execute(db, """
        SELECT l.pid, a.application_name, a.client_addr, a.state,
               EXTRACT(EPOCH FROM now() - COALESCE(a.xact_start, a.backend_start))::int
        FROM pg_locks AS l LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid
        LIMIT 1""", ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF)).fetchone()
    if row is None:
        return None
    pid, application, client, state, seconds = row
    details = [f"application {application!r}" if application else "", f"from {client}" if client else "",
               str(state or ""), f"in its transaction for {seconds} s" if seconds is not None else ""]
    shown = ", ".join(d for d in details if d)
    return f"pid {pid}" + (f" ({shown})" if shown else "")


def _claim_file(db: peewee.Database) -> Path | None:
    name = str(db.database or "")
    if not name or name == ":memory:" or name.startswith("file:"):
        return None  # no file another process could open
    return Path(f"{name}-migration.lock")


@contextmanager
def run_claim(db: peewee.Database, history_table: str = "schema_migration") -> Iterator[None]:
    """Mark this process as running an ``atomic = False`` migration until the block ends (or the process dies).

    Take it while holding :func:`migration_lock`; let it go while holding the lock again, so that whoever
    holds the migration lock sees a claim exactly when a ``running`` history row is alive.
    """
    if transaction_pooled(db):
        raise MigrationError(
            "work outside a transaction (an atomic = False migration, or the steps orm-kit runs after a "
            "migration's commit, such as CREATE INDEX CONCURRENTLY on a table in use) needs a server session of "
            "its own, which a transaction pooler cannot give: run `orm-kit migrate` against the server directly "
            f"or through a session-mode pool: set {DIRECT_ENV_VAR} (or pass --direct-database) to that URL, and "
            "keep the pooled one (?pgbouncer=transaction) for the application")
    if is_postgres(db):
        keeper = peewee.PostgresqlDatabase(db.database, prefer_psycopg3=True, **db.connect_params)
        keeper.connect()
        try:
            # Session-level, on a connection of its own that stays idle *outside* a transaction: an open
            # transaction would make CREATE INDEX CONCURRENTLY (the usual atomic = False migration) wait
            # for it forever.
            key = lock_key(history_table, "running")
            if not execute(keeper, "SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
                raise MigrationError(
                    f"another runner ({advisory_lock_holder(keeper, key)}) claims an atomic = False migration "
                    "although the history shows none running: wait for it, then run `orm-kit migrate status`")
            with _working_session(db, history_table):
                yield
        finally:
            keeper.close()  # the session, and with it the lock, ends here
        return
    path = _claim_file(db) if is_sqlite(db) else None
    if path is None or fcntl is None:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # others only probe it, for an instant
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
        # Gone before the lock is: a probe that finds no file knows nobody is running.
        with suppress(OSError):
            path.unlink()
    finally:
        os.close(fd)


@contextmanager
def _working_session(db: peewee.Database, history_table: str) -> Iterator[None]:
    """The claim's part on the connection the migration runs on: alive as long as the server runs its work."""
    key = lock_key(history_table, "working")
    if not execute(db, "SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
        raise MigrationError(
            f"a statement of an earlier atomic = False run is still running on the server "
            f"({advisory_lock_holder(db, key)}): wait for it to end, then run `orm-kit migrate status`")
    before = None
    # Session-level, so put back afterwards; in a savepoint where the claim is taken inside a transaction,
    # so a server without the setting (before 14, or without the OS support) leaves the transaction usable.
    with suppress(peewee.DatabaseError), db.atomic():
        before = execute(db, "SELECT current_setting('client_connection_check_interval')").fetchone()[0]
        execute(db, "SET client_connection_check_interval = '1s'")
    try:
        yield
    finally:
        # A broken connection has no lock left to let go of; a savepoint keeps a caller's transaction usable.
        with suppress(peewee.DatabaseError, peewee.InterfaceError), db.atomic():
            if before is not None:
                execute(db, "SELECT set_config('client_connection_check_interval', %s, false)", (before,))
            execute(db, "SELECT pg_advisory_unlock(%s)", (key,))


def run_claim_holder(db: peewee.Database, history_table: str = "schema_migration") -> str | None:
    """Who holds the run claim (``pid N ...``), or None when no live process does: neither the runner, nor a
    statement it left running on the server when it died."""
    if is_postgres(db):
        runner = advisory_lock_holder(db, lock_key(history_table, "running"))
        if runner is not None:
            return runner
        orphan = advisory_lock_holder(db, lock_key(history_table, "working"))
        if orphan is None:
            return None
        pid = orphan.split()[1]
        return (f"{orphan}, a statement its runner left running on the server when it died; the run is over when "
                f"that statement ends (to end it now: SELECT pg_terminate_backend({pid}))")
    path = _claim_file(db) if is_sqlite(db) else None
    if path is None or fcntl is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.read(fd, 32).decode(errors="replace").strip()
            return f"pid {pid or '?'}"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
