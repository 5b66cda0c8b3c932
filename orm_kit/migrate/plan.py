"""Files and history merged: every migration's state, the problems that stop a run, and what to run.

    plan = read(db, Path("migrations"))          # files on disk + history in the database, now
    plan.status.pending                          # ['0003_deployment_history_indexes']; .problems, .ok
    plan.up(target="0003")                       # the files `up` would apply, in order
    plan.down(steps=2)                           # the files `down` would revert, last applied first
    plan = read(db, [AppMigrations("platform", ...), AppMigrations("flags", ...)])   # several apps
    plan.up()                                    # every app's pending files, each after what it needs
    plan.down(app="flags")                       # the last one of flags

With several apps (:mod:`orm_kit.migrate.apps`), each app's files and history rows are assessed on
their own (numbering, lateness, edits are per app) and the declared dependencies join them: ``up``
runs in an order that honours them, ``down`` reverts within one app and refuses while another app's
applied migration still depends on what it would revert. History rows of apps not given here are
left alone: they never make a run refuse, but ``down`` will not revert anything recorded before
them (it cannot tell whether they depend on it).

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
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import takewhile
from pathlib import Path
from typing import Any

import peewee

from orm_kit._shown import shown
from orm_kit.errors import MigrationError
from orm_kit.migrate.apps import AppMigrations, Graph, as_apps, label, split_target
from orm_kit.migrate.files import (
    DEFAULT_APP,
    MigrationFile,
    discover,
    misnamed,
    number_of,
    suggested_name,
    superseded,
    syntax_error,
    target_number,
)
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
    "MAX_STEPS",
    "LiveRun",
    "MigrationState",
    "Plan",
    "RepairReport",
    "Status",
    "applied_files",
    "assess",
    "check_down_arguments",
    "empty",
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
    app: str = DEFAULT_APP

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["applied_at"] = self.applied_at.isoformat() if self.applied_at else None
        return data


@dataclass(frozen=True)
class Status:
    """Every migration's state, and the problems that make the runner refuse to run.

    ``apps``: the apps assessed, in order; ``order``: the pending migrations' labels in the order ``up``
    applies them (``app:name`` when there are several apps); ``other_apps``: apps the history has rows
    of that were not given (left alone).
    """

    migrations: tuple[MigrationState, ...]
    problems: tuple[str, ...]
    apps: tuple[str, ...] = (DEFAULT_APP,)
    order: tuple[str, ...] | None = None
    other_apps: tuple[str, ...] = ()

    @property
    def pending(self) -> list[str]:
        """Names not yet applied, in the order ``up`` would apply them."""
        if self.order is not None:
            return list(self.order)
        return [m.name for m in self.migrations if m.state in ("pending", "late")]

    @property
    def ok(self) -> bool:
        """True when nothing is pending and nothing is wrong: safe to deploy."""
        return not self.problems and not self.pending

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"ok": self.ok, "apps": list(self.apps), "pending": self.pending, "problems": list(self.problems),
                "migrations": [m.to_dict() for m in self.migrations], "other_apps": list(self.other_apps)}


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
    """The migration files of every app, the recorded history and their merged status, as read at one moment."""

    apps: tuple[AppMigrations, ...]
    files: tuple[MigrationFile, ...]
    history: tuple[HistoryRow, ...]
    status: Status
    graph: Graph

    @property
    def directory(self) -> Path:
        """The default app's migrations folder (the only one, when there is one app)."""
        return self.apps[-1].directory

    @property
    def default_app(self) -> str:
        """The app a target without ``app:`` is in: the last one given (a project's own)."""
        return self.apps[-1].name

    @property
    def qualified(self) -> bool:
        """Whether names are shown with their app (``app:name``): there are several apps."""
        return len(self.apps) > 1

    def label(self, f: MigrationFile) -> str:
        """``f`` as output names it."""
        return label(f.app, f.name, self.qualified)

    @property
    def applied(self) -> list[MigrationFile]:
        """The applied migrations' files, in the order they were applied."""
        return applied_files(self.files, self.history)

    @property
    def pending(self) -> list[MigrationFile]:
        """The files not applied yet, in the order ``up`` applies them."""
        return self.graph.order(done=_keys(self.applied))

    def ordered(self) -> list[MigrationFile]:
        """Every file in the order ``up`` would apply them on an empty database."""
        return self.graph.order()

    def app_files(self, app: str) -> list[MigrationFile]:
        """The files of ``app`` by number; refuses an app that is not given."""
        if app not in {a.name for a in self.apps}:
            raise MigrationError(f"unknown app {app!r} (expected one of: {', '.join(a.name for a in self.apps)})")
        return [f for f in self.files if f.app == app]

    def resolve(self, target: str, app: str | None = None) -> MigrationFile:
        """The file ``target`` (a name or a number, in ``app`` or as ``app:target``) names."""
        app, target = split_target(target, app or self.default_app)
        return resolve(self.app_files(app), target, app if self.qualified or app != DEFAULT_APP else None)

    def up(self, target: str | None = None, app: str | None = None) -> list[MigrationFile]:
        """What ``up`` would apply: every pending file, or what ``target`` (or ``app``'s last file) needs."""
        if target is None and app is None:
            return plan_up(self.pending, self.status)
        if target is not None:
            goal = self.resolve(target, app)
        else:
            mine = self.app_files(app or self.default_app)
            if not mine:
                return []
            goal = mine[-1]
        needed = self.graph.closure([(goal.app, goal.name)])
        return [f for f in plan_up(self.pending, self.status) if (f.app, f.name) in needed]

    def down(self, steps: int | None = None, target: str | None = None, app: str | None = None
             ) -> list[MigrationFile]:
        """What ``down`` would revert in one app (``app``, else the target's, else the default one), last applied
        first: the last ``steps`` (default 1), or all applied after ``target``."""
        if target is not None:
            app, target = split_target(target, app or self.default_app)
        app = app or self.default_app
        mine = self.app_files(app)
        history = [row for row in self.history if row.app == app]
        chosen = plan_down(mine, history, steps, target, app if self.qualified else None)
        if chosen:
            self._refuse_dependents(app, chosen)
        return chosen

    def still_applied(self, keys: Iterable[tuple[str, str]]) -> list[MigrationFile]:
        """Of a ``down`` planned earlier (``keys``: (app, name) of one app), what is still applied on top of that
        app, last applied first; refused as :meth:`down` refuses. Not ``down`` again: its window of the last N
        has moved since, and what it would add is not what was planned."""
        wanted = set(keys)
        apps = {app for app, _ in wanted}
        # Only from the top: once something else was applied over them, none of them may go first.
        chosen = list(takewhile(lambda f: (f.app, f.name) in wanted,
                                [f for f in reversed(self.applied) if f.app in apps]))
        if chosen:
            self._refuse_dependents(chosen[0].app, chosen)
        return chosen

    def _refuse_dependents(self, app: str, chosen: Sequence[MigrationFile]) -> None:
        applied = _keys(self.applied)
        leaving = _keys(chosen)
        for dependent, need in self.graph.dependents(leaving).items():
            if dependent in applied and dependent not in leaving:
                theirs = [f for f in self.applied if f.app == dependent[0]]
                steps = len(theirs) - [(f.app, f.name) for f in theirs].index(dependent)
                raise MigrationError(
                    f"cannot revert {label(*need, True)}: {label(*dependent, True)} is applied and depends on it; "
                    f"revert that first (orm-kit migrate down --app {dependent[0]} --steps {steps})")
        first = min((row for row in self.history if row.app == app and (row.app, row.name) in leaving),
                    key=lambda row: row.id)
        given = {a.name for a in self.apps}
        later = [row for row in self.history if row.app not in given and row.id > first.id]
        if later:
            row = later[0]
            raise MigrationError(
                f"cannot revert {label(first.app, first.name, True)}: {row.app}:{row.name} was applied after it, and "
                f"app {row.app!r} is not configured here, so orm-kit cannot tell whether it depends on it; run the "
                f"down from the project that configures {row.app!r}")


def _keys(files: Iterable[MigrationFile]) -> set[tuple[str, str]]:
    return {(f.app, f.name) for f in files}


def read(db: peewee.Database, source: Path | Sequence[AppMigrations], *, history_table: str = HISTORY_TABLE,
         allow_out_of_order: bool = False) -> Plan:
    """The plan for the migrations of ``source`` (a folder, or apps) on ``db``, as things are now (reads only)."""
    history = History(db, history_table).read()
    other = tables(db, exclude=(history_table,)) if not history else []
    return _merge(as_apps(source), history, other, live_run(db, history, history_table), allow_out_of_order)


def empty(source: Path | Sequence[AppMigrations]) -> Plan:
    """The plan for an empty database, where every migration is pending (reads only the files)."""
    return _merge(as_apps(source), [], [], None, False)


def _merge(apps: Sequence[AppMigrations], history: Sequence[HistoryRow], other: Sequence[str],
           live: LiveRun | None, allow_out_of_order: bool) -> Plan:
    files = [f for app in apps for f in discover(app.directory, app.name)]
    graph = Graph.build(files, [app.name for app in apps])
    qualified = len(apps) > 1
    states: list[MigrationState] = []
    problems: list[str] = []
    for app in apps:
        status = assess([f for f in files if f.app == app.name], [row for row in history if row.app == app.name],
                        directory=app.directory, misnamed=misnamed(app.directory),
                        allow_out_of_order=allow_out_of_order, app=app.name,
                        # Migration names repeat across apps (each has its 0001): the run is one app's.
                        live=(live.name, live.holder) if live is not None and live.app == app.name else None)
        states += status.migrations
        problems += [f"{app.name}: {problem}" if qualified else problem for problem in status.problems]
    problems += graph.problems
    applied = {(row.app, row.name) for row in history}
    for key, needs in graph.needs.items():
        for need in needs:
            if key in applied and need not in applied and need[0] != key[0]:
                problems.append(f"{label(*key, True)} is applied, but {label(*need, True)}, which it depends on, is "
                                "not: apply it (orm-kit migrate up), or revert the first")
    if not history and other:
        problems.append(_tables_without_history(other))
    waiting = {(m.app, m.name) for m in states if m.state in ("pending", "late")}
    order = tuple(label(f.app, f.name, qualified) for f in graph.order(done=applied) if (f.app, f.name) in waiting)
    given = [app.name for app in apps]
    others = tuple(dict.fromkeys(row.app for row in history if row.app not in given))
    return Plan(tuple(apps), tuple(files), tuple(history),
                Status(tuple(states), tuple(problems), tuple(given), order, others), graph)


@dataclass(frozen=True)
class LiveRun:
    """An ``atomic = False`` migration (or the steps after a commit) still being run, and who runs it."""

    app: str
    name: str
    holder: str

    @property
    def label(self) -> str:
        """The migration as output names it (``app:name`` outside the platform's app)."""
        return label(self.app, self.name, self.app != DEFAULT_APP)


def live_run(db: peewee.Database, history: Sequence[HistoryRow], history_table: str = HISTORY_TABLE,
             ) -> LiveRun | None:
    """The unfinished ``atomic = False`` migration whose runner is still alive, and who that is."""
    unfinished = [row for row in history if row.outcome in (RUNNING, REVERTING)]
    if not unfinished:
        return None
    holder = run_claim_holder(db, history_table)
    # Only one runner at a time holds the claim, and it wrote its row when it started: of several unfinished
    # rows (a dead run's, in another app, say), the live one is the last written.
    return None if holder is None else LiveRun(unfinished[-1].app, unfinished[-1].name, holder)


def assess(files: Sequence[MigrationFile], history: Sequence[HistoryRow], *, directory: Path,
           misnamed: Sequence[Path] = (), other_tables: Sequence[str] = (), allow_out_of_order: bool = False,
           live: tuple[str, str] | None = None, app: str = DEFAULT_APP) -> Status:
    """Every migration's state and every problem, for one app's files and history rows. ``live``: the
    ``atomic = False`` run in progress and who runs it; ``other_tables``: the database's tables besides the
    history (only matters when there is no history)."""
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
        replaced = superseded(f)  # read (and checked) for every file, so a malformed one is found at once
        if numbers[f.number] > 1 and row is None:
            states.append(MigrationState(f.number, f.name, "duplicate", checksum=f.checksum, app=app))
            continue
        if row is None:
            late = f.number < last_applied
            states.append(MigrationState(f.number, f.name, "late" if late else "pending", checksum=f.checksum,
                                         app=app))
            broken = syntax_error(f)
            if broken is not None:  # found now, not half-way through a run that applied the ones before it
                problems.append(f"{f.name}.py does not compile: {broken}: fix it (nothing runs until it does)")
            if late and not allow_out_of_order:
                problems.append(
                    f"{f.name}.py is numbered below {last_name}, which is already applied: renumber it to "
                    f"follow {last_name}, or pass --allow-out-of-order to apply it anyway")
            continue
        state = row.outcome or APPLIED
        if state in UNFINISHED:
            problems.append(_unfinished_problem(row, live[1] if live and live[0] == row.name else None))
        elif row.checksum is not None and row.checksum != f.checksum and row.checksum not in replaced:
            state = "edited"
            problems.append(
                f"{f.name}.py was edited after it was applied (recorded sha256 {row.checksum[:12]}, file has "
                f"{f.checksum[:12]}): restore the file, or run `orm-kit migrate repair` to accept the edit")
        states.append(MigrationState(f.number, f.name, state, row.applied_at, row.duration_ms, f.checksum,
                                     row.checksum, app))
    for row in history:
        if row.name not in known:
            states.append(MigrationState(number_of(row.name), row.name, "missing", row.applied_at, row.duration_ms,
                                         None, row.checksum, app))
            problems.append(
                f"{row.name} is recorded as applied but {row.name}.py is not in {directory}: restore the "
                "file (an applied migration is history; never delete it)")
    if not history and other_tables:
        problems.append(_tables_without_history(other_tables))
    states.sort(key=lambda s: (s.number, s.name))
    return Status(tuple(states), tuple(problems), (app,))


def _tables_without_history(other_tables: Sequence[str]) -> str:
    shown = ", ".join(other_tables[:5]) + (", ..." if len(other_tables) > 5 else "")
    return (f"the database has tables ({shown}) but no migration history: if its schema is what the "
            "migrations up to NNNN produce, run `orm-kit migrate baseline NNNN` to adopt it")


def resolve(files: Sequence[MigrationFile], target: str, app: str | None = None) -> MigrationFile:
    """The file ``target`` names: a full name, or a number (of ``app``, for messages)."""
    for f in files:
        if target == f.name or target_number(target) == f.number:
            return f
    names = ", ".join(f.name for f in files) or "none"
    where = f" of app {app}" if app else ""
    number = target_number(target)
    if number is not None:
        raise MigrationError(f"migration {number:04d}{where} does not exist (the migrations{where}: {names}; "
                             "`orm-kit migrate status` lists them)")
    raise MigrationError(f"migration {shown(target)}{where} does not exist: a target is a migration's number (0002) "
                         f"or its full name (the migrations{where}: {names})")


def applied_files(files: Sequence[MigrationFile], history: Sequence[HistoryRow]) -> list[MigrationFile]:
    """The applied migrations' files, in the order they were applied."""
    by_key = {(f.app, f.name): f for f in files}
    return [by_key[(row.app, row.name)] for row in history if (row.app, row.name) in by_key]


def plan_up(files: Sequence[MigrationFile], status: Status, target: str | None = None) -> list[MigrationFile]:
    """The files ``up`` would apply, in order (all pending ones, or those up to and including ``target``).

    ``files`` in the order ``up`` takes them; only the pending ones ``status`` names are kept.
    """
    waiting = {(m.app, m.name) for m in status.migrations if m.state in ("pending", "late")}
    pending = [f for f in files if (f.app, f.name) in waiting]
    if target is None:
        return pending
    last = resolve(files, target)
    return [f for f in pending if f.app != last.app or (f.number, f.name) <= (last.number, last.name)]


#: Migrations reverted at once, at most: more than any history holds.
MAX_STEPS = 1_000_000


def check_down_arguments(steps: int | None, target: str | None) -> None:
    """Refuse ``steps`` and ``target`` together, and ``steps`` outside 1 to :data:`MAX_STEPS`."""
    if steps is not None and target is not None:
        raise MigrationError("pass either a number of steps or a target, not both")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS):
        raise MigrationError(f"--steps must be a whole number from 1 to {MAX_STEPS:,} (got {shown(steps)})")
    if target is not None and not isinstance(target, str):
        raise MigrationError(f"a migration target is text, NNNN or APP:NNNN (got {shown(target)})")


def plan_down(files: Sequence[MigrationFile], history: Sequence[HistoryRow], steps: int | None = None,
              target: str | None = None, app: str | None = None) -> list[MigrationFile]:
    """The files ``down`` would revert, last applied first (the last ``steps``, or those after ``target``).

    More ``steps`` than are applied is refused (a typo must not silently revert everything there is).
    """
    check_down_arguments(steps, target)
    applied = applied_files(files, history)
    if target is None:
        if steps is not None and steps > len(applied):
            where = f" of app {app}" if app else ""
            if not applied:
                raise MigrationError(f"--steps {steps}: no migration{where} is applied, so there is nothing to revert")
            raise MigrationError(
                f"--steps {steps}: only {len(applied)} migration(s){where} are applied "
                f"({', '.join(f.name for f in applied)}); pass --steps {len(applied)} to revert them all")
        return list(reversed(applied))[: steps or 1]
    keep = resolve(files, target, app)
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
