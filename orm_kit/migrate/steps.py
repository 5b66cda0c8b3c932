"""What a migration runs after its transaction committed: the slow, non-blocking halves of the safe forms.

    migrator.migrate(migrator.add_index("deployment", ("region",), False))   # PostgreSQL, a table that existed
    migrator.deferred    # [ConcurrentIndex(table='deployment', name='deployment_region', sql='CREATE INDEX
                         #   CONCURRENTLY IF NOT EXISTS "deployment_region" ON "deployment" ("region")')]
    step.run(db, context)    # live: outside the migration's transaction, under the lock policy, retried
    step.run_inline(db)      # a scratch database (or SQLite): inside the caller's transaction

Three kinds, all safe to run again after a failure or a crash:

* :class:`ConcurrentIndex`: ``CREATE INDEX CONCURRENTLY IF NOT EXISTS`` outside any transaction. A build
  that fails (or is cancelled by its lock timeout) leaves an INVALID index behind; it is dropped with
  ``DROP INDEX CONCURRENTLY`` before the next attempt and after the last, as is one a crashed run left.
* :class:`ShortTransaction`: statements in a transaction of their own (``VALIDATE CONSTRAINT``, which
  scans the table under a SHARE UPDATE EXCLUSIVE lock that blocks neither reads nor writes; ``SET NOT
  NULL`` once a validated CHECK proves it, which PostgreSQL 12+ then does without a scan).
* :class:`Backfill`: an UPDATE in batches over the primary key, each batch its own short transaction
  (so row locks are held for one batch, and no DDL lock at all), reporting progress.

Each runs under the migration's :class:`~orm_kit.migrate.lockwait.LockPolicy`: a short ``lock_timeout``,
retried with growing ones.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import peewee

from orm_kit._sql import execute, fetchall, inline, quote, scalar
from orm_kit.dialect import is_postgres
from orm_kit.errors import MigrationError, first_line
from orm_kit.migrate.lockwait import (
    BlockerWatch,
    LockPolicy,
    LockWaitsExhausted,
    limit_waits,
    run_with_lock_retries,
    session_limits,
)

__all__ = ["Backfill", "ConcurrentIndex", "ShortTransaction", "Step", "StepContext", "render_assignments"]


@dataclass
class StepContext:
    """What a step needs from the runner: the lock policy, the blocker watch, where progress goes, whose step."""

    policy: LockPolicy
    watch: BlockerWatch | None = None
    report: Callable[[str], None] | None = None
    migration: str = "a migration"

    def say(self, line: str) -> None:
        """Report one line of progress, if anyone listens."""
        if self.report is not None:
            self.report(line)


class Step(ABC):
    """One deferred step of a migration."""

    table: str

    @abstractmethod
    def describe(self) -> str:
        """What it does, in one line (its SQL, or a summary for a batched step)."""

    @abstractmethod
    def run(self, db: peewee.Database, context: StepContext) -> None:
        """Run it on the live database, outside any transaction of the caller's."""

    @abstractmethod
    def run_inline(self, db: peewee.Database) -> None:
        """Run it inside the caller's transaction (a scratch database, where nobody else is waiting)."""

    def retried(self, db: peewee.Database, context: StepContext, work: Callable[[float], None],
                cleanup: Callable[[], None] | None = None) -> None:
        """``work(lock_timeout)`` under the lock policy; a :class:`MigrationError` naming the blocker on giving up."""
        try:
            run_with_lock_retries(context.policy, work, watch=context.watch, table=self.table,
                                  what=f"{context.migration}: {self.describe()}", report=context.say,
                                  before_retry=cleanup)
        except LockWaitsExhausted as exc:
            raise MigrationError(exc.detail) from None


def _follow(db: peewee.Database, context: StepContext) -> None:
    if context.watch is not None:
        context.watch.follow(db)


@dataclass
class ConcurrentIndex(Step):
    """``CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS`` on a table in use; an invalid leftover is dropped."""

    table: str
    name: str
    sql: str

    def describe(self) -> str:
        return self.sql

    def run(self, db: peewee.Database, context: StepContext) -> None:
        def build(lock_timeout: float) -> None:
            # No statement_timeout: the build blocks no reads and no writes, however long it takes. Dropping an
            # earlier attempt's INVALID leftover waits for the same transactions the build does, so it is part
            # of the attempt (IF NOT EXISTS would otherwise keep the invalid index).
            with session_limits(db, lock_timeout, 0):
                _follow(db, context)
                if self._drop_if_invalid(db):
                    context.say(f"{context.migration}: dropped the invalid index {self.name} an interrupted build left")
                execute(db, self.sql)

        try:
            self.retried(db, context, build)
        except Exception as exc:
            try:
                with session_limits(db, context.policy.lock_timeout, 0):
                    self._drop_if_invalid(db)
            except peewee.DatabaseError as cleanup:
                reason = str(exc) if isinstance(exc, MigrationError) else first_line(exc)
                raise MigrationError(
                    f"{reason}; the INVALID index {self.name} it left could not be dropped yet "
                    f"({first_line(cleanup, typed=False)}): the next run drops it before building again, or drop it "
                    f"by hand with DROP INDEX CONCURRENTLY {quote(self.name)}") from None
            raise

    def run_inline(self, db: peewee.Database) -> None:
        execute(db, self.sql)  # a scratch database builds it without CONCURRENTLY

    def _drop_if_invalid(self, db: peewee.Database) -> bool:
        invalid = scalar(db, """
            SELECT NOT ix.indisvalid FROM pg_index AS ix JOIN pg_class AS c ON c.oid = ix.indexrelid
            WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace""", (self.name,))
        if invalid:
            execute(db, f"DROP INDEX CONCURRENTLY IF EXISTS {quote(self.name)}")
        return bool(invalid)


@dataclass
class ShortTransaction(Step):
    """Statements in a transaction of their own; ``long`` ones (a validation scan) get no statement timeout.

    ``only_if`` (SQL giving one boolean, and its parameters) makes it safe to run again: when it says no, the
    work is already done (by an earlier run that crashed or failed later) and the statements are skipped.
    """

    table: str
    statements: list[str]
    long: bool = False
    only_if: tuple[str, tuple[Any, ...]] | None = None

    def describe(self) -> str:
        return "; ".join(self.statements)

    def _wanted(self, db: peewee.Database) -> bool:
        return self.only_if is None or bool(scalar(db, *self.only_if))

    def run(self, db: peewee.Database, context: StepContext) -> None:
        def once(lock_timeout: float) -> None:
            with db.atomic():
                limit_waits(db, lock_timeout, 0 if self.long else context.policy.statement_timeout)
                _follow(db, context)
                if self._wanted(db):
                    for sql in self.statements:
                        execute(db, sql)

        self.retried(db, context, once)

    def run_inline(self, db: peewee.Database) -> None:
        if self._wanted(db):
            for sql in self.statements:
                execute(db, sql)


def render_assignments(db: peewee.Database, values: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """``"a" = %s, "b" = <SQL>`` and its parameters: plain values are bound, peewee nodes (``SQL(...)``) inlined."""
    if not values:
        raise MigrationError("a backfill needs at least one column to set, e.g. {'region': 'eu'}")
    parts = []
    params: list[Any] = []
    for column, value in values.items():
        node = value if isinstance(value, peewee.Node) else peewee.Value(value)
        context: Any = db.get_sql_context()
        sql, found = context.sql(node).query()
        parts.append(f"{quote(column)} = {sql}")
        params.extend(found)
    return ", ".join(parts), params


@dataclass
class Backfill(Step):
    """``UPDATE table SET ... WHERE ...`` in batches of ``batch_size`` rows over the primary key ``key``."""

    table: str
    key: str
    assignments: str
    params: Sequence[Any]
    where: str | None = None
    batch_size: int = 10_000
    pause: float = 0.0
    counts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise MigrationError(f"backfill batch_size is {self.batch_size!r}; expected at least 1")

    def describe(self) -> str:
        where = f" WHERE {self.where}" if self.where else ""
        update = inline(f"UPDATE {quote(self.table)} SET {self.assignments}{where}", self.params)
        return f"{update}, in batches of {self.batch_size:,} rows over {quote(self.key)}, one transaction each"

    def _batch_sql(self, *, first: bool) -> str:
        table, key = quote(self.table), quote(self.key)
        conditions = [] if first else [f"{key} > %s"]
        if self.where:
            conditions.append(f"({self.where})")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        # The batch's last key in the database's own order of the key (max() has no uuid version): the next
        # batch starts after it.
        return (f"WITH batch AS (SELECT {key} FROM {table}{where} ORDER BY {key} LIMIT {self.batch_size}), "
                f"changed AS (UPDATE {table} SET {self.assignments} FROM batch WHERE {table}.{key} = batch.{key} "
                f"RETURNING 1) SELECT (SELECT {key} FROM batch ORDER BY {key} DESC LIMIT 1), "
                "(SELECT count(*) FROM changed)")

    def _batch(self, db: peewee.Database, after: Any) -> tuple[Any, int]:
        first = after is None
        params = ([] if first else [after]) + list(self.params)  # the batch's WHERE comes before the SET
        cursor, changed = fetchall(db, self._batch_sql(first=first), params)[0]
        return cursor, int(changed)

    def run(self, db: peewee.Database, context: StepContext) -> None:
        estimate = _estimated_rows(db, self.table)
        after: Any = None
        done = 0
        batches = 0
        last_said = time.monotonic()
        while True:
            found: list[tuple[Any, int]] = []

            def batch(lock_timeout: float) -> None:
                with db.atomic():
                    limit_waits(db, lock_timeout, context.policy.statement_timeout)
                    _follow(db, context)
                    found.append(self._batch(db, after))  # noqa: B023 - runs now, inside this iteration

            self.retried(db, context, batch)
            after, changed = found[-1]
            if after is None:
                break
            done += changed
            batches += 1
            if time.monotonic() - last_said >= 2.0:
                of = f" of about {estimate:,}" if estimate else ""
                context.say(f"{context.migration}: backfill {self.table}: {done:,}{of} rows ({batches} batches)")
                last_said = time.monotonic()
            if self.pause:
                time.sleep(self.pause)
        self.counts.append(done)
        context.say(f"{context.migration}: backfill {self.table}: done, {done:,} rows in {batches} batches")

    def run_inline(self, db: peewee.Database) -> None:
        if not is_postgres(db):
            where = f" WHERE {self.where}" if self.where else ""
            execute(db, f"UPDATE {quote(self.table)} SET {self.assignments}{where}", list(self.params))
            return
        after: Any = None
        while True:
            after, _ = self._batch(db, after)
            if after is None:
                return


def _estimated_rows(db: peewee.Database, table: str) -> int | None:
    found = scalar(db, "SELECT reltuples::bigint FROM pg_class WHERE relname = %s "
                       "AND relnamespace = current_schema()::regnamespace", (table,))
    return int(found) if found is not None and found >= 0 else None
