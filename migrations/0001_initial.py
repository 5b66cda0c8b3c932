"""The deployment platform's ten tables.

Frozen history: this file declares the tables as they were when it was written and never imports
today's models, so it keeps working as the models change.
"""

import uuid

from peewee import (
    AutoField,
    CharField,
    Check,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
    UUIDField,
)


class Timestamptz(DateTimeField):
    field_type = "TIMESTAMPTZ"


def _in(column, values):
    return Check('"%s" IN (%s)' % (column, ", ".join("'%s'" % v for v in values)))


LIFECYCLES = ("experimental", "production", "deprecated")


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Team(Base):
        id = AutoField()
        name = CharField(max_length=63, unique=True)
        display_name = CharField(max_length=255, null=True)
        email = CharField(max_length=254, null=True)
        parent = ForeignKeyField("self", null=True, on_delete="SET NULL")
        created_at = Timestamptz()

        class Meta:
            constraints = [Check('"parent_id" IS NULL OR "parent_id" <> "id"')]

    class Environment(Base):
        id = AutoField()
        name = CharField(max_length=255, unique=True)
        slug = CharField(max_length=24, unique=True)
        tier = CharField(max_length=16, constraints=[
            _in("tier", ("production", "staging", "testing", "development", "other"))])
        state = CharField(max_length=16, constraints=[_in("state", ("available", "stopping", "stopped"))])
        external_url = CharField(max_length=2048, null=True)
        region = CharField(max_length=64, null=True)

    class Service(Base):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        name = CharField(max_length=63, unique=True)
        description = TextField()
        lifecycle = CharField(max_length=16, constraints=[_in("lifecycle", LIFECYCLES)])
        tier = CharField(max_length=16, constraints=[_in("tier", ("critical", "high", "medium", "low"))])
        repository_url = CharField(max_length=2048, null=True)
        owner = ForeignKeyField(Team, on_delete="RESTRICT")
        lock_version = IntegerField()
        created_at = Timestamptz()
        updated_at = Timestamptz()

    class ServiceDependency(Base):
        id = AutoField()
        service = ForeignKeyField(Service, on_delete="CASCADE")
        depends_on = ForeignKeyField(Service, on_delete="CASCADE")
        kind = CharField(max_length=16, constraints=[_in("kind", ("runtime", "build", "data"))])
        created_at = Timestamptz()

        class Meta:
            indexes = ((("service", "depends_on"), True),)
            constraints = [Check('"service_id" <> "depends_on_id"')]

    class Api(Base):
        id = AutoField()
        name = CharField(max_length=63, unique=True)
        type = CharField(max_length=16, constraints=[_in("type", ("openapi", "asyncapi", "graphql", "grpc"))])
        lifecycle = CharField(max_length=16, constraints=[_in("lifecycle", LIFECYCLES)])
        definition_url = CharField(max_length=2048, null=True)
        owner = ForeignKeyField(Team, on_delete="RESTRICT")
        provider = ForeignKeyField(Service, null=True, on_delete="SET NULL")

    class ServiceApiConsumer(Base):
        id = AutoField()
        service = ForeignKeyField(Service, on_delete="CASCADE")
        api = ForeignKeyField(Api, on_delete="CASCADE")

        class Meta:
            indexes = ((("service", "api"), True),)

    class ServiceSourceConfig(Base):
        service = ForeignKeyField(Service, primary_key=True, on_delete="CASCADE")
        repo_url = CharField(max_length=2048)
        path = CharField(max_length=1024)
        target_revision = CharField(max_length=255)
        sync_policy = CharField(max_length=16, constraints=[_in("sync_policy", ("manual", "automated"))])

    class Release(Base):
        id = AutoField()
        service = ForeignKeyField(Service, on_delete="CASCADE")
        version = CharField(max_length=128)
        commit_sha = CharField(max_length=40)
        ref = CharField(max_length=255)
        committed_at = Timestamptz(null=True)
        created_at = Timestamptz()

        class Meta:
            indexes = ((("service", "version"), True),)

    class Deployment(Base):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        service = ForeignKeyField(Service, on_delete="CASCADE")
        environment = ForeignKeyField(Environment, on_delete="RESTRICT")
        release = ForeignKeyField(Release, null=True, on_delete="SET NULL")
        rollback_of = ForeignKeyField("self", null=True, unique=True, on_delete="SET NULL")
        status = CharField(max_length=16, constraints=[
            _in("status", ("created", "running", "success", "failed", "canceled", "skipped", "blocked"))])
        triggered_by = CharField(max_length=255, null=True)
        lock_version = IntegerField()
        created_at = Timestamptz()
        started_at = Timestamptz(null=True)
        finished_at = Timestamptz(null=True)

        class Meta:
            indexes = (
                (("environment", "status", "finished_at"), False),
                (("service", "environment", "created_at"), False),
            )
            constraints = [
                Check('"finished_at" IS NULL OR "started_at" IS NULL OR "finished_at" >= "started_at"'),
                Check('"rollback_of_id" IS NULL OR "rollback_of_id" <> "id"'),
            ]

    class Incident(Base):
        id = AutoField()
        service = ForeignKeyField(Service, on_delete="CASCADE")
        environment = ForeignKeyField(Environment, on_delete="RESTRICT")
        caused_by = ForeignKeyField(Deployment, null=True, on_delete="SET NULL")
        severity = CharField(max_length=8, constraints=[_in("severity", ("sev1", "sev2", "sev3", "sev4"))])
        title = CharField(max_length=255)
        opened_at = Timestamptz()
        resolved_at = Timestamptz(null=True)

        class Meta:
            constraints = [Check('"resolved_at" IS NULL OR "resolved_at" >= "opened_at"')]

    db.create_tables([Team, Environment, Service, ServiceDependency, Api, ServiceApiConsumer,
                      ServiceSourceConfig, Release, Deployment, Incident], safe=False)


def down(migrator, db):
    for table in ("incident", "deployment", "release", "service_source_config", "service_api_consumer",
                  "api", "service_dependency", "service", "environment", "team"):
        migrator.migrate(migrator.drop_table(table))
