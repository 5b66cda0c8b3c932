"""orm-kit: a lightweight active-record toolkit on peewee, and the deployment platform's data layer.

    import orm_kit
    db = orm_kit.connect("sqlite:///platform.db")   # opens the database and binds the platform's models
    orm_kit.migrate_up(db)                          # creates the tables
    team = orm_kit.Team.create(name="payments")

    # production: a pooled primary and its read replicas, from configuration alone
    # ORM_KIT_DATABASE_URL=postgresql+pool://app:secret@primary/platform?max_connections=20
    # ORM_KIT_REPLICA_URLS="postgresql+pool://app:secret@replica-1/platform"
    db = orm_kit.connect()

Two halves in one package. The toolkit, reusable with any peewee models: the core modules (``db``,
``dialect``, ``errors``, ``integrity``, ``fields``, ``validation``, ``model``, ``locking``, ``transactions``,
``repository``, ``bulk``, ``bookkeeping``), the migration engine (``orm_kit.migrate``), the seed engine
(``orm_kit.seeding``), apps and a project's configuration (``orm_kit.apps``, ``orm_kit.config``) and
test support (``orm_kit.testing``). The platform, built on it: its tables
(``orm_kit.models``), repositories (``orm_kit.repositories``), defaults (``orm_kit.platform``: shipped
migrations, seed data, seed registry) and synthetic history (``orm_kit.synthetic``). The toolkit never
imports the platform; this module exports the curated API of both.
"""

from __future__ import annotations

import collections.abc
import os

import peewee

from orm_kit import replicas as _replicas
from orm_kit.apps import App
from orm_kit.db import open_database, redact_url, resolve_url
from orm_kit.errors import (
    ArgumentTypeError,
    CheckViolationError,
    CommitOutcomeUnknownError,
    ConfigurationError,
    ConflictError,
    DatabaseUnavailableError,
    DependentObjectsError,
    DiskFullError,
    DriverMissingError,
    ForeignKeyViolationError,
    IntegrityViolationError,
    InvalidQueryError,
    MigrationBlockedError,
    MigrationError,
    MigrationFailedError,
    MigrationLockTimeoutError,
    MigrationRefusedError,
    NotFoundError,
    NotNullViolationError,
    OrmKitError,
    PoolExhaustedError,
    PrimaryReadOnlyError,
    ProjectConfigError,
    RetryExhaustedError,
    RoutingError,
    SeedError,
    UniqueViolationError,
    ValidationError,
)
from orm_kit.errors import unchained as _unchained
from orm_kit.fields import UTCDateTimeField, choice_field, utcnow
from orm_kit.locking import Versioned
from orm_kit.migrate import LockPolicy, Runner
from orm_kit.model import Model
from orm_kit.models import (
    MODELS,
    Api,
    ApiType,
    DependencyKind,
    Deployment,
    DeploymentStatus,
    Environment,
    EnvironmentState,
    EnvironmentTier,
    Incident,
    Lifecycle,
    Release,
    Service,
    ServiceApiConsumer,
    ServiceDependency,
    ServiceSourceConfig,
    Severity,
    SyncPolicy,
    Team,
    Tier,
)
from orm_kit.platform import migrate_up
from orm_kit.pool import PoolSettings
from orm_kit.relations import Backref, backref
from orm_kit.replicas import ReplicatedDatabase
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
from orm_kit.seeding import SeedRegistry, SeedTable
from orm_kit.transactions import RetryPolicy, on_commit, run_in_transaction, transaction, transactional
from orm_kit.validation import validate, validates

__all__ = [
    "MODELS",
    "Api",
    "ApiType",
    "App",
    "ArgumentTypeError",
    "Backref",
    "CheckViolationError",
    "CommitOutcomeUnknownError",
    "ConfigurationError",
    "ConflictError",
    "CursorPage",
    "DatabaseUnavailableError",
    "DependencyEdge",
    "DependencyGraph",
    "DependencyKind",
    "DependentObjectsError",
    "Deployment",
    "DeploymentRepository",
    "DeploymentStatus",
    "DiskFullError",
    "DoraMetrics",
    "DriverMissingError",
    "Environment",
    "EnvironmentRepository",
    "EnvironmentState",
    "EnvironmentTier",
    "ForeignKeyViolationError",
    "Incident",
    "IntegrityViolationError",
    "InvalidQueryError",
    "Lifecycle",
    "LockPolicy",
    "MigrationBlockedError",
    "MigrationError",
    "MigrationFailedError",
    "MigrationLockTimeoutError",
    "MigrationRefusedError",
    "Model",
    "NotFoundError",
    "NotNullViolationError",
    "OrmKitError",
    "Page",
    "PoolExhaustedError",
    "PoolSettings",
    "PrimaryReadOnlyError",
    "ProjectConfigError",
    "Release",
    "ReleaseRepository",
    "ReplicatedDatabase",
    "Repository",
    "RetryExhaustedError",
    "RetryPolicy",
    "RoutingError",
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
    "Severity",
    "SyncPolicy",
    "Team",
    "TeamRepository",
    "Tier",
    "UTCDateTimeField",
    "UniqueViolationError",
    "ValidationError",
    "Versioned",
    "WithChildren",
    "backref",
    "choice_field",
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


@_unchained
def connect(url: str | None = None, *, replicas: collections.abc.Sequence[str] | None = None,
            pool: PoolSettings | bool | None = None, max_lag_seconds: float = _replicas.DEFAULT_MAX_LAG_SECONDS,
            max_lag_bytes: int = _replicas.DEFAULT_MAX_LAG_BYTES,
            environ: collections.abc.Mapping[str, str] | None = None) -> peewee.Database:
    """Open the database ``url`` resolves to (see :func:`resolve_url`) and bind the platform's models to it.

    ``replicas`` (URLs; by default those in ``ORM_KIT_REPLICA_URLS``, ``[]`` for none) gives a
    :class:`ReplicatedDatabase` that sends plain reads to them (:mod:`orm_kit.replicas`), with
    ``max_lag_seconds`` and ``max_lag_bytes`` as the replicas' lag bound unless their URLs say otherwise.
    ``pool`` (a :class:`PoolSettings`, or True for the defaults) pools every server whose URL has no
    ``+pool`` of its own (:mod:`orm_kit.pool`).

    The binding is for the whole process: a repository made for another database refuses to run
    (:class:`ConfigurationError`) until the models are bound back to it.
    """
    env = os.environ if environ is None else environ
    primary = resolve_url(url, env)
    others = _replicas.replica_urls(env) if replicas is None else list(replicas)
    settings = PoolSettings() if pool is True else pool or None
    db: peewee.Database
    if others:
        db = _replicas.open_replicated(primary, others, pool=settings, max_lag_seconds=max_lag_seconds,
                             max_lag_bytes=max_lag_bytes)
    else:
        db = open_database(primary, pool=settings)
    db.bind(MODELS)
    return db
