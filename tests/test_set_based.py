"""update_where / delete_where: one statement, the same filters as find(), values validated as update() does."""

from __future__ import annotations

import datetime

import peewee
import pytest
from playhouse.test_utils import count_queries

from orm_kit.errors import ConflictError, InvalidQueryError, ValidationError
from orm_kit.models import Deployment, Service, Team
from orm_kit.repositories import DeploymentRepository, ServiceRepository, TeamRepository

import factories

UTC = datetime.UTC
T0 = datetime.datetime(2026, 4, 1, 9, tzinfo=UTC)


@pytest.fixture
def teams(migrated: peewee.Database) -> TeamRepository:
    for name in ("alpha", "beta", "gamma", "delta"):
        factories.team(name=name, display_name=name.title())
    return TeamRepository(migrated)


def test_update_where_changes_the_matching_rows_in_one_statement(teams: TeamRepository) -> None:
    with count_queries() as counter:
        changed = teams.update_where({"display_name": "Greek"}, name__in=["alpha", "beta", "nope"])
    assert (changed, counter.count) == (2, 1)
    assert {t.name: t.display_name for t in teams.find()} == {
        "alpha": "Greek", "beta": "Greek", "delta": "Delta", "gamma": "Gamma"}
    assert teams.update_where({"email": "x@example.com"}, name="nope") == 0


def test_update_where_validates_like_update_and_sends_nothing_on_error(teams: TeamRepository) -> None:
    with count_queries() as counter, pytest.raises(ValidationError) as caught:
        teams.update_where({"name": "Not A Slug", "email": "nope"}, name="alpha")
    assert counter.count == 0
    assert set(caught.value.errors) == {"name", "email"}
    with pytest.raises(InvalidQueryError, match="cannot be updated"):
        teams.update_where({"id": 5}, name="alpha")
    with pytest.raises(InvalidQueryError, match="cannot be filtered by 'colour'"):
        teams.update_where({"display_name": "x"}, colour="red")
    with pytest.raises(InvalidQueryError, match="needs at least one filter"):
        teams.update_where({"display_name": "x"})
    with pytest.raises(ValidationError, match="has already been taken"):
        teams.update_where({"name": "beta"}, name="alpha")
    assert teams.count(name="alpha") == 1  # and the (PostgreSQL) connection is still usable


def test_update_where_moves_versions_on_and_stamps_updated_at(migrated: peewee.Database) -> None:
    services = ServiceRepository(migrated)
    owner = factories.team()
    svc = services.create(name="api", tier="low", owner=owner)
    before = svc.updated_at
    assert services.update_where({"tier": "high"}, owner=owner) == 1
    stored = Service.get_by_id(svc.id)
    assert (stored.tier, stored.lock_version) == ("high", 2) and stored.updated_at > before
    svc.description = "a copy read before the update"
    with pytest.raises(ConflictError):
        services.save(svc)  # stale: the set-based update moved the version on


def test_update_where_keeps_derived_fields_in_step(migrated: peewee.Database) -> None:
    deployments = DeploymentRepository(migrated)
    svc, env = factories.service(), factories.environment()
    d = deployments.create(service=svc, environment=env, started_at=T0, finished_at=T0 + datetime.timedelta(minutes=2))
    assert deployments.update_where({"finished_at": T0 + datetime.timedelta(minutes=5)}, id=d.id) == 1
    assert Deployment.get_by_id(d.id).duration_seconds == 300  # one end given: the other read in SQL
    deployments.update_where({"started_at": T0, "finished_at": T0 + datetime.timedelta(seconds=30)}, service=svc)
    assert Deployment.get_by_id(d.id).duration_seconds == 30
    # As Model.update(): rules across fields need the whole row, so the database's CHECK is the guard here.
    with pytest.raises(peewee.IntegrityError), migrated.atomic():
        deployments.update_where({"started_at": T0, "finished_at": T0 - datetime.timedelta(seconds=1)}, id=d.id)
    assert Deployment.get_by_id(d.id).duration_seconds == 30


def test_delete_where(teams: TeamRepository, migrated: peewee.Database) -> None:
    with count_queries() as counter:
        assert teams.delete_where(name__startswith="a") == 1
    assert counter.count == 1
    assert teams.delete_where(name__in=["beta", "gamma"], display_name__contains="e") == 1  # beta
    assert sorted(t.name for t in teams.find()) == ["delta", "gamma"]
    with pytest.raises(InvalidQueryError, match="needs at least one filter"):
        teams.delete_where()
    owner = Team.get(name="delta")
    factories.service(owner=owner)
    with pytest.raises(peewee.IntegrityError), migrated.atomic():  # RESTRICT: a service still belongs to the team
        teams.delete_where(name="delta")
    assert teams.count() == 2
