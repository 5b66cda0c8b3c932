"""The executor: applies, reverts, adopts and repairs migrations under the migration lock.

    runner = Runner(db, Path("migrations"), lock_timeout=30)
    runner.up()                  # ['0001_initial', '0002_deployment_duration', '0003_deployment_history_indexes']
    runner.status().ok           # True: nothing pending, nothing wrong
    runner.down(steps=1)         # ['0003_deployment_history_indexes']

The runner reads nothing on its own: the files come from :mod:`~orm_kit.migrate.files`, the plan and its
problems from :mod:`~orm_kit.migrate.plan`, the history is written through :mod:`~orm_kit.migrate.history`,
and the lock is :mod:`~orm_kit.migrate.lock`'s. What it guarantees:

* One runner at a time per database; the plan is read again once the lock is held, so a runner that
  waited finds the work done and applies nothing.
* Several apps (``Runner(db, [AppMigrations(...), ...])``, :mod:`~orm_kit.migrate.apps`) share the lock
  and the history; ``up`` applies every app's pending migrations in the order the plan gives (each after
  what it declares it needs), ``down``, ``baseline`` and ``repair`` work on one app.
* It refuses *before running anything* on any problem the plan names (an edited, missing, misnamed,
  duplicate or late file, tables without history, an unfinished ``atomic = False`` run).
* Every migration runs in its own savepoint inside the locked transaction, together with its history
  row: one that fails is rolled back whole, schema and history, and the ones before it are committed.
  On SQLite foreign keys are off while migrations run (table rebuilds must not cascade) and
  ``PRAGMA foreign_key_check`` must be clean before a migration counts.
* An ``atomic = False`` migration runs outside the transaction, so outside the lock; a ``running`` row
  and a run claim (taken under the lock) keep every other runner waiting, and a failure is recorded as
  ``failed`` for a human to look at (``repair``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import peewee

from orm_kit.dialect import unwrap
from orm_kit.errors import MigrationFailedError, MigrationLockTimeoutError, MigrationRefusedError, first_line
from orm_kit.migrate.apps import AppMigrations, as_apps
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
from orm_kit.migrate.migrator import run_step
from orm_kit.migrate.plan import Plan, RepairReport, Status, check_down_arguments, live_run, read

__all__ = ["Runner"]

_POLL_SECONDS = (0.05, 0.1, 0.2, 0.5)


@dataclass
class _Step:
    file: MigrationFile
    module: ModuleType

    @property
    def atomic(self) -> bool:
        return bool(getattr(self.module, "atomic", True))


class Runner:
    """Applies, reverts, adopts and repairs the migrations in ``migrations`` (a folder, or several apps' folders)
    against ``db``, one runner at a time."""

    def __init__(self, db: peewee.Database, migrations: Path | Sequence[AppMigrations], *,
                 lock_timeout: float = DEFAULT_LOCK_TIMEOUT, allow_out_of_order: bool = False,
                 history_table: str = HISTORY_TABLE) -> None:
        # A DatabaseProxy stands for its database; locks and scratch databases need the real one.
        self.db: peewee.Database = unwrap(db) or db
        self.apps = as_apps(migrations)
        self.directory = self.apps[-1].directory
        self.lock_timeout = lock_timeout
        self.allow_out_of_order = allow_out_of_order
        self.table = history_table
        self.recorder = History(self.db, history_table)

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
        return self._drive("up", lambda plan: plan.up(target, app))

    def down(self, steps: int | None = None, target: str | None = None, app: str | None = None) -> list[str]:
        """Revert ``app``'s last ``steps`` applied migrations (default 1), or those applied after ``target``."""
        check_down_arguments(steps, target)  # a usage error: before waiting for the lock
        return self._drive("down", lambda plan: plan.down(steps, target, app))

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
        """The migration lock, once no live runner is inside an ``atomic = False`` migration (waits up to the
        lock timeout for both); the block runs in the lock's transaction."""
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
                name, holder = busy
                raise MigrationLockTimeoutError(
                    f"another runner ({holder}) has been applying {name} (atomic = False, so outside the lock) for "
                    f"more than {self.lock_timeout:g}s: wait for it to finish, or pass a longer --lock-timeout")
            time.sleep(min(_POLL_SECONDS[min(attempt, len(_POLL_SECONDS) - 1)], remaining))
            attempt += 1

    def _drive(self, direction: str, plan_for: Callable[[Plan], list[MigrationFile]]) -> list[str]:
        done: list[str] = []
        planned: list[MigrationFile] | None = None
        label = self._label
        while True:
            unlocked: _Step | None = None
            failure: tuple[str, BaseException] | None = None
            with ExitStack() as claim:
                with self._exclusive():
                    plan = plan_for(self._checked_plan())
                    if planned is None:
                        planned = list(plan)
                    # After an atomic = False step the lock was let go: never do more than first planned.
                    plan = [f for f in plan if f in planned and label(f) not in done]
                    if not plan:
                        break
                    for step in [_Step(f, f.load_for(direction)) for f in plan]:
                        if not step.atomic:
                            # Claimed under the lock, in the same transaction as the history row says so:
                            # whoever holds the lock next sees both, or neither.
                            claim.enter_context(run_claim(self.db, self.table))
                            unlocked = step
                            if direction == "up":
                                self.recorder.record(step.file, RUNNING, None)
                            else:
                                self.recorder.set_outcome(step.file.name, REVERTING, expected=(APPLIED, BASELINE),
                                                          app=step.file.app)
                            break
                        try:
                            with self.db.atomic():
                                duration = run_step(self.db, step.module, direction)
                                if direction == "up":
                                    self.recorder.record(step.file, APPLIED, duration)
                                else:
                                    self.recorder.forget(step.file.name, app=step.file.app)
                        except Exception as exc:  # noqa: BLE001 - reported with the migration's name below
                            failure = (label(step.file), exc)
                            break
                        done.append(label(step.file))
                if unlocked is not None:
                    self._run_unlocked(unlocked, direction, claim)
            if failure is not None:
                name, error = failure
                before = f" ({', '.join(done)} {'applied' if direction == 'up' else 'reverted'} before it stay so)" \
                    if done else ""
                raise MigrationFailedError(
                    f"{name} {direction}() failed: {first_line(error)}; it was rolled back, so the schema and the "
                    f"history are as they were before it{before}")
            if unlocked is None:
                break
            done.append(label(unlocked.file))
        return done

    def _label(self, f: MigrationFile) -> str:
        return f"{f.app}:{f.name}" if len(self.apps) > 1 else f.name

    def _run_unlocked(self, step: _Step, direction: str, claim: ExitStack) -> None:
        # atomic = False: the claim row (running / reverting) and the run claim, both taken under the lock,
        # keep every other runner waiting while this runs without a transaction; both are settled under
        # the lock again, the history row first, so nobody ever sees a live-looking row without its claim.
        error: BaseException | None = None
        duration = None
        with foreign_keys_off(self.db):
            try:
                duration = run_step(self.db, step.module, direction)
            except Exception as exc:  # noqa: BLE001 - recorded, then reported below
                error = exc
        app = step.file.app
        with migration_lock(self.db, self.lock_timeout, self.table):
            if direction == "up":
                self.recorder.set_outcome(step.file.name, FAILED if error else APPLIED, duration, expected=(RUNNING,),
                                          app=app)
            elif error:
                self.recorder.set_outcome(step.file.name, REVERT_FAILED, expected=(REVERTING,), app=app)
            else:
                self.recorder.forget(step.file.name, expected=(REVERTING,), app=app)
            claim.close()
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
        """Accept edited files' checksums and clear failed ``atomic = False`` runs (of every app, or of ``app``);
        report missing files."""
        files = self._files()
        if app is not None:
            self.plan().app_files(app)  # refuses an unknown app
        sums = {(f.app, f.name): f.checksum for f in files}
        given = {a.name for a in self.apps}
        report = RepairReport()
        with migration_lock(self.db, self.lock_timeout, self.table):
            self.recorder.ensure(files)
            history = [row for row in self.recorder.read()
                       if row.app in given and (app is None or row.app == app)]
            busy = live_run(self.db, history, self.table)
            if busy is not None:
                raise MigrationRefusedError(
                    f"{busy[0]} is being run right now by another runner ({busy[1]}), outside a transaction "
                    "(atomic = False): nothing to repair; wait for it to finish, then see `orm-kit migrate status`")
            for row in history:
                key = (row.app, row.name)
                shown = f"{row.app}:{row.name}" if len(self.apps) > 1 else row.name
                if key not in sums:
                    report.missing.append(shown)
                elif row.outcome in (FAILED, RUNNING):  # as before the attempt: pending again
                    self.recorder.forget(row.name, expected=(row.outcome,), app=row.app)
                    report.cleared.append(shown)
                elif row.outcome in (REVERTING, REVERT_FAILED):  # as before: still applied
                    self.recorder.set_outcome(row.name, APPLIED, expected=(row.outcome,), app=row.app)
                    report.cleared.append(shown)
                elif row.checksum != sums[key]:
                    self.recorder.set_checksum(row, sums[key])
                    report.rechecksummed.append(shown)
        return report
