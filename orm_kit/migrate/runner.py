"""The executor: applies, reverts, adopts and repairs migrations under the migration lock.

    runner = Runner(db, Path("migrations"), lock_timeout=30, policy=LockPolicy(lock_timeout=2.0))
    runner.up()                  # ['0001_initial', '0002_deployment_duration', '0003_deployment_history_indexes']
    runner.status().ok           # True: nothing pending, nothing wrong
    runner.down(steps=1)         # ['0003_deployment_history_indexes']

The runner reads nothing on its own: the files come from :mod:`~orm_kit.migrate.files`, the plan and its
problems from :mod:`~orm_kit.migrate.plan`, the history is written through :mod:`~orm_kit.migrate.history`,
and the lock is :mod:`~orm_kit.migrate.lock`'s. What it guarantees:

* One runner at a time per database. Each migration runs in a transaction of its own that takes the
  (transaction-scoped) migration lock again and reads the plan again under it, so a migration's locks
  are released at its own commit, and a runner that waited finds the work done and applies nothing.
* Several apps (``Runner(db, [AppMigrations(...), ...])``, :mod:`~orm_kit.migrate.apps`) share the lock
  and the history, whose rows are keyed by app and name; ``up`` applies every app's pending migrations
  in the order the plan gives (each after what it declares it needs), ``down``, ``baseline`` and
  ``repair`` work on one app (``repair`` on every app by default).
* It refuses *before running anything* on any problem the plan names (an edited, missing, misnamed,
  duplicate or late file, tables without history, an unfinished run outside a transaction).
* A migration and its history row commit together or not at all: one that fails is rolled back whole,
  schema and history, and the ones before it stay applied. On SQLite foreign keys are off while
  migrations run (table rebuilds must not cascade) and ``PRAGMA foreign_key_check`` must be clean
  before a migration counts.
* On PostgreSQL every statement of a migration's transaction runs under the :class:`LockPolicy`: a short
  ``lock_timeout`` (the longest the application can queue behind it) and a ``statement_timeout``; a
  migration that runs out of lock time is rolled back and tried again with a longer one, a bounded
  number of times, and the error after the last try names the table and the backend in the way.
* What a migration defers until after its commit (:mod:`~orm_kit.migrate.steps`: concurrent index
  builds, constraint validation, batched backfills) runs with its history row ``running`` and a run
  claim held, as an ``atomic = False`` migration does: another runner waits, a crash is visible in
  the history, and a failure is recorded as ``failed`` (``repair`` runs the deferred steps again).
* An ``atomic = False`` migration runs outside a transaction, so outside the lock; a ``running`` row
  and a run claim (taken under the lock) keep every other runner waiting, and a failure is recorded as
  ``failed`` for a human to look at (``repair``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import peewee

from orm_kit.bookkeeping import drop_seed_bookkeeping
from orm_kit.bounds import check_seconds
from orm_kit.dialect import is_postgres, unwrap
from orm_kit.errors import (
    DataLossError,
    MigrationBlockedError,
    MigrationError,
    MigrationFailedError,
    MigrationLockTimeoutError,
    MigrationRefusedError,
    OrmKitError,
    first_line,
)
from orm_kit.migrate.apps import AppMigrations, as_apps, label
from orm_kit.migrate.files import MigrationFile, discover
from orm_kit.migrate.history import (
    APPLIED,
    BASELINE,
    FAILED,
    HISTORY_TABLE,
    REVERT_FAILED,
    REVERTING,
    RUNNING,
    History,
    HistoryRow,
)
from orm_kit.migrate.lock import DEFAULT_LOCK_TIMEOUT, foreign_keys_off, migration_lock, run_claim
from orm_kit.migrate.lockwait import (
    BlockerWatch,
    LockPolicy,
    LockWaitsExhausted,
    is_statement_timeout,
    limit_waits,
    run_with_lock_retries,
    session_limits,
)
from orm_kit.migrate.losses import data_losses
from orm_kit.migrate.migrator import StepResult, run_step
from orm_kit.migrate.plan import Plan, RepairReport, Status, check_down_arguments, live_run, read
from orm_kit.migrate.scratch import replay, scratch_database
from orm_kit.migrate.steps import Step, StepContext

__all__ = ["Runner"]

_POLL_SECONDS = (0.05, 0.1, 0.2, 0.5)


@dataclass
class _Step:
    file: MigrationFile
    module: ModuleType

    @property
    def atomic(self) -> bool:
        return bool(getattr(self.module, "atomic", True))


Key = tuple[str, str]  # (app, migration name): what a history row is keyed by


@dataclass
class _Drive:
    """One up() or down() call: what it planned at first, what it did (as output names it), what it is doing now."""

    direction: str
    plan_for: Callable[[Plan], list[MigrationFile]]
    # What is left of the first plan, in the order the plan gives now (default: plan_for again).
    plan_again: Callable[[Plan, set[Key]], list[MigrationFile]] | None = None
    planned: set[Key] | None = None
    done: list[str] = field(default_factory=list)
    finished: set[Key] = field(default_factory=set)
    current: str = "the next migration"


class _StepFailed(Exception):  # internal: carries the migration's name out of the rolled-back attempt
    def __init__(self, name: str, error: BaseException) -> None:
        self.name = name
        self.error = error
        super().__init__(str(error))


class Runner:
    """Applies, reverts, adopts and repairs the migrations in ``migrations`` (a folder, or several apps' folders)
    against ``db``, one runner at a time.

    ``lock_timeout``: how long to wait for another runner. ``policy``: how long each migration statement may
    wait for a table lock and run, and how often to retry (PostgreSQL). ``progress``: called with a line of
    text for retries, deferred steps and backfill progress (the CLI prints them; the library never does).
    """

    def __init__(self, db: peewee.Database, migrations: Path | Sequence[AppMigrations], *,
                 lock_timeout: float = DEFAULT_LOCK_TIMEOUT, allow_out_of_order: bool = False,
                 history_table: str = HISTORY_TABLE, policy: LockPolicy | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        # A DatabaseProxy stands for its database; locks and scratch databases need the real one.
        self.db: peewee.Database = unwrap(db) or db
        self.apps = as_apps(migrations)
        self.directory = self.apps[-1].directory
        self.lock_timeout = check_seconds(lock_timeout, "the migration lock timeout", zero="do not wait")
        self.allow_out_of_order = allow_out_of_order
        self.table = history_table
        self.recorder = History(self.db, history_table)
        self.policy = policy or LockPolicy()
        self.progress = progress

    def plan(self) -> Plan:
        """Files, history and status as they are now (reads only; takes no lock)."""
        return read(self.db, self.apps, history_table=self.table, allow_out_of_order=self.allow_out_of_order)

    def status(self) -> Status:
        """Every migration's state, with every problem named (reads only; takes no lock)."""
        return self.plan().status

    def history(self) -> list[HistoryRow]:
        """The history rows in the order they were written."""
        return self.recorder.read()

    # -- applying and reverting ------------------------------------------------------------------

    def up(self, target: str | None = None, app: str | None = None) -> list[str]:
        """Apply pending migrations (or what ``target``, or ``app``, needs); return the names applied."""
        return self._drive(_Drive("up", lambda plan: plan.up(target, app)))

    def down(self, steps: int | None = None, target: str | None = None, app: str | None = None, *,
             allow_data_loss: bool = False) -> list[str]:
        """Revert ``app``'s last ``steps`` applied migrations (default 1), or those applied after ``target``.

        A down that would drop tables or columns holding rows raises :class:`DataLossError` (with the counts,
        nothing run) unless ``allow_data_loss``.
        """
        check_down_arguments(steps, target)  # a usage error: before waiting for the lock
        plan = self.plan()
        chosen = plan.down(steps, target, app)  # refuses what cannot be (--steps past what is applied) up front
        if not allow_data_loss and chosen and not plan.status.problems:
            try:
                found = data_losses(self.db, plan, chosen)
            except MigrationError as exc:  # unsure is not safe: ask as for rows
                raise DataLossError(
                    f"refusing to revert, nothing was run: cannot tell what it would drop ({exc}); back up what it "
                    "may drop, then confirm (orm-kit migrate down --yes)", []) from None
            if found:
                raise DataLossError(
                    f"refusing to revert, nothing was run: {'; '.join(str(loss) for loss in found)}; these rows would "
                    "be lost: back them up, then confirm (orm-kit migrate down --yes), or revert fewer migrations",
                    found)
        return self._drive(_Drive("down", lambda plan: plan.down(steps, target, app),
                                  lambda plan, planned: plan.still_applied(planned)))

    def _label(self, f: MigrationFile) -> str:
        return label(f.app, f.name, len(self.apps) > 1)

    def _say(self, line: str) -> None:
        if self.progress is not None:
            self.progress(line)

    def _checked_plan(self) -> Plan:
        """Under the lock: create or adopt the history table, read the plan again, refuse on any problem."""
        self.recorder.ensure(self._files())
        plan = self.plan()
        if plan.status.problems:
            raise MigrationRefusedError("refusing to migrate, nothing was run: " + "; ".join(plan.status.problems))
        return plan

    def _files(self) -> list[MigrationFile]:
        return [f for app in self.apps for f in discover(app.directory, app.name)]

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """The migration lock, once no live runner is outside a transaction (an ``atomic = False`` migration, or
        the steps after a commit; waits up to the lock timeout for both); the block runs in the lock's
        transaction."""
        deadline = time.monotonic() + self.lock_timeout
        attempt = 0
        while True:
            with migration_lock(self.db, max(0.0, deadline - time.monotonic()), self.table):
                busy = live_run(self.db, self.recorder.read(), self.table)
                if busy is None:
                    yield
                    return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise MigrationLockTimeoutError(
                    f"another runner ({busy.holder}) has been applying {busy.label} (atomic = False, or the steps "
                    f"after its commit: outside the lock) for more than {self.lock_timeout:g}s: wait for it to "
                    "finish, or pass a longer --lock-timeout")
            time.sleep(min(_POLL_SECONDS[min(attempt, len(_POLL_SECONDS) - 1)], remaining))
            attempt += 1

    @contextmanager
    def _watch(self) -> Iterator[BlockerWatch | None]:
        if not is_postgres(self.db):
            yield None
            return
        with BlockerWatch(self.db) as watch:
            yield watch

    def _drive(self, run: _Drive) -> list[str]:
        with self._watch() as watch:
            while self._next(run, watch):
                pass
        return run.done

    def _next(self, run: _Drive, watch: BlockerWatch | None) -> bool:
        """Apply (or revert) the next planned migration in a transaction of its own; False when none is left."""
        with ExitStack() as claim:
            try:
                started = run_with_lock_retries(
                    self.policy, lambda lock_timeout: self._attempt(run, watch, claim, lock_timeout), watch=watch,
                    what=lambda: run.current, report=self._say)
            except LockWaitsExhausted as exc:
                raise MigrationBlockedError(
                    f"{run.current} {exc.detail}; it was rolled back, so the schema and the history are as they were "
                    f"before it{self._before(run)}: let that transaction finish (or end it), then run it again; "
                    "--statement-lock-timeout and --lock-retries allow longer waits") from None
            except _StepFailed as exc:
                error = exc.error
                reason = first_line(error)
                if is_statement_timeout(error):
                    reason += (f" (statement_timeout {self.policy.statement_timeout:g} s: a long statement holds its "
                               "locks all along; move the work into migrator.backfill or a step after the commit, "
                               "or pass a longer --statement-timeout)")
                raise MigrationFailedError(
                    f"{exc.name} {run.direction}() failed: {reason}; it was rolled back, so the schema and the "
                    f"history are as they were before it{self._before(run)}") from None
            if started is None:
                return False
            step, result = started
            if result is None:
                self._run_unlocked(step, run.direction, claim, watch)
            elif result.deferred:
                self._finish_deferred(step, run.direction, result, claim, watch)
        run.done.append(self._label(step.file))
        run.finished.add((step.file.app, step.file.name))
        return True

    @staticmethod
    def _before(run: _Drive) -> str:
        verb = "applied" if run.direction == "up" else "reverted"
        return f" ({', '.join(run.done)} {verb} before it stay so)" if run.done else ""

    def _attempt(self, run: _Drive, watch: BlockerWatch | None, claim: ExitStack,
                 lock_timeout: float) -> tuple[_Step, StepResult | None] | None:
        """One try at the next migration, in its own locked transaction: None when nothing is left to do;
        otherwise the step and what it left for after the commit (None: it is ``atomic = False``)."""
        with ExitStack() as mine:  # a run claim taken here outlives the attempt only once it committed
            with self._exclusive():
                current = self._checked_plan()
                if run.planned is None:
                    plan = run.plan_for(current)
                    run.planned = {(f.app, f.name) for f in plan}
                else:
                    plan = (run.plan_again or (lambda p, _: run.plan_for(p)))(current, run.planned)
                # Re-read under the lock: another runner may have done some of it. Only ever what was first
                # planned, and only in the order the plan gives now (never before what it builds on, in its
                # own app or, by depends_on, in another).
                nxt = plan[0] if plan else None
                key = None if nxt is None else (nxt.app, nxt.name)
                if nxt is None or key not in run.planned or key in run.finished:
                    return None
                step = _Step(nxt, nxt.load_for(run.direction))
                run.current = f"{self._label(nxt)} {run.direction}()"
                result: StepResult | None = None
                if not step.atomic:
                    # Claimed under the lock, in the same transaction as the history row says so: whoever holds
                    # the lock next sees both, or neither.
                    mine.enter_context(run_claim(self.db, self.table))
                    self._mark_unfinished(step, run.direction)
                else:
                    result = self._run_in_transaction(step, run.direction, watch, mine, lock_timeout)
            claim.enter_context(mine.pop_all())
        return step, result

    def _run_in_transaction(self, step: _Step, direction: str, watch: BlockerWatch | None, claim: ExitStack,
                            lock_timeout: float) -> StepResult:
        try:
            if is_postgres(self.db):
                limit_waits(self.db, lock_timeout, self.policy.statement_timeout)
                if watch is not None:
                    watch.follow(self.db)
            result = run_step(self.db, step.module, direction)
            if result.deferred:
                claim.enter_context(run_claim(self.db, self.table))
                self._mark_unfinished(step, direction, result.duration_ms)
            elif direction == "up":
                self.recorder.record(step.file, APPLIED, result.duration_ms)
            else:
                self.recorder.forget(step.file.name, app=step.file.app)
                self._after_revert()
        except Exception as exc:
            raise _StepFailed(self._label(step.file), exc) from exc  # the cause lets a lock timeout be retried
        return result

    def _after_revert(self) -> None:
        # Nothing of any app applied any more: the tables the seed records describe are gone, so the records go
        # too, in the same transaction (then `up` sees an empty database and `seed status` says "not loaded").
        if not self.recorder.read():
            drop_seed_bookkeeping(self.db)

    def _mark_unfinished(self, step: _Step, direction: str, duration_ms: int | None = None) -> None:
        if direction == "up":
            self.recorder.record(step.file, RUNNING, duration_ms)
        else:
            self.recorder.set_outcome(step.file.name, REVERTING, expected=(APPLIED, BASELINE), app=step.file.app)

    def _context(self, f: MigrationFile, direction: str, watch: BlockerWatch | None) -> StepContext:
        return StepContext(self.policy, watch, self.progress, f"{self._label(f)} {direction}()")

    def _run_deferred(self, steps: list[Step], context: StepContext) -> tuple[Step | None, BaseException | None]:
        """Run deferred steps in order; the one that failed and why (None, None when all ran)."""
        for step in steps:
            context.say(f"{context.migration}: after its commit: {step.describe()}")
            try:
                step.run(self.db, context)
            except Exception as exc:  # noqa: BLE001 - recorded, then reported by the caller
                return step, exc
        return None, None

    def _finish_deferred(self, step: _Step, direction: str, result: StepResult, claim: ExitStack,
                         watch: BlockerWatch | None) -> None:
        started = time.perf_counter()
        failed, error = self._run_deferred(result.deferred, self._context(step.file, direction, watch))
        duration = result.duration_ms + round((time.perf_counter() - started) * 1000)
        self._settle(step.file, direction, error, duration, claim)
        if failed is not None and error is not None:
            outcome = "failed" if direction == "up" else "revert_failed"
            raise MigrationFailedError(
                f"{self._label(step.file)} {direction}(): its transaction committed, but a step after it failed: "
                f"{failed.describe()}: {_reason(error)}; it is recorded as {outcome}: remove the cause, then "
                "`orm-kit migrate repair` runs its steps after the commit again")

    def _settle(self, f: MigrationFile, direction: str, error: BaseException | None, duration: int | None,
                claim: ExitStack | None) -> None:
        # Under the lock again, the history row first, so nobody ever sees a live-looking row without its claim.
        name, app = f.name, f.app
        with migration_lock(self.db, self.lock_timeout, self.table):
            if direction == "up":
                self.recorder.set_outcome(name, FAILED if error else APPLIED, duration, expected=(RUNNING,), app=app)
            elif error:
                self.recorder.set_outcome(name, REVERT_FAILED, expected=(REVERTING,), app=app)
            else:
                self.recorder.forget(name, expected=(REVERTING,), app=app)
                self._after_revert()
            if claim is not None:
                claim.close()

    def _run_unlocked(self, step: _Step, direction: str, claim: ExitStack, watch: BlockerWatch | None) -> None:
        # atomic = False: the claim row (running / reverting) and the run claim, both taken under the lock,
        # keep every other runner waiting while this runs without a transaction.
        error: BaseException | None = None
        duration = None
        started = time.perf_counter()
        with foreign_keys_off(self.db):
            try:
                # No transaction, so no SET LOCAL: session settings for the run, put back afterwards. No
                # statement_timeout: such migrations exist for the long statements (CREATE INDEX CONCURRENTLY).
                limits = (session_limits(self.db, self.policy.lock_timeout, 0) if is_postgres(self.db)
                          else nullcontext())
                with limits:
                    result = run_step(self.db, step.module, direction)
                _, error = self._run_deferred(result.deferred, self._context(step.file, direction, watch))
                duration = round((time.perf_counter() - started) * 1000)
            except Exception as exc:  # noqa: BLE001 - recorded, then reported below
                error = exc
        self._settle(step.file, direction, error, duration, claim)
        if error is not None:
            raise MigrationFailedError(
                f"{self._label(step.file)} {direction}() failed: {first_line(error)}; it runs with atomic = False, so "
                f"it may be half-done and is recorded as {'failed' if direction == 'up' else 'revert_failed'}: bring "
                "the schema back by hand, then run `orm-kit migrate repair`")

    # -- adopting and repairing ------------------------------------------------------------------

    def baseline(self, version: str, app: str | None = None) -> list[str]:
        """Record ``app``'s migrations up to ``version`` as applied without running them (adopt a database).

        This trusts that the schema is what those migrations produce; :func:`orm_kit.migrate.drift.baseline`
        checks it first. The app must have no history yet, and what the chosen migrations depend on in
        other apps must be applied already.
        """
        files = self._files()
        with migration_lock(self.db, self.lock_timeout, self.table):
            self.recorder.ensure(files)
            plan = self.plan()
            chosen = self.baseline_files(plan, version, app)
            for f in chosen:
                self.recorder.record(f, BASELINE, 0)
        return [self._label(f) for f in chosen]

    def baseline_files(self, plan: Plan, version: str, app: str | None = None) -> list[MigrationFile]:
        """The files ``baseline`` would record, checked against the history of ``plan``."""
        last = plan.resolve(version, app)
        history = [row for row in plan.history if row.app == last.app]
        if history:
            raise MigrationRefusedError(
                f"{'app ' + last.app + ' ' if plan.qualified else 'the database '}already has a migration history "
                f"({len(history)} rows, last {history[-1].name}): baseline only adopts a database with none (see "
                "`orm-kit migrate status`)")
        chosen = [f for f in plan.app_files(last.app) if (f.number, f.name) <= (last.number, last.name)]
        applied = {(row.app, row.name) for row in plan.history}
        for f in chosen:
            for need in plan.graph.needs.get((f.app, f.name), []):
                if need[0] != f.app and need not in applied:
                    raise MigrationRefusedError(
                        f"{self._label(f)} depends on {need[0]}:{need[1]}, which is not applied: migrate or baseline "
                        f"{need[0]} first")
        return chosen

    def repair(self, app: str | None = None) -> RepairReport:
        """Accept edited files' checksums, run again the steps a migration left for after its commit, clear failed
        ``atomic = False`` runs (the schema put back by hand), and report missing files: of every app, or of
        ``app``."""
        files = self._files()
        if app is not None:
            self.plan().app_files(app)  # refuses an unknown app
        by_key = {(f.app, f.name): f for f in files}
        given = {a.name for a in self.apps}
        report = RepairReport()
        unfinished: list[tuple[MigrationFile, str, list[MigrationFile]]] = []
        with ExitStack() as claim:
            with migration_lock(self.db, self.lock_timeout, self.table):
                self.recorder.ensure(files)
                # Rows of apps not given here are another project's to repair: left alone.
                history = [row for row in self.recorder.read() if row.app in given]
                busy = live_run(self.db, history, self.table)
                if busy is not None:
                    raise MigrationRefusedError(
                        f"{busy.label} is being run right now by another runner ({busy.holder}), outside a transaction "
                        "(atomic = False, or the steps after its commit): nothing to repair; wait for it to finish, "
                        "then see `orm-kit migrate status`")
                for position, row in enumerate(history):
                    if app is not None and row.app != app:
                        continue
                    f = by_key.get((row.app, row.name))
                    shown = label(row.app, row.name, len(self.apps) > 1)
                    if f is None:
                        report.missing.append(shown)
                    elif row.outcome in (FAILED, RUNNING, REVERTING, REVERT_FAILED) and _atomic(f):
                        # Its transaction committed (only steps after a commit leave an atomic migration unfinished):
                        # finish those steps, which are safe to run again, rather than forget what committed. The
                        # scratch schema they are found on is every app's history before it, in the order applied.
                        direction = "up" if row.outcome in (FAILED, RUNNING) else "down"
                        below = [by_key[(r.app, r.name)] for r in history[:position] if (r.app, r.name) in by_key]
                        unfinished.append((f, direction, below + ([f] if direction == "down" else [])))
                        self.recorder.set_outcome(row.name, RUNNING if direction == "up" else REVERTING,
                                                  expected=(row.outcome,), app=row.app)
                    elif row.outcome in (FAILED, RUNNING):
                        self.recorder.forget(row.name, expected=(row.outcome,), app=row.app)  # as before: pending
                        report.cleared.append(shown)
                    elif row.outcome in (REVERTING, REVERT_FAILED):
                        self.recorder.set_outcome(row.name, APPLIED, expected=(row.outcome,), app=row.app)  # applied
                        report.cleared.append(shown)
                    elif row.checksum != f.checksum:
                        self.recorder.set_checksum(row, f.checksum)
                        report.rechecksummed.append(shown)
                if unfinished:
                    claim.enter_context(run_claim(self.db, self.table))  # as the runner holds it for such steps
            with self._watch() as watch:
                for f, direction, below in unfinished:
                    self._finish_again(f, direction, below, watch)
                    report.finished.append(self._label(f))
        return report

    def _finish_again(self, f: MigrationFile, direction: str, below: list[MigrationFile],
                      watch: BlockerWatch | None) -> None:
        """Run again the steps ``f``'s up() (or down()) leaves for after its commit, found by running it on a
        scratch database where the migrations ``below`` it are applied; settle its history row."""
        with scratch_database(self.db) as scratch:
            replay(scratch, below)
            with foreign_keys_off(scratch), scratch.atomic():
                steps = run_step(scratch, f.load_for(direction), direction).deferred
        started = time.perf_counter()
        failed, error = self._run_deferred(steps, self._context(f, direction, watch))
        self._settle(f, direction, error, round((time.perf_counter() - started) * 1000), None)
        if failed is not None and error is not None:
            raise MigrationFailedError(
                f"{self._label(f)} {direction}(): a step after its commit failed again: {failed.describe()}: "
                f"{_reason(error)}; it is still recorded as {'failed' if direction == 'up' else 'revert_failed'}")


def _reason(error: BaseException) -> str:
    # orm-kit's own errors already say what happened; a driver's error says more with its type.
    return str(error) if isinstance(error, OrmKitError) else first_line(error)


def _atomic(f: MigrationFile) -> bool:
    return bool(getattr(f.load(), "atomic", True))
