"""Two databases in one process: a repository works on the database it was made for, or refuses to run.

``orm_kit.connect()`` binds the platform's models for the whole process. A PostgreSQL repository made
before ``connect("sqlite:///...")`` went on running: its prepared SQL still reached PostgreSQL, while the
model's own paths (derived columns computed in SQL, ``save()``, lazy relations) followed the new binding
(SQLite's ``julianday()`` sent to PostgreSQL; before sessions ran in UTC, 12:00Z written as 16:00Z).
"""

from __future__ import annotations

import datetime
from pathlib import Path

import peewee
import pytest

import orm_kit
from orm_kit.errors import ConfigurationError
from orm_kit.models import MODELS
from orm_kit.platform import migrate_up
from orm_kit.repositories import DeploymentRepository, EnvironmentRepository, ServiceRepository, TeamRepository

from conftest import reset_postgres

NOON = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)
pytestmark = pytest.mark.postgres


def _platform(db: peewee.Database, name: str) -> tuple[DeploymentRepository, orm_kit.Service, orm_kit.Environment]:
    team = TeamRepository(db).create(name=name)
    service = ServiceRepository(db).create(name=name, owner=team, tier="low")
    env = EnvironmentRepository(db).create(name=name.title(), slug=name, tier="production")
    return DeploymentRepository(db), service, env


def _started(db: peewee.Database) -> list[object]:
    return [row[0] for row in db.execute_sql('SELECT "started_at" FROM "deployment"').fetchall()]


def test_a_repository_refuses_to_run_once_its_models_are_bound_to_another_database(postgres_url: str,
                                                                                   tmp_path: Path) -> None:
    reset_postgres(postgres_url)
    pg = orm_kit.connect(postgres_url, replicas=[])
    lite: peewee.Database | None = None
    try:
        migrate_up(pg)
        deployments, service, env = _platform(pg, "pg")
        lite = orm_kit.connect(f"sqlite:///{tmp_path / 'local.db'}", replicas=[])
        migrate_up(lite)
        refusals = {
            "create": lambda: deployments.create(service=service, environment=env, started_at=NOON),
            "find": lambda: deployments.find(),
            "update_where": lambda: deployments.update_where({"started_at": NOON}, service=service.id),
            "history": lambda: deployments.history(),
            "get": lambda: deployments.get(service.id),
        }
        refused = (r"DeploymentRepository was made for PostgresDatabase, but Deployment has since been bound to "
                   r"SqliteDatabase.*bind_ctx")
        for call in refusals.values():
            with pytest.raises(ConfigurationError, match=refused):
                call()
        assert _started(pg) == [] and _started(lite) == []
        # Made after the binding, a repository works on SQLite; the PostgreSQL one works again once bound back.
        local, local_service, local_env = _platform(lite, "local")
        local.create(service=local_service, environment=local_env, started_at=NOON, finished_at=NOON)
        pg.bind(MODELS)
        made = deployments.create(service=service, environment=env, started_at=NOON)
        deployments.update_where({"finished_at": NOON + datetime.timedelta(minutes=2)}, id=made.id)
        assert deployments.get(made.id).duration_seconds == 120
        with lite.bind_ctx(MODELS):  # the other database's work in a block: the models are bound back after it
            assert [d.started_at for d in DeploymentRepository(lite).find()] == [NOON]
        assert [d.started_at for d in deployments.find()] == [NOON]
        assert _started(pg) == [NOON] and _started(lite) == ["2026-03-01 12:00:00.000000"]
    finally:
        pg.close()
        if lite is not None:
            lite.close()
