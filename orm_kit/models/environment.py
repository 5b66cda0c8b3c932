"""Environments deployments go to, tiered like GitLab's (production, staging, ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, get_args

import peewee

from orm_kit.fields import choice_field
from orm_kit.models._base import PlatformModel, in_check
from orm_kit.validation import length, not_blank, one_of, slug, url, validate

if TYPE_CHECKING:
    from orm_kit.models.deployment import Deployment
    from orm_kit.models.incident import Incident

__all__ = ["ENVIRONMENT_STATES", "ENVIRONMENT_TIERS", "Environment", "EnvironmentState", "EnvironmentTier"]

EnvironmentTier = Literal["production", "staging", "testing", "development", "other"]
EnvironmentState = Literal["available", "stopping", "stopped"]
ENVIRONMENT_TIERS: tuple[EnvironmentTier, ...] = get_args(EnvironmentTier)
ENVIRONMENT_STATES: tuple[EnvironmentState, ...] = get_args(EnvironmentState)


@validate(
    name=[not_blank(), length(max=255)],
    slug=[slug(max_length=24)],
    tier=[one_of(*ENVIRONMENT_TIERS)],
    state=[one_of(*ENVIRONMENT_STATES)],
    external_url=[url()],
    region=[not_blank(allow_none=True), length(max=64)],
)
class Environment(PlatformModel):
    """A place services are deployed to."""

    id = peewee.AutoField()
    name = peewee.CharField(max_length=255, unique=True)
    slug = peewee.CharField(max_length=24, unique=True)
    tier = choice_field(ENVIRONMENT_TIERS, max_length=16, constraints=[in_check("tier", ENVIRONMENT_TIERS)])
    state = choice_field(ENVIRONMENT_STATES, max_length=16, default="available",
                         constraints=[in_check("state", ENVIRONMENT_STATES)])
    external_url = peewee.CharField(max_length=2048, null=True)
    region = peewee.CharField(max_length=64, null=True)

    if TYPE_CHECKING:
        deployments: peewee.ModelSelect[Deployment]
        incidents: peewee.ModelSelect[Incident]
