"""The typed usage example (checked by mypy --strict in CI) also runs."""

from __future__ import annotations

import peewee

from feature_flags.models import MODELS as FLAG_MODELS
from orm_kit import Service, Team, platform
from orm_kit.apps import App, migration_sources
from orm_kit.migrate import Runner

import typed_usage
from conftest import EXAMPLE


def test_typed_usage_runs(orm_kit_db: peewee.Database) -> None:
    assert typed_usage.tour(orm_kit_db) == [
        "created typed-api",
        "typed-api v2: 1 deployment(s), 1 in history, 1 on the first cursor page, 0 in production today",
    ]


def test_the_app_tour_runs_on_the_example_apps_tables(db: peewee.Database) -> None:
    flags = App("flags", FLAG_MODELS, EXAMPLE / "migrations")
    db.bind(FLAG_MODELS)
    assert Runner(db, migration_sources([platform.APP, flags])).up()[-1] == "flags:0001_initial"
    service = Service.create(name="typed-app", tier="low", owner=Team.create(name="typed"))
    assert typed_usage.app_tour(db, service) == ["typed-flag at 10%"]
