"""Three-way drift (models vs migrations vs live database), and adoption checked against the migrations.

    report = check(db, MODELS, Path("migrations"))   # models vs scratch-migrated schema vs the live database
    for finding in report.findings:
        print(finding)                          # deployment: column duration_seconds type: models INTEGER, ...
    baseline(Runner(db, Path("migrations")), "0001")  # adopt a database, if it is what 0001 produces

Every comparison is between snapshots (:mod:`orm_kit.migrate.snapshot`) taken from the same backend: the models are
realized on a scratch database with peewee's DDL, the migrations are replayed on another, so nothing that
peewee keeps on the Python side (defaults, validators) can count as drift. The toolkit never imports the
platform's models: callers pass them in.

``playhouse.schema_diff`` compares tables, columns and indexes by name only: it does not look at types,
nullability, defaults, foreign-key targets or ``on_delete``, or CHECK constraints, and it hides the indexes
that back UNIQUE constraints on SQLite; hence the snapshots. It still drives ``migrate make``
(:mod:`orm_kit.migrate.codegen`), where its output maps onto peewee's code template.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import peewee

from orm_kit.dialect import unwrap
from orm_kit.errors import MigrationRefusedError
from orm_kit.migrate.history import HISTORY_TABLE
from orm_kit.migrate.plan import read
from orm_kit.migrate.runner import Runner
from orm_kit.migrate.scratch import models_facts, replay, scratch_database
from orm_kit.migrate.snapshot import Facts, snapshot

__all__ = [
    "DriftReport",
    "Finding",
    "baseline",
    "check",
    "compare",
    "describe",
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


def check(db: peewee.Database, models: Models, directory: Path, *,
          history_table: str = HISTORY_TABLE) -> DriftReport:
    """Three-way drift between ``models``, the schema the migrations in ``directory`` produce, and the live ``db``."""
    db = unwrap(db) or db
    plan = read(db, directory, history_table=history_table)
    live = snapshot(db, exclude=(history_table,))
    with scratch_database(db) as scratch:
        replay(scratch, plan.applied)
        at_live = snapshot(scratch)  # what the live database should look like, given its history
        replay(scratch, plan.pending)
        at_head = snapshot(scratch)
    wanted = models_facts(db, models)
    keys: dict[tuple[str, str, str], None] = {}
    for key, _, _ in compare(wanted, at_head) + compare(at_live, live):
        keys[key] = None
    findings = [Finding(*key, wanted.get(key), at_head.get(key), live.get(key)) for key in sorted(keys)]
    # An edited, missing or misnamed file makes the runner refuse; check must not call that "no drift".
    return DriftReport(findings, [f.name for f in plan.pending], list(plan.status.problems))


def baseline(runner: Runner, version: str) -> list[str]:
    """Adopt ``runner``'s database at ``version``, once its schema is what the migrations up to it produce."""
    plan = runner.plan()
    last = plan.resolve(version)
    chosen = [f for f in plan.files if (f.number, f.name) <= (last.number, last.name)]
    live = snapshot(runner.db, exclude=(runner.table,))
    with scratch_database(runner.db) as scratch:
        replay(scratch, chosen)
        expected = snapshot(scratch)
    differences = describe(compare(expected, live), f"migrations up to {last.name}", "database")
    if differences:
        shown = "; ".join(differences[:5]) + (f"; and {len(differences) - 5} more" if len(differences) > 5 else "")
        raise MigrationRefusedError(
            f"the database is not what the migrations up to {last.name} produce ({shown}): baseline at the "
            "version it matches, or bring the schema in line first")
    return runner.baseline(version)


def _label(key: tuple[str, str, str], sides: Iterable[tuple[str, str | None]]) -> str:
    """``team: column email null: models NOT NULL, migrations NULL`` (None reads "absent")."""
    table, subject, attribute = key
    what = table if subject == "table" else f"{table}: {subject}"
    attr = "" if attribute in ("exists", "kind", "references") else f" {attribute}"
    return f"{what}{attr}: " + ", ".join(f"{side} {'absent' if value is None else value}" for side, value in sides)


def describe(diffs: list[tuple[tuple[str, str, str], str | None, str | None]], left: str, right: str) -> list[str]:
    """Each difference as one line, the two sides named ``left`` and ``right``."""
    return [_label(key, ((left, a), (right, b))) for key, a, b in diffs]
