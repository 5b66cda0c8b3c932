"""orm-kit: a lightweight active-record toolkit on peewee, and the deployment platform's data layer.

    import orm_kit
    db = orm_kit.connect("sqlite:///platform.db")   # opens the database and binds the platform's models
    orm_kit.migrate_up(db)                          # creates the tables
    team = orm_kit.Team.create(name="payments")
"""

from __future__ import annotations

import peewee

from orm_kit.db import open_database, redact_url, resolve_url
from orm_kit.errors import (
    ConfigurationError,
    ConflictError,
    DatabaseUnavailableError,
    DriverMissingError,
    InvalidQueryError,
    MigrationError,
    MigrationFailedError,
    MigrationLockTimeoutError,
    MigrationRefusedError,
    NotFoundError,
    OrmKitError,
    RetryExhaustedError,
    SeedError,
    ValidationError,
)
from orm_kit.fields import UTCDateTimeField, utcnow
from orm_kit.locking import Versioned
from orm_kit.model import Model
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
    DependencyEdge,
    DependencyGraph,
    DeploymentRepository,
    DoraMetrics,
    EnvironmentRepository,
    ReleaseRepository,
    ServiceDeployments,
    ServiceRepository,
    TeamRepository,
)
from orm_kit.repository import CursorPage, Page, Repository, WithChildren
from orm_kit.runner import Runner, migrate_up
from orm_kit.seeding import SeedRegistry, SeedTable
from orm_kit.transactions import RetryPolicy, on_commit, run_in_transaction, transaction, transactional
from orm_kit.validation import validate, validates

__all__ = [
    "MODELS",
    "Api",
    "ConfigurationError",
    "ConflictError",
    "CursorPage",
    "DatabaseUnavailableError",
    "DependencyEdge",
    "DependencyGraph",
    "Deployment",
    "DeploymentRepository",
    "DoraMetrics",
    "DriverMissingError",
    "Environment",
    "EnvironmentRepository",
    "Incident",
    "InvalidQueryError",
    "MigrationError",
    "MigrationFailedError",
    "MigrationLockTimeoutError",
    "MigrationRefusedError",
    "Model",
    "NotFoundError",
    "OrmKitError",
    "Page",
    "Release",
    "ReleaseRepository",
    "Repository",
    "RetryExhaustedError",
    "RetryPolicy",
    "Runner",
    "SeedError",
    "SeedRegistry",
    "SeedTable",
    "Service",
    "ServiceApiConsumer",
    "ServiceDependency",
    "ServiceDeployments",
    "ServiceRepository",
    "ServiceSourceConfig",
    "Team",
    "TeamRepository",
    "UTCDateTimeField",
    "ValidationError",
    "Versioned",
    "WithChildren",
    "connect",
    "migrate_up",
    "on_commit",
    "open_database",
    "redact_url",
    "resolve_url",
    "run_in_transaction",
    "transaction",
    "transactional",
    "utcnow",
    "validate",
    "validates",
]

__version__ = "0.1.0"


def connect(url: str | None = None) -> peewee.Database:
    """Open the database ``url`` resolves to (see :func:`resolve_url`) and bind the platform's models to it."""
    db = open_database(resolve_url(url))
    db.bind(MODELS)
    return db
