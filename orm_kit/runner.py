"""Numbered migrations, applied in order under a lock, checksummed, recorded, and reversible.

A migration is a file ``NNNN_slug.py`` defining ``up(migrator, db)`` and ``down(migrator, db)`` (peewee's
``playhouse.migrations`` format: the same files run under either runner); ``migrator`` is
playhouse.migrate's ``SchemaMigrator`` for the database. A module-level ``atomic = False`` runs it
outside a transaction (for ``CREATE INDEX CONCURRENTLY`` and the like)::

    from orm_kit.runner import Runner
    runner = Runner(db, Path("migrations"), lock_timeout=30)
    runner.up()                  # ['0001_initial', '0002_deployment_duration', '0003_deployment_history_indexes']
    runner.status().ok           # True: nothing pending, nothing wrong
    runner.down(steps=1)         # ['0003_deployment_history_indexes']

What it guarantees:

* One runner at a time per database (:mod:`orm_kit.migration_lock`); the history is read only once the
  lock is held, so a runner that waited finds the work done and applies nothing.
* It refuses *before running anything* when an applied file was edited (its sha256 changed), an applied
  file is missing, two files share a number, a file numbered below the last applied one arrived late
  (unless ``allow_out_of_order``), the database has tables but no history (``baseline``), or an earlier
  ``atomic = False`` migration failed or never finished (``repair``).
* Every migration runs in its own savepoint inside the locked transaction (one transaction per run, so
  the lock is held to the end): one that fails is rolled back whole, schema and history, and the ones
  before it are committed. On SQLite foreign keys are off while migrations run (table rebuilds must not
  cascade), the migrator is :class:`orm_kit.migrator.CheckedSqliteMigrator` (peewee's SqliteMigrator,
  checking each rebuild) and ``PRAGMA foreign_key_check`` must be clean before a migration counts.
  A failing ``atomic = False`` migration is recorded as ``failed``.

The history lives in peewee's table, ``schema_migration`` (``name``, ``applied``), extended with
``checksum``, ``duration_ms`` and ``outcome``. A table written by peewee's runner (or by orm-kit's
first runner, which was peewee's) is adopted in place: the columns are added, and rows without a
checksum take the checksum of their file as it is now.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.util
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from importlib.resources import files as package_files
from pathlib import Path
from types import ModuleType
from typing import Any

import peewee

from orm_kit._sql import execute
from orm_kit.dialect import serial_type, unwrap
from orm_kit.errors import (
    MigrationError,
    MigrationFailedError,
    MigrationLockTimeoutError,
    MigrationRefusedError,
    first_line,
)
from orm_kit.migration_lock import (
    DEFAULT_LOCK_TIMEOUT,
    foreign_keys_off,
    migration_lock,
    run_claim,
    run_claim_holder,
)
from orm_kit.migrator import foreign_key_violations, migrator_for

__all__ = [
    "HISTORY_TABLE",
    "MigrationFile",
    "MigrationState",
    "RepairReport",
    "Runner",
    "Status",
    "default_migrations_dir",
    "discover",
    "migrate_up",
    "run_migration",
]

HISTORY_TABLE = "schema_migration"
APPLIED, BASELINE, FAILED, RUNNING, REVERTING, REVERT_FAILED = (
    "applied", "baseline", "failed", "running", "reverting", "revert_failed")
_UNFINISHED = (FAILED, RUNNING, REVERTING, REVERT_FAILED)
_NAME = re.compile(r"^(\d+)_?\w*$")
_POLL_SECONDS = (0.05, 0.1, 0.2, 0.5)
def default_migrations_dir() -> Path:
    """The migrations shipped inside the installed package."""
    return Path(str(package_files("orm_kit.migrations")))


def checksum(path: Path) -> str:
    """sha256 of a migration file, line endings normalised (a CRLF checkout is not an edit)."""
    return hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()


@dataclass(frozen=True)
class MigrationFile:
    """One ``NNNN_slug.py`` file: its number, name (the stem), path and checksum."""

    number: int
    name: str
    path: Path
    checksum: str

    def load(self) -> ModuleType:
        """Execute the file as a fresh module (never cached in sys.modules: names repeat across projects)."""
        spec = importlib.util.spec_from_file_location(f"orm_kit_migration_{self.name}", self.path)
        if spec is None or spec.loader is None:
            raise MigrationRefusedError(f"cannot load migration {str(self.path)!r}: not a Python file")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - any error in a migration file is reported as a refusal
            raise MigrationRefusedError(
                f"cannot load migration {self.path.name}: {type(exc).__name__}: {exc} (fix the file; nothing ran)"
            ) from None
        return module

    def load_for(self, direction: str) -> ModuleType:
        """:meth:`load`, refusing a file that does not define ``direction`` ("up" or "down")."""
        module = self.load()
        if not callable(getattr(module, direction, None)):
            verb = "applied" if direction == "up" else "reverted"
            raise MigrationRefusedError(f"{self.name}.py defines no {direction}(migrator, db), so it cannot be "
                                        f"{verb} (add it; nothing ran)")
        return module


def discover(directory: Path) -> list[MigrationFile]:
    """The migration files in ``directory``, by number then name (peewee's ``[0-9]*.py`` glob)."""
    found = []
    for path in _candidates(directory):
        match = _NAME.match(path.stem)
        if match is None:
            continue  # reported by misnamed(), as a problem that stops the runner
        try:
            digest = checksum(path)
        except OSError as exc:
            raise MigrationError(
                f"cannot read migration {path.name}: {first_line(exc)} (a dangling symlink or a permission? fix or "
                "remove the file)") from None
        found.append(MigrationFile(int(match.group(1)), path.stem, path, digest))
    return sorted(found, key=lambda f: (f.number, f.name))


def misnamed(directory: Path) -> list[Path]:
    """Files peewee's runner would run (``[0-9]*.py``) that are not named ``NNNN_slug.py``, so orm-kit would not."""
    return [path for path in _candidates(directory) if _NAME.match(path.stem) is None]


def _candidates(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise MigrationError(f"migrations folder {str(directory)!r} does not exist "
                             "(check the path given to --migrations, or leave it out for the shipped migrations)")
    return sorted(directory.glob("[0-9]*.py"))


@dataclass(frozen=True)
class HistoryRow:
    """One row of the history table."""

    id: int
    name: str
    applied_at: datetime.datetime | None
    checksum: str | None
    duration_ms: int | None
    outcome: str | None


@dataclass(frozen=True)
class MigrationState:
    """A migration as ``status`` sees it: file and history merged.

    ``state`` is one of applied, baseline, pending, late (pending, numbered below the last applied),
    edited, missing (applied, file gone), duplicate, failed, running, reverting, revert_failed.
    """

    number: int
    name: str
    state: str
    applied_at: datetime.datetime | None = None
    duration_ms: int | None = None
    checksum: str | None = None
    recorded_checksum: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["applied_at"] = self.applied_at.isoformat() if self.applied_at else None
        return data


@dataclass(frozen=True)
class Status:
    """Every migration's state, and the problems that make the runner refuse to run."""

    migrations: tuple[MigrationState, ...]
    problems: tuple[str, ...]

    @property
    def pending(self) -> list[str]:
        """Names not yet applied, in the order ``up`` would apply them."""
        return [m.name for m in self.migrations if m.state in ("pending", "late")]

    @property
    def ok(self) -> bool:
        """True when nothing is pending and nothing is wrong: safe to deploy."""
        return not self.problems and not self.pending

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"ok": self.ok, "pending": self.pending, "problems": list(self.problems),
                "migrations": [m.to_dict() for m in self.migrations]}


@dataclass(frozen=True)
class RepairReport:
    """What ``repair`` changed: re-recorded checksums, cleared failures, and what it cannot fix."""

    rechecksummed: list[str] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


@dataclass
class _Step:
    file: MigrationFile
    module: ModuleType

    @property
    def atomic(self) -> bool:
        return bool(getattr(self.module, "atomic", True))


def format_utc(moment: datetime.datetime) -> str:
    """``2026-11-26 06:23:52 UTC``: how history times are shown."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _utcnow() -> datetime.datetime:
    # Naive UTC: peewee's history column is a plain DateTimeField (TIMESTAMP on PostgreSQL).
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


class Runner:
    """Plans, applies, reverts and reports the migrations in ``directory`` against ``db``."""

    def __init__(self, db: peewee.Database, directory: Path | None = None, *,
                 lock_timeout: float = DEFAULT_LOCK_TIMEOUT, allow_out_of_order: bool = False,
                 history_table: str = HISTORY_TABLE) -> None:
        # A DatabaseProxy stands for its database; locks and scratch databases need the real one.
        self.db: peewee.Database = unwrap(db) or db
        self.directory = directory or default_migrations_dir()
        self.lock_timeout = lock_timeout
        self.allow_out_of_order = allow_out_of_order
        self.table = history_table

    # -- reading ---------------------------------------------------------------------------------

    def files(self) -> list[MigrationFile]:
        """The migration files, in order."""
        return discover(self.directory)

    def status(self) -> Status:
        """Files and history merged, with every problem named (reads only; takes no lock)."""
        return self._status(self.files(), self._read_history(), self._live_run())

    def history(self) -> list[HistoryRow]:
        """The history rows in the order they were written."""
        return self._read_history()

    def _history_exists(self) -> bool:
        return self.table in self.db.get_tables()

    def _read_history(self) -> list[HistoryRow]:
        if not self._history_exists():
            return []
        columns = {c.name for c in self.db.get_columns(self.table)}
        wanted = ["id", "name", "applied", "checksum", "duration_ms", "outcome"]
        select = ", ".join(f'"{c}"' if c in columns else "NULL" for c in wanted)
        rows = execute(self.db, f'SELECT {select} FROM "{self.table}" ORDER BY "id"').fetchall()
        return [HistoryRow(int(r[0]), str(r[1]), _as_datetime(r[2]), r[3], r[4], r[5]) for r in rows]

    def _other_tables(self) -> list[str]:
        return [t for t in self.db.get_tables() if t != self.table and not t.startswith("sqlite_")]

    def _status(self, files: list[MigrationFile], history: list[HistoryRow],
                live: tuple[str, str] | None = None) -> Status:
        by_name = {row.name: row for row in history}
        known = {f.name for f in files}
        problems: list[str] = []
        for path in misnamed(self.directory):
            digits = re.match(r"\d+", path.stem)
            slug = re.sub(r"\W+", "_", path.stem[digits.end() if digits else 0:]).strip("_") or "name"
            problems.append(f"{path.name} is not named NNNN_slug.py (digits, an underscore, then letters, digits or "
                            f"underscores), so it would never run: rename it, e.g. to "
                            f"{digits.group(0) if digits else '0000'}_{slug}.py")
        numbers = Counter(f.number for f in files)
        for number in sorted(n for n, count in numbers.items() if count > 1):
            clash = [f"{f.name}.py" for f in files if f.number == number]
            problems.append(f"{' and '.join(clash)} share number {number:04d} (renumber the newer one)")
        applied_numbers = [f.number for f in files if f.name in by_name]
        last_applied = max(applied_numbers, default=-1)
        last_name = next((f.name for f in files if f.number == last_applied and f.name in by_name), "")
        states = []
        for f in files:
            row = by_name.get(f.name)
            if numbers[f.number] > 1 and row is None:
                states.append(MigrationState(f.number, f.name, "duplicate", checksum=f.checksum))
                continue
            if row is None:
                late = f.number < last_applied
                states.append(MigrationState(f.number, f.name, "late" if late else "pending", checksum=f.checksum))
                if late and not self.allow_out_of_order:
                    problems.append(
                        f"{f.name}.py is numbered below {last_name}, which is already applied: renumber it to "
                        f"follow {last_name}, or pass --allow-out-of-order to apply it anyway")
                continue
            state = row.outcome or APPLIED
            if state in _UNFINISHED:
                problems.append(_unfinished_problem(row, live[1] if live and live[0] == row.name else None))
            elif row.checksum is not None and row.checksum != f.checksum:
                state = "edited"
                problems.append(
                    f"{f.name}.py was edited after it was applied (recorded sha256 {row.checksum[:12]}, file has "
                    f"{f.checksum[:12]}): restore the file, or run `orm-kit migrate repair` to accept the edit")
            states.append(MigrationState(f.number, f.name, state, row.applied_at, row.duration_ms, f.checksum,
                                         row.checksum))
        for row in history:
            if row.name not in known:
                match = _NAME.match(row.name)
                states.append(MigrationState(int(match.group(1)) if match else -1, row.name, "missing",
                                             row.applied_at, row.duration_ms, None, row.checksum))
                problems.append(
                    f"{row.name} is recorded as applied but {row.name}.py is not in {self.directory}: restore the "
                    "file (an applied migration is history; never delete it)")
        if not history:
            tables = self._other_tables()
            if tables:
                shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
                problems.append(
                    f"the database has tables ({shown}) but no migration history: if its schema is what the "
                    "migrations up to NNNN produce, run `orm-kit migrate baseline NNNN` to adopt it")
        states.sort(key=lambda s: (s.number, s.name))
        return Status(tuple(states), tuple(problems))

    def _checked(self, files: list[MigrationFile]) -> tuple[Status, list[HistoryRow]]:
        """Under the lock: create or adopt the history table, re-read it, refuse on any problem."""
        self._ensure_history(files)
        history = self._read_history()
        status = self._status(files, history)
        if status.problems:
            raise MigrationRefusedError("refusing to migrate, nothing was run: " + "; ".join(status.problems))
        return status, history

    def resolve(self, files: list[MigrationFile], target: str) -> MigrationFile:
        """The file ``target`` names: a full name, or a number."""
        for f in files:
            if target == f.name or (target.isdigit() and int(target) == f.number):
                return f
        names = ", ".join(f.name for f in files) or "(none)"
        raise MigrationError(f"unknown migration {target!r} (expected a number or one of: {names})")

    # -- history writes --------------------------------------------------------------------------

    def _ensure_history(self, files: list[MigrationFile]) -> None:
        if not self._history_exists():
            execute(self.db,
                f'CREATE TABLE "{self.table}" ("id" {self._serial()} NOT NULL PRIMARY KEY, '
                '"name" VARCHAR(255) NOT NULL, "applied" TIMESTAMP NOT NULL, "checksum" VARCHAR(64), '
                '"duration_ms" INTEGER, "outcome" VARCHAR(16))')
            execute(self.db, f'CREATE UNIQUE INDEX "{self.table}_name" ON "{self.table}" ("name")')
            return
        # Adopt a table written by peewee's runner: add our columns, checksum its rows as the files are now.
        columns = {c.name for c in self.db.get_columns(self.table)}
        for column, ddl in (("checksum", "VARCHAR(64)"), ("duration_ms", "INTEGER"), ("outcome", "VARCHAR(16)")):
            if column not in columns:
                execute(self.db, f'ALTER TABLE "{self.table}" ADD COLUMN "{column}" {ddl}')
        sums = {f.name: f.checksum for f in files}
        p = self.db.param
        for row in self._read_history():
            if row.checksum is None and row.name in sums:
                execute(self.db, f'UPDATE "{self.table}" SET "checksum" = {p}, "outcome" = COALESCE("outcome", '
                                    f'{p}) WHERE "id" = {p}', (sums[row.name], APPLIED, row.id))

    def _serial(self) -> str:
        return serial_type(self.db)

    def _record(self, f: MigrationFile, outcome: str, duration_ms: int | None) -> None:
        p = self.db.param
        execute(self.db,
            f'INSERT INTO "{self.table}" ("name", "applied", "checksum", "duration_ms", "outcome") '
            f"VALUES ({p}, {p}, {p}, {p}, {p})", (f.name, _utcnow(), f.checksum, duration_ms, outcome))

    def _set_outcome(self, name: str, outcome: str, duration_ms: int | None = None, *,
                     expected: Sequence[str]) -> None:
        p = self.db.param
        cursor = execute(self.db, f'UPDATE "{self.table}" SET "outcome" = {p}, "duration_ms" = COALESCE({p}, '
                                  f'"duration_ms") WHERE "name" = {p} AND COALESCE("outcome", {p}) IN '
                                  f'({", ".join([p] * len(expected))})',
                         (outcome, duration_ms, name, APPLIED, *expected))
        self._exactly_one(cursor, name, expected)

    def _forget(self, name: str, *, expected: Sequence[str] = (APPLIED, BASELINE)) -> None:
        p = self.db.param
        cursor = execute(self.db, f'DELETE FROM "{self.table}" WHERE "name" = {p} AND COALESCE("outcome", {p}) IN '
                                  f'({", ".join([p] * len(expected))})', (name, APPLIED, *expected))
        self._exactly_one(cursor, name, expected)

    def _exactly_one(self, cursor: Any, name: str, expected: Sequence[str]) -> None:
        # The row is what this run claimed; if someone changed it meanwhile (a repair), say so rather than
        # report a migration applied or reverted that the history no longer shows.
        if cursor.rowcount != 1:
            raise MigrationError(
                f"the history row of {name} is no longer {' or '.join(expected)} (changed by another process, such "
                "as a `migrate repair`, while this runner worked): check the schema by hand, then run "
                "`orm-kit migrate status`")

    # -- running ---------------------------------------------------------------------------------

    def _run(self, step: _Step, direction: str) -> int:
        return run_migration(self.db, step.module, direction)

    def _load(self, plan: Sequence[MigrationFile], direction: str) -> list[_Step]:
        return [_Step(f, f.load_for(direction)) for f in plan]

    def up(self, target: str | None = None) -> list[str]:
        """Apply pending migrations (or up to and including ``target``); return the names applied."""
        return self._drive("up", lambda files, status, history: self.plan_up(files, status, target))

    def plan_up(self, files: list[MigrationFile], status: Status, target: str | None = None) -> list[MigrationFile]:
        """The files ``up`` would apply, in order."""
        by_name = {f.name: f for f in files}
        pending = [by_name[name] for name in status.pending]
        if target is None:
            return pending
        last = self.resolve(files, target)
        return [f for f in pending if (f.number, f.name) <= (last.number, last.name)]

    def down(self, steps: int | None = None, target: str | None = None) -> list[str]:
        """Revert the last ``steps`` applied migrations (default 1), or those applied after ``target``."""
        if steps is not None and target is not None:
            raise MigrationError("pass either a number of steps or a target, not both")
        if steps is not None and steps < 1:
            raise MigrationError(f"--steps must be 1 or more (got {steps})")
        return self._drive("down", lambda files, status, history: self.plan_down(files, history, steps, target))

    def applied_files(self, files: list[MigrationFile], history: list[HistoryRow]) -> list[MigrationFile]:
        """The applied migrations' files, in the order they were applied."""
        by_name = {f.name: f for f in files}
        return [by_name[row.name] for row in history if row.name in by_name]

    def plan_down(self, files: list[MigrationFile], history: list[HistoryRow], steps: int | None = None,
                  target: str | None = None) -> list[MigrationFile]:
        """The files ``down`` would revert, in order (last applied first)."""
        applied = self.applied_files(files, history)
        if target is None:
            return list(reversed(applied))[: steps or 1]
        keep = self.resolve(files, target)
        if keep not in applied:
            raise MigrationError(f"{keep.name} is not applied, so there is nothing to go back to "
                                 "(see `orm-kit migrate status`)")
        return list(reversed(applied[applied.index(keep) + 1:]))

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """The migration lock, once no live runner is inside an ``atomic = False`` migration (waits up to the
        lock timeout for both); the block runs in the lock's transaction."""
        deadline = time.monotonic() + self.lock_timeout
        attempt = 0
        while True:
            with migration_lock(self.db, max(0.0, deadline - time.monotonic()), self.table):
                busy = self._live_run()
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

    def _live_run(self) -> tuple[str, str] | None:
        """The unfinished ``atomic = False`` migration whose runner is still alive, and who that is."""
        unfinished = [row.name for row in self._read_history() if row.outcome in (RUNNING, REVERTING)]
        if not unfinished:
            return None
        holder = run_claim_holder(self.db, self.table)
        return None if holder is None else (unfinished[0], holder)

    def _drive(self, direction: str,
               plan_for: Callable[[list[MigrationFile], Status, list[HistoryRow]], list[MigrationFile]]) -> list[str]:
        files = self.files()
        done: list[str] = []
        planned: list[str] | None = None
        while True:
            unlocked: _Step | None = None
            failure: tuple[str, BaseException] | None = None
            with ExitStack() as claim:
                with self._exclusive():
                    status, history = self._checked(files)
                    plan = plan_for(files, status, history)
                    if planned is None:
                        planned = [f.name for f in plan]
                    # After an atomic = False step the lock was let go: never do more than first planned.
                    plan = [f for f in plan if f.name in planned and f.name not in done]
                    if not plan:
                        break
                    for step in self._load(plan, direction):
                        if not step.atomic:
                            # Claimed under the lock, in the same transaction as the history row says so:
                            # whoever holds the lock next sees both, or neither.
                            claim.enter_context(run_claim(self.db, self.table))
                            unlocked = step
                            if direction == "up":
                                self._record(step.file, RUNNING, None)
                            else:
                                self._set_outcome(step.file.name, REVERTING, expected=(APPLIED, BASELINE))
                            break
                        try:
                            with self.db.atomic():
                                duration = self._run(step, direction)
                                if direction == "up":
                                    self._record(step.file, APPLIED, duration)
                                else:
                                    self._forget(step.file.name)
                        except Exception as exc:  # noqa: BLE001 - reported with the migration's name below
                            failure = (step.file.name, exc)
                            break
                        done.append(step.file.name)
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
            done.append(unlocked.file.name)
        return done

    def _run_unlocked(self, step: _Step, direction: str, claim: ExitStack) -> None:
        # atomic = False: the claim row (running / reverting) and the run claim, both taken under the lock,
        # keep every other runner waiting while this runs without a transaction; both are settled under
        # the lock again, the history row first, so nobody ever sees a live-looking row without its claim.
        error: BaseException | None = None
        duration = None
        with foreign_keys_off(self.db):
            try:
                duration = self._run(step, direction)
            except Exception as exc:  # noqa: BLE001 - recorded, then reported below
                error = exc
        with migration_lock(self.db, self.lock_timeout, self.table):
            if direction == "up":
                self._set_outcome(step.file.name, FAILED if error else APPLIED, duration, expected=(RUNNING,))
            elif error:
                self._set_outcome(step.file.name, REVERT_FAILED, expected=(REVERTING,))
            else:
                self._forget(step.file.name, expected=(REVERTING,))
            claim.close()
        if error is not None:
            raise MigrationFailedError(
                f"{step.file.name} {direction}() failed: {first_line(error)}; it runs with atomic = False, so it "
                f"may be half-done and is recorded as {'failed' if direction == 'up' else 'revert_failed'}: bring "
                "the schema back by hand, then run `orm-kit migrate repair`")

    # -- adopting and repairing ------------------------------------------------------------------

    def baseline(self, version: str) -> list[str]:
        """Record the migrations up to ``version`` as applied without running them (adopt a database).

        This trusts that the schema is what those migrations produce; :func:`orm_kit.drift.baseline`
        checks it first.
        """
        files = self.files()
        last = self.resolve(files, version)
        with migration_lock(self.db, self.lock_timeout, self.table):
            self._ensure_history(files)
            history = self._read_history()
            if history:
                raise MigrationRefusedError(
                    f"the database already has a migration history ({len(history)} rows, last {history[-1].name}): "
                    "baseline only adopts a database with none (see `orm-kit migrate status`)")
            chosen = [f for f in files if (f.number, f.name) <= (last.number, last.name)]
            for f in chosen:
                self._record(f, BASELINE, 0)
        return [f.name for f in chosen]

    def repair(self) -> RepairReport:
        """Accept edited files' checksums and clear failed ``atomic = False`` runs; report missing files."""
        files = self.files()
        sums = {f.name: f.checksum for f in files}
        report = RepairReport()
        p = self.db.param
        with migration_lock(self.db, self.lock_timeout, self.table):
            self._ensure_history(files)
            busy = self._live_run()
            if busy is not None:
                raise MigrationRefusedError(
                    f"{busy[0]} is being run right now by another runner ({busy[1]}), outside a transaction "
                    "(atomic = False): nothing to repair; wait for it to finish, then see `orm-kit migrate status`")
            for row in self._read_history():
                if row.name not in sums:
                    report.missing.append(row.name)
                elif row.outcome in (FAILED, RUNNING):
                    self._forget(row.name, expected=(row.outcome,))  # as before the attempt: pending again
                    report.cleared.append(row.name)
                elif row.outcome in (REVERTING, REVERT_FAILED):
                    self._set_outcome(row.name, APPLIED, expected=(row.outcome,))  # as before: still applied
                    report.cleared.append(row.name)
                elif row.checksum != sums[row.name]:
                    execute(self.db, f'UPDATE "{self.table}" SET "checksum" = {p} WHERE "id" = {p}',
                                        (sums[row.name], row.id))
                    report.rechecksummed.append(row.name)
        return report


def run_migration(db: peewee.Database, module: ModuleType, direction: str) -> int:
    """Run a loaded migration's up() or down(), then the foreign-key check; return milliseconds taken."""
    started = time.perf_counter()
    getattr(module, direction)(migrator_for(db), db)
    broken = foreign_key_violations(db)
    if broken:
        raise MigrationError(
            f"foreign keys point nowhere afterwards: {', '.join(broken)} (delete or re-point those rows in the "
            "migration, or add the parent rows first)")
    return round((time.perf_counter() - started) * 1000)


def _unfinished_problem(row: HistoryRow, holder: str | None) -> str:
    when = format_utc(row.applied_at) if row.applied_at else "an unknown time"
    if holder is not None:
        return (f"{row.name} (atomic = False) is being {'applied' if row.outcome == RUNNING else 'reverted'} right "
                f"now by another runner ({holder}), started at {when}: wait for it to finish")
    what = {
        FAILED: "failed",
        RUNNING: "was started and never finished (its runner died)",
        REVERTING: "was being reverted and never finished (its runner died)",
        REVERT_FAILED: "failed to revert",
    }[row.outcome or FAILED]
    return (f"{row.name} (atomic = False) {what} at {when} and may be half-done: bring the schema back by hand and "
            "run `orm-kit migrate repair`")


def _as_datetime(value: Any) -> datetime.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value.astimezone(datetime.UTC)
    return None


def migrate_up(db: peewee.Database, directory: Path | None = None, target: str | None = None) -> list[str]:
    """Apply pending migrations from ``directory`` (default: the shipped ones); return the names applied."""
    return Runner(db, directory).up(target)
