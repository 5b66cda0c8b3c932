"""Short lock waits for migration statements on PostgreSQL: ``lock_timeout``, growing retries, and who blocked.

    policy = LockPolicy(lock_timeout=2.0, retries=4, statement_timeout=60.0)
    [a.lock_timeout for a in policy.attempts()]       # [0.5, 1.0, 2.0, 2.0, 2.0]
    with BlockerWatch(db) as watch:                    # a second connection that sees what we wait for
        run_with_lock_retries(policy, work, watch=watch, what="0004_region up()")

    def work(lock_timeout):                            # one attempt: its own transaction, rolled back on failure
        with db.atomic():
            limit_waits(db, lock_timeout, policy.statement_timeout)   # SET LOCAL, so pooler-safe
            watch.follow(db)                           # sample pg_blocking_pids() of this backend
            ...

Why: a statement that waits for a table lock (``ALTER TABLE`` wants ACCESS EXCLUSIVE) sits in the lock
queue, and every later reader and writer of that table queues *behind* it. So the longest a migration
statement may wait is the longest the application may stall. Every migration statement therefore runs
under a short ``lock_timeout``; when it runs out the whole attempt is rolled back and tried again after a
pause, with a longer timeout (never longer than ``lock_timeout`` itself), a bounded number of times, as
GitLab's ``with_lock_retries`` does. The pauses let the queued application work drain between attempts.

When the last attempt gives up, :class:`LockWaitsExhausted` carries who was in the way: a thread with a
connection of its own (:class:`BlockerWatch`) samples ``pg_blocking_pids()`` of the migrating backend
while it waits (after the timeout fires, the wait and with it the answer are gone), joined with
``pg_locks`` and ``pg_stat_activity`` for the table, the blocker's pid, its state, its query, and how long
its transaction has been open.

A ``statement_timeout`` bounds every statement of a migration's transaction (the time it may hold
the locks it took); the steps that run after the commit without blocking anyone (concurrent index
builds, constraint validation, batched backfills) run without one. SQLite has one writer at a time and
no lock queue per table: none of this applies there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

import peewee

from orm_kit._sql import execute, fetchall, scalar
from orm_kit.bounds import MAX_RETRIES, check_count, check_seconds
from orm_kit.errors import sqlstate

__all__ = [
    "DEFAULT_LOCK_RETRIES",
    "DEFAULT_STATEMENT_LOCK_TIMEOUT",
    "DEFAULT_STATEMENT_TIMEOUT",
    "Attempt",
    "Blocker",
    "BlockerWatch",
    "LockPolicy",
    "LockWaitsExhausted",
    "describe_blockers",
    "is_lock_timeout",
    "is_statement_timeout",
    "limit_waits",
    "run_with_lock_retries",
    "session_limits",
    "sqlstate",
]

T = TypeVar("T")

DEFAULT_STATEMENT_LOCK_TIMEOUT = 2.0
DEFAULT_LOCK_RETRIES = 4
DEFAULT_STATEMENT_TIMEOUT = 60.0
_LOCK_NOT_AVAILABLE = "55P03"
_QUERY_CANCELED = "57014"


@dataclass(frozen=True)
class Attempt:
    """One try of a statement: its number (1-based), its ``lock_timeout``, and the pause before the next."""

    number: int
    of: int
    lock_timeout: float
    pause_after: float


@dataclass(frozen=True)
class LockPolicy:
    """How long migration statements may wait for locks, how often they are retried, how long they may run.

    ``lock_timeout`` (seconds) is the longest one attempt waits, so the longest the application queues
    behind a migration; the first attempts wait less (a quarter, then half of it). ``retries`` more
    attempts follow a failed one, after pauses of 0.5 s, 1 s, 2 s ... (at most 10 s). ``statement_timeout``
    (seconds, 0 for none) bounds each statement of a migration's transaction.
    """

    lock_timeout: float = DEFAULT_STATEMENT_LOCK_TIMEOUT
    retries: int = DEFAULT_LOCK_RETRIES
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT

    def __post_init__(self) -> None:
        # A migration statement must never wait for a lock without a bound: no zero here.
        check_seconds(self.lock_timeout, "the statement lock timeout")
        check_count(self.retries, "lock retries", low=0, high=MAX_RETRIES)
        check_seconds(self.statement_timeout, "the statement timeout", zero="no limit")

    def attempts(self) -> list[Attempt]:
        """Every attempt in order: growing lock timeouts up to ``lock_timeout``, growing pauses between them."""
        count = self.retries + 1
        shift = min(2, count - 1)  # the first of three or more attempts waits a quarter of the limit
        return [Attempt(i + 1, count, min(self.lock_timeout, self.lock_timeout * 2.0 ** (i - shift)),
                        0.0 if i == count - 1 else min(10.0, 0.5 * 2.0 ** i)) for i in range(count)]

    def describe(self) -> str:
        """``lock_timeout 0.5 s growing to 2 s over 5 attempts, statement_timeout 60 s``."""
        first, last = self.attempts()[0], self.attempts()[-1]
        waits = (f"lock_timeout {_s(first.lock_timeout)}" if first.lock_timeout == last.lock_timeout else
                 f"lock_timeout {_s(first.lock_timeout)} growing to {_s(last.lock_timeout)}")
        tries = f"{last.of} attempts" if last.of > 1 else "1 attempt"
        ends = f"statement_timeout {_s(self.statement_timeout)}" if self.statement_timeout else "no statement_timeout"
        return f"{waits} over {tries}, {ends}"


def _s(seconds: float) -> str:
    return f"{seconds:g} s"


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000)) if seconds > 0 else 0


def limit_waits(db: peewee.Database, lock_timeout: float, statement_timeout: float) -> None:
    """``SET LOCAL`` both timeouts for the rest of the current transaction (gone at COMMIT or ROLLBACK)."""
    execute(db, f"SET LOCAL lock_timeout = {_ms(lock_timeout)}")
    execute(db, f"SET LOCAL statement_timeout = {_ms(statement_timeout)}")


@contextmanager
def session_limits(db: peewee.Database, lock_timeout: float, statement_timeout: float) -> Iterator[None]:
    """Both timeouts for statements run outside a transaction (``CREATE INDEX CONCURRENTLY``); restored after."""
    before = fetchall(db, "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')")[0]
    execute(db, f"SET lock_timeout = {_ms(lock_timeout)}")
    execute(db, f"SET statement_timeout = {_ms(statement_timeout)}")
    try:
        yield
    finally:
        with suppress(peewee.DatabaseError):  # a broken connection has no settings left to restore
            execute(db, "SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)",
                    before)


def is_lock_timeout(exc: BaseException) -> bool:
    """True when ``exc`` is PostgreSQL's "canceling statement due to lock timeout" (SQLSTATE 55P03)."""
    return sqlstate(exc) == _LOCK_NOT_AVAILABLE


def is_statement_timeout(exc: BaseException) -> bool:
    """True when ``exc`` is PostgreSQL's "canceling statement due to statement timeout"."""
    return sqlstate(exc) == _QUERY_CANCELED and "statement timeout" in str(exc)


@dataclass(frozen=True)
class Blocker:
    """A backend the watched one waited for, and what for: the table (or None for a row or a transaction)."""

    pid: int
    table: str | None
    wanted: str
    state: str | None
    query: str | None
    transaction_seconds: float | None
    application: str | None

    def __str__(self) -> str:
        parts = [f"application {self.application!r}" if self.application else "", self.state or ""]
        if self.transaction_seconds is not None:
            parts.append(f"its transaction open for {self.transaction_seconds:.1f} s")
        if self.query:
            query = " ".join(self.query.split())
            parts.append(f"{'last ' if self.state != 'active' else ''}query: {query[:200]}"
                         + ("..." if len(query) > 200 else ""))
        shown = ", ".join(p for p in parts if p)
        return f"pid {self.pid}" + (f" ({shown})" if shown else "")


def describe_blockers(blockers: Sequence[Blocker], table: str | None = None) -> str:
    """``an ACCESS EXCLUSIVE lock on table deployment, held by pid 4121 (...)``, or why nobody is named."""
    if not blockers:
        on = f" on table {table}" if table else ""
        return (f"a lock{on}, held by a transaction that had let go by the time it was looked for "
                "(see pg_stat_activity)")
    first = blockers[0]
    where = first.table or table
    what = f"{first.wanted} on table {where}" if where else first.wanted
    pids = sorted({b.pid for b in blockers})
    holders = "; ".join(str(b) for b in {b.pid: b for b in blockers}.values())
    end = " or ".join(f"SELECT pg_terminate_backend({pid})" for pid in pids[:3])
    return f"{what}, held by {holders} (to end it: {end})"


_WAITS = """
    SELECT w.locktype, w.mode, c.relname, b.pid, b.application_name, b.state, b.query,
           EXTRACT(EPOCH FROM clock_timestamp() - b.xact_start)::float8
    FROM pg_locks AS w
    LEFT JOIN pg_class AS c ON c.oid = w.relation
    CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS bp(pid)
    JOIN pg_stat_activity AS b ON b.pid = bp.pid
    WHERE w.pid = %s AND NOT w.granted
    ORDER BY b.xact_start NULLS LAST"""

_MODES = {"AccessExclusiveLock": "ACCESS EXCLUSIVE", "ExclusiveLock": "EXCLUSIVE",
          "ShareRowExclusiveLock": "SHARE ROW EXCLUSIVE", "ShareLock": "SHARE",
          "ShareUpdateExclusiveLock": "SHARE UPDATE EXCLUSIVE", "RowExclusiveLock": "ROW EXCLUSIVE",
          "RowShareLock": "ROW SHARE", "AccessShareLock": "ACCESS SHARE"}


def _wanted(locktype: str, mode: str) -> str:
    if locktype == "relation":
        shown = _MODES.get(mode, mode)
        return f"{'an' if shown[0] in 'AEIOU' else 'a'} {shown} lock"
    if locktype == "transactionid":
        return "a row lock (another transaction is changing the same rows)"
    if locktype == "virtualxid":
        return "older transactions to end (a concurrent index build waits for them)"
    return f"a {locktype} lock"


class BlockerWatch:
    """A background thread with its own connection that notes who blocks a backend while it waits.

    ``follow(db)`` points it at ``db``'s current backend (call it inside the transaction: behind a
    transaction pooler the backend is only yours for that long); ``blockers()`` is the last non-empty
    sample since then. Diagnostics only: if its connection fails, it stops and names nobody.
    """

    def __init__(self, db: peewee.Database, interval: float = 0.1) -> None:
        self._database = db.database
        self._params: dict[str, Any] = dict(db.connect_params)
        self._interval = interval
        self._pid: int | None = None
        self._seen: list[Blocker] = []
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> BlockerWatch:
        self._thread = threading.Thread(target=self._run, name="orm-kit-blocker-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def follow(self, db: peewee.Database) -> None:
        """Watch ``db``'s backend from now on, forgetting earlier samples."""
        pid = int(scalar(db, "SELECT pg_backend_pid()"))
        with self._guard:
            self._pid, self._seen = pid, []

    def blockers(self) -> list[Blocker]:
        """Who the followed backend last waited for (empty when it never waited while watched)."""
        with self._guard:
            return list(self._seen)

    def _run(self) -> None:
        watcher = peewee.PostgresqlDatabase(self._database, prefer_psycopg3=True, **self._params)
        try:
            watcher.connect()
            execute(watcher, "SET application_name = 'orm-kit blocker watch'")
            while not self._stop.wait(self._interval):
                with self._guard:
                    pid = self._pid
                if pid is None:
                    continue
                rows = fetchall(watcher, _WAITS, (pid,))
                if rows:
                    found = [Blocker(int(bpid), relname, _wanted(locktype, mode), state, query,
                                     None if seconds is None else float(seconds), application or None)
                             for locktype, mode, relname, bpid, application, state, query, seconds in rows]
                    with self._guard:
                        if self._pid == pid:
                            self._seen = found
        except peewee.DatabaseError:
            return  # diagnostics only: the migration goes on without them
        finally:
            with suppress(peewee.DatabaseError):
                watcher.close()


class LockWaitsExhausted(Exception):  # internal signal: callers raise MigrationBlockedError
    """Every attempt ran out of lock time; ``detail`` says what was waited for and who held it."""

    def __init__(self, detail: str, attempts: list[Attempt], blockers: list[Blocker]) -> None:
        self.detail = detail
        self.attempts = attempts
        self.blockers = blockers
        super().__init__(detail)


def run_with_lock_retries(policy: LockPolicy, work: Callable[[float], T], *, watch: BlockerWatch | None,
                          what: str | Callable[[], str], table: str | None = None,
                          report: Callable[[str], None] | None = None,
                          before_retry: Callable[[], None] | None = None) -> T:
    """``work(lock_timeout)`` until it does not run out of lock time; :class:`LockWaitsExhausted` after the last try.

    ``work`` must leave nothing behind when it fails (its own transaction, rolled back); ``before_retry``
    cleans up what cannot be rolled back (an invalid index left by a concurrent build). ``what`` names the
    work in progress reports (a callable when only the work itself finds out).
    """
    attempts = policy.attempts()
    for attempt in attempts:
        try:
            return work(attempt.lock_timeout)
        except Exception as exc:
            if not is_lock_timeout(exc):
                raise
            blockers = watch.blockers() if watch is not None else []
            waited = describe_blockers(blockers, table)
            if before_retry is not None:
                before_retry()
            if attempt.number == attempt.of:
                tried = ", ".join(_s(a.lock_timeout) for a in attempts)
                raise LockWaitsExhausted(
                    f"gave up after {attempt.of} attempt{'s' if attempt.of > 1 else ''} (lock_timeout {tried}) "
                    f"waiting for {waited}", attempts, blockers) from None
            if report is not None:
                name = what() if callable(what) else what
                report(f"{name}: waited {_s(attempt.lock_timeout)} for {waited}; trying again in "
                       f"{_s(attempt.pause_after)} (attempt {attempt.number + 1} of {attempt.of})")
            time.sleep(attempt.pause_after)
    raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover
