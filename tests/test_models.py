"""The platform's tables on SQLite and PostgreSQL: every relationship both ways, every on_delete."""

from __future__ import annotations

import datetime
import time
import uuid

import peewee
import pytest

from orm_kit.errors import ValidationError
from orm_kit.models import (
    MODELS,
    Api,
    Deployment,
    Environment,
    Incident,
    Release,
    Service,
    ServiceApiConsumer,
    ServiceDependency,
    ServiceSourceConfig,
    Team,
)

import factories as f

pytestmark = pytest.mark.usefixtures("migrated")
UTC = datetime.UTC


def test_all_ten_tables_exist(migrated: peewee.Database) -> None:
    tables = set(migrated.get_tables())
    assert {m._meta.table_name for m in MODELS} <= tables
    assert len(MODELS) == 10


def test_team_tree_self_referential_one_to_many() -> None:
    root = f.team(name="platform")
    child = f.team(name="payments", parent=root)
    grandchild = f.team(name="checkout", parent=child)
    assert [t.name for t in root.children] == ["payments"]
    assert Team.get_by_id(grandchild.id).parent.parent.name == "platform"
    root.delete_instance()  # SET NULL: the sub-team survives, orphaned
    assert Team.get_by_id(child.id).parent is None
    assert Team.get_by_id(grandchild.id).parent_id == child.id


def test_service_owner_many_to_one_and_restrict() -> None:
    owner = f.team(name="payments")
    svc = f.service(name="checkout-api", owner=owner)
    assert Service.get(Service.name == "checkout-api").owner.name == "payments"
    assert [s.name for s in owner.services] == ["checkout-api"]
    with pytest.raises(peewee.IntegrityError):
        owner.delete_instance()  # RESTRICT: a team that owns services cannot go
    assert Team.get_or_none(Team.id == owner.id) is not None
    assert isinstance(svc.id, uuid.UUID)


def test_service_dependencies_self_referential_many_to_many() -> None:
    a, b, c = f.service(name="a"), f.service(name="b"), f.service(name="c")
    ServiceDependency.create(service=a, depends_on=b, kind="runtime")
    ServiceDependency.create(service=a, depends_on=c, kind="data")
    ServiceDependency.create(service=b, depends_on=c)
    assert sorted(d.depends_on.name for d in a.dependency_links) == ["b", "c"]
    assert sorted(d.service.name for d in c.dependent_links) == ["a", "b"]
    c.delete_instance()  # CASCADE on both sides
    assert [d.depends_on.name for d in a.dependency_links] == ["b"]
    assert ServiceDependency.select().count() == 1


def test_dependency_unique_pair_and_no_self_dependency_in_the_database(migrated: peewee.Database) -> None:
    a, b = f.service(), f.service()
    ServiceDependency.create(service=a, depends_on=b)
    with pytest.raises(peewee.IntegrityError), migrated.atomic():
        # Bypass validation to prove the database itself refuses it.
        migrated.execute_sql(
            "INSERT INTO service_dependency (service_id, depends_on_id, kind, created_at) VALUES "
            f"({migrated.param}, {migrated.param}, 'runtime', {migrated.param})",
            (ServiceDependency.service.db_value(a.id), ServiceDependency.service.db_value(a.id),
             datetime.datetime(2026, 1, 1, tzinfo=UTC) if migrated.param == "%s" else "2026-01-01 00:00:00"))
    assert ServiceDependency.select().count() == 1


def test_api_owner_and_provider_both_ways_and_owner_restrict() -> None:
    owner, provider = f.team(name="catalog"), f.service(name="catalog-svc")
    api = Api.create(name="catalog-api", type="graphql", owner=owner, provider=provider)
    assert [a.name for a in owner.apis] == ["catalog-api"]
    loaded = Api.get_by_id(api.id)
    assert (loaded.owner.name, loaded.provider.name) == ("catalog", "catalog-svc")
    with pytest.raises(peewee.IntegrityError):
        owner.delete_instance()  # RESTRICT: a team that owns APIs cannot go
    assert Team.get_or_none(Team.id == owner.id) is not None


def test_apis_many_to_many_through_consumer() -> None:
    owner = f.team()
    provider, consumer1, consumer2 = f.service(owner=owner), f.service(owner=owner), f.service(owner=owner)
    api = Api.create(name="payments-api", type="openapi", owner=owner, provider=provider)
    ServiceApiConsumer.create(service=consumer1, api=api)
    ServiceApiConsumer.create(service=consumer2, api=api)
    assert [a.name for a in provider.provided_apis] == ["payments-api"]
    assert sorted(c.service.name for c in api.consumers) == sorted([consumer1.name, consumer2.name])
    assert [c.api.name for c in consumer1.consumed_apis] == ["payments-api"]
    provider.delete_instance()  # SET NULL: the API stays without a provider
    assert Api.get_by_id(api.id).provider is None
    consumer1.delete_instance()  # CASCADE: its consumer row goes
    assert ServiceApiConsumer.select().count() == 1
    api.delete_instance()
    assert ServiceApiConsumer.select().count() == 0


def test_source_config_one_to_one() -> None:
    svc = f.service()
    config = ServiceSourceConfig.create(service=svc, repo_url="https://git.example.com/checkout.git")
    assert config.path == "." and config.target_revision == "HEAD" and config.sync_policy == "manual"
    assert Service.get_by_id(svc.id).source_config == config
    assert ServiceSourceConfig.get_by_id(svc.id).service.name == svc.name
    with pytest.raises(ValidationError, match="service has already been taken"):
        ServiceSourceConfig.insert(service=svc, repo_url="https://x.example.com/y.git", path=".",
                                   target_revision="HEAD", sync_policy="manual").execute()
    svc.delete_instance(recursive=False)
    assert ServiceSourceConfig.select().count() == 0


def test_releases_deployments_and_incidents_both_ways() -> None:
    svc, env = f.service(), f.environment()
    rel = f.release(svc, version="1.2.3")
    dep = f.deployment(svc, env, release=rel)
    inc = f.incident(svc, env, caused_by=dep)
    assert [r.version for r in svc.releases] == ["1.2.3"]
    assert [d.id for d in rel.deployments] == [dep.id]
    assert [d.id for d in env.deployments] == [dep.id]
    assert [i.id for i in dep.incidents] == [inc.id]
    loaded = Deployment.get_by_id(dep.id)
    assert (loaded.service.name, loaded.environment.slug, loaded.release.version) == (svc.name, env.slug, "1.2.3")
    loaded_incident = Incident.get_by_id(inc.id)
    assert loaded_incident.caused_by.id == dep.id
    assert (loaded_incident.service.name, loaded_incident.environment.slug) == (svc.name, env.slug)
    assert [i.id for i in svc.incidents] == [inc.id]
    assert [i.id for i in env.incidents] == [inc.id]
    assert Release.get_by_id(rel.id).service.name == svc.name


def test_rollback_is_a_self_one_to_one() -> None:
    svc, env = f.service(), f.environment()
    bad = f.deployment(svc, env, status="failed")
    fix = f.deployment(svc, env, rollback_of=bad)
    assert Deployment.get_by_id(fix.id).rollback_of.id == bad.id
    assert bad.rolled_back_by is not None and bad.rolled_back_by.id == fix.id
    assert fix.rolled_back_by is None
    with pytest.raises(ValidationError, match="rollback_of has already been taken"):
        Deployment.insert(service=svc, environment=env, rollback_of=bad, status="created",
                          lock_version=1, created_at=datetime.datetime.now(UTC)).execute()
    bad.delete_instance()  # SET NULL
    assert Deployment.get_by_id(fix.id).rollback_of is None


def test_deleting_a_release_keeps_its_deployments_unlinked() -> None:
    svc, env = f.service(), f.environment()
    rel = f.release(svc)
    dep = f.deployment(svc, env, release=rel)
    rel.delete_instance()
    assert Deployment.get_by_id(dep.id).release is None


def test_deleting_a_service_cascades_to_its_history() -> None:
    svc, env = f.service(), f.environment()
    rel = f.release(svc)
    dep = f.deployment(svc, env, release=rel)
    f.incident(svc, env, caused_by=dep)
    ServiceSourceConfig.create(service=svc, repo_url="https://git.example.com/x.git")
    svc.delete_instance()
    for model in (Release, Deployment, Incident, ServiceSourceConfig):
        assert model.select().count() == 0, model.__name__
    assert Environment.get_by_id(env.id) is not None


def test_environment_with_deployments_is_restricted() -> None:
    svc, env = f.service(), f.environment()
    f.deployment(svc, env)
    with pytest.raises(peewee.IntegrityError):
        env.delete_instance()


def test_deployment_delete_sets_incident_cause_null() -> None:
    svc, env = f.service(), f.environment()
    dep = f.deployment(svc, env)
    inc = f.incident(svc, env, caused_by=dep)
    dep.delete_instance()
    assert Incident.get_by_id(inc.id).caused_by is None


def test_timestamps_are_utc_and_updated_at_moves_on_save() -> None:
    svc = f.service()
    loaded = Service.get_by_id(svc.id)
    assert loaded.created_at.tzinfo is not None and loaded.created_at.utcoffset() == datetime.timedelta(0)
    before = loaded.updated_at
    time.sleep(0.01)
    loaded.description = "changed"
    loaded.save()
    assert Service.get_by_id(svc.id).updated_at > before


def test_aware_datetimes_in_other_zones_are_stored_as_utc() -> None:
    svc, env = f.service(), f.environment()
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    started = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=plus_two)
    dep = f.deployment(svc, env, started_at=started, finished_at=started + datetime.timedelta(minutes=5))
    loaded = Deployment.get_by_id(dep.id)
    assert loaded.started_at == datetime.datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert loaded.started_at.tzinfo is not None
    # Comparisons in SQL follow time order on both databases.
    query = Deployment.select().where(Deployment.started_at < datetime.datetime(2026, 3, 1, 10, 30, tzinfo=UTC))
    assert [d.id for d in query] == [dep.id]


def test_times_before_year_1000_round_trip_and_sort() -> None:
    svc = f.service()
    early = datetime.datetime(999, 5, 1, tzinfo=UTC)
    late = datetime.datetime(2026, 5, 1, tzinfo=UTC)
    f.release(svc, version="0.0.1", committed_at=early)
    f.release(svc, version="0.0.2", committed_at=late)
    ordered = [r.committed_at for r in Release.select().order_by(Release.committed_at)]
    assert ordered == [early, late]


def test_save_inserts_a_new_uuid_row_and_updates_a_loaded_one() -> None:
    owner = f.team()
    svc = Service(name="fresh", tier="low", owner=owner)
    assert svc.id is not None  # the UUID default is there before the first save
    svc.save()  # plain peewee would UPDATE nothing here
    assert Service.select().where(Service.name == "fresh").count() == 1
    loaded = Service.get(Service.name == "fresh")
    loaded.tier = "high"
    loaded.save()
    assert Service.select().count() == 1 and Service.get_by_id(svc.id).tier == "high"
