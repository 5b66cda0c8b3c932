"""Validation on every write path, before any SQL, identical on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime
import math
from typing import Any

import peewee
import pytest
from playhouse.test_utils import count_queries

from orm_kit.errors import UniqueViolationError, ValidationError
from orm_kit.models import (
    Api,
    Deployment,
    Environment,
    Release,
    Service,
    ServiceApiConsumer,
    ServiceDependency,
    Team,
)
from orm_kit.validation import required, validate

import factories as f

pytestmark = pytest.mark.usefixtures("migrated")
UTC = datetime.UTC


def test_every_failing_field_is_reported_at_once() -> None:
    with pytest.raises(ValidationError) as caught:
        Service.create(name="Not A Slug", lifecycle="retired", tier="urgent", repository_url="nope", owner=None)
    errors = caught.value.errors
    assert set(errors) == {"name", "lifecycle", "tier", "repository_url", "owner"}
    assert errors["owner"] == ["can't be blank"]
    assert "must be one of experimental, production, deprecated (got 'retired')" in errors["lifecycle"]
    assert str(caught.value).startswith("Service is invalid: ")
    assert Service.select().count() == 0


def test_validation_sends_no_sql() -> None:
    owner = f.team()
    with count_queries() as counter, pytest.raises(ValidationError):
        Service.create(name="x" * 64, tier="low", owner=owner)
    assert counter.count == 0


def test_long_name_message_follows_rails_phrasing() -> None:
    with pytest.raises(ValidationError) as caught:
        f.team(name="x" * 64)
    assert caught.value.errors == {"name": ["is too long (maximum is 63 characters, got 64)"]}
    assert caught.value.full_messages() == ["name is too long (maximum is 63 characters, got 64)"]


BAD_INPUTS: list[tuple[dict[str, Any], str, str]] = [
    ({"lock_version": "12"}, "lock_version", "must be an integer"),
    ({"lock_version": 2**31}, "lock_version", "must be a 32-bit integer"),
    ({"lock_version": 2**64}, "lock_version", "must be a 32-bit integer"),
    ({"lock_version": True}, "lock_version", "must be an integer"),
    ({"description": "nul\x00byte"}, "description", "NUL byte"),
    ({"name": "n" * 64}, "name", "is too long"),
    ({"repository_url": "https://example.com/" + "x" * 2048}, "repository_url", "is too long"),
    ({"description": 42}, "description", "must be text"),
    ({"created_at": "yesterday"}, "created_at", "must be a date and time"),
]


@pytest.mark.parametrize(("override", "field", "message"), BAD_INPUTS,
                         ids=[f"{c[1]}-{i}" for i, c in enumerate(BAD_INPUTS)])
def test_bad_inputs_rejected_identically(override: dict[str, Any], field: str, message: str) -> None:
    data: dict[str, Any] = {"name": "svc", "tier": "low", "owner": f.team()}
    data.update(override)
    with pytest.raises(ValidationError) as caught:
        Service.create(**data)
    assert field in caught.value.errors
    assert any(message in m for m in caught.value.errors[field])
    assert Service.select().count() == 0


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_no_nan_or_infinity(value: float) -> None:
    # No float column on the platform tables: prove it on a throwaway model bound to the same database.
    class Measure(Team.__base__):  # type: ignore[name-defined,misc]
        value = peewee.FloatField()

    Measure.bind(Team._meta.database)
    Measure.create_table()
    with pytest.raises(ValidationError, match="must be a finite number"):
        Measure.create(value=value)
    assert Measure.select().count() == 0


def test_cross_field_rules() -> None:
    svc, env = f.service(), f.environment()
    start = datetime.datetime(2026, 1, 1, 12, tzinfo=UTC)
    with pytest.raises(ValidationError) as caught:
        Deployment.create(service=svc, environment=env, started_at=start,
                          finished_at=start - datetime.timedelta(seconds=1))
    assert list(caught.value.errors) == ["finished_at"]
    assert "must be at or after started_at" in caught.value.errors["finished_at"][0]
    with pytest.raises(ValidationError, match="cannot depend on itself"):
        ServiceDependency.create(service=svc, depends_on=svc)


def test_save_validates_changes_to_a_loaded_row() -> None:
    svc = f.service(name="keep-me")
    loaded = Service.get_by_id(svc.id)
    loaded.tier = "urgent"
    with pytest.raises(ValidationError, match="tier must be one of"):
        loaded.save()
    assert Service.get_by_id(svc.id).tier == "medium"


def test_insert_and_update_queries_are_validated() -> None:
    owner = f.team()
    with pytest.raises(ValidationError, match="name must be a lowercase slug"):
        Service.insert(name="Bad Name", tier="low", owner=owner).execute()
    svc = f.service(owner=owner)
    with pytest.raises(ValidationError, match="tier must be one of"):
        Service.update(tier="urgent").where(Service.id == svc.id).execute()
    # Expressions are the database's business and pass through.
    Service.update(lock_version=Service.lock_version + 1).where(Service.id == svc.id).execute()
    assert Service.get_by_id(svc.id).lock_version == 2


def test_bulk_insert_validates_every_row_and_names_the_row() -> None:
    owner = f.team()
    rows = [{"name": f"svc-{i}", "tier": "low", "owner": owner.id} for i in range(5)]
    rows[3]["tier"] = "urgent"
    rows[3]["name"] = "Bad"
    with pytest.raises(ValidationError) as caught:
        Service.insert_many(rows).execute()
    assert caught.value.row == 3
    assert set(caught.value.errors) == {"tier", "name"}
    assert "row 3" in str(caught.value)
    assert Service.select().count() == 0


def test_bulk_create_validates_instances() -> None:
    owner = f.team()
    good = Environment(name="Staging", slug="staging", tier="staging")
    bad = Environment(name="Prod", slug="Prod_1", tier="live")
    with pytest.raises(ValidationError) as caught:
        Environment.bulk_create([good, bad])
    assert set(caught.value.errors) == {"slug", "tier"}
    assert Environment.select().count() == 0
    Environment.bulk_create([good])
    assert Environment.select().count() == 1
    assert owner.id is not None


def test_unique_violation_comes_back_as_validation_error_naming_the_field(migrated: peewee.Database) -> None:
    f.team(name="payments")
    with pytest.raises(ValidationError) as caught, migrated.atomic():
        f.team(name="payments")
    assert list(caught.value.errors) == ["name"]
    assert "has already been taken" in caught.value.errors["name"][0]


def test_composite_unique_violation_names_the_pair(migrated: peewee.Database) -> None:
    svc = f.service()
    f.release(svc, version="1.0.0")
    with pytest.raises(ValidationError) as caught, migrated.atomic():
        f.release(svc, version="1.0.0")
    assert list(caught.value.errors) == ["version"]
    assert "service and version must be unique together" in caught.value.errors["version"][0]


def test_release_rules() -> None:
    svc = f.service()
    with pytest.raises(ValidationError) as caught:
        Release.create(service=svc, version="v1", commit_sha="abc", ref=" ")
    assert set(caught.value.errors) == {"version", "commit_sha", "ref"}


def test_team_email_and_not_own_parent() -> None:
    with pytest.raises(ValidationError, match="email is not a valid email address"):
        f.team(email="not-an-email")
    t = f.team(email="team@example.com")
    t.parent = t.id
    with pytest.raises(ValidationError, match="parent cannot be the team itself"):
        t.save()


def test_bulk_update_validates_every_instance_and_writes_none_on_failure() -> None:
    a, b = f.service(name="a-svc"), f.service(name="b-svc")
    a.name, b.name = "ok-name", "Bad Name"
    with pytest.raises(ValidationError) as caught:
        Service.bulk_update([a, b], fields=["name"])
    assert caught.value.row == 1 and "name" in caught.value.errors
    assert sorted(s.name for s in Service.select()) == ["a-svc", "b-svc"]
    b.lock_version = 2**40
    b.name = "fine-name"
    with pytest.raises(ValidationError, match="32-bit integer"):
        Service.bulk_update([b], fields=["lock_version"])


def test_on_conflict_update_values_are_validated(migrated: peewee.Database) -> None:
    t = f.team(name="payments", email="a@example.com")
    with pytest.raises(ValidationError) as caught:
        Team.insert(name="payments").on_conflict(
            conflict_target=[Team.name], update={Team.email: "not an email\x00"}).execute()
    assert "email" in caught.value.errors
    assert Team.get_by_id(t.id).email == "a@example.com"
    Team.insert(name="payments").on_conflict(conflict_target=[Team.name],
                                             update={Team.email: "b@example.com"}).execute()
    assert Team.get_by_id(t.id).email == "b@example.com"


def test_bulk_create_is_all_or_nothing_and_numbers_rows_over_the_whole_list() -> None:
    envs = [Environment(name=f"Env {i}", slug=f"env-{i}", tier="testing") for i in range(4)]
    envs[3].tier = "live"
    with pytest.raises(ValidationError) as caught:
        Environment.bulk_create(envs, batch_size=2)
    assert caught.value.row == 3
    assert Environment.select().count() == 0


def test_bulk_create_rolls_back_earlier_batches_when_the_database_refuses_a_later_one() -> None:
    f.environment(slug="taken")
    envs = [Environment(name=f"Env {i}", slug=f"env-{i}", tier="testing") for i in range(3)]
    envs.append(Environment(name="Other", slug="taken", tier="testing"))
    with pytest.raises(ValidationError, match="slug has already been taken"):
        Environment.bulk_create(envs, batch_size=2)
    assert Environment.select().count() == 1


def test_required_applies_to_nullable_fields_too() -> None:
    @validate(display_name=[required()])
    class StrictTeam(Team):
        class Meta:
            table_name = "team"

    with pytest.raises(ValidationError) as caught:
        StrictTeam.create(name="strict", display_name=None)
    assert caught.value.errors == {"display_name": ["can't be blank"]}


def test_naive_and_aware_times_compare_as_utc() -> None:
    svc, env = f.service(), f.environment()
    naive_start = datetime.datetime(2026, 1, 1, 12, 0)  # taken as UTC
    with pytest.raises(ValidationError, match="must be at or after started_at"):
        Deployment.create(service=svc, environment=env, started_at=naive_start,
                          finished_at=datetime.datetime(2026, 1, 1, 11, 0, tzinfo=UTC))
    ok = Deployment.create(service=svc, environment=env, started_at=naive_start,
                           finished_at=datetime.datetime(2026, 1, 1, 12, 5, tzinfo=UTC))
    assert Deployment.get_by_id(ok.id).started_at == datetime.datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_saving_a_partly_selected_row_checks_only_what_it_holds() -> None:
    svc = f.service()
    partial = Service.select(Service.id, Service.description, Service.lock_version).where(Service.id == svc.id).get()
    partial.description = "updated"
    partial.save()
    loaded = Service.get_by_id(svc.id)
    assert (loaded.description, loaded.tier, loaded.name) == ("updated", "medium", svc.name)


def test_lone_surrogates_are_refused_before_the_database() -> None:
    with pytest.raises(ValidationError, match="lone surrogate"):
        f.service(description="bad \ud800 text")


def test_save_only_runs_the_rules_aimed_at_the_fields_written() -> None:
    t = f.team()
    t.parent = t.id
    with pytest.raises(ValidationError, match="parent cannot be the team itself"):
        t.save(only=[Team.parent])


def test_database_refuses_self_parent_and_self_rollback_written_around_validation(migrated: peewee.Database) -> None:
    t = f.team()
    with pytest.raises(peewee.IntegrityError), migrated.atomic():
        Team.update(parent=t.id).where(Team.id == t.id).execute()
    d = f.deployment(f.service(), f.environment())
    with pytest.raises(peewee.IntegrityError), migrated.atomic():
        Deployment.update(rollback_of=d.id).where(Deployment.id == d.id).execute()
    assert Team.get_by_id(t.id).parent_id is None


def test_unique_violation_is_also_a_peewee_integrity_error_and_get_or_create_still_works(
        migrated: peewee.Database) -> None:
    f.team(name="payments")
    with pytest.raises(peewee.IntegrityError) as caught, migrated.atomic():
        f.team(name="payments")
    assert isinstance(caught.value, UniqueViolationError)
    assert caught.value.errors == {"name": ["has already been taken ('payments'); choose another value"]}
    team, created = Team.get_or_create(name="payments")
    assert not created and team.name == "payments"


def test_unique_pairs_for_dependencies_and_consumers(migrated: peewee.Database) -> None:
    a, b = f.service(), f.service()
    ServiceDependency.create(service=a, depends_on=b)
    with pytest.raises(UniqueViolationError, match="service and depends_on must be unique together"), \
            migrated.atomic():
        ServiceDependency.create(service=a, depends_on=b, kind="build")
    api = Api.create(name="orders-api", type="grpc", owner=a.owner)
    ServiceApiConsumer.create(service=a, api=api)
    with pytest.raises(UniqueViolationError, match="service and api must be unique together"), migrated.atomic():
        ServiceApiConsumer.create(service=a, api=api)
    assert ServiceDependency.select().count() == 1 and ServiceApiConsumer.select().count() == 1


def _wrong_row_paths(env: Environment, team: Team, migrated: peewee.Database) -> dict[str, Any]:
    from orm_kit.bulk import BulkWriter
    from orm_kit.repositories import ServiceRepository

    def bulk(validate: bool) -> None:
        with BulkWriter(migrated, validate=validate) as writer:
            writer.table(Service, ["name", "owner", "tier"])
            writer.add(Service, ("bulk", env, "low"))

    def saved() -> None:
        svc = Service.create(name="saved", owner=team, tier="low")
        svc.owner = env
        svc.save()

    return {
        "create": lambda: Service.create(name="s", owner=env, tier="low"),
        "insert": lambda: Service.insert(name="s", owner=env, tier="low").execute(),
        "insert_many": lambda: Service.insert_many([{"name": "s", "owner": env, "tier": "low"}]).execute(),
        "update": lambda: Service.update(owner=env).execute(),
        "save": saved,
        "bulk_create": lambda: Service.bulk_create([Service(name="s", owner=env, tier="low")]),
        "BulkWriter": lambda: bulk(True),
        "BulkWriter(validate=False)": lambda: bulk(False),
        "repository create": lambda: ServiceRepository(migrated).create(name="s", owner=env, tier="low"),
    }


@pytest.mark.parametrize("path", ["create", "insert", "insert_many", "update", "save", "bulk_create", "BulkWriter",
                                  "BulkWriter(validate=False)", "repository create"])
def test_a_foreign_key_given_a_row_of_another_table_is_refused_not_linked_by_its_id(
        migrated: peewee.Database, path: str) -> None:
    """Service.create(owner=<Environment id=1>) linked the service to team 1."""
    team = Team.create(name="one")
    env = Environment.create(name="Production", slug="prod", tier="production")
    assert team.id == env.id == 1
    with migrated.atomic() as txn:
        with pytest.raises(ValidationError, match=r"owner must be a Team or its id .*Environment"):
            _wrong_row_paths(env, team, migrated)[path]()
        txn.rollback()
    assert Service.select().count() == 0


def test_a_uuid_foreign_key_given_another_tables_uuid_row_is_refused() -> None:
    service = f.service()
    env = f.environment()
    with pytest.raises(ValidationError, match=r"caused_by must be a Deployment or its id .*Service"):
        f.incident(service, env, caused_by=service)  # a Service's UUID is no deployment's
