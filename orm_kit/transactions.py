"""Transactions over ``db.atomic()``: nesting, retries, and work that runs only after a commit.

    from orm_kit.transactions import RetryPolicy, on_commit, run_in_transaction, transaction, transactional

    with transaction(db):                          # BEGIN (IMMEDIATE on SQLite) ... COMMIT
        svc = services.create(name="checkout-api", tier="critical", owner=team)
        try:
            with transaction(db):                  # SAVEPOINT: a failure rolls back only this block
                services.create(name="Bad Name", tier="critical", owner=team)
        except ValidationError:
            pass
        on_commit(db, lambda: notify(svc.name))    # after the outermost COMMIT; never after a rollback

    @transactional(db, retry=RetryPolicy(attempts=5, max_seconds=2.0))
    def promote(deployment_id): ...               # run again from the top on a serialization failure

Where SQLite and PostgreSQL differ, said once, here:

* SQLite has one writer at a time. :func:`orm_kit.db.open_database` opens it with
  ``lock_type=IMMEDIATE``, so the outermost ``BEGIN`` takes the write lock up front and a second
  writer waits (up to the busy timeout) at ``BEGIN`` instead of failing half-way when it would
  upgrade a read lock. When the wait runs out SQLite says ``SQLITE_BUSY`` ("database is locked"):
  retryable. Transactions are serializable by construction, so ``isolation`` changes nothing there.
* PostgreSQL runs ``READ COMMITTED`` unless ``isolation`` asks for ``"repeatable read"`` or
  ``"serializable"``; then a transaction that conflicts with a concurrent one fails with SQLSTATE
  40001 (serialization failure), and lock cycles fail with 40P01 (deadlock). Both are retryable: the
  whole transaction runs again from the top, which is why retries belong to the outermost block.

* CockroachDB (:mod:`orm_kit.cockroach`) runs every transaction SERIALIZABLE and says 40001 when one
  must run again: :func:`run_in_transaction` does that. Weaker ``isolation`` levels are refused there.

A transaction whose COMMIT has an unknown outcome is never run again: SQLSTATE 40003 (CockroachDB's
"result is ambiguous") or a connection lost while committing raise :class:`CommitOutcomeUnknownError`,
because the first attempt may have committed and a second would apply the work twice.

peewee 4.5 wraps driver errors in its own classes; the driver's exception (carrying ``sqlstate`` or
``sqlite_errorcode``) is the wrapped error's ``__context__``. :func:`retryable_reason` looks there.

``db.after_commit(fn)`` (peewee) runs ``fn`` after the outermost commit, but also keeps callbacks
registered inside a savepoint that was rolled back. :func:`on_commit` keeps one list per block
instead: a block that rolls back drops its hooks, one that succeeds hands them to its parent, and
the outermost runs them after COMMIT. peewee 4.5 keeps no record of its savepoints (a nested
``db.atomic()`` does not change ``transaction_depth()``), so the first :func:`transaction` or
:func:`on_commit` on a database makes its ``savepoint()`` report to these lists: from then on a plain
``db.atomic()`` nested anywhere (peewee's own, inside ``bulk_create()``, say) drops the hooks
registered in it when it rolls back, as a :func:`transaction` block does. Hooks registered in a plain
``db.atomic()`` with no :func:`transaction` around it go to ``db.after_commit``. Through a
``DatabaseProxy`` (whose ``savepoint()`` is its own) pass the database itself.

:func:`sandbox` is for tests: a transaction that always rolls back, inside which the code under test
behaves as it would on its own. Its outermost ``transaction()`` / ``db.atomic()`` blocks become
savepoints (peewee's nesting), and when one of them ends without an error its :func:`on_commit` hooks
run then, as they would after the real COMMIT (``orm_kit.testing``'s pytest plugin wraps every test in
one).
"""

from __future__ import annotations

import contextlib
import functools
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import peewee

from orm_kit import dialect, integrity
from orm_kit._shown import shown
from orm_kit._sql import execute, scalar
from orm_kit.backends import Savepoint
from orm_kit.bounds import MAX_RETRIES, check_count, check_seconds
from orm_kit.errors import (
    CommitOutcomeUnknownError,
    ConfigurationError,
    OrmKitError,
    RetryExhaustedError,
    TransactionUsageError,
    causes,
    own_sqlstate,
)

__all__ = [
    "ISOLATION_LEVELS",
    "RetryPolicy",
    "Sandbox",
    "commit_outcome_unknown",
    "on_commit",
    "retryable_reason",
    "run_in_transaction",
    "sandbox",
    "transaction",
    "transactional",
]

P = ParamSpec("P")
R = TypeVar("R")

ISOLATION_LEVELS = ("read committed", "repeatable read", "serializable")

_PG_RETRYABLE = {
    "40001": "serialization failure (SQLSTATE 40001)",
    "40P01": "deadlock detected (SQLSTATE 40P01)",
    # lock_timeout ran out (the retry budget sets it, see _LockWaits) or NOWAIT found the row locked
    "55P03": "lock not available (SQLSTATE 55P03)",
}
_PG_AMBIGUOUS = "40003"  # statement_completion_unknown: CockroachDB's "result is ambiguous"
# The server went away: admin shutdown, crash shutdown, cannot connect now; class 08 is the connection's.
_PG_CONNECTION_LOST = ("57P01", "57P02", "57P03")
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long :func:`run_in_transaction` retries: bounded in attempts AND in time.

    The delay before attempt ``n + 1`` is ``min(max_delay, base_delay * 2**(n - 1))`` scaled by a
    random factor in [0.5, 1] (so colliding writers do not collide again in lockstep). A retry whose
    delay would end past ``max_seconds`` since the first attempt is not made, and inside an attempt
    each wait for a lock (SQLite's busy timeout, PostgreSQL's ``lock_timeout``) is cut to the time
    left, so the whole call ends near ``max_seconds`` plus the time ``fn`` itself spends working.
    """

    attempts: int = 5
    max_seconds: float = 10.0
    base_delay: float = 0.01
    max_delay: float = 0.5

    def __post_init__(self) -> None:
        check_count(self.attempts, "RetryPolicy attempts", low=1, high=MAX_RETRIES + 1)
        check_seconds(self.max_seconds, "RetryPolicy max_seconds")
        check_seconds(self.base_delay, "RetryPolicy base_delay", zero="retry at once")
        check_seconds(self.max_delay, "RetryPolicy max_delay", zero="retry at once")

    def delay(self, attempt: int) -> float:
        """The pause after failed attempt number ``attempt`` (1-based)."""
        ceiling: float = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret


class _Frame:
    """One :func:`transaction` block of one thread: the hooks registered while it was innermost."""

    __slots__ = ("hooks",)

    def __init__(self) -> None:
        self.hooks: list[Callable[[], object]] = []


class Sandbox(_Frame):
    """The frame of a :func:`sandbox`: the blocks directly inside it stand for outermost transactions.

    ``hooks`` lists every :func:`on_commit` hook whose block "committed" inside the sandbox, in order,
    whether it ran (``run_hooks=True``, the default) or was only collected.
    """

    __slots__ = ("db", "run_hooks")

    def __init__(self, db: peewee.Database, run_hooks: bool) -> None:
        super().__init__()
        self.db = db
        self.run_hooks = run_hooks

    def committed(self, hooks: list[Callable[[], object]]) -> list[Callable[[], object]]:
        """Record hooks whose block ended well; return those to run now (all of them, unless collecting)."""
        self.hooks.extend(hooks)
        return list(hooks) if self.run_hooks else []


def _frames(db: peewee.Database) -> list[_Frame]:
    # The frames live on peewee's own connection state (private, so typed Any here) on purpose: they
    # must have exactly the scope of peewee's transaction stack, which lives there too. With the
    # default thread_safe=True that is a threading.local, so each thread has its own frames; with
    # thread_safe=False peewee shares one connection and one transaction between threads, and the
    # frames are shared with it (a thread's hook then belongs to the transaction its writes are in).
    # A WeakKeyDictionary of threading.locals would split the frames where peewee does not.
    state: Any = db._state  # type: ignore[attr-defined]  # missing from the stubs
    frames: list[_Frame] | None = getattr(state, "orm_kit_frames", None)
    if frames is None:
        frames = []
        state.orm_kit_frames = frames
        _track_savepoints(db)
    return frames


class _TrackedSavepoint(Savepoint):
    """peewee's savepoint, with a frame of its own: hooks registered in it go if it rolls back."""

    def __enter__(self) -> Any:
        entered = super().__enter__()
        self.frame = _Frame()
        _frames(self.db).append(self.frame)
        return entered

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        frames = _frames(self.db)
        _pop(frames, self.frame)
        result = super().__exit__(exc_type, exc, tb)  # a failed RELEASE rolls back and raises
        if exc_type is None:
            # Hooks come back only from a block directly inside a sandbox: there, this is the "commit".
            _run_hooks(_hand_over(self.db, frames, self.frame.hooks))
        return result


def _track_savepoints(db: peewee.Database) -> None:
    """Make ``db.savepoint()`` (which every nested ``db.atomic()`` calls) hand out tracked savepoints.

    An attribute of this database object only: peewee has no hook for savepoints, and patching its
    classes would change every database in the process.
    """
    if dialect.unwrap(db) is db and "savepoint" not in vars(db):
        db.savepoint = functools.partial(_TrackedSavepoint, db)  # type: ignore[method-assign]  # per instance, on purpose


def _pop(frames: list[_Frame], frame: _Frame) -> None:
    if not frames or frames[-1] is not frame:
        if frame in frames:  # the blocks opened inside it are abandoned with it
            del frames[frames.index(frame):]
        raise TransactionUsageError(
            "transaction blocks exited out of order (a block was left while one opened inside it was "
            "still open); leave nested blocks innermost first, e.g. with `with` statements"
        )
    frames.pop()


def _begin_options(db: peewee.Database, isolation: str | None) -> dict[str, Any]:
    if isolation is None:
        return {}
    level = isolation.lower() if isinstance(isolation, str) else None
    if level not in ISOLATION_LEVELS:
        raise ConfigurationError(
            f"isolation {shown(isolation)} is not a transaction isolation level; expected one of "
            f"{', '.join(ISOLATION_LEVELS)}"
        )
    if dialect.is_cockroach(db) and level != "serializable":
        raise ConfigurationError(
            f"isolation {isolation!r} on CockroachDB: it runs transactions SERIALIZABLE unless a cluster setting "
            "allows weaker levels, so orm-kit cannot promise this one; use isolation='serializable' (the default)")
    frames = _frames(db)
    if frames and isinstance(frames[-1], Sandbox):
        return {}  # the test's transaction is already open: its level stands (see sandbox())
    if db.transaction_depth() > 0:
        raise ConfigurationError(
            f"isolation {isolation!r} can only be set on the outermost transaction (this block is nested: "
            "a savepoint runs at its parent's level); set it where the transaction starts"
        )
    # SQLite is serializable whatever is asked, and its BEGIN takes a lock type instead.
    return {"isolation_level": level.upper()} if dialect.is_postgres(db) else {}


@contextlib.contextmanager
def transaction(db: peewee.Database, *, isolation: str | None = None) -> Iterator[None]:
    """A transaction block: the outermost one is BEGIN ... COMMIT, a nested one a SAVEPOINT.

    An exception leaving the block rolls back this block only (and propagates). ``isolation`` (outermost
    block, PostgreSQL) is one of :data:`ISOLATION_LEVELS`.
    """
    committed: list[Callable[[], object]] = []
    with _block(db, isolation, committed):
        yield
    _run_hooks(committed)


@contextlib.contextmanager
def _block(db: peewee.Database, isolation: str | None, committed: list[Callable[[], object]]) -> Iterator[None]:
    """:func:`transaction` without running the hooks: those of a committed outermost block go to ``committed``.

    :func:`run_in_transaction` runs them itself, after its retry loop, so a failing hook (even one
    raising a retryable database error) can never run a committed transaction a second time.
    """
    options = _begin_options(db, isolation)
    frames = _frames(db)
    frame = _Frame()
    frames.append(frame)
    outermost = db.transaction_depth() == 0
    committing = False
    try:
        with _CheckedTransaction(db, **options) if outermost and dialect.is_sqlite(db) else db.atomic(**options):
            yield
            committing = outermost
    except peewee.IntegrityError as exc:
        if committing and not isinstance(exc, OrmKitError):
            _raise_typed(db, exc)  # PostgreSQL: its diagnostics outlive the rollback
        raise
    finally:
        _pop(frames, frame)
    committed.extend(_hand_over(db, frames, frame.hooks))


class _CheckedTransaction(peewee._transaction):
    """peewee's outermost transaction on SQLite, whose COMMIT, refused by a deferred foreign key, is explained
    while the transaction is still open (SQLite keeps it open; peewee rolls it back right after)."""

    def commit(self, begin: bool = True) -> None:
        try:
            super().commit(begin)
        except peewee.IntegrityError as exc:
            _raise_typed(self.db, exc)
            raise


def _raise_typed(db: peewee.Database, exc: peewee.IntegrityError) -> None:
    """Raise the typed error for a COMMIT a deferred constraint refused (nothing when there is none)."""
    typed = integrity.at_commit(db, exc)
    if typed is not exc:
        raise typed from exc


def _hand_over(db: peewee.Database, frames: list[_Frame],
               hooks: list[Callable[[], object]]) -> list[Callable[[], object]]:
    """Give a released block's hooks to whoever decides next; the hooks to run now if nobody does."""
    if not hooks:
        return []
    if frames and isinstance(frames[-1], Sandbox):
        return frames[-1].committed(hooks)  # a block directly inside a sandbox "committed"
    if frames:
        frames[-1].hooks.extend(hooks)  # a savepoint was released: the parent decides
    elif db.in_transaction():
        for hook in hooks:  # inside a plain db.atomic(): peewee runs them on its commit
            db.after_commit(hook)
    else:
        return hooks  # the outermost block committed
    return []


def _run_hooks(hooks: list[Callable[[], object]]) -> None:
    # Every hook runs even if one fails (the data is committed either way); the first failure is raised.
    failure: BaseException | None = None
    for hook in hooks:
        try:
            hook()
        except Exception as exc:  # noqa: BLE001 - re-raised below, after the other hooks ran
            if failure is None:
                failure = exc
    if failure is not None:
        raise failure


class _RolledBack(peewee._transaction):
    """peewee's outermost transaction, except that leaving it always rolls back."""

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.db.pop_transaction()
        self.rollback(False)


@contextlib.contextmanager
def sandbox(db: peewee.Database, *, run_hooks: bool = True) -> Iterator[Sandbox]:
    """A transaction that always rolls back, in which the code under test behaves as it would alone (tests).

    Inside it, the code's own outermost ``transaction()`` / ``db.atomic()`` blocks are savepoints; when
    one ends without an error its :func:`on_commit` hooks run then (or, with ``run_hooks=False``, are
    only listed in ``Sandbox.hooks``), as they would after its COMMIT, and an ``on_commit`` outside any
    block runs at once. Such a block's ``isolation`` is not applied: the sandbox's transaction is open
    already. Everything written, by this thread's connection, is rolled back when the sandbox ends.
    """
    if db.in_transaction() or _frames(db):
        raise TransactionUsageError(
            "sandbox() must be the outermost transaction, and a transaction is already open on this "
            "connection; open the sandbox first and run the code under test inside it")
    frames = _frames(db)
    box = Sandbox(db, run_hooks)
    frames.append(box)
    try:
        with _RolledBack(db):
            yield box
    finally:
        _pop(frames, box)


def on_commit(db: peewee.Database, fn: Callable[[], object]) -> None:
    """Run ``fn`` after the outermost transaction commits; drop it if its block rolls back.

    Outside any transaction ``fn`` runs at once (there is nothing to wait for).
    """
    frames = _frames(db)
    if frames and isinstance(frames[-1], Sandbox):
        _run_hooks(frames[-1].committed([fn]))  # outside any block of the code under test: at once
    elif frames:
        frames[-1].hooks.append(fn)
    elif db.in_transaction():
        db.after_commit(fn)
    else:
        fn()


def retryable_reason(exc: BaseException) -> str | None:
    """Why running the transaction again could succeed (serialization failure, deadlock, busy), or None."""
    for error in causes(exc):
        state = own_sqlstate(error)
        if state in _PG_RETRYABLE:
            return _PG_RETRYABLE[state]
        code = getattr(error, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED):
            return f"SQLite database is locked ({getattr(error, 'sqlite_errorname', 'SQLITE_BUSY')})"
    return None


def commit_outcome_unknown(exc: BaseException, db: peewee.Database | None = None) -> str | None:
    """Why nobody can say whether the transaction ``exc`` ended committed, or None when that is known.

    SQLSTATE 40003 anywhere says so; with ``db`` (pass it only when the error came from COMMIT), so does
    a connection that was lost: the server may have committed before the client heard back.
    """
    for error in causes(exc):
        if own_sqlstate(error) == _PG_AMBIGUOUS:
            return "the database could not say whether it committed (SQLSTATE 40003)"
    if db is None:
        return None
    for error in causes(exc):
        state = own_sqlstate(error)
        if state in _PG_CONNECTION_LOST or (state or "").startswith("08"):
            return f"the connection was lost while committing (SQLSTATE {state})"
    conn: Any = getattr(getattr(db, "_state", None), "conn", None)  # peewee's state is not in the stubs
    if dialect.is_postgres(db) and conn is not None and (conn.closed or getattr(conn, "broken", False)):
        return "the connection was lost while committing"
    return None


class _LockWaits:
    """Keeps each lock wait of an attempt within the time the retry budget has left.

    SQLite waits for the write lock at ``BEGIN`` for up to its busy timeout (30 s by default), and
    PostgreSQL waits for a row lock for ever unless ``lock_timeout`` says otherwise; either would let
    one attempt overrun ``max_seconds``. So SQLite's ``busy_timeout`` is lowered before each ``BEGIN``
    (and put back afterwards: it belongs to the connection), and PostgreSQL gets ``SET LOCAL
    lock_timeout`` (which ends with the transaction). A smaller limit already in force is kept.
    """

    def __init__(self, db: peewee.Database) -> None:
        self.db = db
        self.sqlite = dialect.is_sqlite(db)
        self.postgres = dialect.is_postgres(db)
        self.session_ms = 0  # the connection's own limit; 0: waits for ever
        self.changed = False

    def __enter__(self) -> _LockWaits:
        if self.sqlite:
            self.session_ms = int(scalar(self.db, "PRAGMA busy_timeout"))
        elif self.postgres:
            self.session_ms = int(scalar(self.db, "SELECT setting FROM pg_settings WHERE name = 'lock_timeout'"))
        return self

    def _limit(self, seconds: float) -> int | None:
        """The wait to set (ms), or None when the connection's own is already within ``seconds``."""
        wanted = max(1, int(seconds * 1000))
        return None if 0 < self.session_ms <= wanted or (self.sqlite and self.session_ms == 0) else wanted

    def before_begin(self, seconds: float) -> None:
        limit = self._limit(seconds) if self.sqlite else None
        if limit is not None:
            execute(self.db, f"PRAGMA busy_timeout = {limit:d}")
            self.changed = True

    def after_begin(self, seconds: float) -> None:
        limit = self._limit(seconds) if self.postgres else None
        if limit is not None:
            execute(self.db, f"SET LOCAL lock_timeout = {limit:d}")

    def __exit__(self, *exc: object) -> None:
        if self.changed and not self.db.is_closed():
            execute(self.db, f"PRAGMA busy_timeout = {self.session_ms:d}")


def run_in_transaction(
    db: peewee.Database,
    fn: Callable[[], R],
    *,
    retry: RetryPolicy | None = None,
    isolation: str | None = None,
    sleep: Callable[[float], object] = time.sleep,
) -> R:
    """``fn()`` inside :func:`transaction`, run again from the top while the database says "retry".

    Retries stop at ``retry.attempts`` attempts or ``retry.max_seconds`` (whichever comes first) with
    :class:`RetryExhaustedError`, whose ``__cause__`` is the last failure. A commit whose outcome is
    unknown (SQLSTATE 40003, or the connection lost during COMMIT) raises
    :class:`CommitOutcomeUnknownError` at once: it is never retried. Called inside an outer
    transaction it cannot restart that transaction, so it runs ``fn`` once as a savepoint and lets the
    error reach the outermost retry. ``fn`` must not have effects outside the database that cannot be
    repeated: put those in :func:`on_commit`. Those hooks run once, after the commit and outside the
    retry loop: a hook that fails (even with a retryable database error) raises its error to the caller
    and never runs ``fn`` again.
    """
    policy = retry or RetryPolicy()
    if db.in_transaction():
        with transaction(db, isolation=isolation):  # nested: an isolation it cannot apply is an error
            return fn()
    started = time.monotonic()
    attempt = 0
    with _LockWaits(db) as lock_waits:
        while True:
            attempt += 1
            committed: list[Callable[[], object]] = []
            committing = False
            try:
                left = policy.max_seconds - (time.monotonic() - started)
                lock_waits.before_begin(left)
                with _block(db, isolation, committed):
                    lock_waits.after_begin(left)
                    result = fn()
                    committing = True  # what fails from here on is the COMMIT
            except peewee.DatabaseError as exc:
                unknown = commit_outcome_unknown(exc, db if committing else None)
                if unknown is not None:
                    raise CommitOutcomeUnknownError(
                        f"transaction attempt {attempt}: {unknown}; it was not run again, because it may have "
                        "committed: check whether its effect is there before doing it again (or make it "
                        "idempotent)",
                        attempts=attempt,
                    ) from exc
                reason = retryable_reason(exc)
                if reason is None:
                    raise
                elapsed = time.monotonic() - started
                pause = policy.delay(attempt)
                if attempt >= policy.attempts or elapsed + pause > policy.max_seconds:
                    raise RetryExhaustedError(
                        f"transaction failed {attempt} time(s) in {elapsed:.2f}s, last with {reason}; gave up "
                        f"(bounds: {policy.attempts} attempts, {policy.max_seconds}s). Reduce contention on the "
                        "rows it writes, or allow more with RetryPolicy(attempts=..., max_seconds=...)",
                        attempts=attempt,
                        elapsed=elapsed,
                    ) from exc
                sleep(pause)
                continue
            break
    _run_hooks(committed)  # outside the loop: the data is committed, nothing runs again
    return result


def transactional(
    db: peewee.Database, *, retry: RetryPolicy | None = None, isolation: str | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: each call runs in :func:`transaction` (with ``retry``, via :func:`run_in_transaction`)."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if retry is None:
                with transaction(db, isolation=isolation):
                    return fn(*args, **kwargs)
            return run_in_transaction(db, lambda: fn(*args, **kwargs), retry=retry, isolation=isolation)

        return wrapper

    return decorate
