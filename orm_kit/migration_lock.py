"""One migration runner at a time per database, held for a transaction and gone when the process dies.

    with migration_lock(db, timeout=30.0):     # BEGIN ... lock taken ... COMMIT on exit
        ...read the history, run migrations in savepoints, record them...

PostgreSQL: a transaction-scoped advisory lock (``pg_try_advisory_xact_lock``), polled until ``timeout``.
It needs nothing session-level, so it works behind a transaction pooler (PgBouncer in transaction mode),
and the server drops it with the transaction, also when the runner is killed with SIGKILL.

SQLite: the database's write lock, taken up front with ``BEGIN IMMEDIATE`` and a busy timeout of
``timeout``. Foreign keys are switched off *before* ``BEGIN`` (``PRAGMA foreign_keys`` is a no-op inside a
transaction) so that the table rebuilds SQLite needs for many ALTERs cannot cascade-delete child rows; the
runner checks ``PRAGMA foreign_key_check`` before every commit instead. The OS drops the lock with the process.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import peewee

from orm_kit._sql import execute
from orm_kit.db import is_postgres, is_sqlite
from orm_kit.errors import MigrationError, MigrationLockTimeoutError

__all__ = ["DEFAULT_LOCK_TIMEOUT", "foreign_keys_off", "lock_key", "migration_lock"]

DEFAULT_LOCK_TIMEOUT = 60.0
_POLL_SECONDS = (0.05, 0.1, 0.2, 0.5)


def lock_key(history_table: str) -> int:
    """The advisory-lock key of a history table: a stable signed 64-bit number (per database on PostgreSQL)."""
    digest = hashlib.sha256(f"orm-kit migrations {history_table}".encode()).digest()
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
    if db.in_transaction():
        raise MigrationError("the migration runner must start its own transaction (call it outside db.atomic())")
    if is_postgres(db):
        with db.atomic():
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
                    f"another migration runner has held the write lock on this SQLite database for more "
                    f"than {timeout:g}s (wait for it to finish, or pass a longer --lock-timeout)"
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
            raise MigrationLockTimeoutError(
                f"another migration runner has held the migration lock (advisory lock {key}) for more than "
                f"{timeout:g}s (wait for it to finish, or pass a longer --lock-timeout; the lock is released "
                "as soon as that runner's transaction ends, even if it is killed)"
            )
        time.sleep(min(_POLL_SECONDS[min(attempt, len(_POLL_SECONDS) - 1)], remaining))
        attempt += 1
