"""Three-way drift (models vs migrations vs live database), migration round trips, and checked adoption.

    report = check(db, MODELS)                 # models vs scratch-migrated schema vs the live database
    for finding in report.findings:
        print(finding)                          # deployment: column duration_seconds type: models INTEGER, ...
    verify(db).ok                               # every migration up, down, up again on a scratch copy
    baseline(Runner(db), "0001")                # adopt a database, if it is what 0001 produces

Every comparison is between snapshots (:mod:`orm_kit.schema`) taken from the same backend: the models are
realized on a scratch database with peewee's DDL, the migrations are replayed on another, so nothing that
peewee keeps on the Python side (defaults, validators) can count as drift. The toolkit never imports the
platform's models: callers pass them in.

``playhouse.schema_diff`` compares tables, columns and indexes by name only: it does not look at types,
nullability, defaults, foreign-key targets or ``on_delete``, or CHECK constraints, and it hides the indexes
that back UNIQUE constraints on SQLite; hence the snapshots. It still drives ``migrate make``
(:mod:`orm_kit.codegen`), where its output maps onto peewee's code template.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import peewee

from orm_kit.dialect import is_sqlite
from orm_kit.errors import MigrationError, MigrationFailedError, MigrationRefusedError, first_line
from orm_kit.migration_lock import foreign_keys_off
from orm_kit.runner import MigrationFile, Runner, run_migration
from orm_kit.schema import Facts, realize_models, scratch_copy, scratch_database, snapshot

__all__ = [
    "DriftReport",
    "Finding",
    "VerifyReport",
    "VerifyStep",
    "baseline",
    "check",
    "compare",
    "models_facts",
    "replay",
    "verify",
]

Models = Sequence[type[peewee.Model]]


@dataclass(frozen=True)
class Finding:
    """One fact the views disagree on; a value of None means the view does not have it."""

    table: str
    subject: str
    attribute: str
    models: str | None
    migrations: str | None
    live: str | None = None

    def __str__(self) -> str:
        sides = (("models", self.models), ("migrations", self.migrations), ("live", self.live))
        return _label((self.table, self.subject, self.attribute), sides)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class DriftReport:
    """What ``check`` found: disagreements, migrations not applied yet, and what would make the runner refuse."""

    findings: list[Finding]
    pending: list[str]
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when models, migrations and the live database agree, nothing is pending and nothing is wrong."""
        return not self.findings and not self.pending and not self.problems

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"ok": self.ok, "pending": self.pending, "problems": self.problems,
                "findings": [f.to_dict() for f in self.findings]}


def compare(a: Facts, b: Facts) -> list[tuple[tuple[str, str, str], str | None, str | None]]:
    """Facts that differ between two snapshots; inside a table both have, absent facts count too."""
    both = {key[0] for key in a if key[1] == "table"} & {key[0] for key in b if key[1] == "table"}
    out = []
    for key in sorted(set(a) | set(b)):
        if key[1] != "table" and key[0] not in both:
            continue  # the table itself is reported once, not column by column
        if a.get(key) != b.get(key):
            out.append((key, a.get(key), b.get(key)))
    return out


def replay(scratch: peewee.Database, files: Iterable[MigrationFile], direction: str = "up") -> None:
    """Run migrations on a scratch database, each in its own transaction, as the runner would."""
    for f in files:
        module = f.load_for(direction)
        try:
            with foreign_keys_off(scratch), scratch.atomic():
                run_migration(scratch, module, direction)
        except Exception as exc:  # noqa: BLE001 - reported with the migration's name
            raise MigrationFailedError(
                f"{f.name} {direction}() fails on a scratch database: {first_line(exc)}") from None


def models_facts(db: peewee.Database, models: Models) -> Facts:
    """The schema ``models`` would create, on a scratch database of ``db``'s kind."""
    with scratch_database(db) as scratch:
        realize_models(scratch, models)
        return snapshot(scratch)


def check(db: peewee.Database, models: Models, directory: Path | None = None) -> DriftReport:
    """Three-way drift between ``models``, the schema the migrations produce, and the live ``db``."""
    runner = Runner(db, directory)
    db = runner.db
    files = runner.files()
    history = runner.history()
    # An edited, missing or misnamed file makes the runner refuse; check must not call that "no drift".
    problems = list(runner.status().problems)
    applied = runner.applied_files(files, history)
    pending = [f for f in files if f not in applied]
    live = snapshot(db, exclude=(runner.table,))
    with scratch_database(db) as scratch:
        replay(scratch, applied)
        at_live = snapshot(scratch)  # what the live database should look like, given its history
        replay(scratch, pending)
        at_head = snapshot(scratch)
    wanted = models_facts(db, models)
    keys: dict[tuple[str, str, str], None] = {}
    for key, _, _ in compare(wanted, at_head) + compare(at_live, live):
        keys[key] = None
    findings = [Finding(*key, wanted.get(key), at_head.get(key), live.get(key)) for key in sorted(keys)]
    return DriftReport(findings, [f.name for f in pending], problems)


def baseline(runner: Runner, version: str) -> list[str]:
    """Adopt ``runner``'s database at ``version``, once its schema is what the migrations up to it produce."""
    files = runner.files()
    last = runner.resolve(files, version)
    chosen = [f for f in files if (f.number, f.name) <= (last.number, last.name)]
    live = snapshot(runner.db, exclude=(runner.table,))
    with scratch_database(runner.db) as scratch:
        replay(scratch, chosen)
        expected = snapshot(scratch)
    differences = _describe(compare(expected, live), f"migrations up to {last.name}", "database")
    if differences:
        shown = "; ".join(differences[:5]) + (f"; and {len(differences) - 5} more" if len(differences) > 5 else "")
        raise MigrationRefusedError(
            f"the database is not what the migrations up to {last.name} produce ({shown}): baseline at the "
            "version it matches, or bring the schema in line first")
    return runner.baseline(version)


@dataclass(frozen=True)
class VerifyStep:
    """One migration's round trip: up, down (schema back as before), up again (schema as after the first up)."""

    name: str
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class VerifyReport:
    """Every migration's round trip, the drift between the last schema and the models, and what it ran on."""

    steps: list[VerifyStep]
    drift: list[str]
    on: str = "an empty scratch database"

    @property
    def ok(self) -> bool:
        """True when every round trip restored the schema and the result equals the models."""
        return not self.drift and all(not s.problems for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"ok": self.ok, "on": self.on, "steps": [asdict(s) for s in self.steps], "drift": self.drift}


def _label(key: tuple[str, str, str], sides: Iterable[tuple[str, str | None]]) -> str:
    """``team: column email null: models NOT NULL, migrations NULL`` (None reads "absent")."""
    table, subject, attribute = key
    what = table if subject == "table" else f"{table}: {subject}"
    attr = "" if attribute in ("exists", "kind", "references") else f" {attribute}"
    return f"{what}{attr}: " + ", ".join(f"{side} {'absent' if value is None else value}" for side, value in sides)


def _describe(diffs: list[tuple[tuple[str, str, str], str | None, str | None]], left: str, right: str) -> list[str]:
    return [_label(key, ((left, a), (right, b))) for key, a, b in diffs]


def verify(db: peewee.Database, models: Models | None = None, directory: Path | None = None) -> VerifyReport:
    """Round-trip every migration on a scratch copy of ``db`` (SQLite) or a scratch database (PostgreSQL).

    Pending migrations run up, down and up again (on a copy, over its real rows): the schema after the
    down must equal the one before the up, the second up must equal the first. On a copy, the applied
    ones are then peeled back from the last: down, up (must give the schema back), down again (must
    give the first down's schema). The schema at the head must equal ``models``.
    """
    runner = Runner(db, directory)
    db, files = runner.db, runner.files()
    status = runner.status()
    if status.problems:
        raise MigrationRefusedError("the runner would refuse to migrate: " + "; ".join(status.problems))
    copy = is_sqlite(db) and str(db.database or ":memory:") != ":memory:"
    applied = runner.applied_files(files, runner.history()) if copy else []
    pending = [f for f in files if f not in applied]
    problems: dict[str, list[str]] = {f.name: [] for f in files}
    on = (f"a copy of the database ({len(applied)} applied, {len(pending)} pending)" if copy
          else "an empty scratch database")

    def report(drift: list[str], upto: MigrationFile | None = None) -> VerifyReport:
        shown = files if upto is None else files[: files.index(upto) + 1]
        return VerifyReport([VerifyStep(f.name, problems[f.name]) for f in shown], drift, on)

    with scratch_copy(db) if copy else scratch_database(db) as scratch:
        def shot() -> Facts:
            return snapshot(scratch, exclude=(runner.table,))

        for f in pending:
            try:
                before = shot()
                replay(scratch, [f], "up")
                after = shot()
                replay(scratch, [f], "down")
                problems[f.name] += _describe(compare(before, shot()), "before up", "after down")
                replay(scratch, [f], "up")
                problems[f.name] += _describe(compare(after, shot()), "first up", "second up")
            except MigrationError as exc:
                problems[f.name].append(str(exc))
                return report([], f)  # later migrations build on this one: stop here
        head = shot()
        if applied:
            replay(scratch, reversed(pending), "down")
            for f in reversed(applied):
                try:
                    at = shot()
                    replay(scratch, [f], "down")
                    below = shot()
                    replay(scratch, [f], "up")
                    problems[f.name] += _describe(compare(at, shot()), "before down", "after up")
                    replay(scratch, [f], "down")
                    problems[f.name] += _describe(compare(below, shot()), "first down", "second down")
                except MigrationError as exc:
                    problems[f.name].append(str(exc))
                    break  # earlier migrations lie under this one
    drift = _describe(compare(models_facts(db, models), head), "models", "migrations") if models else []
    return report(drift)
