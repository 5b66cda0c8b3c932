"""The seed engine: YAML rows that refer to each other by natural key, loaded idempotently, tracked, removable.

    from orm_kit.seeding import SeedRegistry, SeedTable, load, remove, status
    registry = SeedRegistry([SeedTable(Team, key=("name",)), SeedTable(Service, key=("name",))])
    result = load(db, registry, Path("seed_data"))              # every set, one transaction
    [s.state for s in status(db, registry, Path("seed_data"))]  # ["loaded", ...]
    remove(db, registry, "demo")                                # deletes exactly what "demo" inserted

Generic: it works with any orm-kit models, described by a :class:`SeedRegistry`; it knows nothing of
any application (the platform's registry and folder live in :mod:`orm_kit.platform`). One role per module:

============  ==============================================================================================
module        role
============  ==============================================================================================
``registry``  which tables, in what order, each one's natural key, and what a file may set
``files``     seed sets on disk, their checksums, rows read with the line of every value
``keys``      natural keys: naming a row, and turning a name into a primary key (loader, status, remove)
``loader``    ``load``: match, insert, update, in one transaction
``book``      the bookkeeping tables; ``status`` and ``remove``
``generated`` what a data generator (not a seed file) inserted, so that removing it touches only that
``results``   the dataclasses the engine returns
``sources``   several apps' seed data at once: each fills its own tables, refers to the others' by natural key
============  ==============================================================================================
"""

from __future__ import annotations

from orm_kit.seeding.book import remove, status
from orm_kit.seeding.files import SeedRow, SeedSet, discover_sets, read_rows
from orm_kit.seeding.keys import SEED_NAMESPACE, uuid_for
from orm_kit.seeding.loader import load
from orm_kit.seeding.registry import SeedRegistry, SeedTable, check_ready
from orm_kit.seeding.results import RemoveResult, RowChange, SeedResult, SetStatus
from orm_kit.seeding.sources import SeedSource

__all__ = [
    "SEED_NAMESPACE",
    "RemoveResult",
    "RowChange",
    "SeedRegistry",
    "SeedResult",
    "SeedRow",
    "SeedSet",
    "SeedSource",
    "SeedTable",
    "SetStatus",
    "check_ready",
    "discover_sets",
    "load",
    "read_rows",
    "remove",
    "status",
    "uuid_for",
]
