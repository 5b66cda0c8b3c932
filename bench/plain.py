"""The platform's tables as plain peewee models: what a peewee user would write, no orm-kit base, no validation.

They map the same tables the migrations create. Times use orm-kit's ``UTCDateTimeField`` (a peewee
``DateTimeField`` subclass), so both sides convert times the same way and the comparison measures the
query and row machinery, not two date parsers. ``bind(db)`` points them at a database.
"""

from __future__ import annotations

import uuid

import peewee

from orm_kit.fields import UTCDateTimeField

__all__ = ["PLAIN_MODELS", "PlainDeployment", "PlainEnvironment", "PlainIncident", "PlainRelease", "PlainService",
           "PlainServiceDependency", "PlainTeam", "bind"]


class PlainTeam(peewee.Model):
    id = peewee.AutoField()
    name = peewee.CharField()
    display_name = peewee.CharField(null=True)
    email = peewee.CharField(null=True)
    parent = peewee.ForeignKeyField("self", null=True, backref="children")
    created_at = UTCDateTimeField()

    class Meta:
        table_name = "team"


class PlainEnvironment(peewee.Model):
    id = peewee.AutoField()
    name = peewee.CharField()
    slug = peewee.CharField()
    tier = peewee.CharField()
    state = peewee.CharField()
    external_url = peewee.CharField(null=True)
    region = peewee.CharField(null=True)

    class Meta:
        table_name = "environment"


class PlainService(peewee.Model):
    id = peewee.UUIDField(primary_key=True, default=uuid.uuid4)
    name = peewee.CharField()
    description = peewee.TextField()
    lifecycle = peewee.CharField()
    tier = peewee.CharField()
    repository_url = peewee.CharField(null=True)
    owner = peewee.ForeignKeyField(PlainTeam, backref="services")
    lock_version = peewee.IntegerField()
    created_at = UTCDateTimeField()
    updated_at = UTCDateTimeField()

    class Meta:
        table_name = "service"


class PlainServiceDependency(peewee.Model):
    id = peewee.AutoField()
    service = peewee.ForeignKeyField(PlainService, backref="dependency_links")
    depends_on = peewee.ForeignKeyField(PlainService, backref="dependent_links")
    kind = peewee.CharField()
    created_at = UTCDateTimeField()

    class Meta:
        table_name = "service_dependency"


class PlainRelease(peewee.Model):
    id = peewee.AutoField()
    service = peewee.ForeignKeyField(PlainService, backref="releases")
    version = peewee.CharField()
    commit_sha = peewee.CharField()
    ref = peewee.CharField()
    committed_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField()

    class Meta:
        table_name = "release"


class PlainDeployment(peewee.Model):
    id = peewee.UUIDField(primary_key=True, default=uuid.uuid4)
    service = peewee.ForeignKeyField(PlainService, backref="deployments")
    environment = peewee.ForeignKeyField(PlainEnvironment, backref="deployments")
    release = peewee.ForeignKeyField(PlainRelease, null=True, backref="deployments")
    rollback_of = peewee.ForeignKeyField("self", null=True, backref="rollbacks")
    status = peewee.CharField()
    triggered_by = peewee.CharField(null=True)
    lock_version = peewee.IntegerField()
    created_at = UTCDateTimeField()
    started_at = UTCDateTimeField(null=True)
    finished_at = UTCDateTimeField(null=True)
    duration_seconds = peewee.IntegerField(null=True)

    class Meta:
        table_name = "deployment"


class PlainIncident(peewee.Model):
    id = peewee.AutoField()
    service = peewee.ForeignKeyField(PlainService, backref="incidents")
    environment = peewee.ForeignKeyField(PlainEnvironment, backref="incidents")
    caused_by = peewee.ForeignKeyField(PlainDeployment, null=True, backref="incidents")
    severity = peewee.CharField()
    title = peewee.CharField()
    opened_at = UTCDateTimeField()
    resolved_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "incident"


PLAIN_MODELS = (PlainTeam, PlainEnvironment, PlainService, PlainServiceDependency, PlainRelease, PlainDeployment,
                PlainIncident)


def bind(db: peewee.Database) -> None:
    """Point every plain model at ``db``."""
    db.bind(PLAIN_MODELS)
