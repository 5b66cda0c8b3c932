"""What a ``migrate down`` would destroy: the tables and columns it drops that hold rows, counted before it runs.

    plan = read(db, Path("migrations"))
    found = data_losses(db, plan, plan.down(steps=2))
    [str(loss) for loss in found]     # ['0002_deployment_duration down() drops column deployment.duration_seconds
                                      #   (114 rows hold a value)']

The migrations already applied are replayed on a scratch database and the planned ones reverted there,
one at a time; whatever table or column exists before a migration's ``down()`` and not after it (and was
not renamed by it) is what that ``down()`` drops. The live database is only read: one ``count(*)`` per
dropped table, and per dropped column the rows where it is not NULL. Found by the schema, not by reading
the statements, so a SQLite table rebuild that leaves a column out counts like ``DROP COLUMN``.

:meth:`~orm_kit.migrate.Runner.down` refuses such a down with :class:`~orm_kit.errors.DataLossError` (carrying
these counts) unless it is allowed to drop them (``orm-kit migrate down --yes``, or yes at the prompt).
Rows written between the count and the down go too: the count is a warning, not a lock.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import peewee

from orm_kit._sql import quote, scalar
from orm_kit.migrate.files import MigrationFile
from orm_kit.migrate.plan import Plan
from orm_kit.migrate.scratch import replay, scratch_database

__all__ = ["Loss", "data_losses"]

_RENAME_TABLE = re.compile(r'ALTER\s+TABLE\s+"?([^"\s]+)"?\s+RENAME\s+TO\s+"?([^"\s;]+)"?', re.I)
_RENAME_COLUMN = re.compile(
    r'ALTER\s+TABLE\s+"?([^"\s]+)"?\s+RENAME\s+(?:COLUMN\s+)?"?([^"\s]+)"?\s+TO\s+"?([^"\s;]+)"?', re.I)


@dataclass(frozen=True)
class Loss:
    """A table (``column`` None) or a column that ``migration``'s down() drops, and how many rows hold data there."""

    migration: str
    table: str
    column: str | None
    rows: int

    def __str__(self) -> str:
        if self.column is None:
            return f"{self.migration} down() drops table {self.table} ({self.rows} rows)"
        return f"{self.migration} down() drops column {self.table}.{self.column} ({self.rows} rows hold a value)"


def data_losses(db: peewee.Database, plan: Plan, chosen: Sequence[MigrationFile]) -> list[Loss]:
    """The tables and columns reverting ``chosen`` (last applied first) drops, with the rows each holds on ``db``.

    Only what holds rows is listed: dropping an empty table loses nothing.
    """
    if not chosen:
        return []
    dropped: list[tuple[str, str, str | None]] = []  # migration, table, column
    with scratch_database(db) as scratch:
        replay(scratch, plan.applied)
        for f in chosen:
            before = _shape(scratch)
            scratch.captured = []
            try:
                replay(scratch, [f], "down")
                statements = [c.sql for c in scratch.captured]
            finally:
                scratch.captured = None
            after = _shape(scratch)
            renamed_tables = {m.group(1) for sql in statements for m in [_RENAME_TABLE.search(sql)] if m}
            renamed_columns = {(m.group(1), m.group(2)) for sql in statements for m in [_RENAME_COLUMN.search(sql)]
                               if m}
            label = plan.label(f)
            for table, columns in before.items():
                if table not in after:
                    if table not in renamed_tables:
                        dropped.append((label, table, None))
                    continue
                dropped += [(label, table, c) for c in sorted(columns - after[table])
                            if (table, c) not in renamed_columns]
    live = _shape(db)
    found = []
    for label, table, column in dropped:
        if table not in live or (column is not None and column not in live[table]):
            continue
        where = "" if column is None else f" WHERE {quote(column)} IS NOT NULL"
        rows = int(scalar(db, f"SELECT count(*) FROM {quote(table)}{where}") or 0)
        if rows:
            found.append(Loss(label, table, column, rows))
    return found


def _shape(db: peewee.Database) -> dict[str, set[str]]:
    return {table: {c.name for c in db.get_columns(table)} for table in db.get_tables()}
