"""Migrations and the rows they carry: parent-table rebuilds keep every child; 0002 backfills durations."""

from __future__ import annotations

import datetime
import shutil
import uuid
from pathlib import Path

import peewee
import pytest

from orm_kit.errors import MigrationError
from orm_kit.migrate import Runner
from orm_kit.migrate.migrator import migrator_for
from orm_kit.migrate.snapshot import snapshot
from orm_kit.models import Api as ApiModel
from orm_kit.models import Deployment, ServiceApiConsumer, ServiceDependency, ServiceSourceConfig
from orm_kit.platform import migrate_up, migrations_dir

import factories as make

UTC = datetime.UTC
CHILDREN = ("release", "deployment", "incident", "service_dependency", "service_source_config", "api",
            "service_api_consumer")

# service is the parent of five CASCADE children; on SQLite both steps rebuild the whole table.
REBUILD = '''
def up(migrator, db):
    migrator.migrate(migrator.drop_not_null("service", "description"))


def down(migrator, db):
    db.execute_sql("UPDATE service SET description = '' WHERE description IS NULL")
    migrator.migrate(migrator.add_not_null("service", "description"))
'''


def counts(db: peewee.Database) -> dict[str, int]:
    return {t: db.execute_sql(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in ("service", *CHILDREN)}


def populate() -> None:
    prod, staging = make.environment(), make.environment(tier="staging")
    services = [make.service() for _ in range(3)]
    for svc in services:
        rel = make.release(svc)
        for env in (prod, staging):
            make.deployment(svc, env, release=rel, started_at=datetime.datetime(2026, 1, 1, 9, tzinfo=UTC),
                            finished_at=datetime.datetime(2026, 1, 1, 9, 5, tzinfo=UTC))
        make.incident(svc, prod)
        ServiceSourceConfig.create(service=svc, repo_url="https://git.example.com/x.git")
        api = ApiModel.create(name=f"api-{svc.name}", type="openapi", owner=svc.owner, provider=svc)
        ServiceApiConsumer.create(service=services[0], api=api)
    ServiceDependency.create(service=services[0], depends_on=services[1])
    ServiceDependency.create(service=services[1], depends_on=services[2])


def test_rebuilding_a_parent_with_cascading_children_keeps_every_child(migrated: peewee.Database,
                                                                       tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), folder, ignore=shutil.ignore_patterns("__*"))
    (folder / "0004_service_description_nullable.py").write_text(REBUILD)
    populate()
    before_rows = counts(migrated)
    before_schema = snapshot(migrated, exclude=("schema_migration",))
    assert all(before_rows[t] > 0 for t in before_rows)

    runner = Runner(migrated, folder)
    assert runner.up() == ["0004_service_description_nullable"]
    assert counts(migrated) == before_rows
    after = snapshot(migrated, exclude=("schema_migration",))
    assert after[("service", "column description", "null")] == "NULL"
    assert {k: v for k, v in after.items() if k[0] != "service" or "description" not in k[1]} == {
        k: v for k, v in before_schema.items() if k[0] != "service" or "description" not in k[1]}

    assert runner.down() == ["0004_service_description_nullable"]
    assert counts(migrated) == before_rows
    assert snapshot(migrated, exclude=("schema_migration",)) == before_schema
    # Foreign keys are back on and still cascade from the rebuilt table.
    migrated.execute_sql("DELETE FROM service_api_consumer")
    migrated.execute_sql("DELETE FROM api")
    migrated.execute_sql("DELETE FROM service")
    assert {t: n for t, n in counts(migrated).items() if n} == {}


def test_a_rebuild_with_foreign_keys_on_is_refused_before_it_can_cascade(migrated: peewee.Database) -> None:
    populate()
    before = counts(migrated)
    migrator = migrator_for(migrated)
    change = migrator.drop_not_null("service", "description")
    if isinstance(migrated, peewee.SqliteDatabase):
        with pytest.raises(MigrationError, match="foreign keys ON would cascade-delete"):
            migrator.migrate(change)
        expected = "NOT NULL"
    else:  # PostgreSQL alters the column in place: nothing to refuse
        migrator.migrate(change)
        expected = "NULL"
    assert counts(migrated) == before
    assert snapshot(migrated)[("service", "column description", "null")] == expected


def test_the_shipped_0002_backfills_duration_from_start_and_finish(db: peewee.Database) -> None:
    assert migrate_up(db, target="0001") == ["0001_initial"]
    svc, env = make.service(), make.environment()
    start = datetime.datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)
    spans = [(start, start + datetime.timedelta(seconds=s)) for s in (0, 59, 3601)] + [(start, None), (None, None)]
    for started_at, finished_at in spans:
        # Raw SQL with only 0001's columns: today's model writes duration_seconds, the table lacks it yet.
        columns = {"id": uuid.uuid4(), "service_id": svc.id, "environment_id": env.id, "status": "success",
                   "lock_version": 1, "created_at": start, "started_at": started_at, "finished_at": finished_at}
        fields = {f.column_name: f for f in Deployment._meta.sorted_fields}
        marks = ", ".join([db.param] * len(columns))
        db.execute_sql(f'INSERT INTO "deployment" ({", ".join(columns)}) VALUES ({marks})',
                       [fields[c].db_value(v) for c, v in columns.items()])
    assert migrate_up(db, target="0002") == ["0002_deployment_duration"]
    got = db.execute_sql("SELECT duration_seconds FROM deployment ORDER BY duration_seconds").fetchall()
    assert sorted((r[0] for r in got), key=lambda v: (v is None, v)) == [0, 59, 3601, None, None]
    assert Deployment.select().where(Deployment.duration_seconds == 3601).count() == 1


def test_saving_a_finished_deployment_keeps_its_duration(migrated: peewee.Database) -> None:
    svc, env = make.service(), make.environment()
    start = datetime.datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)
    deployment = make.deployment(svc, env, status="running", started_at=start)
    assert Deployment.get_by_id(deployment.id).duration_seconds is None
    deployment.status, deployment.finished_at = "success", start + datetime.timedelta(minutes=4, seconds=2)
    deployment.save(only=[Deployment.status, Deployment.finished_at])
    assert Deployment.get_by_id(deployment.id).duration_seconds == 242
