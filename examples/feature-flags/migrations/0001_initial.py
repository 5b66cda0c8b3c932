# ruff: noqa: F403, F405, E501
# Generated from a schema diff on 2026-11-27 11:30.
from peewee import *
import uuid


# Applied after these migrations of other apps: the schema this one was written against.
depends_on = [('platform', '0003_deployment_history_indexes')]


def up(migrator, db):
    class Environment(Model):
        class Meta:
            database = db
            table_name = 'environment'

    class Service(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        class Meta:
            database = db
            table_name = 'service'

    class DeployWindow(Model):
        environment = ForeignKeyField(Environment, on_delete='CASCADE')
        weekday = IntegerField()
        start_hour = IntegerField()
        end_hour = IntegerField()
        class Meta:
            database = db
            table_name = 'deploy_window'
            legacy_table_names = False
            indexes = ((('environment', 'weekday'), True),)
    db.create_tables([DeployWindow])

    class FeatureFlag(Model):
        service = ForeignKeyField(Service, on_delete='CASCADE')
        name = CharField(max_length=63)
        description = CharField(max_length=500, default='')
        enabled = BooleanField(default=False)
        rollout_percent = IntegerField(default=100)
        class Meta:
            database = db
            table_name = 'feature_flag'
            legacy_table_names = False
            indexes = ((('service', 'name'), True),)
    db.create_tables([FeatureFlag])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('feature_flag'))
    migrator.migrate(migrator.drop_table('deploy_window'))
