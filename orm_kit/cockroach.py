"""CockroachDB through peewee's ``CockroachDatabase``, with orm-kit's transactions and retries.

    import orm_kit
    from orm_kit import RetryPolicy, run_in_transaction

    db = orm_kit.connect("cockroachdb://app:secret@crdb:26257/platform?sslmode=verify-full")
    run_in_transaction(db, lambda: transfer(db, 10), retry=RetryPolicy(attempts=10))

CockroachDB runs every transaction SERIALIZABLE and asks the client to run it again when it fails
with SQLSTATE 40001. orm-kit's :func:`~orm_kit.transactions.run_in_transaction` does that: it rolls
the whole transaction back and runs it again from the top, with backoff, bounded in attempts and time.
peewee's ``run_transaction`` retries inside one transaction instead (``ROLLBACK TO SAVEPOINT
cockroach_restart``); against PostgreSQL that never succeeds (the snapshot stays) and a 40001 raised
at COMMIT escapes it, so here it is refused with a pointer to ``run_in_transaction``.

* ``transaction(db, isolation="serializable")`` works (an explicit ``BEGIN TRANSACTION ISOLATION LEVEL
  SERIALIZABLE``; peewee's class raised TypeError for any ``isolation``). Weaker levels are refused:
  CockroachDB quietly runs them SERIALIZABLE unless a cluster setting allows them, so asking for one
  would not say what you get.
* SQLSTATE 40003 (the commit's outcome is unknown) raises
  :class:`~orm_kit.errors.CommitOutcomeUnknownError` and is never retried: the transaction may have
  committed, and running it again could apply it twice.

Not tested against a real CockroachDB (it cannot be installed where orm-kit is built); the retry
path is tested against PostgreSQL SERIALIZABLE with failures injected at a statement and at COMMIT.
"""

from __future__ import annotations

from typing import Any, NoReturn

import peewee
from peewee import __exception_wrapper__ as _driver_errors  # type: ignore[attr-defined]  # not in the stubs
from playhouse.cockroachdb import NESTED_TX_MIN_VERSION, _crdb_atomic
from playhouse.cockroachdb import CockroachDatabase as _PeeweeCockroachDatabase

from orm_kit.backends import DriverErrors, UTCSessions
from orm_kit.errors import ConfigurationError

__all__ = ["CockroachDatabase"]

_USE_RUN_IN_TRANSACTION = (
    "peewee's {name}() retries inside one transaction and lets a 40001 raised at COMMIT escape; use "
    "orm_kit.run_in_transaction(db, fn, retry=orm_kit.RetryPolicy()) (or @transactional(db, retry=...)), "
    "which runs the whole transaction again"
)


class CockroachDatabase(DriverErrors, UTCSessions, _PeeweeCockroachDatabase):
    """peewee's CockroachDB database: ``isolation_level`` accepted by ``atomic()``, retries left to orm-kit."""

    def atomic(self, system_time: Any = None, priority: Any = None, isolation_level: str | None = None) -> Any:
        """A transaction (or savepoint) block; ``isolation_level`` applies to the outermost one."""
        if self.is_closed():
            self.connect()  # sets server_version, as peewee's does
        if self.server_version < NESTED_TX_MIN_VERSION:  # CockroachDB before 20.1: no savepoints
            return _crdb_atomic(self, system_time=system_time, priority=priority, isolation_level=isolation_level)
        return peewee._atomic(self, system_time=system_time, priority=priority,  # handed on to begin()
                              isolation_level=isolation_level)

    # Takes both peewee's PostgreSQL begin(isolation_level) and its CockroachDB begin(system_time, priority).
    def begin(  # type: ignore[override]
            self, isolation_level: str | None = None, system_time: Any = None, priority: Any = None) -> None:
        """``BEGIN`` (with an explicit isolation level when one is asked for), then peewee's options."""
        if isolation_level is None:
            super().begin(system_time, priority)  # type: ignore[no-untyped-call]  # playhouse is untyped
            return
        level = str(isolation_level).upper()
        if level != "SERIALIZABLE":
            raise ConfigurationError(
                f"CockroachDB isolation {isolation_level!r} is not one orm-kit can promise: CockroachDB runs it "
                "SERIALIZABLE unless a cluster setting allows it; ask for 'serializable' (the default)")
        if priority is not None and str(priority).lower() not in ("low", "normal", "high"):
            raise ConfigurationError(f"CockroachDB priority {priority!r}; expected low, normal or high")
        cursor: Any = self.cursor()  # type: ignore[no-untyped-call]  # untyped in the stubs
        with _driver_errors:
            cursor.execute("BEGIN TRANSACTION ISOLATION LEVEL SERIALIZABLE")
            if system_time is not None:
                cursor.execute("SET TRANSACTION AS OF SYSTEM TIME %s", (system_time,))
            if priority is not None:
                cursor.execute(f"SET TRANSACTION PRIORITY {str(priority).lower()}")

    def run_transaction(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused: use :func:`orm_kit.run_in_transaction`."""
        raise ConfigurationError(_USE_RUN_IN_TRANSACTION.format(name="run_transaction"))

    def retry_transaction(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused: use ``@orm_kit.transactional(db, retry=RetryPolicy())``."""
        raise ConfigurationError(_USE_RUN_IN_TRANSACTION.format(name="retry_transaction"))
