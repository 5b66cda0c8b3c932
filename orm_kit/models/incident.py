"""Incidents: something broke for a service in an environment, perhaps caused by a deployment."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Literal, get_args

import peewee

from orm_kit.fields import UTCDateTimeField, choice_field
from orm_kit.models._base import PlatformModel, in_check
from orm_kit.models.deployment import Deployment
from orm_kit.models.environment import Environment
from orm_kit.models.service import Service
from orm_kit.validation import length, not_before, not_blank, one_of, validate, validates

__all__ = ["SEVERITIES", "Incident", "Severity"]

Severity = Literal["sev1", "sev2", "sev3", "sev4"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)


@validate(severity=[one_of(*SEVERITIES)], title=[not_blank(), length(max=255)])
class Incident(PlatformModel):
    """An incident; ``caused_by`` links the deployment that caused it (SET NULL on delete)."""

    id = peewee.AutoField()
    service = peewee.ForeignKeyField(Service, backref="incidents", on_delete="CASCADE")
    environment = peewee.ForeignKeyField(Environment, backref="incidents", on_delete="RESTRICT")
    caused_by = peewee.ForeignKeyField(Deployment, null=True, backref="incidents", on_delete="SET NULL")
    severity = choice_field(SEVERITIES, max_length=8, constraints=[in_check("severity", SEVERITIES)])
    title = peewee.CharField(max_length=255)
    opened_at = UTCDateTimeField()
    resolved_at = UTCDateTimeField(null=True)

    if TYPE_CHECKING:
        service_id: uuid.UUID
        environment_id: int
        caused_by_id: uuid.UUID | None

    class Meta:
        constraints = [peewee.Check('"resolved_at" IS NULL OR "resolved_at" >= "opened_at"')]

    @validates("resolved_at")
    def _resolved_after_opened(self) -> str | None:
        return not_before(self.resolved_at, self.opened_at, "opened_at")
