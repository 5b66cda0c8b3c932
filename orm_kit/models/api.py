"""APIs teams own and services provide and consume (many-to-many through ``ServiceApiConsumer``)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Literal, get_args

import peewee

from orm_kit.fields import choice_field
from orm_kit.models._base import PlatformModel, in_check
from orm_kit.models.service import LIFECYCLES, Service
from orm_kit.models.team import Team
from orm_kit.validation import one_of, slug, url, validate

__all__ = ["API_TYPES", "Api", "ApiType", "ServiceApiConsumer"]

ApiType = Literal["openapi", "asyncapi", "graphql", "grpc"]
API_TYPES: tuple[ApiType, ...] = get_args(ApiType)


@validate(
    name=[slug(max_length=63)],
    type=[one_of(*API_TYPES)],
    lifecycle=[one_of(*LIFECYCLES)],
    definition_url=[url()],
)
class Api(PlatformModel):
    """An API, after the Backstage catalog: owned by a team, provided by at most one service."""

    id = peewee.AutoField()
    name = peewee.CharField(max_length=63, unique=True)
    type = choice_field(API_TYPES, max_length=16, constraints=[in_check("type", API_TYPES)])
    lifecycle = choice_field(LIFECYCLES, max_length=16, default="experimental",
                             constraints=[in_check("lifecycle", LIFECYCLES)])
    definition_url = peewee.CharField(max_length=2048, null=True)
    owner = peewee.ForeignKeyField(Team, backref="apis", on_delete="RESTRICT")
    provider = peewee.ForeignKeyField(Service, null=True, backref="provided_apis", on_delete="SET NULL")

    if TYPE_CHECKING:
        owner_id: int
        provider_id: uuid.UUID | None
        consumers: peewee.ModelSelect[ServiceApiConsumer]


class ServiceApiConsumer(PlatformModel):
    """``service`` consumes ``api``: the join model of the services-APIs many-to-many."""

    id = peewee.AutoField()
    service = peewee.ForeignKeyField(Service, backref="consumed_apis", on_delete="CASCADE")
    api = peewee.ForeignKeyField(Api, backref="consumers", on_delete="CASCADE")

    if TYPE_CHECKING:
        service_id: uuid.UUID
        api_id: int

    class Meta:
        indexes = ((("service", "api"), True),)
