"""The feature-flags service's own tables, beside the platform's, and typed access to them.

    db = orm_kit.connect("sqlite:///platform.db")   # binds the platform's models
    db.bind(MODELS)                                  # and these (the orm-kit command binds every app's)
    flags = Repository(FeatureFlag, db)              # Repository[FeatureFlag]: get, find, create, page ...
    flag = flags.create(service=checkout, name="new-checkout", rollout_percent=10)
    flags_of(checkout)                               # checkout.feature_flags, typed ModelSelect[FeatureFlag]

``FeatureFlag.service`` adds ``feature_flags`` to the platform's ``Service`` at run time; mypy cannot
see an attribute added from outside a class, so :func:`orm_kit.relations.backref` gives the typed way
to it (``flags_of``, ``windows_of``).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import peewee

import orm_kit
from orm_kit import Environment, Service
from orm_kit.relations import backref
from orm_kit.validation import length, number_range, slug, validate, validates

__all__ = ["MODELS", "DeployWindow", "FeatureFlag", "flags_of", "windows_of"]


@validate(name=[slug(max_length=63)], description=[length(max=500)], rollout_percent=[number_range(min=0, max=100)])
class FeatureFlag(orm_kit.Model):
    """A flag of one service, switched on for a percentage of its traffic."""

    id = peewee.AutoField()
    service = peewee.ForeignKeyField(Service, backref="feature_flags", on_delete="CASCADE")
    name = peewee.CharField(max_length=63)
    description = peewee.CharField(max_length=500, default="")
    enabled = peewee.BooleanField(default=False)
    rollout_percent = peewee.IntegerField(default=100)

    if TYPE_CHECKING:
        service_id: uuid.UUID

    class Meta:
        indexes = ((("service", "name"), True),)


@validate(weekday=[number_range(min=0, max=6)], start_hour=[number_range(min=0, max=23)],
          end_hour=[number_range(min=1, max=24)])
class DeployWindow(orm_kit.Model):
    """When deployments to an environment may start, per weekday (0 = Monday), in whole UTC hours."""

    id = peewee.AutoField()
    environment = peewee.ForeignKeyField(Environment, backref="deploy_windows", on_delete="CASCADE")
    weekday = peewee.IntegerField()
    start_hour = peewee.IntegerField()
    end_hour = peewee.IntegerField()

    if TYPE_CHECKING:
        environment_id: int

    class Meta:
        indexes = ((("environment", "weekday"), True),)

    @validates("end_hour")
    def _after_start(self) -> str | None:
        start, end = self.__data__.get("start_hour"), self.__data__.get("end_hour")
        return "must be after start_hour" if start is not None and end is not None and end <= start else None


#: The app's tables, parents first (pyproject.toml names this module).
MODELS = (FeatureFlag, DeployWindow)

#: service.feature_flags and environment.deploy_windows, typed for mypy.
flags_of = backref(FeatureFlag, FeatureFlag.service)
windows_of = backref(DeployWindow, DeployWindow.environment)
