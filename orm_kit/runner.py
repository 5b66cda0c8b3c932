"""Numbered migrations (``NNNN_slug.py`` with ``up(migrator, db)`` / ``down(migrator, db)``), applied in order.

A first, minimal runner over peewee's :class:`playhouse.migrations.Runner`, whose file format and history
table it keeps. Each migration runs in its own transaction with the history row it writes.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import peewee
from playhouse.migrations import MigrationError as PeeweeMigrationError
from playhouse.migrations import Runner

from orm_kit.errors import MigrationError

__all__ = ["default_migrations_dir", "migrate_up"]


def default_migrations_dir() -> Path:
    """The migrations shipped inside the installed package."""
    return Path(str(files("orm_kit.migrations")))


def migrate_up(db: peewee.Database, directory: Path | None = None, target: str | None = None) -> list[str]:
    """Apply pending migrations from ``directory`` (default: the shipped ones); return the names applied."""
    folder = directory or default_migrations_dir()
    if not folder.is_dir():
        raise MigrationError(f"migrations folder {str(folder)!r} does not exist (pass --migrations DIR)")
    try:
        applied: list[str] = Runner(db, str(folder)).up(target)  # type: ignore[no-untyped-call]
    except PeeweeMigrationError as exc:
        raise MigrationError(f"{exc} (run `orm-kit migrate status` to see what is known)") from None
    return applied
