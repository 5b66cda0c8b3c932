"""What the platform's models share: the base class and the SQL CHECK for a closed set of values."""

from __future__ import annotations

from collections.abc import Iterable

import peewee

from orm_kit.model import Model

__all__ = ["PlatformModel", "in_check"]


class PlatformModel(Model):
    """Base of the deployment platform's tables (no database: bind them with ``db.bind(MODELS)``)."""


def in_check(column: str, values: Iterable[str]) -> peewee.Node:
    """``CHECK (column IN (...))``, so the database refuses what validation refuses."""
    listed = ", ".join("'" + value.replace("'", "''") + "'" for value in values)
    return peewee.Check(f'"{column}" IN ({listed})')
