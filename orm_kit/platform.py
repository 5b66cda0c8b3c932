"""The deployment platform's defaults, in one place: its models, migrations, seed data and seed registry.

The toolkit's engines (:mod:`orm_kit.migrate`, :mod:`orm_kit.seeding`) have no defaults of their own;
the CLI and these helpers pass the platform's to them. :data:`APP` describes the platform as an app
(:mod:`orm_kit.apps`), like any service's own tables: the CLI puts it first, before a project's app::

    from orm_kit import connect, platform
    from orm_kit.seeding import load
    db = connect("sqlite:///platform.db")       # binds platform.MODELS
    platform.migrate_up(db)                     # the shipped migrations (orm_kit.migrate.Runner)
    load(db, platform.SEED_REGISTRY, platform.seed_dir())   # every shipped set: reference, then demo

The shipped ``migrations/`` and ``seed_data/`` folders live at the top of the repository and install
inside the package (``orm_kit.migrations``, ``orm_kit.seed_data``), so they work from any folder after
a plain ``pip install``.

Seed natural keys (what a row is matched on, and how other rows refer to it):

=======================  ======================================  ==================================
table                    natural key                             a reference looks like
=======================  ======================================  ==================================
team                     name                                    ``owner: payments``
environment              slug                                    ``environment: prod``
service                  name                                    ``service: checkout-api``
service_dependency       (service, depends_on)                   (not referred to)
api                      name                                    ``api: payments-api``
service_api_consumer     (service, api)                          (not referred to)
service_source_config    service                                 (not referred to)
release                  (service, version)                      ``release: 1.4.2`` (same service)
deployment               key (text; the UUID id is uuid5 of it)  ``rollback_of: checkout-api/prod/7``
incident                 (service, environment, opened_at)       (not referred to)
=======================  ======================================  ==================================

A deployment has no natural column key (two deployments of one release to one environment are
normal), so each names itself with a stable ``key``; its UUID primary key is derived from that text,
so it is the same on every database. Two incidents of one service in one environment cannot open at
the same instant, so an incident is matched on that triple.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import peewee

from orm_kit.apps import App
from orm_kit.migrate import Runner
from orm_kit.models import (
    MODELS,
    Api,
    Deployment,
    Environment,
    Incident,
    Release,
    Service,
    ServiceApiConsumer,
    ServiceDependency,
    ServiceSourceConfig,
    Team,
)
from orm_kit.repositories import (
    DeploymentRepository,
    EnvironmentRepository,
    ReleaseRepository,
    ServiceRepository,
    TeamRepository,
)
from orm_kit.seeding import SeedRegistry, SeedTable

__all__ = ["APP", "MODELS", "REPOSITORIES", "SEED_REGISTRY", "migrate_up", "migrations_dir", "runner", "seed_dir"]

# What `orm-kit shell` puts at hand, next to the models.
REPOSITORIES = (ServiceRepository, DeploymentRepository, TeamRepository, EnvironmentRepository, ReleaseRepository)

SEED_REGISTRY = SeedRegistry([
    SeedTable(Team, key=("name",)),
    SeedTable(Environment, key=("slug",)),
    SeedTable(Service, key=("name",), touch="updated_at"),
    SeedTable(ServiceDependency, key=("service", "depends_on")),
    SeedTable(Api, key=("name",)),
    SeedTable(ServiceApiConsumer, key=("service", "api")),
    SeedTable(ServiceSourceConfig, key=("service",)),
    SeedTable(Release, key=("service", "version")),
    SeedTable(Deployment, uuid_key="key", scopes={"release": {"service": "service"}}),
    SeedTable(Incident, key=("service", "environment", "opened_at")),
])


def migrations_dir() -> Path:
    """The platform's migrations, shipped inside the installed package."""
    return Path(str(files("orm_kit.migrations")))


def seed_dir() -> Path:
    """The platform's seed sets, shipped inside the installed package."""
    return Path(str(files("orm_kit.seed_data")))


def runner(db: peewee.Database, **options: Any) -> Runner:
    """A :class:`~orm_kit.migrate.Runner` for the platform's shipped migrations (options as Runner takes them)."""
    return Runner(db, migrations_dir(), **options)


def migrate_up(db: peewee.Database, directory: Path | None = None, target: str | None = None) -> list[str]:
    """Apply pending migrations from ``directory`` (default: the platform's shipped ones); return the names applied."""
    return Runner(db, directory or migrations_dir()).up(target)


#: The platform as an app: its history rows and seed set names are those written before apps existed
#: (app ``platform``, plain set names), and its shipped migrations folder is never written into.
APP = App("platform", MODELS, migrations_dir(), seed_dir(), SEED_REGISTRY, installed=True, plain_set_names=True)
