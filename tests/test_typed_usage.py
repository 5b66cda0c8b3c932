"""The typed usage example (checked by mypy --strict in CI) also runs."""

from __future__ import annotations

import peewee
import typed_usage


def test_typed_usage_runs(orm_kit_db: peewee.Database) -> None:
    assert typed_usage.tour(orm_kit_db) == [
        "created typed-api",
        "typed-api v2: 1 deployment(s), 1 in history, 1 on the first cursor page, 0 in production today",
    ]
