"""Derived fields (Model.derive): deployment.duration_seconds stays right on every write path."""

from __future__ import annotations

import datetime

import peewee
import pytest

from orm_kit.bulk import BulkWriter
from orm_kit.models import Deployment, Environment, Service
from orm_kit.synthetic import generate

import factories as f

pytestmark = pytest.mark.usefixtures("migrated")
UTC = datetime.UTC
T0 = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def minutes(n: float) -> datetime.datetime:
    return T0 + datetime.timedelta(minutes=n)


def durations() -> dict[str, int | None]:
    return {d.triggered_by: d.duration_seconds for d in Deployment.select()}


@pytest.fixture
def svc_env() -> tuple[Service, Environment]:
    return f.service(), f.environment()


def test_create_and_save(svc_env: tuple[Service, Environment]) -> None:
    svc, env = svc_env
    d = Deployment.create(service=svc, environment=env, triggered_by="a", started_at=T0, finished_at=minutes(2))
    assert Deployment.get_by_id(d.id).duration_seconds == 120
    loaded = Deployment.get_by_id(d.id)
    loaded.finished_at = minutes(5)
    loaded.save()
    assert Deployment.get_by_id(d.id).duration_seconds == 300
    loaded.finished_at = minutes(7)
    loaded.save(only=[Deployment.finished_at])  # the derived column is written with it
    assert Deployment.get_by_id(d.id).duration_seconds == 420
    running = Deployment.create(service=svc, environment=env, triggered_by="b", started_at=T0)
    assert Deployment.get_by_id(running.id).duration_seconds is None


def test_insert_insert_many_and_bulk_create(svc_env: tuple[Service, Environment]) -> None:
    svc, env = svc_env
    Deployment.insert(service=svc, environment=env, status="success", triggered_by="insert",
                      started_at=T0, finished_at=minutes(1)).execute()
    Deployment.insert_many([{"service": svc, "environment": env, "triggered_by": "dict",
                             "started_at": T0, "finished_at": minutes(3)}]).execute()
    Deployment.insert_many([(svc.id, env.id, "tuple", T0, minutes(4))],
                           fields=["service", "environment", "triggered_by", "started_at", "finished_at"]).execute()
    Deployment.bulk_create([Deployment(service=svc, environment=env, triggered_by="bulk",
                                       started_at=T0, finished_at=minutes(6))])
    assert durations() == {"insert": 60, "dict": 180, "tuple": 240, "bulk": 360}


def test_update_of_one_end_computes_from_the_other_in_sql(svc_env: tuple[Service, Environment]) -> None:
    svc, env = svc_env
    d = Deployment.create(service=svc, environment=env, triggered_by="u", started_at=T0)
    Deployment.update(finished_at=minutes(10), status="success").where(Deployment.id == d.id).execute()
    assert Deployment.get_by_id(d.id).duration_seconds == 600
    Deployment.update(started_at=minutes(4)).where(Deployment.id == d.id).execute()
    assert Deployment.get_by_id(d.id).duration_seconds == 360
    Deployment.update(started_at=T0, finished_at=minutes(1)).where(Deployment.id == d.id).execute()
    assert Deployment.get_by_id(d.id).duration_seconds == 60


def test_bulk_writer_and_generator_fill_it(migrated: peewee.Database, svc_env: tuple[Service, Environment]) -> None:
    svc, env = svc_env
    writer = BulkWriter(migrated)
    writer.table(Deployment, ["service", "environment", "triggered_by", "started_at", "finished_at"])
    writer.add(Deployment, (svc.id, env.id, "writer", T0, minutes(9)))
    writer.flush()
    assert durations() == {"writer": 540}
    generate(migrated, deployments=200, random_seed=3, services=3, days=5)
    rows = list(Deployment.select().where(Deployment.started_at.is_null(False), Deployment.finished_at.is_null(False)))
    assert len(rows) > 100
    for d in rows:
        assert d.duration_seconds == round((d.finished_at - d.started_at).total_seconds()), d.triggered_by


def test_a_duration_given_directly_is_never_written_as_given(migrated: peewee.Database,
                                                             svc_env: tuple[Service, Environment]) -> None:
    """Model.create, update, insert, insert_many, bulk_create/bulk_update, BulkWriter and the repository all wrote
    duration_seconds=999 as given (with no times, or over the row's own times)."""
    from orm_kit.repositories import DeploymentRepository

    svc, env = svc_env
    repo = DeploymentRepository(migrated)
    Deployment.create(service=svc, environment=env, triggered_by="create", duration_seconds=999)
    Deployment.insert(service=svc, environment=env, triggered_by="insert", duration_seconds=999).execute()
    Deployment.insert_many([{"service": svc, "environment": env, "triggered_by": "insert_many",
                             "duration_seconds": 999}]).execute()
    Deployment.bulk_create([Deployment(service=svc, environment=env, triggered_by="bulk_create",
                                       duration_seconds=999)])
    with BulkWriter(migrated) as writer:
        writer.table(Deployment, ["service", "environment", "triggered_by", "started_at", "finished_at",
                                  "duration_seconds"])
        writer.add(Deployment, (svc.id, env.id, "BulkWriter", T0, minutes(1), 999))
    repo.create(service=svc, environment=env, triggered_by="repository", duration_seconds=999)
    timed = repo.create(service=svc, environment=env, triggered_by="repository update", started_at=T0,
                        finished_at=minutes(3))
    repo.update(timed, duration_seconds=999)
    Deployment.create(service=svc, environment=env, triggered_by="update", started_at=T0, finished_at=minutes(4))
    Deployment.update(duration_seconds=999).where(Deployment.triggered_by == "update").execute()
    bulk = Deployment.create(service=svc, environment=env, triggered_by="bulk_update", started_at=T0,
                             finished_at=minutes(5))
    bulk.duration_seconds = 999
    Deployment.bulk_update([bulk], fields=["duration_seconds"])
    assert durations() == {"create": None, "insert": None, "insert_many": None, "bulk_create": None,
                           "BulkWriter": 60, "repository": None, "repository update": 180, "update": 240,
                           "bulk_update": 300}


def test_a_row_read_without_its_times_keeps_its_duration_right_when_saved(
        migrated: peewee.Database, svc_env: tuple[Service, Environment]) -> None:
    from orm_kit.repositories import DeploymentRepository

    svc, env = svc_env
    for name in ("model", "repository"):
        d = Deployment.create(service=svc, environment=env, triggered_by=name, started_at=T0, finished_at=minutes(2))
        partial = Deployment.select(Deployment.id, Deployment.lock_version, Deployment.duration_seconds,
                                    Deployment.started_at).where(Deployment.id == d.id).get()
        partial.duration_seconds = 999  # neither its finished_at nor the truth
        partial.started_at = minutes(1)
        if name == "model":
            partial.save()
        else:
            DeploymentRepository(migrated).save(partial)
        assert "duration_seconds" not in partial.__data__  # computed by the database: read the row to know it
    assert durations() == {"model": 60, "repository": 60}
