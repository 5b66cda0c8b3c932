"""Releases: a version of a service built from one commit."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import peewee

from orm_kit.fields import UTCDateTimeField, utcnow
from orm_kit.models._base import PlatformModel
from orm_kit.models.service import Service
from orm_kit.validation import commit_sha, length, not_blank, semver, validate

if TYPE_CHECKING:
    from orm_kit.models.deployment import Deployment

__all__ = ["Release"]


@validate(version=[semver()], commit_sha=[commit_sha()], ref=[not_blank(), length(max=255)])
class Release(PlatformModel):
    """A semantic version of a service, unique per service, at a full commit SHA."""

    id = peewee.AutoField()
    service = peewee.ForeignKeyField(Service, backref="releases", on_delete="CASCADE")
    version = peewee.CharField(max_length=128)
    commit_sha = peewee.CharField(max_length=40)
    ref = peewee.CharField(max_length=255)
    committed_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField(default=utcnow)

    if TYPE_CHECKING:
        service_id: uuid.UUID
        deployments: peewee.ModelSelect[Deployment]

    class Meta:
        indexes = ((("service", "version"), True),)
