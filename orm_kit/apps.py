"""Apps: a named group of tables with its models, migrations and seed data; the platform is one, a service another.

    from orm_kit.apps import App, bind, migration_sources, seed_sources
    flags = App("flags", models=(FeatureFlag,), migrations=Path("migrations"),
                seeds=Path("seed_data"), seed_registry=FLAGS_REGISTRY)
    apps = (platform.APP, flags)                  # the platform first: the others build on it
    bind(db, apps)                                # every app's models, bound to db
    Runner(db, migration_sources(apps)).up()      # every app's migrations, each after what it depends on
    seeding.load(db, seed_sources(apps))          # every app's seed sets, one transaction

An app is what the engines need to know about one group of tables, gathered in one place: its models
(what ``check`` and ``make`` compare), its migrations folder (numbered on its own; the history keys
rows by app), its seed folder and the registry of the tables its seed files fill. The platform's
description is :data:`orm_kit.platform.APP`; a service's comes from its ``pyproject.toml``
(:mod:`orm_kit.config`). The engines take their part of it: :func:`migration_sources` for
:mod:`orm_kit.migrate`, :func:`seed_sources` for :mod:`orm_kit.seeding`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import peewee

from orm_kit.errors import ConfigurationError
from orm_kit.migrate.apps import AppMigrations
from orm_kit.seeding import SeedRegistry, SeedSource

__all__ = ["App", "bind", "migration_sources", "seed_sources", "tables_of"]


@dataclass(frozen=True)
class App:
    """One app: its name, models, migrations folder, seed folder and seed registry.

    ``installed``: the migrations folder is an installed package's own history (the platform's shipped
    one), which ``migrate create`` / ``make`` never write into. ``plain_set_names``: its seed sets keep
    their bare names (the platform's, recorded before apps existed); every other app's are ``app:set``.
    ``more_seeds``: further folders of its seed sets (``--seeds DIR``), filling the same tables.
    """

    name: str
    models: tuple[type[peewee.Model], ...] = ()
    migrations: Path | None = None
    seeds: Path | None = None
    seed_registry: SeedRegistry | None = None
    installed: bool = False
    plain_set_names: bool = False
    more_seeds: tuple[Path, ...] = ()

    def migration_source(self) -> AppMigrations:
        """What the migration engine needs: name, folder, models."""
        if self.migrations is None:
            raise ConfigurationError(f"app {self.name!r} names no migrations folder; give it one (its models need "
                                     "migrations to create their tables)")
        return AppMigrations(self.name, self.migrations, self.models)

    def seed_source(self) -> SeedSource | None:
        """What the seed engine needs for the app's own seed folder (None when the app has no seed data)."""
        if self.seeds is None:
            return None
        if self.seed_registry is None:
            raise ConfigurationError(f"app {self.name!r} has a seed folder but no seed registry: name the tables its "
                                     "files fill and their natural keys (a SeedRegistry)")
        return SeedSource(self.seed_registry, self.seeds, None if self.plain_set_names else self.name)

    def seed_folders(self) -> list[SeedSource]:
        """Every folder of the app's seed sets: its own, then ``more_seeds``, all filling the same tables."""
        own = self.seed_source()
        if own is None:
            return []
        return [own, *(dataclasses.replace(own, directory=folder) for folder in self.more_seeds)]


def migration_sources(apps: Iterable[App]) -> list[AppMigrations]:
    """Every app's migrations, in the order given (an app with neither models nor migrations has none)."""
    return [app.migration_source() for app in apps if app.migrations is not None or app.models]


def seed_sources(apps: Iterable[App]) -> list[SeedSource]:
    """The seed data of every app that has some, in the order given."""
    return [source for app in apps for source in app.seed_folders()]


def tables_of(apps: Sequence[App]) -> dict[str, str]:
    """``{table: app}`` over every app's models; a table two apps declare is a ConfigurationError."""
    owner: dict[str, str] = {}
    for app in apps:
        for model in app.models:
            table = str(model._meta.table_name)
            if owner.get(table, app.name) != app.name:
                raise ConfigurationError(f"table {table!r} is declared by app {owner[table]!r} and by app "
                                         f"{app.name!r} ({model.__module__}.{model.__name__}): an app lists only its "
                                         "own models")
            owner[table] = app.name
    return owner


def bind(db: peewee.Database, apps: Iterable[App]) -> None:
    """Bind every app's models to ``db``."""
    db.bind([model for app in apps for model in app.models])
