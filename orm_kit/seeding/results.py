"""What the seed engine returns: plain dataclasses the CLI prints and callers inspect."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["RemoveResult", "RowChange", "SeedResult", "SetStatus"]


@dataclass(frozen=True)
class RowChange:
    """One row a load inserted or updated (``fields``: the fields it wrote)."""

    set_name: str
    table: str
    key: str
    action: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class SeedResult:
    """What a load did (or, with ``dry_run``, would do)."""

    sets: tuple[str, ...]
    changes: tuple[RowChange, ...]
    unchanged: int
    stale: Mapping[str, int]
    dry_run: bool

    @property
    def inserted(self) -> int:
        """How many rows were (or would be) inserted."""
        return sum(1 for c in self.changes if c.action == "insert")

    @property
    def updated(self) -> int:
        """How many rows were (or would be) updated."""
        return sum(1 for c in self.changes if c.action == "update")


@dataclass(frozen=True)
class SetStatus:
    """A set as files and database see it; ``state`` is loaded, changed, not loaded or files missing."""

    name: str
    state: str
    loaded_at: datetime.datetime | None
    rows: int


@dataclass(frozen=True)
class RemoveResult:
    """What removing a set deleted (rows per table) or, with ``dry_run``, would delete.

    ``gone``: rows the set inserted that were already deleted, or whose id now holds another row (left alone).
    """

    name: str
    deleted: Mapping[str, int]
    dry_run: bool
    gone: Mapping[str, int] = field(default_factory=dict)
