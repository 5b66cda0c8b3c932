"""The deployment platform's repositories, one module per aggregate.

    from orm_kit.repositories import DeploymentRepository, ServiceRepository
    services = ServiceRepository(db)                  # db: the database the models are bound to
    svc = services.find_by_name("checkout-api")       # Service | None
    detail = services.find_with_deployments(svc.id)   # the service and its deployments, two queries
"""

from __future__ import annotations

from orm_kit.repositories.deployment import DeploymentRepository
from orm_kit.repositories.dora import DoraMetrics, dora_metrics
from orm_kit.repositories.environment import EnvironmentRepository
from orm_kit.repositories.release import ReleaseRepository
from orm_kit.repositories.service import (
    DependencyEdge,
    DependencyGraph,
    ServiceDeployments,
    ServiceRepository,
)
from orm_kit.repositories.team import TeamRepository

__all__ = [
    "DependencyEdge",
    "DependencyGraph",
    "DeploymentRepository",
    "DoraMetrics",
    "EnvironmentRepository",
    "ReleaseRepository",
    "ServiceDeployments",
    "ServiceRepository",
    "TeamRepository",
    "dora_metrics",
]
