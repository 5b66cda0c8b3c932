"""Code that uses the repositories the way an application would; CI runs ``mypy --strict`` on it.

``assert_type`` makes mypy fail if the repositories' types drift (``find_by_name`` must stay
``Service | None``, ``get`` must stay ``Service``) or a field stops reading as its Python type;
test_typed_usage.py also runs it for real. Its twin, typed_misuse.py, holds the mistakes mypy must catch.
:func:`app_tour` does the same for an app's own model (the worked example in examples/feature-flags):
``Repository(FeatureFlag, db)`` is a ``Repository[FeatureFlag]``, and the backref it adds to the
platform's ``Service`` is typed through :func:`orm_kit.backref`.
"""

from __future__ import annotations

import datetime
import uuid
from typing import assert_type

import peewee

from feature_flags.models import FeatureFlag, flags_of
from orm_kit import (
    Backref,
    CursorPage,
    Deployment,
    DeploymentRepository,
    DeploymentStatus,
    DoraMetrics,
    Environment,
    Page,
    Repository,
    RetryPolicy,
    Service,
    ServiceDeployments,
    ServiceRepository,
    Team,
    TeamRepository,
    Tier,
    WithChildren,
    on_commit,
    replicas,
    transaction,
    transactional,
)


def tour(db: peewee.Database) -> list[str]:
    """Create a team, a service and a deployment, then read them back through the repositories."""
    events: list[str] = []
    services = ServiceRepository(db)
    deployments = DeploymentRepository(db)
    with transaction(db):
        team = assert_type(TeamRepository(db).create(name="typed"), Team)
        svc = assert_type(services.create(name="typed-api", tier="low", owner=team), Service)
        env = Environment.create(name="Typed", slug="typed", tier="production")
        deployments.create(service=svc, environment=env, status="success")
        on_commit(db, lambda: events.append(f"created {svc.name}"))

    found = assert_type(services.find_by_name("typed-api"), Service | None)
    assert found is not None
    # Fields read as their Python types: keys, foreign keys, times, closed sets, nullable ones with None.
    assert_type(found.id, uuid.UUID)
    assert_type(found.owner, Team)
    assert_type(found.owner.parent, Team | None)
    assert_type(found.tier, Tier)
    assert_type(found.updated_at, datetime.datetime)
    assert_type(found.repository_url, str | None)
    # Filters and orders the plugin types field by field (typed_misuse.py has what they refuse).
    mine = services.find(owner=team, name__startswith="typed", tier__in=["low", "medium"], order_by=["-created_at"])
    assert_type(mine, list[Service])
    assert services.count(repository_url__isnull=True, created_at__lt=datetime.datetime.now(datetime.UTC)) >= 1
    assert_type(services.get(found.id), Service)
    detail = assert_type(services.find_with_deployments(found.id), ServiceDeployments)
    family = assert_type(services.get_with_children(found.id, Deployment, related=["environment"]),
                         WithChildren[Service, Deployment])
    assert_type(family.children[0].environment, Environment) if family.children else None
    assert_type(deployments.update_where({"triggered_by": "typed"}, service=found), int)
    history = assert_type(deployments.history(service=found, status=["success", "failed"]), Page[Deployment])
    latest = history.items[0]
    assert_type(latest.status, DeploymentStatus)
    assert_type(latest.finished_at, datetime.datetime | None)
    assert_type(latest.rollback_of, Deployment | None)
    assert_type(latest.environment_id, int)
    cursor = assert_type(deployments.history_after(service=found, size=10), CursorPage[Deployment])
    now = datetime.datetime.now(datetime.UTC)
    metrics = assert_type(deployments.dora_metrics(now - datetime.timedelta(days=1), now), DoraMetrics)

    @transactional(db, retry=RetryPolicy(attempts=3, max_seconds=1.0))
    def rename(service: Service, description: str) -> Service:
        return services.update(service, description=description)

    renamed = assert_type(rename(found, "typed"), Service)
    # Read-your-writes helpers: the same calls with or without read replicas configured.
    token = assert_type(replicas.session_token(db), str | None)
    replicas.observe(db, token)
    with replicas.primary(db):
        assert_type(services.get(renamed.id), Service)
    events.append(f"{renamed.name} v{renamed.lock_version}: {len(detail.deployments)} deployment(s), "
                  f"{history.total} in history, {len(cursor.items)} on the first cursor page, "
                  f"{metrics.deployments} in production today")
    return events


def app_tour(db: peewee.Database, service: Service) -> list[str]:
    """An app's model through the generic repository, and the backref it adds to a platform model."""
    flags = assert_type(Repository(FeatureFlag, db), Repository[FeatureFlag])
    flag = assert_type(flags.create(service=service, name="typed-flag", rollout_percent=10), FeatureFlag)
    assert_type(flags.find_unique("id", flag.id), FeatureFlag | None)
    assert_type(flag.service, Service)
    assert_type(flags.find(service=service, rollout_percent__gte=0, order_by=["name"]), list[FeatureFlag])
    assert_type(flags_of, Backref[Service, FeatureFlag])
    mine = assert_type(flags_of(service), "peewee.ModelSelect[FeatureFlag]")
    return [f"{f.name} at {f.rollout_percent}%" for f in mine]
