"""The platform's seed registry: which tables seed files fill, in what order, and each one's natural key.

    from orm_kit import connect
    from orm_kit.seed_registry import REGISTRY, default_seed_dir
    from orm_kit.seeding import load
    db = connect("sqlite:///platform.db")
    load(db, REGISTRY, default_seed_dir())       # every shipped set: reference, then demo

Natural keys (what a row is matched on, and how other rows refer to it):

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

from orm_kit.models import (
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
from orm_kit.seeding import SeedRegistry, SeedTable

__all__ = ["REGISTRY", "default_seed_dir"]

REGISTRY = SeedRegistry([
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


def default_seed_dir() -> Path:
    """The seed sets shipped inside the installed package."""
    return Path(str(files("orm_kit.seed_data")))
