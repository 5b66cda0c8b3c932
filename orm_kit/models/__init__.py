"""The deployment platform's tables, one module per aggregate.

Models carry no database. Bind them explicitly::

    from orm_kit.db import open_database
    from orm_kit.models import MODELS
    db = open_database("sqlite:///platform.db")
    db.bind(MODELS)
"""

from __future__ import annotations

from orm_kit.models.api import API_TYPES, Api, ApiType, ServiceApiConsumer
from orm_kit.models.deployment import DEPLOYMENT_STATUSES, FINISHED_STATUSES, Deployment, DeploymentStatus
from orm_kit.models.environment import (
    ENVIRONMENT_STATES,
    ENVIRONMENT_TIERS,
    Environment,
    EnvironmentState,
    EnvironmentTier,
)
from orm_kit.models.incident import SEVERITIES, Incident, Severity
from orm_kit.models.release import Release
from orm_kit.models.service import (
    DEPENDENCY_KINDS,
    LIFECYCLES,
    SYNC_POLICIES,
    TIERS,
    DependencyKind,
    Lifecycle,
    Service,
    ServiceDependency,
    ServiceSourceConfig,
    SyncPolicy,
    Tier,
)
from orm_kit.models.team import Team

__all__ = [
    "API_TYPES",
    "DEPENDENCY_KINDS",
    "DEPLOYMENT_STATUSES",
    "ENVIRONMENT_STATES",
    "ENVIRONMENT_TIERS",
    "FINISHED_STATUSES",
    "LIFECYCLES",
    "MODELS",
    "SEVERITIES",
    "SYNC_POLICIES",
    "TIERS",
    "Api",
    "ApiType",
    "DependencyKind",
    "Deployment",
    "DeploymentStatus",
    "Environment",
    "EnvironmentState",
    "EnvironmentTier",
    "Incident",
    "Lifecycle",
    "Release",
    "Service",
    "ServiceApiConsumer",
    "ServiceDependency",
    "ServiceSourceConfig",
    "Severity",
    "SyncPolicy",
    "Team",
    "Tier",
]

# Every table, parents before children (the order create_tables and seeding use).
MODELS = (
    Team,
    Environment,
    Service,
    ServiceDependency,
    Api,
    ServiceApiConsumer,
    ServiceSourceConfig,
    Release,
    Deployment,
    Incident,
)
