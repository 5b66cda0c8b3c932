"""``migrate verify``: every migration's round trip (up, down, up) on a scratch database, then the models.

    report = verify(db, Path("migrations"), MODELS)
    report.ok                                   # every round trip restored the schema; the head equals MODELS
    [step.problems for step in report.steps]    # what differed, per migration
    verify(db, apps)                            # several apps: all their migrations, the union of their models

On SQLite it runs on a copy of the live file (sqlite3's backup API), so pending migrations are tried over
the real rows and applied ones are peeled back from the last. On PostgreSQL it replays every migration on
an empty scratch schema (a real copy needs ``CREATE DATABASE ... TEMPLATE``, which needs the live
database to have no other sessions). The live database is only read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import peewee

from orm_kit.dialect import is_sqlite, unwrap
from orm_kit.errors import MigrationError, MigrationRefusedError
from orm_kit.migrate.apps import AppMigrations, as_apps
from orm_kit.migrate.drift import compare, describe
from orm_kit.migrate.files import MigrationFile
from orm_kit.migrate.history import HISTORY_TABLE
from orm_kit.migrate.plan import read
from orm_kit.migrate.scratch import models_facts, replay, scratch_copy, scratch_database
from orm_kit.migrate.snapshot import Facts, snapshot

__all__ = ["VerifyReport", "VerifyStep", "verify"]


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

def verify(db: peewee.Database, source: Path | Sequence[AppMigrations],
           models: Sequence[type[peewee.Model]] = (), *, history_table: str = HISTORY_TABLE) -> VerifyReport:
    """Round-trip every migration on a scratch copy of ``db`` (SQLite) or a scratch database (PostgreSQL).

    ``source``: a folder (its models: ``models``), or apps (their models are theirs). Pending migrations
    run up, down and up again (on a copy, over its real rows) in the runner's order: the schema after
    the down must equal the one before the up, the second up must equal the first. On a copy, the
    applied ones are then peeled back from the last: down, up (must give the schema back), down again
    (must give the first down's schema). The schema at the head must equal the models.
    """
    db = unwrap(db) or db
    apps = as_apps(source, models)
    models = [m for app in apps for m in app.models]
    plan = read(db, apps, history_table=history_table)
    if plan.status.problems:
        raise MigrationRefusedError("the runner would refuse to migrate: " + "; ".join(plan.status.problems))
    copy = is_sqlite(db) and str(db.database or ":memory:") != ":memory:"
    applied = plan.applied if copy else []
    pending = plan.pending if copy else plan.ordered()
    files = [*applied, *pending]
    problems: dict[MigrationFile, list[str]] = {f: [] for f in files}
    on = (f"a copy of the database ({len(applied)} applied, {len(pending)} pending)" if copy
          else "an empty scratch database")

    def report(drift: list[str], upto: MigrationFile | None = None) -> VerifyReport:
        shown = files if upto is None else files[: files.index(upto) + 1]
        return VerifyReport([VerifyStep(plan.label(f), problems[f]) for f in shown], drift, on)

    with scratch_copy(db) if copy else scratch_database(db) as scratch:
        def shot() -> Facts:
            return snapshot(scratch, exclude=(history_table,))

        for f in pending:
            try:
                before = shot()
                replay(scratch, [f], "up")
                after = shot()
                replay(scratch, [f], "down")
                problems[f] += describe(compare(before, shot()), "before up", "after down")
                replay(scratch, [f], "up")
                problems[f] += describe(compare(after, shot()), "first up", "second up")
            except MigrationError as exc:
                problems[f].append(str(exc))
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
                    problems[f] += describe(compare(at, shot()), "before down", "after up")
                    replay(scratch, [f], "down")
                    problems[f] += describe(compare(below, shot()), "first down", "second down")
                except MigrationError as exc:
                    problems[f].append(str(exc))
                    break  # earlier migrations lie under this one
    drift = describe(compare(models_facts(db, models), head), "models", "migrations") if models else []
    return report(drift)
