"""Services, what they depend on (self-referential many-to-many) and where their source lives (one-to-one)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Literal, get_args

import peewee

from orm_kit.fields import UTCDateTimeField, choice_field, utcnow
from orm_kit.locking import Versioned
from orm_kit.models._base import PlatformModel, in_check
from orm_kit.models.team import Team
from orm_kit.validation import length, not_blank, one_of, slug, url, validate, validates

if TYPE_CHECKING:
    from orm_kit.models.api import Api, ServiceApiConsumer
    from orm_kit.models.deployment import Deployment
    from orm_kit.models.incident import Incident
    from orm_kit.models.release import Release

__all__ = [
    "DEPENDENCY_KINDS",
    "LIFECYCLES",
    "SYNC_POLICIES",
    "TIERS",
    "DependencyKind",
    "Lifecycle",
    "Service",
    "ServiceDependency",
    "ServiceSourceConfig",
    "SyncPolicy",
    "Tier",
]

# Each closed set once, as a type; its values (what validators, CHECK constraints and fields use) come from it.
Lifecycle = Literal["experimental", "production", "deprecated"]
Tier = Literal["critical", "high", "medium", "low"]
DependencyKind = Literal["runtime", "build", "data"]
SyncPolicy = Literal["manual", "automated"]
LIFECYCLES: tuple[Lifecycle, ...] = get_args(Lifecycle)
TIERS: tuple[Tier, ...] = get_args(Tier)
DEPENDENCY_KINDS: tuple[DependencyKind, ...] = get_args(DependencyKind)
SYNC_POLICIES: tuple[SyncPolicy, ...] = get_args(SyncPolicy)


@validate(
    name=[slug(max_length=63)],
    lifecycle=[one_of(*LIFECYCLES)],
    tier=[one_of(*TIERS)],
    repository_url=[url()],
)
class Service(Versioned, PlatformModel):
    """A deployable service, owned by a team (many-to-one, RESTRICT)."""

    id = peewee.UUIDField(primary_key=True, default=uuid.uuid4)
    name = peewee.CharField(max_length=63, unique=True)
    description = peewee.TextField(default="")
    lifecycle = choice_field(LIFECYCLES, max_length=16, default="experimental",
                             constraints=[in_check("lifecycle", LIFECYCLES)])
    tier = choice_field(TIERS, max_length=16, constraints=[in_check("tier", TIERS)])
    repository_url = peewee.CharField(max_length=2048, null=True)
    owner = peewee.ForeignKeyField(Team, backref="services", on_delete="RESTRICT")
    lock_version = peewee.IntegerField(default=1)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    if TYPE_CHECKING:
        owner_id: int
        deployments: peewee.ModelSelect[Deployment]
        releases: peewee.ModelSelect[Release]
        incidents: peewee.ModelSelect[Incident]
        dependency_links: peewee.ModelSelect[ServiceDependency]
        dependent_links: peewee.ModelSelect[ServiceDependency]
        provided_apis: peewee.ModelSelect[Api]
        consumed_apis: peewee.ModelSelect[ServiceApiConsumer]
        source_configs: peewee.ModelSelect[ServiceSourceConfig]

    @property
    def source_config(self) -> ServiceSourceConfig | None:
        """The one-to-one source configuration, or ``None`` (one query)."""
        config: ServiceSourceConfig | None = self.source_configs.first()
        return config


@validate(kind=[one_of(*DEPENDENCY_KINDS)])
class ServiceDependency(PlatformModel):
    """``service`` depends on ``depends_on``: the join model of services' many-to-many with themselves."""

    id = peewee.AutoField()
    service = peewee.ForeignKeyField(Service, backref="dependency_links", on_delete="CASCADE")
    depends_on = peewee.ForeignKeyField(Service, backref="dependent_links", on_delete="CASCADE")
    kind = choice_field(DEPENDENCY_KINDS, max_length=16, default="runtime",
                        constraints=[in_check("kind", DEPENDENCY_KINDS)])
    created_at = UTCDateTimeField(default=utcnow)

    if TYPE_CHECKING:
        service_id: uuid.UUID
        depends_on_id: uuid.UUID

    class Meta:
        indexes = ((("service", "depends_on"), True),)
        constraints = [peewee.Check('"service_id" <> "depends_on_id"')]

    @validates("depends_on")
    def _not_itself(self) -> str | None:
        service: Any = self.__data__.get("service")
        depends_on: Any = self.__data__.get("depends_on")
        if service is not None and str(service) == str(depends_on):
            return "cannot be the service itself (a service cannot depend on itself)"
        return None


@validate(
    repo_url=[url(schemes=("https", "http", "ssh", "git"))],
    path=[not_blank(), length(max=1024)],
    target_revision=[not_blank(), length(max=255)],
    sync_policy=[one_of(*SYNC_POLICIES)],
)
class ServiceSourceConfig(PlatformModel):
    """Where a service's deployable source lives, after Argo CD's Application source (one-to-one)."""

    service = peewee.ForeignKeyField(Service, primary_key=True, backref="source_configs", on_delete="CASCADE")
    repo_url = peewee.CharField(max_length=2048)
    path = peewee.CharField(max_length=1024, default=".")
    target_revision = peewee.CharField(max_length=255, default="HEAD")
    sync_policy = choice_field(SYNC_POLICIES, max_length=16, default="manual",
                               constraints=[in_check("sync_policy", SYNC_POLICIES)])

    if TYPE_CHECKING:
        service_id: uuid.UUID
