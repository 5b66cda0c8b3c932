"""Three-way drift (models vs migrations vs live database), and adoption checked against the migrations.

    report = check(db, MODELS, Path("migrations"))   # models vs scratch-migrated schema vs the live database
    for finding in report.findings:
        print(finding)                          # deployment: column duration_seconds type: models INTEGER, ...
    baseline(Runner(db, Path("migrations")), "0001")  # adopt a database, if it is what 0001 produces
    report = check(db, apps)                    # several apps (orm_kit.migrate.apps): the union of their models
    [f.app for f in report.findings]            # "platform", "flags", or None: a table no app declares

With several apps, the models of all of them are realized together and the migrations of all of them
replayed in the runner's order; each finding names the app that owns its table (the app whose models
declare it, else the app whose migration created it). A table in the live database that no app's
models or migrations declare is *unexpected* (``app`` None).

Every comparison is between snapshots (:mod:`orm_kit.migrate.snapshot`) taken from the same backend: the models are
realized on a scratch database with peewee's DDL, the migrations are replayed on another, so nothing that
peewee keeps on the Python side (defaults, validators) can count as drift. The toolkit never imports the
platform's models: callers pass them in.

``playhouse.schema_diff`` compares tables, columns and indexes by name only: it does not look at types,
nullability, defaults, foreign-key targets or ``on_delete``, or CHECK constraints, and it hides the indexes
that back UNIQUE constraints on SQLite; hence the snapshots. It still drives ``migrate make``
(:mod:`orm_kit.migrate.codegen`), where its output maps onto peewee's code template.

A model field's constant ``default=`` lives in Python, so the models' schema has no database default;
a migration may still give the column that same default in the database (the safe form of a NOT NULL
column with a default keeps it, so code that does not know the column yet can insert): that is no
drift (:func:`accept_python_defaults`). ``check`` also lints the pending migrations
(:mod:`orm_kit.migrate.lint`): an unsafe statement without a reviewed opt-out fails it too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import peewee

from orm_kit._sql import literal
from orm_kit.dialect import unwrap
from orm_kit.errors import MigrationRefusedError
from orm_kit.migrate.apps import AppMigrations, as_apps
from orm_kit.migrate.files import MigrationFile
from orm_kit.migrate.history import HISTORY_TABLE
from orm_kit.migrate.lint import LintFinding, lint_pending
from orm_kit.migrate.plan import read
from orm_kit.migrate.runner import Runner
from orm_kit.migrate.scratch import models_facts, replay, scratch_database
from orm_kit.migrate.snapshot import OBJECT_KINDS, SECONDARY, Facts, snapshot, tables

__all__ = [
    "DriftReport",
    "Finding",
    "accept_python_defaults",
    "apps_of",
    "baseline",
    "check",
    "compare",
    "describe",
    "owners",
    "replay_owning",
]

Models = Sequence[type[peewee.Model]]


def apps_of(models: Models | Sequence[AppMigrations], directory: Path | None) -> tuple[AppMigrations, ...]:
    """The apps a caller means: ``(models, directory)`` is the one default app, else ``models`` are apps."""
    if directory is not None:
        return as_apps(Path(directory), [m for m in models if not isinstance(m, AppMigrations)])
    return as_apps([a for a in models if isinstance(a, AppMigrations)])


def replay_owning(scratch: peewee.Database, files: Iterable[MigrationFile], owner: dict[str, str]) -> None:
    """:func:`replay` ``files``, noting in ``owner`` which app's migration created each new table."""
    for f in files:
        before = set(tables(scratch))
        replay(scratch, [f])
        for table in set(tables(scratch)) - before:
            owner.setdefault(table, f.app)


def owners(apps: Sequence[AppMigrations], created: dict[str, str]) -> dict[str, str]:
    """Which app owns each table: the app whose models declare it, else the one whose migration created it."""
    found = dict(created)
    found.update({m._meta.table_name: app.name for app in apps for m in app.models})
    return found


@dataclass(frozen=True)
class Finding:
    """One fact the views disagree on; a value of None means the view does not have it."""

    table: str
    subject: str
    attribute: str
    models: str | None
    migrations: str | None
    live: str | None = None
    app: str | None = None  # the app that owns the table; None: no app declares it (unexpected)

    @property
    def unexpected(self) -> bool:
        """A table in the live database that no app's models or migrations declare."""
        return self.app is None and self.subject == "table"

    def __str__(self) -> str:
        if self.unexpected:
            return (f"table {self.table} is in the database, but no app's models or migrations declare it (drop it, "
                    "or declare it in an app's models and migrations and adopt it with baseline)")
        sides = (("models", self.models), ("migrations", self.migrations), ("live", self.live))
        return _label((self.table, self.subject, self.attribute), sides)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class DriftReport:
    """What ``check`` found: disagreements, migrations not applied yet, what would make the runner refuse,
    and the pending migrations' unsafe statements (``lint``: those no ``lint_ignore`` accepted)."""

    findings: list[Finding]
    pending: list[str]
    problems: list[str] = field(default_factory=list)
    lint: list[LintFinding] = field(default_factory=list)
    apps: list[str] = field(default_factory=list)
    other_apps: list[str] = field(default_factory=list)  # in the history, not given: their tables look unexpected

    @property
    def ok(self) -> bool:
        """True when models, migrations and the live database agree, nothing is pending and nothing is wrong."""
        return not self.findings and not self.pending and not self.problems and not self.lint

    def by_app(self) -> dict[str | None, list[Finding]]:
        """The findings per owning app (None: unexpected tables), apps in the order given."""
        grouped: dict[str | None, list[Finding]] = {app: [] for app in self.apps}
        for finding in self.findings:
            grouped.setdefault(finding.app, []).append(finding)
        return {app: found for app, found in grouped.items() if found}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"ok": self.ok, "apps": self.apps, "pending": self.pending, "problems": self.problems,
                "findings": [f.to_dict() for f in self.findings], "lint": [f.to_dict() for f in self.lint],
                "other_apps": self.other_apps}


def compare(a: Facts, b: Facts) -> list[tuple[tuple[str, str, str], str | None, str | None]]:
    """Facts that differ between two snapshots; inside a table both have, absent facts count too."""
    both = {key[0] for key in a if key[1] == "table"} & {key[0] for key in b if key[1] == "table"}
    described = {key[:2] for key in a if key[2] not in SECONDARY} & {key[:2] for key in b if key[2] not in SECONDARY}
    out = []
    for key in sorted(set(a) | set(b)):
        if key[1] not in OBJECT_KINDS and key[0] not in both:
            continue  # the table itself is reported once, not column by column
        if key[2] in SECONDARY and key[:2] not in described:
            continue  # an index one side lacks is reported by its kind, not by its name as well
        if a.get(key) != b.get(key):
            out.append((key, a.get(key), b.get(key)))
    return out


def check(db: peewee.Database, models: Models | Sequence[AppMigrations], directory: Path | None = None, *,
          history_table: str = HISTORY_TABLE) -> DriftReport:
    """Three-way drift between the models, the schema the migrations produce, and the live ``db``: of ``models``
    and the migrations in ``directory``, or of every app in ``models`` (a sequence of apps, no directory)."""
    apps = apps_of(models, directory)
    every = [m for app in apps for m in app.models]
    db = unwrap(db) or db
    plan = read(db, apps, history_table=history_table)
    live = snapshot(db, exclude=(history_table,))
    created: dict[str, str] = {}
    with scratch_database(db) as scratch:
        replay_owning(scratch, plan.applied, created)
        at_live = snapshot(scratch)  # what the live database should look like, given its history
        # Lint runs the pending migrations on the scratch database (capturing what they execute), so the
        # schema at the head is there afterwards; it says which app's migration created each new table.
        linted = lint_pending(db, scratch, plan.pending, every, history_table=history_table,
                              qualified=plan.qualified)
        at_head = snapshot(scratch)
    for table, app in linted.created.items():
        created.setdefault(table, app)
    wanted = accept_python_defaults(models_facts(db, every), at_head, every)
    owner = owners(apps, created)
    keys: dict[tuple[str, str, str], None] = {}
    for key, _, _ in compare(wanted, at_head) + compare(at_live, live):
        keys[key] = None
    findings = [Finding(*key, wanted.get(key), at_head.get(key), live.get(key), owner.get(key[0]))
                for key in sorted(keys)]
    # An edited, missing or misnamed file makes the runner refuse; check must not call that "no drift".
    return DriftReport(findings, [plan.label(f) for f in plan.pending], list(plan.status.problems) + linted.problems,
                       linted.unsafe, [app.name for app in apps], list(plan.status.other_apps))


def accept_python_defaults(wanted: Facts, other: Facts, models: Models) -> Facts:
    """``wanted`` (the models' facts), where ``other``'s database default equal to a field's constant Python
    default counts as the models' own: the models put that value into every row they write anyway."""
    accepted = dict(wanted)
    for model in models:
        for f in model._meta.sorted_fields:
            if f.default is None or callable(f.default):
                continue
            key = (model._meta.table_name, f"column {f.column_name}", "default")
            if accepted.get(key) == "none" and key in other and _same_value(other[key], literal(f.db_value(f.default))):
                accepted[key] = other[key]
    return accepted


_CAST = re.compile(r"::[a-z_ \"]+(\(\d+(,\s*\d+)?\))?(\[\])?$", re.I)


def _same_value(database_default: str, python_literal: str) -> bool:
    value = database_default.strip()
    while True:  # 'eu'::character varying, ('1.5'::numeric)::double precision, (0)
        stripped = _CAST.sub("", value).strip()
        if stripped.startswith("(") and stripped.endswith(")"):
            stripped = stripped[1:-1].strip()
        if stripped == value:
            break
        value = stripped
    return value.lower() == python_literal.lower() or value.strip("'").lower() == python_literal.strip("'").lower()


def baseline(runner: Runner, version: str, app: str | None = None) -> list[str]:
    """Adopt ``runner``'s database at ``version`` (of ``app``, or ``app:version``), once its schema is what the
    migrations already applied plus that app's up to ``version`` produce."""
    plan = runner.plan()
    chosen = runner.baseline_files(plan, version, app)
    last = chosen[-1]
    live = snapshot(runner.db, exclude=(runner.table,))
    if not plan.applied and not any(subject == "table" for _, subject, _ in live):
        raise MigrationRefusedError(
            f"the database has no tables, so there is nothing to adopt at {plan.label(chosen[-1])}: run `orm-kit "
            "migrate up` to build it (baseline is for a database built without orm-kit)")
    with scratch_database(runner.db) as scratch:
        replay(scratch, plan.applied)
        replay(scratch, chosen)
        expected = snapshot(scratch)
    # Tables other apps' models declare are theirs to adopt, later (they may depend on this one).
    later = {m._meta.table_name for a in runner.apps if a.name != last.app for m in a.models}
    diffs = [(key, a, b) for key, a, b in compare(expected, live)
             if not (key[0] in later and (key[0], "table", "exists") not in expected)]
    upto = plan.label(last)
    differences = describe(diffs, f"migrations up to {upto}", "database")
    if differences:
        shown = "; ".join(differences[:5]) + (f"; and {len(differences) - 5} more" if len(differences) > 5 else "")
        raise MigrationRefusedError(
            f"the database is not what the migrations up to {upto} produce ({shown}): baseline at the "
            "version it matches, or bring the schema in line first")
    return runner.baseline(version, app)


def _label(key: tuple[str, str, str], sides: Iterable[tuple[str, str | None]]) -> str:
    """``team: column email null: models NOT NULL, migrations NULL`` (None reads "absent")."""
    table, subject, attribute = key
    if subject in OBJECT_KINDS and subject != "table":
        what, attr = f"{subject} {table}", ""  # view deployment_summary: models absent, ..., live SELECT ...
    else:
        what = table if subject == "table" else f"{table}: {subject}"
        attr = "" if attribute in ("exists", "kind", "references") else f" {attribute}"
    return f"{what}{attr}: " + ", ".join(f"{side} {'absent' if value is None else value}" for side, value in sides)


def describe(diffs: list[tuple[tuple[str, str, str], str | None, str | None]], left: str, right: str) -> list[str]:
    """Each difference as one line, the two sides named ``left`` and ``right``."""
    return [_label(key, ((left, a), (right, b))) for key, a, b in diffs]
