"""Files and history merged: every migration's state, the problems that stop a run, and what to run.

    plan = read(db, Path("migrations"))          # files on disk + history in the database, now
    plan.status.pending                          # ['0003_deployment_history_indexes']; .problems, .ok
    plan.up(target="0003")                       # the files `up` would apply, in order
    plan.down(steps=2)                           # the files `down` would revert, last applied first

:func:`read` takes no lock: the runner reads the plan again once it holds the migration lock, and
``status``, ``check``, ``sql`` and ``verify`` read it as it is. Everything else here is a pure function
of what :mod:`orm_kit.migrate.files` found on disk and :mod:`orm_kit.migrate.history` read from the
database, so all of them see the same plan and the same problems.

The problems (each names the file and the fix): a file not named ``NNNN_slug.py``, two files sharing a
number, an applied file edited since (its sha256 changed) or missing, a file numbered below the last
applied one (unless out-of-order is allowed), an ``atomic = False`` migration that failed or never
finished, and a database that has tables but no history.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import peewee

from orm_kit.errors import MigrationError
from orm_kit.migrate.files import MigrationFile, discover, misnamed, number_of, suggested_name
from orm_kit.migrate.history import (
    APPLIED,
    FAILED,
    HISTORY_TABLE,
    REVERT_FAILED,
    REVERTING,
    RUNNING,
    UNFINISHED,
    History,
    HistoryRow,
    format_utc,
)
from orm_kit.migrate.lock import run_claim_holder
from orm_kit.migrate.snapshot import tables

__all__ = [
    "MigrationState",
    "Plan",
    "RepairReport",
    "Status",
    "applied_files",
    "assess",
    "check_down_arguments",
    "live_run",
    "plan_down",
    "plan_up",
    "read",
    "resolve",
]


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
    """What ``repair`` changed: re-recorded checksums, cleared failures, finished the steps a migration left
    for after its commit, and what it cannot fix."""

    rechecksummed: list[str] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    """The migration files, the recorded history and their merged status, as read at one moment."""

    directory: Path
    files: tuple[MigrationFile, ...]
    history: tuple[HistoryRow, ...]
    status: Status

    @property
    def applied(self) -> list[MigrationFile]:
        """The applied migrations' files, in the order they were applied."""
        return applied_files(self.files, self.history)

    @property
    def pending(self) -> list[MigrationFile]:
        """The files not applied yet, in file order."""
        applied = {f.name for f in self.applied}
        return [f for f in self.files if f.name not in applied]

    def resolve(self, target: str) -> MigrationFile:
        """The file ``target`` (a name or a number) names."""
        return resolve(self.files, target)

    def up(self, target: str | None = None) -> list[MigrationFile]:
        """What ``up`` would apply: every pending file, or those up to and including ``target``."""
        return plan_up(self.files, self.status, target)

    def down(self, steps: int | None = None, target: str | None = None) -> list[MigrationFile]:
        """What ``down`` would revert, last applied first: the last ``steps`` (default 1), or all after ``target``."""
        return plan_down(self.files, self.history, steps, target)


def read(db: peewee.Database, directory: Path, *, history_table: str = HISTORY_TABLE,
         allow_out_of_order: bool = False) -> Plan:
    """The plan for ``directory``'s migrations on ``db``, as things are now (reads only; takes no lock)."""
    files = discover(directory)
    history = History(db, history_table).read()
    other = tables(db, exclude=(history_table,)) if not history else []
    status = assess(files, history, directory=directory, misnamed=misnamed(directory), other_tables=other,
                    allow_out_of_order=allow_out_of_order, live=live_run(db, history, history_table))
    return Plan(directory, tuple(files), tuple(history), status)


def live_run(db: peewee.Database, history: Sequence[HistoryRow], history_table: str = HISTORY_TABLE,
             ) -> tuple[str, str] | None:
    """The unfinished ``atomic = False`` migration whose runner is still alive, and who that is."""
    unfinished = [row.name for row in history if row.outcome in (RUNNING, REVERTING)]
    if not unfinished:
        return None
    holder = run_claim_holder(db, history_table)
    return None if holder is None else (unfinished[0], holder)


def assess(files: Sequence[MigrationFile], history: Sequence[HistoryRow], *, directory: Path,
           misnamed: Sequence[Path] = (), other_tables: Sequence[str] = (), allow_out_of_order: bool = False,
           live: tuple[str, str] | None = None) -> Status:
    """Every migration's state and every problem. ``live``: the ``atomic = False`` run in progress and who runs
    it; ``other_tables``: the database's tables besides the history (only matters when there is no history)."""
    by_name = {row.name: row for row in history}
    known = {f.name for f in files}
    problems = [f"{path.name} is not named NNNN_slug.py (digits, an underscore, then letters, digits or "
                f"underscores), so it would never run: rename it, e.g. to {suggested_name(path)}"
                for path in misnamed]
    numbers = Counter(f.number for f in files)
    for number in sorted(n for n, count in numbers.items() if count > 1):
        clash = [f"{f.name}.py" for f in files if f.number == number]
        problems.append(f"{' and '.join(clash)} share number {number:04d} (renumber the newer one)")
    last_applied = max((f.number for f in files if f.name in by_name), default=-1)
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
            if late and not allow_out_of_order:
                problems.append(
                    f"{f.name}.py is numbered below {last_name}, which is already applied: renumber it to "
                    f"follow {last_name}, or pass --allow-out-of-order to apply it anyway")
            continue
        state = row.outcome or APPLIED
        if state in UNFINISHED:
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
            states.append(MigrationState(number_of(row.name), row.name, "missing", row.applied_at, row.duration_ms,
                                         None, row.checksum))
            problems.append(
                f"{row.name} is recorded as applied but {row.name}.py is not in {directory}: restore the "
                "file (an applied migration is history; never delete it)")
    if not history and other_tables:
        shown = ", ".join(other_tables[:5]) + (", ..." if len(other_tables) > 5 else "")
        problems.append(
            f"the database has tables ({shown}) but no migration history: if its schema is what the "
            "migrations up to NNNN produce, run `orm-kit migrate baseline NNNN` to adopt it")
    states.sort(key=lambda s: (s.number, s.name))
    return Status(tuple(states), tuple(problems))


def resolve(files: Sequence[MigrationFile], target: str) -> MigrationFile:
    """The file ``target`` names: a full name, or a number."""
    for f in files:
        if target == f.name or (target.isdigit() and int(target) == f.number):
            return f
    names = ", ".join(f.name for f in files) or "(none)"
    raise MigrationError(f"unknown migration {target!r} (expected a number or one of: {names})")


def applied_files(files: Sequence[MigrationFile], history: Sequence[HistoryRow]) -> list[MigrationFile]:
    """The applied migrations' files, in the order they were applied."""
    by_name = {f.name: f for f in files}
    return [by_name[row.name] for row in history if row.name in by_name]


def plan_up(files: Sequence[MigrationFile], status: Status, target: str | None = None) -> list[MigrationFile]:
    """The files ``up`` would apply, in order (all pending ones, or those up to and including ``target``)."""
    by_name = {f.name: f for f in files}
    pending = [by_name[name] for name in status.pending]
    if target is None:
        return pending
    last = resolve(files, target)
    return [f for f in pending if (f.number, f.name) <= (last.number, last.name)]


def check_down_arguments(steps: int | None, target: str | None) -> None:
    """Refuse ``steps`` and ``target`` together, and ``steps`` below 1."""
    if steps is not None and target is not None:
        raise MigrationError("pass either a number of steps or a target, not both")
    if steps is not None and steps < 1:
        raise MigrationError(f"--steps must be 1 or more (got {steps})")


def plan_down(files: Sequence[MigrationFile], history: Sequence[HistoryRow], steps: int | None = None,
              target: str | None = None) -> list[MigrationFile]:
    """The files ``down`` would revert, last applied first (the last ``steps``, or those after ``target``)."""
    check_down_arguments(steps, target)
    applied = applied_files(files, history)
    if target is None:
        return list(reversed(applied))[: steps or 1]
    keep = resolve(files, target)
    if keep not in applied:
        raise MigrationError(f"{keep.name} is not applied, so there is nothing to go back to "
                             "(see `orm-kit migrate status`)")
    return list(reversed(applied[applied.index(keep) + 1:]))


_OUTSIDE = "atomic = False, or the steps after its commit"  # the two ways a migration runs outside a transaction


def _unfinished_problem(row: HistoryRow, holder: str | None) -> str:
    when = format_utc(row.applied_at) if row.applied_at else "an unknown time"
    if holder is not None:
        return (f"{row.name} ({_OUTSIDE}) is being {'applied' if row.outcome == RUNNING else 'reverted'} right "
                f"now by another runner ({holder}), started at {when}: wait for it to finish")
    what = {
        FAILED: "failed",
        RUNNING: "was started and never finished (its runner died)",
        REVERTING: "was being reverted and never finished (its runner died)",
        REVERT_FAILED: "failed to revert",
    }[row.outcome or FAILED]
    return (f"{row.name} ({_OUTSIDE}) {what} at {when} and may be half-done: run `orm-kit migrate repair`, which "
            "runs the steps after a migration's commit again (an atomic = False migration: bring the schema back by "
            "hand first, and repair forgets the attempt)")
