"""Validation on every write path, before any SQL, identical on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime
import math
from typing import Any

import factories as f
import peewee
import pytest
from playhouse.test_utils import count_queries

from orm_kit.errors import ValidationError
from orm_kit.models import Deployment, Environment, Release, Service, ServiceDependency, Team

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
