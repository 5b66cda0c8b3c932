"""The tables orm-kit keeps for itself in a user's database, by exact name, and what becomes of them.

    from orm_kit.bookkeeping import SEED_TABLES, drop_seed_bookkeeping
    [t for t in db.get_tables() if t not in SEED_TABLES]     # the schema models and migrations describe
    drop_seed_bookkeeping(db)                                  # `migrate down` to zero: no tables, no seed records

The seed loader records what it loaded in ``orm_kit_seed`` and ``orm_kit_seed_row``; the migration
runner's history is ``schema_migration`` (its name is the runner's to choose: ``history_table``). They
are no part of the schema that models and migrations describe, so every schema comparison leaves them out,
by these exact names (a user's own table may well start with ``orm_kit_``). The migration engine and the
seed engine never import each other; both read the names from here.

When ``migrate down`` reverts the last applied migration of every app, the tables the seed records
describe are gone, so the records go too (in the same transaction): ``migrate up`` then sees an empty
database, ``baseline`` has nothing to adopt, and ``seed status`` says the sets are not loaded.
"""

from __future__ import annotations

import peewee

from orm_kit._sql import execute, quote

__all__ = ["SEED_ROWS_TABLE", "SEED_SETS_TABLE", "SEED_TABLES", "drop_seed_bookkeeping"]

SEED_SETS_TABLE = "orm_kit_seed"
SEED_ROWS_TABLE = "orm_kit_seed_row"
SEED_TABLES = (SEED_SETS_TABLE, SEED_ROWS_TABLE)


def drop_seed_bookkeeping(db: peewee.Database) -> list[str]:
    """Drop the seed loader's tables where they exist; return those dropped (in the caller's transaction)."""
    present = set(db.get_tables())
    dropped = [table for table in reversed(SEED_TABLES) if table in present]
    for table in dropped:
        execute(db, f"DROP TABLE {quote(table)}")
    return dropped
