"""Deployments: a release of a service going to an environment, with its outcome (GitLab's statuses)."""

from __future__ import annotations

import datetime
import uuid
from typing import TYPE_CHECKING, Any, Literal, get_args

import peewee

from orm_kit import dialect
from orm_kit.fields import UTCDateTimeField, as_utc, choice_field, out_of_range, utcnow
from orm_kit.locking import Versioned
from orm_kit.models._base import PlatformModel, in_check
from orm_kit.models.environment import Environment
from orm_kit.models.release import Release
from orm_kit.models.service import Service
from orm_kit.validation import length, not_before, number_range, one_of, validate, validates

if TYPE_CHECKING:
    from orm_kit.models.incident import Incident

__all__ = ["DEPLOYMENT_STATUSES", "FINISHED_STATUSES", "Deployment", "DeploymentStatus"]

DeploymentStatus = Literal["created", "running", "success", "failed", "canceled", "skipped", "blocked"]
DEPLOYMENT_STATUSES: tuple[DeploymentStatus, ...] = get_args(DeploymentStatus)
FINISHED_STATUSES: tuple[DeploymentStatus, ...] = ("success", "failed", "canceled", "skipped")


@validate(status=[one_of(*DEPLOYMENT_STATUSES)], triggered_by=[length(max=255)],
          duration_seconds=[number_range(min=0)])
class Deployment(Versioned, PlatformModel):
    """One deployment; ``rollback_of`` points at the deployment it rolled back (self one-to-one)."""

    id = peewee.UUIDField(primary_key=True, default=uuid.uuid4)
    service = peewee.ForeignKeyField(Service, backref="deployments", on_delete="CASCADE")
    environment = peewee.ForeignKeyField(Environment, backref="deployments", on_delete="RESTRICT")
    release = peewee.ForeignKeyField(Release, null=True, backref="deployments", on_delete="SET NULL")
    # "self" is a string to peewee's stubs: the annotation says what reading it gives.
    rollback_of: peewee.ForeignKeyField[Deployment | None] = peewee.ForeignKeyField(
        "self", null=True, unique=True, backref="rollbacks", on_delete="SET NULL")
    status = choice_field(DEPLOYMENT_STATUSES, max_length=16, default="created",
                          constraints=[in_check("status", DEPLOYMENT_STATUSES)])
    triggered_by = peewee.CharField(max_length=255, null=True)
    lock_version = peewee.IntegerField(default=1)
    created_at = UTCDateTimeField(default=utcnow)
    started_at = UTCDateTimeField(null=True)
    finished_at = UTCDateTimeField(null=True)
    # How long it ran, in whole seconds (migration 0002 backfilled it from finished_at - started_at).
    duration_seconds = peewee.IntegerField(null=True)

    if TYPE_CHECKING:
        service_id: uuid.UUID
        environment_id: int
        release_id: int | None
        rollback_of_id: uuid.UUID | None
        rollbacks: peewee.ModelSelect[Deployment]
        incidents: peewee.ModelSelect[Incident]

    class Meta:
        indexes = (
            (("environment", "status", "finished_at"), False),
            (("service", "environment", "created_at"), False),
            (("service", "duration_seconds"), False),
            # History pages read newest first, with or without an environment (migration 0003).
            (("created_at", "id"), False),
            (("environment", "created_at", "id"), False),
        )
        constraints = [
            peewee.Check('"finished_at" IS NULL OR "started_at" IS NULL OR "finished_at" >= "started_at"'),
            peewee.Check('"rollback_of_id" IS NULL OR "rollback_of_id" <> "id"'),
        ]

    @classmethod
    def derive(cls, data: dict[str, Any], *, partial: bool = False) -> None:
        """Keep ``duration_seconds`` in step with ``started_at`` and ``finished_at`` on every write path.

        A value given for ``duration_seconds`` itself is never trusted: a new row's comes from its two
        times (None when either is missing), and an UPDATE that names the duration or one time computes
        it in SQL from the row's own columns.
        """
        if not partial:
            data["duration_seconds"] = _seconds_between(data.get("started_at"), data.get("finished_at"))
        elif "started_at" in data and "finished_at" in data:
            data["duration_seconds"] = _seconds_between(data["started_at"], data["finished_at"])
        elif "started_at" in data or "finished_at" in data or "duration_seconds" in data:
            start = _param(cls.started_at, data["started_at"]) if "started_at" in data else cls.started_at
            end = _param(cls.finished_at, data["finished_at"]) if "finished_at" in data else cls.finished_at
            data["duration_seconds"] = _sql_seconds_between(cls._meta.database, start, end)

    @property
    def rolled_back_by(self) -> Deployment | None:
        """The deployment that rolled this one back, or ``None`` (the other side of the one-to-one)."""
        rollback: Deployment | None = self.rollbacks.first()
        return rollback

    @validates("finished_at")
    def _finished_after_start(self) -> str | None:
        return not_before(self.finished_at, self.started_at, "started_at")

    @validates("rollback_of")
    def _not_own_rollback(self) -> str | None:
        target: Any = self.__data__.get("rollback_of")
        if target is not None and self.id is not None and str(target) == str(self.id):
            return "cannot be the deployment itself"
        return None


def _seconds_between(start: Any, end: Any) -> int | None:
    if not isinstance(start, datetime.datetime) or not isinstance(end, datetime.datetime):
        return None
    if out_of_range(start) or out_of_range(end):
        return None  # the type check reports it: derive() runs before validation
    ran = as_utc(end) - as_utc(start)
    # finished before started is finished_at's error to report, not a negative duration
    return round(ran.total_seconds()) if ran >= datetime.timedelta(0) else None


def _param(field: peewee.Field, value: Any) -> peewee.Node:
    return value if isinstance(value, peewee.Node) else peewee.Value(value, converter=field.db_value)


def _sql_seconds_between(database: Any, start: Any, end: Any) -> peewee.Node:
    """Whole seconds from ``start`` to ``end`` in SQL; the one place the two backends' date arithmetic differs."""
    return dialect.seconds_between(database, start, end)
